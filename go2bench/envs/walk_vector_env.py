"""``gymnasium.make_vec("Go2Walk-v0", num_envs=N)``: N envs in one batched Genesis scene.

Autoreset: ``autoreset_mode="same_step"`` (default) resets finished envs inside the step that ended
them; the returned observation is the first of the new episode and the last one of the old episode
is in ``info["final_obs"]`` (an (N, obs_dim) array, rows valid where ``info["_final_obs"]``).
``"next_step"`` follows Gymnasium's default: the step after an episode ends returns the reset
observation with reward 0 and the action is ignored for that env. ``"disabled"`` never resets; use
``reset(options={"reset_mask": mask})``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from go2bench.envs import spaces as S
from go2bench.envs.robots import RobotDescription
from go2bench.envs.walk_config import WalkConfig
from go2bench.envs.walk_sim import StepResult, WalkSimulation

_MODES = {m.value.lower(): m for m in AutoresetMode}  # "nextstep", "samestep", "disabled"


def _autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        return mode
    key = str(mode).lower().replace("_", "").replace("-", "")
    if key not in _MODES:
        raise ValueError(f"autoreset_mode must be one of 'same_step', 'next_step', 'disabled'; got {mode!r}")
    return _MODES[key]


class WalkVectorEnv(VectorEnv):
    """A batch of quadrupeds tracking velocity commands; see :class:`go2bench.envs.walk_env.WalkEnv`.

    Extra args: ``num_envs``, ``autoreset_mode`` and ``max_episode_steps`` (from the registration).
    """

    def __init__(
        self,
        num_envs: int = 1,
        robot: str | RobotDescription = "go2",
        backend: str = "cpu",
        render_mode: str | None = None,
        config: WalkConfig | dict | str | Path | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.SAME_STEP,
        max_episode_steps: int | None = None,
        **overrides: Any,
    ) -> None:
        S.check_render_mode(render_mode)
        self.robot_description, self.config = S.resolve(robot, config, overrides)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.render_mode = render_mode
        self.sim = WalkSimulation(
            self.robot_description,
            self.config,
            num_envs=num_envs,
            backend=backend,
            render=render_mode is not None,
            max_episode_steps=max_episode_steps,
        )
        self.num_envs = num_envs
        self.metadata = {
            "render_modes": list(S.RENDER_MODES),
            "render_fps": int(round(1.0 / self.config.dt)),
            "autoreset_mode": self.autoreset_mode,
        }
        self.single_observation_space = S.observation_space(self.config.obs_dim)
        self.single_action_space = S.action_space(self.robot_description)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=self.sim.device)
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(
                "seed must be a single int: all envs share one batched simulation seeded once "
                f"(got {type(seed).__name__})"
            )
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self.sim.seed(int(self.np_random.integers(2**62)) if seed is None else int(seed))
            self._seeded = True
        mask = None
        if options and "reset_mask" in options:
            m = np.asarray(options["reset_mask"])
            if m.shape != (self.num_envs,) or m.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
            mask = torch.from_numpy(m).to(self.sim.device)
        obs = self.sim.reset(mask)
        if mask is None:
            self._needs_reset.zero_()
        else:
            self._needs_reset &= ~mask
        return self._numpy(obs), {}

    def step(self, actions):
        a = S.to_action_tensor(actions, (self.num_envs, S.ACTION_DIM), self.sim.device)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(self._needs_reset.any()):
            return self._step_next_step(a)
        r = self.sim.step(a)
        done = r.terminated | r.truncated
        info = self._info(r)
        obs = r.obs
        if self.autoreset_mode == AutoresetMode.SAME_STEP and bool(done.any()):
            done_np = self._numpy(done)
            final_obs = np.zeros((self.num_envs, self.sim.obs_dim), dtype=np.float32)
            final_obs[done_np] = self._numpy(r.obs[done])
            info["final_obs"], info["_final_obs"] = final_obs, done_np
            obs = self.sim.reset(done)
        elif self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = done
        return self._numpy(obs), self._numpy(r.reward), self._numpy(r.terminated), self._numpy(r.truncated), info

    def _step_next_step(self, a: torch.Tensor):
        resetting = self._needs_reset.clone()
        r = self.sim.step(a)
        obs = self.sim.reset(resetting)
        zero = torch.zeros_like(r.terminated)
        reward = torch.where(resetting, torch.zeros_like(r.reward), r.reward)
        terminated = torch.where(resetting, zero, r.terminated)
        truncated = torch.where(resetting, zero, r.truncated)
        diverged = torch.where(resetting, zero, r.diverged)
        self._needs_reset = terminated | truncated
        info = self._info(StepResult(obs, reward, terminated, truncated, diverged))
        return self._numpy(obs), self._numpy(reward), self._numpy(terminated), self._numpy(truncated), info

    def _info(self, r: StepResult) -> dict[str, Any]:
        if not bool(r.diverged.any()):
            return {}
        d = self._numpy(r.diverged)
        return {"diverged": d, "_diverged": d.copy()}

    def close_extras(self, **kwargs: Any) -> None:
        self.sim.close()

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        return self.sim.render()

    @staticmethod
    def _numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()
