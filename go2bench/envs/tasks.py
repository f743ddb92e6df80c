"""Per-env task parameters (theta) of a batched simulation: how they are chosen, held and applied.

Vocabulary (shared by the envs, and by the history and evaluation layers built on them):

* **theta**: one vector per env, laid out by the family (:mod:`go2bench.envs.families`).
* **trial**: the run of consecutive episodes of one env that share one theta (an in-context
  agent's context). theta is held for every episode of a trial; a new trial starts when the
  simulation is seeded, or when a caller asks for one (``new_trial``, or new tasks).
* **task spec** (what callers pass): a mapping ``{"lin_vel_x": 0.8}`` (missing names take the
  family's default), ``(split, index)`` like ``("test", 3)`` (an entry of the family's suite for
  the env's robot), a :class:`~go2bench.envs.suites.SuiteTask`, or a split name like ``"train"``:
  each env then draws a theta of that split, per trial (``resample="trial"``, the default) or at
  every episode start (``resample="episode"``, e.g. to train teachers over the train split).
  A list of N specs gives each env its own.

Draws from a split are counter-based (:mod:`go2bench.envs.streams`), keyed by (seed, env, trial)
or (seed, env, trial, episode): an env's theta does not depend on what the other envs do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from go2bench.core.config import ConfigError, short_repr
from go2bench.envs import sim_support, streams
from go2bench.envs.families import OFFSET_JOINTS, Family, ThetaLayout, get_family, joint_columns
from go2bench.envs.robots import RobotDescription

RESAMPLE_MODES = ("trial", "episode")
_TRIAL_DRAW = 0xFFFFFFFF  # the "episode" key of per-trial draws (no real episode number reaches it)


@dataclass(frozen=True)
class TaskAssignment:
    """Resolved task specs: explicit thetas per env, or a split to draw from (``pool``)."""

    rows: np.ndarray | None  # (N, dim) explicit thetas, or None when drawing from the pool
    ids: tuple[str | None, ...]  # per env: "suite/split/index" of a suite entry, None for a mapping
    pool: np.ndarray | None = None  # (M, dim) the thetas of a split
    pool_ids: tuple[str, ...] = ()
    resample: str = "trial"


def resolve(family: str | Family, robot: RobotDescription, spec: Any, num_envs: int,
            resample: str = "trial", where: str = "task") -> TaskAssignment:
    """Turn a task spec (see the module docstring) into per-env thetas; every error is a ConfigError.

    Validates before any scene exists: bad names, ranges, NaN, unknown splits and out-of-range
    indices fail here.
    """
    fam = get_family(family)
    layout = fam.layout(robot)
    if resample not in RESAMPLE_MODES:
        raise ConfigError(f"resample_tasks must be one of {RESAMPLE_MODES}, got {short_repr(resample)}")
    if isinstance(spec, str):  # a split: draw from it
        suite = _suite(fam, robot)
        tasks = suite.split(spec)
        pool = np.array([t.vector(layout) for t in tasks], dtype=np.float64)
        return TaskAssignment(None, (None,) * num_envs, pool, tuple(t.id for t in tasks), resample)
    if resample == "episode":
        raise ConfigError(f"{where}: resample_tasks='episode' needs a split name to draw from (e.g. 'train'), "
                          f"got {short_repr(spec)}")
    if _is_single(spec):
        specs = [spec] * num_envs
    elif isinstance(spec, Sequence):
        if len(spec) != num_envs:
            raise ConfigError(f"{where}: {len(spec)} task specs for {num_envs} envs; give one per env")
        specs = list(spec)
    else:
        raise ConfigError(f"{where}: expected a mapping, (split, index), a split name or a list of those, "
                          f"got {short_repr(spec)}")
    rows, ids = [], []
    for i, s in enumerate(specs):
        vec, ident = _one(fam, layout, robot, s, where if len(specs) == 1 or _is_single(spec) else f"{where}[{i}]")
        rows.append(vec)
        ids.append(ident)
    return TaskAssignment(np.array(rows, dtype=np.float64).reshape(num_envs, layout.dim), tuple(ids))


def _is_single(spec: Any) -> bool:
    if spec is None or isinstance(spec, Mapping) or hasattr(spec, "theta"):
        return True
    return (isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], (int, np.integer)) and not isinstance(spec[1], bool))


def _one(fam: Family, layout: ThetaLayout, robot: RobotDescription, spec: Any, where: str):
    if spec is None:
        return layout.vector({}, where), None
    if isinstance(spec, Mapping):
        return layout.vector(spec, where), None
    if hasattr(spec, "theta"):  # a SuiteTask
        return layout.vector(spec.theta, where), getattr(spec, "id", None)
    if _is_single(spec):
        split, index = spec
        tasks = _suite(fam, robot).split(split)
        if not 0 <= index < len(tasks):
            raise ConfigError(f"{where}: index {index} is outside the {len(tasks)} {split!r} tasks of the suite")
        return tasks[index].vector(layout), tasks[index].id
    raise ConfigError(f"{where}: expected a mapping or (split, index), got {short_repr(spec)}")


def _suite(fam: Family, robot: RobotDescription):
    from go2bench.envs.suites import load_suite  # suites import this module's neighbours only

    return load_suite(fam.name, robot.name)


class TaskState:
    """The thetas of one batched simulation (``sim.tasks``); see the module docstring.

    Attributes: ``family``, ``layout``, ``theta`` (N, dim) float32 on the sim's device (the theta
    each env runs now), ``host`` (the same, float64 NumPy, exact as given), ``normalised`` (its
    [-1, 1] image, the privileged observation block), ``ids`` (per env, the suite id or None),
    ``resample`` ("trial" or "episode"). Callers change thetas with :meth:`assign` (a resolved
    spec) or :meth:`set` (an (N, dim) array), then reset the envs concerned.
    """

    def __init__(self, sim, family: str | Family) -> None:
        self.sim = sim
        self.family = get_family(family)
        self.layout = self.family.layout(sim.robot_description)
        n, dev = sim.num_envs, sim.device
        self.host = np.tile(np.asarray(self.layout.default, dtype=np.float64), (n, 1))  # exact values, for info
        self.theta = torch.tensor(self.host, device=dev, dtype=torch.float32)
        self.ids: list[str | None] = [None] * n
        self.pool: torch.Tensor | None = None
        self.pool_host: np.ndarray | None = None
        self.pool_ids: tuple[str, ...] = ()
        self.resample = "trial"
        self.from_pool = torch.zeros(n, device=dev, dtype=torch.bool)  # envs drawing from the pool
        self.pending = torch.zeros(n, device=dev, dtype=torch.bool)  # draw due at the env's next reset
        self.applied = torch.zeros(n, device=dev, dtype=torch.bool)  # physics of theta written to the scene
        self._refresh()

    # ------------------------------------------------------------------ setting
    def assign(self, a: TaskAssignment, mask: torch.Tensor | None = None) -> None:
        """Give the envs in ``mask`` (all if None) the tasks of ``a``; they take effect at each env's next reset."""
        mask = self.sim.all_envs if mask is None else mask
        if a.pool is not None:
            self.pool = torch.tensor(a.pool, device=self.sim.device, dtype=torch.float32)
            self.pool_host = a.pool
            self.pool_ids, self.resample = a.pool_ids, a.resample
            self.from_pool |= mask
            self.pending |= mask
            return
        rows = torch.tensor(a.rows, device=self.sim.device, dtype=torch.float32)
        self.theta = torch.where(mask[:, None], rows, self.theta)
        for i in mask.nonzero().flatten().tolist():
            self.ids[i] = a.ids[i]
            self.host[i] = a.rows[i]
        self.from_pool &= ~mask
        self.pending &= ~mask
        self.applied &= ~mask
        self._refresh()

    def set(self, theta: torch.Tensor | np.ndarray, mask: torch.Tensor | None = None) -> None:
        """Explicit thetas (N, dim) for the envs in ``mask`` (all if None), validated against the family's ranges."""
        rows = np.asarray(torch.as_tensor(theta).detach().cpu(), dtype=np.float64)
        if rows.shape != (self.sim.num_envs, self.layout.dim):
            raise ConfigError(f"theta must have shape ({self.sim.num_envs}, {self.layout.dim}) for the "
                              f"{self.family.name} layout {list(self.layout.names)}, got {rows.shape}")
        for i, r in enumerate(rows):
            self.layout.vector(dict(zip(self.layout.names, r.tolist())), f"theta[{i}]")
        self.assign(TaskAssignment(rows, (None,) * len(rows)), mask)

    def new_trial(self, mask: torch.Tensor) -> None:
        """Envs in ``mask`` start a new trial at their next reset (a fresh draw if they draw from a split)."""
        self.pending |= mask & self.from_pool

    # ------------------------------------------------------------------ called by the simulation
    def on_reset(self, mask: torch.Tensor) -> None:
        """Draw due thetas of the reset envs, then write their physics (the sim has already moved
        ``episode_in_trial`` to the new episode, which keys per-episode draws)."""
        sim = self.sim
        draw = mask & self.from_pool & (self.pending | (self.resample == "episode"))
        if self.pool is not None and bool(draw.any()):
            env = sim.env_index  # each env's stream key (its position unless a caller set it)
            ep = sim.episode_in_trial if self.resample == "episode" else torch.full_like(env, _TRIAL_DRAW)
            u = streams.uniform(sim.seed_value, streams.TASK, env, sim.trial, ep, 0, 1)[:, 0]
            pick = (u * len(self.pool)).long().clamp_(max=len(self.pool) - 1)
            self.theta = torch.where(draw[:, None], self.pool[pick], self.theta)
            for i, j in zip(draw.nonzero().flatten().tolist(), pick[draw].tolist()):
                self.ids[i] = self.pool_ids[j]
                self.host[i] = self.pool_host[j]
            self.applied &= ~draw
            self.pending &= ~draw
            self._refresh()
        (_apply_dynamics if self.family.physics else _apply_velocity)(self, mask)

    def _refresh(self) -> None:
        self.normalised = self.layout.normalise(self.theta).to(torch.float32)

    # ------------------------------------------------------------------ reporting
    def as_dict(self, i: int) -> dict[str, float | int]:
        """``{name: value}`` of env ``i``'s theta (the single env's ``info["task"]``)."""
        return self.layout.as_dict(self.host[i])

    def columns(self) -> dict[str, np.ndarray]:
        """``{name: (N,) array}`` of every env's theta (the vector env's ``info["task"]``)."""
        return {n: (self.host[:, k].round().astype(np.int64) if i else self.host[:, k].copy())
                for k, (n, i) in enumerate(zip(self.layout.names, self.layout.integer))}


# ---------------------------------------------------------------------- family physics
def _apply_velocity(state: TaskState, mask: torch.Tensor) -> None:
    """The reward's target is theta; the observation hides it (``Family.hides_command``)."""
    sim = state.sim
    sim.commands = torch.where(mask[:, None], state.theta, sim.commands)


def _apply_dynamics(state: TaskState, mask: torch.Tensor) -> None:
    """Payload, friction, per-leg strength, latency and (faults family) joint faults, written only when an env's
    theta changed: one code path for both physics families."""
    sim = state.sim
    todo = mask & ~state.applied
    envs_idx = todo.nonzero().flatten()
    if len(envs_idx) == 0:
        return
    lay = state.layout
    idx = {n: k for k, n in enumerate(lay.names)}
    th = state.theta[envs_idx]
    sim_support.set_added_mass(sim, th[:, idx["added_mass"]], envs_idx)
    sim_support.set_contact_friction(sim, th[:, idx["friction"]], envs_idx)
    # each joint takes its leg's strength, by its place in the shared joint order (LEGS x LEG_JOINTS), not by its
    # name: ANYmal C names its joints RF_HAA, ... (reading the leg from the name crashed its first reset)
    sim_support.set_motor_strength(sim, th[:, joint_columns(lay, "strength_")], envs_idx)
    sim.set_latency(th[:, idx["latency_steps"]].round().long(), envs_idx)
    _set_joint_faults(sim, lay, th, envs_idx)
    state.applied |= todo


def _set_joint_faults(sim, lay: ThetaLayout, th: torch.Tensor, envs_idx: torch.Tensor) -> None:
    """Zero offsets and reversed legs (the faults family): joint target = default + offset + sign * action_scale
    * action. A layout without these fields (dynamics) changes nothing: the targets keep one shared row.

    ``sim.target_base`` / ``target_gain`` become (N, joints) rows at the first call (before: one shared row).
    """
    flips = joint_columns(lay, "flip_")
    offsets = [joint_columns(lay, f"offset_{joint}_", (joint,)) for joint in OFFSET_JOINTS]
    if all(c is None for c in flips + sum(offsets, [])):
        return
    sign, offset = _per_joint(th, flips, 0.0), th.new_zeros(len(th), len(flips))  # a missing field: no fault
    for cols in offsets:
        offset += _per_joint(th, cols, 0.0)
    sign = 1.0 - 2.0 * sign.round()  # flip 1 -> -1
    if sim.target_base.dim() == 1:
        sim.target_base = sim.target_base.expand(sim.num_envs, -1).clone()
        sim.target_gain = sim.target_gain.expand(sim.num_envs, len(sim.default_dof_pos)).clone()
    sim.target_base[envs_idx] = sim.default_dof_pos + offset
    sim.target_gain[envs_idx] = sim.robot_description.action_scale * sign


def _per_joint(th: torch.Tensor, cols: list[int | None], default: float) -> torch.Tensor:
    """(n, joints): per joint the theta column ``cols[j]``, or ``default`` where it is None."""
    out = th.new_full((len(th), len(cols)), default)
    js = [j for j, c in enumerate(cols) if c is not None]
    if js:
        out[:, js] = th[:, [cols[j] for j in js]]
    return out




def check_compatible(family: str | Family, config) -> None:
    """A family and the WalkConfig must not both set the same thing; a ConfigError names the conflict."""
    fam = get_family(family)
    if fam.name == "velocity" and not config.commands.is_fixed:
        raise ConfigError("the velocity family sets the command from theta: leave commands at fixed ranges")
    rand = config.randomization
    if fam.physics:
        clash = [n for n in ("friction_range", "added_mass_range", "motor_strength_range") if getattr(rand, n) is not None]
        if clash:
            raise ConfigError(f"the {fam.name} family sets {clash} from theta: remove them from randomization")


TASK_OPTIONS = ("task", "tasks", "resample_tasks", "new_trial")


def apply_reset_options(sim, options: Mapping[str, Any] | None, mask: torch.Tensor | None, seeded: bool) -> None:
    """The task part of an env's ``reset(options=...)``, for the envs in ``mask`` (all if None).

    ``task`` / ``tasks``: a task spec for all of them or a list of N (rows outside ``mask``
    ignored), with ``resample_tasks``; ``new_trial``: True or an (N,) bool array or tensor. New tasks or
    ``new_trial`` start a new trial for those envs, unless the same reset also gives a ``seed``
    (a seeded reset already starts trial 0 everywhere).
    """
    opts = {k: options[k] for k in TASK_OPTIONS if options and k in options}
    if not opts:
        return
    if sim.tasks is None:
        raise ConfigError(f"reset options {sorted(opts)} need an env made with a task family (family=...)")
    if "task" in opts and "tasks" in opts:
        raise ConfigError("give either options['task'] or options['tasks'], not both")
    spec = opts.get("task", opts.get("tasks"))
    if spec is None and "resample_tasks" in opts:
        raise ConfigError("options['resample_tasks'] goes with options['tasks'] (the split to draw from)")
    m = sim.all_envs if mask is None else mask
    fresh = m if spec is not None else torch.zeros_like(m)
    flag = opts.get("new_trial", False)
    if isinstance(flag, (bool, np.bool_)):
        fresh = fresh | (m & bool(flag))
    else:  # a NumPy array, or a torch tensor (the torch vector env)
        arr = flag if isinstance(flag, torch.Tensor) else np.asarray(flag)
        if tuple(arr.shape) != (sim.num_envs,) or arr.dtype not in (np.bool_, torch.bool):
            raise ConfigError(f"options['new_trial'] must be True/False or a bool array of shape ({sim.num_envs},)")
        fresh = fresh | (m & torch.as_tensor(arr).to(sim.device))
    if spec is not None:
        a = resolve(sim.tasks.family, sim.robot_description, spec, sim.num_envs,
                    opts.get("resample_tasks", "trial"), where="options['task']")
        sim.tasks.assign(a, m)
    if not seeded and bool(fresh.any()):
        sim.new_trial(fresh)


def task_info(sim, i: int | None = None) -> dict[str, Any]:
    """``info["task"]`` and ``info["task_id"]``: env ``i``'s (single env) or every env's (vector env); {} without a family."""
    if sim.tasks is None:
        return {}
    if i is not None:
        return {"task": sim.tasks.as_dict(i), "task_id": sim.tasks.ids[i]}
    n = sim.num_envs
    ids = np.array([t or "" for t in sim.tasks.ids], dtype=object)
    return {"task": sim.tasks.columns(), "_task": np.ones(n, dtype=bool), "task_id": ids,
            "_task_id": np.ones(n, dtype=bool)}
