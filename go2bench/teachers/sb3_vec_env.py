"""A stable-baselines3 ``VecEnv`` straight over the batched :class:`WalkSimulation`.

Why not wrap the Gymnasium vector env: SB3 wants numpy, a list of per-env info dicts, same-step
autoreset with ``terminal_observation``, and ``TimeLimit.truncated`` to bootstrap time-outs. Doing
that here, directly on the simulation's tensors, keeps each step to

* one batched ``sim.step`` for all envs,
* one masked ``sim.reset(done)`` for the envs that finished (same-step autoreset),
* one packed device->host copy of observations, rewards and flags (plus the terminal
  observations on steps where some env finished),
* Python work only for the envs that finished (their info dicts); the others share nothing but
  get a fresh empty dict each, made in C.

Episode statistics are kept like SB3's ``Monitor`` (``info["episode"] = {"r", "l", "t"}`` on the
step that ends an episode), so ``ep_rew_mean``/``ep_len_mean`` are logged and
``evaluate_policy`` reads undiscounted returns; ``env_is_wrapped(Monitor)`` answers True for that
reason. A diverged simulation (NaN or exploded state, reset by the sim) is reported as
``info["diverged"] = True`` and is *not* marked ``TimeLimit.truncated``: its terminal observation
is sanitised garbage, so it must not be bootstrapped from.

All envs share one simulation, so ``get_attr``/``env_method`` act on the shared object and return
one entry per requested index (per-env rows for ``(num_envs, ...)`` tensors of the simulation).
"""

from __future__ import annotations

import time
from itertools import repeat
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from go2bench.envs import spaces as S
from go2bench.envs.walk_config import WalkConfig
from go2bench.envs.walk_sim import WalkSimulation, make_walk_sim


_EMPTY: dict[str, Any] = {}


class WalkSB3VecEnv(VecEnv):
    """``num_envs`` quadrupeds of one Walk env as an SB3 VecEnv (works with any SB3 algorithm).

    Args:
        env_id: "Go2Walk-v0" or "MiniCheetahWalk-v0".
        num_envs: envs in the one batched scene.
        backend: Genesis backend, "cpu" or "gpu" (one per process).
        seed: seeds the simulation's generator (commands, randomisation); SB3's ``seed()`` reseeds
            it at the next ``reset()``.
        obs_mode: "noleak" or "full" (adds the last action); None: the config's ("noleak" by default).
        config: a WalkConfig, mapping or YAML path; None: the task defaults.
        max_episode_steps: time limit in steps; None: the config's (1000 = 20 s).
        render_mode: None or "rgb_array" (env 0 through a headless camera).
        sim: an already built :class:`WalkSimulation` to use instead of building one (``close()``
            then leaves it open).
        family: a task family, passed to :func:`~go2bench.envs.walk_sim.make_walk_sim` with the next
            three (None: no family, today's default task).
        tasks: the family's thetas; teachers train with ``"train"``, the suite's train split.
        resample_tasks: when an env draws a new theta; teachers use ``"episode"``, every episode start.
        privileged: True appends the normalised theta to the observation (the privileged teacher's input).
        **overrides: other WalkConfig fields.
    """

    def __init__(
        self,
        env_id: str = "Go2Walk-v0",
        num_envs: int = 1,
        backend: str = "cpu",
        seed: int | None = 0,
        obs_mode: str | None = None,
        config: WalkConfig | dict | str | Path | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        sim: WalkSimulation | None = None,
        family: str | None = None,
        tasks: Any = None,
        resample_tasks: str = "trial",
        privileged: bool = False,
        **overrides: Any,
    ) -> None:
        S.check_render_mode(render_mode)
        self._owns_sim = sim is None
        if sim is None:
            sim = make_walk_sim(
                env_id, num_envs, backend, config, obs_mode, max_episode_steps, render_mode is not None,
                family=family, tasks=tasks, resample_tasks=resample_tasks, privileged=privileged, **overrides,
            )
        elif family is not None or tasks is not None or privileged:
            raise ValueError("family/tasks/privileged are the built simulation's own when sim= is given")
        self.sim = sim
        self.family = sim.family
        self.privileged = sim.privileged
        # the task spec training draws from (restored by :meth:`assign_tasks` after an evaluation moved it)
        self.tasks_spec = tasks
        self.resample_tasks = resample_tasks
        self.env_id = env_id
        self.render_mode = render_mode
        self.config = sim.config
        self.robot_description = sim.robot_description
        self.obs_dim = sim.obs_dim
        self.max_episode_steps = sim.max_episode_steps
        self.device = sim.device
        super().__init__(sim.num_envs, S.observation_space(sim.obs_dim), S.action_space(sim.robot_description))
        self.metadata["render_fps"] = int(round(1.0 / self.config.dt))
        if seed is not None:
            sim.seed(int(seed))
        self._actions: torch.Tensor | None = None
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._t_start = time.time()
        self._needs_reset = True

    def assign_tasks(self, tasks: Any, resample_tasks: str = "trial") -> None:
        """Give every env the task spec ``tasks`` (see :mod:`go2bench.envs.tasks`); a new trial at the next reset()."""
        from go2bench.envs.tasks import resolve

        if self.sim.tasks is None:
            raise ValueError("this simulation has no task family")
        self.sim.tasks.assign(resolve(self.sim.tasks.family, self.robot_description, tasks, self.num_envs,
                                      resample_tasks))
        self._needs_reset = True

    # ------------------------------------------------------------------ VecEnv core
    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:  # all envs share one generator: the first seed seeds it
            self.sim.seed(int(self._seeds[0]))
        self._reset_seeds()
        self._reset_options()
        obs = self.sim.reset()
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self._needs_reset = False
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs.detach().cpu().numpy().astype(np.float32, copy=False)

    def step_async(self, actions: np.ndarray) -> None:
        # Validate on the host (cheap), then one host->device copy; the simulation clips to the bounds.
        a = S.to_action_tensor(actions, (self.num_envs, self.sim.robot_description.num_joints), torch.device("cpu"))
        self._actions = a.to(self.device, non_blocking=True)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions, self._actions = self._actions, None
        sim, n, d = self.sim, self.num_envs, self.obs_dim
        r = sim.step(actions)
        done = r.terminated | r.truncated
        any_done = bool(done.any())  # the one device sync before the copy
        flags = torch.stack((r.reward, r.terminated.float(), r.truncated.float(), r.diverged.float()), dim=1)
        if any_done:
            terminal_obs = r.obs
            obs = sim.reset(done)  # one masked reset of the finished envs
            packed = torch.cat((obs, flags, terminal_obs), dim=1)
        else:
            packed = torch.cat((r.obs, flags), dim=1)
        host = packed.detach().cpu().numpy()  # the one device->host copy

        obs_np = np.ascontiguousarray(host[:, :d])
        rewards = np.ascontiguousarray(host[:, d])
        terminated = host[:, d + 1] > 0.5
        truncated = host[:, d + 2] > 0.5
        dones = terminated | truncated
        self._ep_return += rewards
        self._ep_length += 1
        infos: list[dict[str, Any]] = list(map(dict.copy, repeat(_EMPTY, n)))  # n fresh dicts, made in C
        if any_done:
            diverged = host[:, d + 3] > 0.5
            now = round(time.time() - self._t_start, 6)
            for i in np.flatnonzero(dones).tolist():  # only the finished envs
                info = infos[i]
                info["terminal_observation"] = host[i, d + 4 :].copy()
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i] and not diverged[i])
                info["episode"] = {"r": round(float(self._ep_return[i]), 6), "l": int(self._ep_length[i]), "t": now}
                if diverged[i]:
                    info["diverged"] = True
            self._ep_return[dones] = 0.0
            self._ep_length[dones] = 0
        return obs_np, rewards, dones, infos

    def close(self) -> None:
        """Release the Genesis scene if this adapter built it (a ``sim`` passed in stays open)."""
        self._actions = None
        self._needs_reset = True
        if self._owns_sim and hasattr(self.sim, "close"):
            self.sim.close()

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seeds take effect at the next ``reset()``; the shared simulation is seeded with the first."""
        return super().seed(seed)

    # ------------------------------------------------------------------ attributes and methods
    def _target(self, name: str) -> Any:
        """The object owning ``name``: this adapter first, then the simulation."""
        if name in self.__dict__ or hasattr(type(self), name):
            return self
        if hasattr(self.sim, name):
            return self.sim
        raise AttributeError(f"neither the VecEnv nor the WalkSimulation has an attribute {name!r}")

    def _per_env(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        idx = list(self._get_indices(indices))
        target = self._target(attr_name)
        value = getattr(target, attr_name)
        if target is self.sim and self._per_env(value):
            return [value[i] for i in idx]
        return [value for _ in idx]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        idx = list(self._get_indices(indices))
        try:
            target = self._target(attr_name)
        except AttributeError:
            target = self
        current = getattr(target, attr_name, None)
        if target is self.sim and self._per_env(current):
            rows = torch.as_tensor(np.asarray(value), dtype=current.dtype, device=current.device)
            updated = current.clone()
            updated[idx] = rows
            setattr(target, attr_name, updated)
            return
        if sorted(idx) != list(range(self.num_envs)):
            raise ValueError(
                f"{attr_name!r} is shared by all {self.num_envs} envs of the batched simulation; "
                "it can only be set for all of them at once (indices=None)"
            )
        setattr(target, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Call ``method_name`` once on the shared simulation (or this adapter); one result per index."""
        idx = list(self._get_indices(indices))
        result = getattr(self._target(method_name), method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        # No Gymnasium wrappers exist here; the adapter itself does Monitor's episode bookkeeping.
        wrapped = isinstance(wrapper_class, type) and issubclass(Monitor, wrapper_class)
        return [wrapped for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None]
        return [self.sim.render()]  # the camera follows env 0

    def render(self, mode: str | None = None) -> np.ndarray | None:
        if (mode or self.render_mode) == "rgb_array" and self.render_mode == "rgb_array":
            return self.sim.render()
        return super().render(mode)
