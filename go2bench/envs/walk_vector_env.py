"""``gymnasium.make_vec("Go2Walk-v0", num_envs=N)``: N envs in one batched Genesis scene.

Autoreset: ``autoreset_mode="same_step"`` (default) resets finished envs inside the step that ended
them; the returned observation is the first of the new episode and the last one of the old episode
is in ``info["final_obs"]`` (an (N, obs_dim) array, rows valid where ``info["_final_obs"]``).
``"next_step"`` follows Gymnasium's default: the step after an episode ends returns the reset
observation with reward 0 and the action is ignored for that env. ``"disabled"`` never resets; use
``reset(options={"reset_mask": mask})``.

Arrays: ``array_api="numpy"`` (default) takes and returns NumPy arrays. ``array_api="torch"`` takes
and returns torch tensors on the simulation's device (CUDA with ``backend="gpu"``): observations,
rewards, flags and every array of ``info`` stay on the device, with no copy to the host. A step reads
back only whether any env finished or diverged (one synchronisation on a few flags, as any loop that
resets finished envs needs; a reset adds one). Differences: NaN actions raise a ValueError on the CPU
as in NumPy mode, but are not checked on the GPU (the check would synchronise every step; NaN acts
as 0 there, inf is clipped to the action bounds as everywhere); the task ids and thetas of
``info["task"]`` / ``info["task_id"]`` stay host NumPy arrays (strings, exact values). Gymnasium's ``wrappers.vector.NumpyToTorch`` over the NumPy mode gives torch tensors too,
but through the host (and needs the ``array-api-compat`` package).

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
from go2bench.envs.step_math import terms_matrix
from go2bench.envs.walk_config import WalkConfig
from go2bench.envs.walk_sim import StepResult, WalkSimulation

_MODES = {m.value.lower(): m for m in AutoresetMode}  # "nextstep", "samestep", "disabled"
ARRAY_APIS = ("numpy", "torch")


def _autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        return mode
    key = str(mode).lower().replace("_", "").replace("-", "")
    if key not in _MODES:
        raise ValueError(f"autoreset_mode must be one of 'same_step', 'next_step', 'disabled'; got {mode!r}")
    return _MODES[key]


class WalkVectorEnv(VectorEnv):
    """A batch of quadrupeds tracking velocity commands; see :class:`go2bench.envs.walk_env.WalkEnv`.

    Extra args: ``num_envs``, ``autoreset_mode``, ``max_episode_steps`` (from the registration),
    ``array_api`` ("numpy" or "torch", see the module docstring) and ``sim``: an existing
    :class:`WalkSimulation` of ``num_envs`` envs to step instead of building a scene (e.g. a NumPy
    and a torch view of one scene); it stays open when this env closes, and the arguments that
    describe a scene (robot, config, family, tasks, ...) must then be left out.
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
        array_api: str = "numpy",
        sim: WalkSimulation | None = None,
        **overrides: Any,
    ) -> None:
        S.check_render_mode(render_mode)
        if array_api not in ARRAY_APIS:
            raise ValueError(f"array_api must be one of {ARRAY_APIS}, got {array_api!r}")
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.render_mode = render_mode
        self.array_api = array_api
        self._owns_sim = sim is None
        if sim is None:
            self.sim = self._build(num_envs, robot, backend, config, max_episode_steps, family, task, tasks,
                                   resample_tasks, privileged, overrides)
        else:
            given = {"config": config, "max_episode_steps": max_episode_steps, "family": family, "task": task,
                     "tasks": tasks, "render_mode": render_mode, **overrides}
            extra = sorted(k for k, v in given.items() if v is not None) + (["privileged"] if privileged else [])
            if extra or sim.num_envs != num_envs:
                raise ValueError(f"sim= steps an existing scene of {sim.num_envs} envs: pass num_envs={sim.num_envs} "
                                 f"and leave out the scene's arguments {extra}")
            self.sim, self.robot_description, self.config = sim, sim.robot_description, sim.config
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
        self._torch = array_api == "torch"
        self._same_step = self.autoreset_mode == AutoresetMode.SAME_STEP
        self._next_step = self.autoreset_mode == AutoresetMode.NEXT_STEP
        self._on_host = self.sim.device.type == "cpu"  # numpy mode: zero-copy views of the step's tensors
        self._term_keys = tuple(f"reward_{k}" for k in self.sim.reward_weights)
        self._needs_reset = self._flags(np.zeros(num_envs, dtype=bool))  # next-step mode: envs to reset next step
        self._seeded = False

    def _build(self, num_envs, robot, backend, config, max_episode_steps, family, task, tasks, resample_tasks,
               privileged, overrides) -> WalkSimulation:
        self.robot_description, self.config = S.resolve(robot, config, overrides)
        if task is not None and tasks is not None:
            raise ValueError("give either task= (one spec for every env) or tasks= (one per env, or a split)")
        assignment = S.resolve_tasks(self.robot_description, self.config, num_envs, family,
                                     task if tasks is None else tasks, resample_tasks, privileged)
        sim = WalkSimulation(self.robot_description, self.config, num_envs=num_envs, backend=backend,
                             render=self.render_mode is not None, max_episode_steps=max_episode_steps, family=family,
                             privileged=privileged)
        if assignment is not None:
            sim.tasks.assign(assignment)
        return sim

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
            m = options["reset_mask"]
            m = m if isinstance(m, torch.Tensor) else np.asarray(m)
            if tuple(m.shape) != (self.num_envs,) or m.dtype not in (np.bool_, torch.bool):
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
            mask = torch.as_tensor(m).to(self.sim.device)
        T.apply_reset_options(self.sim, options, mask, seeded=seed is not None)
        obs = self.sim.reset(mask)
        if mask is None:
            self._needs_reset = self._flags(np.zeros(self.num_envs, dtype=bool))
        else:
            self._needs_reset = self._needs_reset & ~(mask if self._torch else mask.cpu().numpy())
        return self._out(obs), T.task_info(self.sim)

    def step(self, actions):
        a = self._action_tensor(actions)
        resetting = self._needs_reset if self._next_step else None
        r = self.sim.step(a)
        obs, reward, terminated, truncated, diverged, terms = self._outputs(r)
        done = terminated | truncated
        # each reward term's weighted contribution, (N,) per term, as Gymnasium's MuJoCo envs report
        info: dict[str, Any] = dict(zip(self._term_keys, terms.T))
        if self.sim.tasks is not None:
            info.update(T.task_info(self.sim))  # the thetas this step ran with, before any autoreset
        any_diverged = r.any_diverged  # known without a device sync on the CPU
        if resetting is not None and self._any(resetting)[0]:  # Gymnasium's next-step autoreset
            obs = self._reset_into(obs, resetting)
            keep = ~resetting
            reward, terms = self._where(resetting, 0.0, reward), self._where(resetting[:, None], 0.0, terms)
            info.update(zip(self._term_keys, terms.T))
            terminated, truncated, diverged, done = (f & keep for f in (terminated, truncated, diverged, done))
            any_diverged = None
        if any_diverged is None:
            any_diverged, any_done = self._any(diverged, done)
        else:
            any_done = self._any(done)[0]
        if any_diverged:
            info["diverged"], info["_diverged"] = diverged, diverged & True  # a copy
        if self._same_step and any_done:
            info["final_obs"], info["_final_obs"] = self._where(done[:, None], obs, 0.0), done
            obs = self._reset_into(obs, done)
        elif self._next_step:
            self._needs_reset = done
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ the array API in and out
    def _action_tensor(self, actions) -> torch.Tensor:
        shape = (self.num_envs, self.robot_description.num_joints)
        if not (self._torch and isinstance(actions, torch.Tensor) and actions.device != torch.device("cpu")):
            return S.to_action_tensor(actions, shape, self.sim.device)  # checked for NaN (free on the host)
        if tuple(actions.shape) != shape:
            raise ValueError(f"actions have shape {tuple(actions.shape)}; expected {shape} (one action per joint)")
        # on the GPU, no host check (a synchronisation per step): NaN acts as 0, inf is clipped by the simulation
        return torch.nan_to_num(actions.detach().to(device=self.sim.device, dtype=torch.float32), nan=0.0)

    def _outputs(self, r: StepResult) -> tuple:
        """Observation, reward, the three flags and the (N, terms) reward terms, in this env's array API.

        NumPy: zero-copy views on the CPU, one device-to-host copy of everything on the GPU.
        """
        terms = terms_matrix(r.reward_terms)  # (N, terms)
        if self._torch:
            return r.obs, r.reward, r.terminated, r.truncated, r.diverged, terms
        if self._on_host:  # zero-copy views of tensors made fresh by this step
            return (r.obs.numpy(), r.reward.numpy(), r.terminated.numpy(), r.truncated.numpy(), r.diverged.numpy(),
                    terms.numpy())
        flags = torch.stack([r.terminated, r.truncated, r.diverged], 1).to(r.obs.dtype)
        packed = torch.cat([r.obs, r.reward[:, None], flags, terms], 1).cpu().numpy()
        d = self.sim.obs_dim
        return (packed[:, :d].copy(), packed[:, d].copy(), packed[:, d + 1] > 0.5, packed[:, d + 2] > 0.5,
                packed[:, d + 3] > 0.5, packed[:, d + 4:].copy())

    def _any(self, *flags) -> list[bool]:
        """Whether any entry of each flag array is set; in torch mode one host read for all of them."""
        if self._torch:
            return torch.stack([f.any() for f in flags]).tolist()
        return [bool(f.any()) for f in flags]

    def _where(self, mask, a, b):
        return torch.where(mask, a, b) if self._torch else np.where(mask, a, b)

    def _flags(self, mask):
        """A host bool mask as this env's flag array (torch: on the simulation's device)."""
        return torch.as_tensor(mask).to(self.sim.device) if self._torch else np.asarray(mask, dtype=bool).copy()

    def _reset_into(self, obs, mask):
        """Reset the envs in ``mask`` (one batched call) and put their new observations into ``obs``."""
        if self._torch:
            return torch.where(mask[:, None], self.sim.reset(mask), obs)
        mask_t = torch.from_numpy(mask).to(self.sim.device)
        obs[mask] = self._out(self.sim.reset(mask_t)[mask_t])
        return obs

    def _out(self, t: torch.Tensor):
        return t if self._torch else t.detach().cpu().numpy()

    def close_extras(self, **kwargs: Any) -> None:
        if self._owns_sim:
            self.sim.close()

    def render(self):
        return S.render(self.sim, self.render_mode)
