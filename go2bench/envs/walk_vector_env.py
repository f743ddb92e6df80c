"""``gymnasium.make_vec("Go2Walk-v0", num_envs=N)``: N envs in one batched Genesis scene.

Autoreset: ``autoreset_mode="same_step"`` (default) resets finished envs inside the step that ended
them; the returned observation is the first of the new episode and the last one of the old episode
is in ``info["final_obs"]`` (an (N, obs_dim) array, rows valid where ``info["_final_obs"]``).
``"next_step"`` follows Gymnasium's default: the step after an episode ends returns the reset
observation with reward 0 and the action is ignored for that env. ``"disabled"`` never resets; use
``reset(options={"reset_mask": mask})``.

Task families: ``family=``, ``task=`` (one spec for every env) or ``tasks=`` (a list of N specs, or
a split name drawn per env), ``resample_tasks=`` and ``privileged=`` as in
:class:`go2bench.envs.walk_env.WalkEnv`; every env keeps its own theta inside the one batched
scene. ``reset(options=...)`` takes "task"/"tasks", "resample_tasks" and "new_trial" (True or an
(N,) bool array) for the envs being reset. ``info["task"]`` is ``{name: (N,) array}`` and
``info["task_id"]`` an (N,) array of suite ids ("" for explicit thetas); in a step they are the
thetas that step ran with (with ``resample_tasks="episode"``, the new episode's may differ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from go2bench.envs import spaces as S
from go2bench.envs import tasks as T
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
        family: str | None = None,
        task: Any = None,
        tasks: Any = None,
        resample_tasks: str = "trial",
        privileged: bool = False,
        **overrides: Any,
    ) -> None:
        S.check_render_mode(render_mode)
        self.robot_description, self.config = S.resolve(robot, config, overrides)
        if task is not None and tasks is not None:
            raise ValueError("give either task= (one spec for every env) or tasks= (one per env, or a split)")
        assignment = S.resolve_tasks(self.robot_description, self.config, num_envs, family,
                                     task if tasks is None else tasks, resample_tasks, privileged)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.render_mode = render_mode
        self.sim = WalkSimulation(
            self.robot_description,
            self.config,
            num_envs=num_envs,
            backend=backend,
            render=render_mode is not None,
            max_episode_steps=max_episode_steps,
            family=family,
            privileged=privileged,
        )
        if assignment is not None:
            self.sim.tasks.assign(assignment)
        self.num_envs = num_envs
        self.metadata = {
            "render_modes": list(S.RENDER_MODES),
            "render_fps": int(round(1.0 / self.config.dt)),
            "autoreset_mode": self.autoreset_mode,
        }
        self.single_observation_space = S.observation_space(self.sim.obs_dim)
        self.single_action_space = S.action_space(self.robot_description)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._needs_reset = np.zeros(num_envs, dtype=bool)  # next-step mode: envs to reset on the next step
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
        T.apply_reset_options(self.sim, options, mask, seeded=seed is not None)
        obs = self.sim.reset(mask)
        if mask is None:
            self._needs_reset[:] = False
        else:
            self._needs_reset &= ~m
        return self._numpy(obs), T.task_info(self.sim)

    def step(self, actions):
        a = S.to_action_tensor(actions, (self.num_envs, self.robot_description.num_joints), self.sim.device)
        resetting = self._needs_reset if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        obs, reward, terminated, truncated, diverged, terms = self._to_host(self.sim.step(a))
        done = terminated | truncated
        # each reward term's weighted contribution, (N,) per term, as Gymnasium's MuJoCo envs report
        info: dict[str, Any] = {f"reward_{k}": terms[:, i] for i, k in enumerate(self.sim.reward_weights)}
        info.update(T.task_info(self.sim))  # the thetas this step ran with, before any autoreset
        if resetting is not None and resetting.any():  # Gymnasium's next-step autoreset
            obs[resetting] = self._reset_rows(resetting)
            reward[resetting] = 0.0
            terms[resetting] = 0.0
            for flags in (terminated, truncated, diverged, done):
                flags[resetting] = False
        if diverged.any():
            info["diverged"], info["_diverged"] = diverged, diverged.copy()
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            final_obs = np.zeros_like(obs)
            final_obs[done] = obs[done]
            info["final_obs"], info["_final_obs"] = final_obs, done
            obs[done] = self._reset_rows(done)
        elif self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = done
        return obs, reward, terminated, truncated, info

    def _to_host(self, r: StepResult) -> tuple[np.ndarray, ...]:
        """Observation, reward, the three flags and the (N, terms) reward terms as numpy.

        One device-to-host copy per step on the GPU; zero-copy views on the CPU.
        """
        terms = torch.stack(list(r.reward_terms.values()), 1)
        if r.obs.device.type == "cpu":  # zero-copy views of tensors made fresh by this step
            return (r.obs.numpy(), r.reward.numpy(), r.terminated.numpy(), r.truncated.numpy(), r.diverged.numpy(),
                    terms.numpy())
        flags = torch.stack([r.terminated, r.truncated, r.diverged], 1).to(r.obs.dtype)
        packed = torch.cat([r.obs, r.reward[:, None], flags, terms], 1).cpu().numpy()
        d = self.sim.obs_dim
        return (packed[:, :d].copy(), packed[:, d].copy(), packed[:, d + 1] > 0.5, packed[:, d + 2] > 0.5,
                packed[:, d + 3] > 0.5, packed[:, d + 4:].copy())

    def _reset_rows(self, mask: np.ndarray) -> np.ndarray:
        """Reset the envs in host-side ``mask`` with one batched call; their new observations."""
        mask_t = torch.from_numpy(mask).to(self.sim.device)
        return self._numpy(self.sim.reset(mask_t)[mask_t])

    def close_extras(self, **kwargs: Any) -> None:
        self.sim.close()

    def render(self):
        return S.render(self.sim, self.render_mode)

    @staticmethod
    def _numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()
