"""``gymnasium.make("Go2Walk-v0")``: the Walk task as a normal single ``gymnasium.Env``.

A batched simulation of one env underneath, so the single and vector forms share every line of
physics, reward and observation code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from go2bench.envs import spaces as S
from go2bench.envs import tasks as T
from go2bench.envs.robots import RobotDescription
from go2bench.envs.walk_config import WalkConfig
from go2bench.envs.walk_sim import WalkSimulation


class WalkEnv(gym.Env):
    """A quadruped tracking a velocity command on flat ground (Genesis).

    Args:
        robot: "go2", "mini_cheetah" or a :class:`RobotDescription`.
        backend: "cpu" (default) or "gpu"; one backend per process.
        render_mode: None or "rgb_array" (headless EGL camera).
        config: a :class:`WalkConfig`, a mapping or a YAML path; defaults to the original workflow's.
        family: None (today's task, unchanged) or a task family, "velocity" or "dynamics"
            (:mod:`go2bench.envs.families`): the env gets a hidden theta, reported in ``info["task"]``
            (``{name: value}``) and ``info["task_id"]`` (the suite id, e.g. "velocity-v0/test/3", or None).
        task: the theta (:mod:`go2bench.envs.tasks`): a mapping like ``{"lin_vel_x": 0.8}`` (missing
            names take the family's default), ``("test", 3)`` (the 4th test task of the family's suite
            for this robot), or a split name like ``"train"`` (drawn per trial from the env's seed).
            None: the family's default theta. Held for every episode of a trial; a new trial starts
            at ``reset(seed=...)`` or ``reset(options={"task": ...})`` / ``{"new_trial": True}``.
        resample_tasks: "trial" (default, theta held) or "episode" (a new draw from the split at
            every episode start; needs a split name).
        privileged: append the normalised theta to the observation (the privileged teacher's input).
        **overrides: top-level WalkConfig fields, e.g. ``obs_mode="full"``, ``action_latency=False``.
    """

    metadata = {"render_modes": list(S.RENDER_MODES), "render_fps": 50}

    def __init__(
        self,
        robot: str | RobotDescription = "go2",
        backend: str = "cpu",
        render_mode: str | None = None,
        config: WalkConfig | dict | str | Path | None = None,
        family: str | None = None,
        task: Any = None,
        resample_tasks: str = "trial",
        privileged: bool = False,
        **overrides: Any,
    ) -> None:
        S.check_render_mode(render_mode)
        self.robot_description, self.config = S.resolve(robot, config, overrides)
        assignment = S.resolve_tasks(self.robot_description, self.config, 1, family, task, resample_tasks, privileged)
        self.render_mode = render_mode
        self.sim = WalkSimulation(
            self.robot_description, self.config, num_envs=1, backend=backend, render=render_mode is not None,
            family=family, privileged=privileged,
        )
        if assignment is not None:
            self.sim.tasks.assign(assignment)
        self.observation_space = S.observation_space(self.sim.obs_dim)
        self.action_space = S.action_space(self.robot_description)
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.config.dt))}
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``options``: "task", "resample_tasks", "new_trial" (see the class docstring)."""
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            self.sim.seed(int(self.np_random.integers(2**62)) if seed is None else seed)
            self._seeded = True
        T.apply_reset_options(self.sim, options, None, seeded=seed is not None)
        obs = self.sim.reset()
        return self._to_numpy(obs), T.task_info(self.sim, 0)

    def step(self, action):
        actions = S.to_action_tensor(action, (self.robot_description.num_joints,), self.sim.device)
        r = self.sim.step(actions[None])
        # each reward term's weighted contribution, as Gymnasium's MuJoCo envs report theirs
        info: dict[str, Any] = {f"reward_{k}": float(v[0]) for k, v in r.reward_terms.items()}
        if bool(r.diverged[0]):
            info["diverged"] = True
        if self.sim.tasks is not None:
            info.update(T.task_info(self.sim, 0))
        return (
            self._to_numpy(r.obs),
            float(r.reward[0]),
            bool(r.terminated[0]),
            bool(r.truncated[0]),
            info,
        )

    def close(self) -> None:
        self.sim.close()
        super().close()

    def render(self):
        return S.render(self.sim, self.render_mode)

    @staticmethod
    def _to_numpy(obs) -> np.ndarray:
        return obs[0].detach().cpu().numpy().astype(np.float32, copy=False)
