"""The batched Walk simulation: one Genesis scene holding N robots, torch tensors in and out.

Only this module and its helpers talk to Genesis (genesis_io: the step's calls; sim_support: setters).
Both Gymnasium forms (the single env and the vector env) and every later stage (PPO adapter, collector,
evaluator) sit on top of it. Batched over envs: no Python loop over envs, subsets reset with one masked call.

Observation layout: :func:`go2bench.envs.spaces.observation_layout` (base angular velocity, projected gravity,
command, joint positions and velocities; the last action in "full" mode; theta with ``privileged=True``).

Task families (``family=``, :mod:`go2bench.envs.families`): each env holds a hidden theta (``sim.tasks``,
:mod:`go2bench.envs.tasks`), held for a trial; the velocity family zeroes the command slots. Random draws
(commands, pushes, randomisation, task draws) are counter-based per env (:mod:`go2bench.envs.streams`), keyed by
(seed, env, trial, episode of the trial, draw): an env's draws do not depend on which other envs reset with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from go2bench.envs import collision_urdf, genesis_runtime, robot_for_env, sim_support, streams
from go2bench.envs import spaces as S
from go2bench.envs.families import get_family
from go2bench.envs.robots import RobotDescription
from go2bench.envs.sim_support import check_memory, quat_rotate_inverse, roll_pitch  # noqa: F401 (public here)
from go2bench.envs import step_math
from go2bench.envs.genesis_io import RobotIO
from go2bench.envs.step_math import RewardTerms, StepConstants, sequential_sum, within_bounds
from go2bench.envs.tasks import TaskState, check_compatible
from go2bench.envs.walk_config import RewardScales, WalkConfig

# A state beyond these is treated as a diverged simulation.
_MAX_OBS = 1.0e6  # any observation entry
_MAX_ABS_DOF_VEL = 1.0e3  # rad/s
_MAX_ABS_BASE_VEL = 1.0e2  # m/s
REWARD_TERMS = tuple(f.name for f in dataclasses.fields(RewardScales))  # computed by step_math.reward_terms


@dataclass
class StepResult:
    """What one batched step returns; all tensors have N rows."""

    obs: torch.Tensor  # (N, obs_dim) float32
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) bool: fell (roll or pitch beyond the threshold)
    truncated: torch.Tensor  # (N,) bool: time limit, or a diverged simulation
    diverged: torch.Tensor  # (N,) bool: the simulation produced NaN or exploded and must be reset
    # per reward term, its weighted contribution (weight * dt * term) to ``reward``; they sum to it
    # (a RewardTerms from WalkSimulation: columns of one (N, terms) tensor, ``step_math.terms_matrix``)
    reward_terms: Mapping[str, torch.Tensor] = field(default_factory=dict)
    # (N, 3) |target - actual| of vx, vy (m/s, body frame) and yaw rate (rad/s); 0 where diverged
    tracking_error: torch.Tensor | None = None
    any_diverged: bool | None = None  # diverged.any(), when known without a device sync (CPU), else None


class WalkSimulation:
    """N copies of one robot on flat ground, tracking a velocity command, in one Genesis scene.

    ``family`` (None or a family name, e.g. "velocity", "dynamics") gives every env a hidden theta (``self.tasks``, a
    :class:`~go2bench.envs.tasks.TaskState`; the family's default until set); ``privileged=True``
    appends the normalised theta to the observation. Counters per env: ``trial`` (trials since the
    last ``seed``; :meth:`new_trial`) and ``episode_in_trial`` (index of the running episode in its
    trial). :meth:`tracking_error` gives the last step's per-axis tracking error.
    """

    def __init__(
        self,
        robot: RobotDescription,
        config: WalkConfig,
        num_envs: int,
        backend: str = "cpu",
        render: bool = False,
        max_episode_steps: int | None = None,
        family: str | None = None,
        privileged: bool = False,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if privileged and family is None:
            raise ValueError("privileged=True appends the task's theta to the observation: it needs a family")
        if family is not None:
            check_compatible(family, config)
        self.robot_description = robot
        self.config = config
        self.family = family
        self.privileged = bool(privileged)
        self.num_envs = num_envs
        self.backend = backend
        self.max_episode_steps = config.max_episode_steps if max_episode_steps is None else int(max_episode_steps)
        if self.max_episode_steps < 1:
            raise ValueError("max_episode_steps must be at least 1")
        check_memory(num_envs, backend)
        gs = genesis_runtime.init(backend)
        self.device = gs.device
        self._build_scene(gs, render)
        self._init_buffers()
        self.tasks = TaskState(self, family) if family is not None else None
        self._hides_command = self.tasks is not None and self.tasks.family.hides_command
        self.seed(0)

    # ------------------------------------------------------------------ construction
    def _build_scene(self, gs, render: bool) -> None:
        cfg, rd = self.config, self.robot_description
        rand = cfg.randomization
        physics = self.family is not None and get_family(self.family).physics  # theta sets per-env dof/link info
        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=cfg.dt, substeps=cfg.substeps),
            rigid_options=gs.options.RigidOptions(
                enable_self_collision=False,
                batch_dofs_info=rand.motor_strength_range is not None or physics,
                batch_links_info=rand.added_mass_range is not None or physics,
            ),
            vis_options=gs.options.VisOptions(rendered_envs_idx=[0]),
            show_viewer=False,
        )
        # visual geoms, even their mesh files, only for a camera (identical physics; a faster build, build_probe.py)
        urdf = (lambda f: f) if render else collision_urdf.collision_only
        self.plane = self.scene.add_entity(gs.morphs.URDF(file=urdf("urdf/plane/plane.urdf"), fixed=True, visualization=render))
        self.robot = self.scene.add_entity(gs.morphs.URDF(
            file=urdf(rd.urdf), pos=(0.0, 0.0, rd.base_init_height), quat=(1.0, 0.0, 0.0, 0.0), visualization=render))
        self.camera = None
        if render:
            self.camera = self.scene.add_camera(
                res=(320, 240), pos=(1.5, -1.5, 0.8), lookat=(0.0, 0.0, 0.3), fov=40, GUI=False
            )
        self.scene.build(n_envs=self.num_envs)

        joints = [self.robot.get_joint(name) for name in rd.joint_names]  # by name, never URDF order
        self.dofs_idx = [j.dofs_idx_local[0] for j in joints]
        self.qs_idx = qs_idx = [j.qs_idx_local[0] for j in joints]
        self.robot.set_dofs_kp([rd.kp] * len(self.dofs_idx), self.dofs_idx)
        self.robot.set_dofs_kv([rd.kd] * len(self.dofs_idx), self.dofs_idx)
        self.robot.set_dofs_force_range(
            [-t for t in rd.torque_limits], list(rd.torque_limits), self.dofs_idx
        )
        self.default_dof_pos = torch.tensor(rd.default_pose, device=self.device, dtype=torch.float32)
        low, high = rd.action_bounds()
        self.action_low = torch.tensor(low, device=self.device, dtype=torch.float32)
        self.action_high = torch.tensor(high, device=self.device, dtype=torch.float32)
        init_qpos = self.robot.get_qpos()[0].clone()
        init_qpos[:3] = torch.tensor((0.0, 0.0, rd.base_init_height), device=self.device)
        init_qpos[3:7] = torch.tensor((1.0, 0.0, 0.0, 0.0), device=self.device)
        init_qpos[qs_idx] = self.default_dof_pos
        self.init_qpos = init_qpos[None]  # (1, n_qs), broadcast over the reset envs
        self.base_link_idx_local = 0
        self.n_robot_links = self.robot.n_links
        self.base_mass = float(self.robot.get_links_mass([0])[0]) if hasattr(self.robot, "get_links_mass") else None
        self._io = RobotIO(self.robot, self.dofs_idx, self.device)  # the step's Genesis calls, in their cheap forms

    def _init_buffers(self) -> None:
        n, d, cfg = self.num_envs, self.device, self.config
        f32 = dict(device=d, dtype=torch.float32)
        j = self.robot_description.num_joints
        self.actions = torch.zeros((n, j), **f32)
        self.last_actions = torch.zeros((n, j), **f32)
        self.prev_last_actions = torch.zeros((n, j), **f32)  # two steps ago (latency 2)
        # steps between an action and its execution, per env (0..2; the dynamics family sets it with set_latency)
        self.latency_steps = torch.full((n,), 1 if cfg.action_latency else 0, device=d, dtype=torch.int64)
        self.trial = torch.zeros(n, device=d, dtype=torch.int64)
        self.episode_in_trial = torch.full((n,), -1, device=d, dtype=torch.int64)
        self._tracking_error = torch.zeros((n, 3), **f32)
        self.commands = torch.zeros((n, 3), **f32)
        self.episode_step = torch.zeros(n, device=d, dtype=torch.int64)
        self.base_pos = torch.zeros((n, 3), **f32)
        self.base_quat = torch.zeros((n, 4), **f32)
        self._body = torch.zeros((n, 3, 3), **f32)  # base_lin_vel, base_ang_vel, projected_gravity (body frame)
        self.dof_pos = torch.zeros((n, j), **f32)
        self.dof_vel = torch.zeros((n, j), **f32)
        self.gravity_world = torch.tensor([[0.0, 0.0, -1.0]], **f32).expand(n, 3).contiguous()  # (stack is faster)
        self.reward_weights = {k: getattr(cfg.rewards, k) * cfg.dt for k in REWARD_TERMS}
        step_math.check_reward_terms(REWARD_TERMS)
        self._term_index = {k: i for i, k in enumerate(REWARD_TERMS)}
        target = cfg.base_height_target
        self.height_target = self.robot_description.base_height_target if target is None else target
        self._k = StepConstants.build(self, self.obs_dim, list(self.reward_weights.values()),
                                      (_MAX_OBS, _MAX_ABS_DOF_VEL, _MAX_ABS_BASE_VEL))
        self._sync_free = torch.device(d).type != "cpu"  # on the GPU, never read a value back to branch on it
        self._fixed_commands = cfg.commands.is_fixed
        self._set_latency_cache()
        # joint target = target_base + target_gain * action; (N, joints) rows once the faults family sets joint faults
        self.target_base, self.target_gain = self.default_dof_pos, self._k.action_scale
        self.resample_every = max(1, int(round(cfg.commands.resample_time_s / cfg.dt)))
        push = cfg.randomization.push_interval_s
        self.push_every = None if push is None else max(1, int(round(push / cfg.dt)))
        cmd = cfg.commands
        self._cmd_low = torch.tensor([cmd.lin_vel_x[0], cmd.lin_vel_y[0], cmd.ang_vel_yaw[0]], **f32)
        self._cmd_high = torch.tensor([cmd.lin_vel_x[1], cmd.lin_vel_y[1], cmd.ang_vel_yaw[1]], **f32)
        self._fixed_command = self._cmd_low + 0.0  # what a draw between equal bounds gives (-0.0 -> 0.0 too)
        self.all_envs = torch.ones(n, device=d, dtype=torch.bool)

    # ------------------------------------------------------------------ public API
    @property
    def obs_dim(self) -> int:
        return S.observation_dim(self.robot_description, self.config.obs_mode,
                                 self.family if self.privileged else None)

    @property
    def base_lin_vel(self) -> torch.Tensor:
        """(N, 3) base linear velocity, body frame, m/s (a view of the last state read)."""
        return self._body[:, 0]

    @property
    def base_ang_vel(self) -> torch.Tensor:
        """(N, 3) base angular velocity, body frame, rad/s."""
        return self._body[:, 1]

    @property
    def projected_gravity(self) -> torch.Tensor:
        """(N, 3) gravity direction in the body frame, (0, 0, -1) when level."""
        return self._body[:, 2]

    def seed(self, seed: int) -> None:
        """Reseed commands, randomisation, pushes and task draws; every env starts trial 0 at its next reset.

        ``env_index`` (each env's key in the streams) is reset to the env's position; set it after seeding, e.g. to
        ``arange(A * n) % n``, and env ``a * n + i`` draws what env i of an n-env scene draws."""
        self.seed_value = int(seed)
        self.env_index = torch.arange(self.num_envs, device=self.device, dtype=torch.int64)
        self.trial = torch.zeros_like(self.trial)
        self.episode_in_trial = torch.full_like(self.episode_in_trial, -1)
        if self.tasks is not None:
            self.tasks.new_trial(self.all_envs)

    def new_trial(self, mask: torch.Tensor | None = None) -> None:
        """Envs in ``mask`` (all if None) start a new trial; call it right before resetting them.

        Their trial counter moves on (fresh commands, pushes and randomisation), and an env that
        draws its task from a split draws again; explicit thetas are kept.
        """
        mask = self.all_envs if mask is None else mask.to(device=self.device, dtype=torch.bool)
        self.trial = self.trial + mask.long()
        self.episode_in_trial = self.episode_in_trial.masked_fill(mask, -1)
        if self.tasks is not None:
            self.tasks.new_trial(mask)

    def tracking_error(self) -> torch.Tensor:
        """(N, 3) |target - actual| of vx, vy (m/s, body frame) and yaw rate (rad/s) at the last step.

        The target is the reward's (``commands``: theta in the velocity family); 0 for a diverged env.
        """
        return self._tracking_error

    def reset(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reset the envs in boolean ``mask`` (all if None) with one batched call; return all observations."""
        self._require_open()
        mask = self.all_envs if mask is None else mask.to(device=self.device, dtype=torch.bool)
        if not bool(mask.any()):
            return self.observe()
        self.episode_in_trial = self.episode_in_trial + mask.long()  # first: it keys this episode's draws
        self.robot.set_qpos(sim_support.initial_qpos(self), envs_idx=mask, zero_velocity=True)
        self.episode_step = self.episode_step.masked_fill(mask, 0)
        self.actions = self.actions.masked_fill(mask[:, None], 0.0)
        self.last_actions = self.last_actions.masked_fill(mask[:, None], 0.0)
        self.prev_last_actions = self.prev_last_actions.masked_fill(mask[:, None], 0.0)
        self._resample_commands(mask, 0)
        sim_support.randomize_dynamics(self, mask)
        if self.tasks is not None:
            self.tasks.on_reset(mask)
        self._read_state()
        return self.observe()

    def step(self, actions: torch.Tensor) -> StepResult:
        """Advance every env by one control step with finite ``actions`` (N, joints); clipped to the action bounds."""
        if self.scene is None:
            self._require_open()
        self.actions = torch.clamp(actions, self.action_low, self.action_high)  # a copy: callers may reuse buffers
        k = self._k
        targets = self.target_base + self.target_gain * self._executed_actions()
        self._io.control(targets)
        self.scene.step()
        self.episode_step = self.episode_step + k.one
        self._read_state()

        if self.push_every is not None:
            self._push((self.episode_step % self.push_every) == 0)
        if not self._fixed_commands:
            resample = (self.episode_step % self.resample_every) == 0
            if self._sync_free or bool(resample.any()):  # on the CPU, skip the hashing when nobody resamples
                self._resample_commands(resample, self.episode_step // self.resample_every)

        velocity_error = self.commands - self._velocity  # (vx, vy, yaw rate): the command's minus the base's
        terms = self._weighted_reward_terms(velocity_error)  # (N, T)
        reward = sequential_sum(terms)
        terminated = step_math.tilted(k, self._body, self.base_quat)  # fell: roll or pitch too large
        truncated = self.episode_step >= self.max_episode_steps  # an attribute: callers may change it
        obs = self.observe()
        diverged = self._diverged(obs)
        err = velocity_error.abs()
        # On the GPU applied unconditionally (a branch on diverged.any() would cost a host sync); on the CPU
        # the branch is cheap and skips the cleanup ops of the common step that did not diverge.
        any_diverged = None if self._sync_free else bool(diverged.any())
        if any_diverged is None or any_diverged:
            clean = torch.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0).clamp_(-1e3, 1e3)
            obs = torch.where(diverged[:, None], clean, obs)
            reward.masked_fill_(diverged, 0.0)
            terms.masked_fill_(diverged[:, None], 0.0)
            err.masked_fill_(diverged[:, None], 0.0)
            terminated = terminated & ~diverged
            truncated = truncated | diverged
        self._tracking_error = err
        self.prev_last_actions = self.last_actions
        self.last_actions = self.actions
        return StepResult(obs, reward, terminated, truncated, diverged,
                          RewardTerms(REWARD_TERMS, terms, self._term_index), err, any_diverged)

    def observe(self) -> torch.Tensor:
        """The current observation of every env, (N, obs_dim) float32 (layout: the module docstring)."""
        # angular velocity and projected gravity (contiguous: torch.cat is several times slower on a strided view)
        parts = [self._body[:, 1:].reshape(self.num_envs, 6),  # (a copy: the strided view cannot be reshaped)
                 self._k.zero_commands if self._hides_command else self.commands, self._dof_offset, self.dof_vel]
        if self.config.obs_mode == "full":
            parts.append(self.actions)
        if self.privileged:
            parts.append(self.tasks.normalised)
        return torch.cat(parts, dim=1).mul_(self._k.obs_scale)

    def push(self, velocity_xy: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Add a horizontal velocity (N, 2), world frame, m/s, to the base of the envs in ``mask``."""
        self._require_open()
        mask = self.all_envs if mask is None else mask
        vel = self.robot.get_dofs_velocity([0, 1])
        self.robot.set_dofs_velocity(vel + velocity_xy * mask[:, None], [0, 1])

    def render(self) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8 of env 0, the camera following its base."""
        self._require_open()
        if self.camera is None:
            raise RuntimeError("this simulation was built without a camera; create the env with render_mode='rgb_array'")
        base = self.base_pos[0].detach().cpu().numpy().astype(float)
        self.camera.set_pose(pos=tuple(base + np.array([1.2, -1.2, 0.5])), lookat=tuple(base))
        rgb = self.camera.render(rgb=True)[0]
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))

    def close(self) -> None:
        """Release the scene (GPU memory, renderer) now rather than at interpreter exit."""
        if self.scene is not None:
            self.scene.destroy()
            self.scene = None
            self.camera = None

    # ------------------------------------------------------------------ internals
    def _require_open(self) -> None:
        if self.scene is None:
            raise RuntimeError("this env was closed; its simulation is released. Make a new env to keep going.")

    def _read_state(self) -> None:
        self.base_pos, self.base_quat, vel, ang = self._io.base()
        # the three rotations into the body frame as one (base_lin_vel, ... are views of this (N, 3, 3) tensor)
        self._body = quat_rotate_inverse(self.base_quat[:, None], torch.stack((vel, ang, self.gravity_world), 1))
        # (vx, vy, yaw rate), body frame: what the command asks for
        self._velocity = self._body.view(self.num_envs, 9).index_select(1, self._k.velocity_idx)
        self.dof_pos, self.dof_vel = self._io.joints()
        self._dof_offset = self.dof_pos - self.default_dof_pos  # the observation's and a reward term's

    def _executed_actions(self) -> torch.Tensor:
        """The action each env executes now: ``latency_steps`` (0, 1 or 2) steps old."""
        if self._latency is not None:  # one latency for every env (the common case): no per-env selection
            return (self.actions, self.last_actions, self.prev_last_actions)[self._latency]
        return torch.where(self._latency_is0, self.actions,
                           torch.where(self._latency_is1, self.last_actions, self.prev_last_actions))

    def set_latency(self, steps: torch.Tensor, envs_idx: torch.Tensor) -> None:
        """Action latency (0, 1 or 2 control steps) of the envs ``envs_idx``; the only writer of ``latency_steps``."""
        self.latency_steps[envs_idx] = steps.to(device=self.device, dtype=torch.int64)
        self._set_latency_cache()

    def _set_latency_cache(self) -> None:
        """Per-env latency masks, and the one latency of all envs when they share it (a host read, at resets only)."""
        lat = self.latency_steps[:, None]
        self._latency_is0, self._latency_is1 = lat == 0, lat == 1
        lo, hi = torch.aminmax(self.latency_steps)
        self._latency = int(lo) if int(lo) == int(hi) else None

    def reward_terms(self) -> dict[str, torch.Tensor]:
        """Unweighted reward terms of the current state, (N,) each, in ``REWARD_TERMS`` order."""
        return dict(RewardTerms(REWARD_TERMS, self._unweighted_reward_terms(), self._term_index))

    def _unweighted_reward_terms(self, velocity_error: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T), the formulas: :func:`go2bench.envs.step_math.reward_terms`."""
        if velocity_error is None:
            velocity_error = self.commands - self._velocity
        return step_math.reward_terms(self._k, velocity_error, self._body[:, 0, 2:], self.base_pos[:, 2:],
                                      self.actions, self.last_actions, self._dof_offset)

    def _weighted_reward_terms(self, velocity_error: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T): each term times its weight and dt, in ``REWARD_TERMS`` order; terms of weight 0 are exact zeros."""
        terms = self._unweighted_reward_terms(velocity_error).mul_(self._k.weights)
        if self._k.zero_weight is not None:  # 0 * a term that overflowed would be NaN
            terms.masked_fill_(self._k.zero_weight, 0.0)
        return terms

    def _diverged(self, obs: torch.Tensor) -> torch.Tensor:
        # |obs| < 1e6, |dof_vel| and |base_lin_vel| below their limits, in one test that also catches NaN and inf
        ok = within_bounds(torch.cat((obs, self.dof_vel, self.base_lin_vel), 1), self._k.finite_bounds)
        return self.scene.rigid_solver.get_error_envs_mask() >= ok  # for bools, e >= ok is e | ~ok in one op

    def _uniform(self, stream: int, low, high, n: int, k=0, envs_idx: torch.Tensor | None = None) -> torch.Tensor:
        """(envs, n) uniforms in [low, high) of the envs ``envs_idx`` (all if None), keyed per env (see streams)."""
        idx = slice(None) if envs_idx is None else envs_idx  # keyed by the envs' env_index, not their positions
        u = streams.uniform(self.seed_value, stream, self.env_index[idx], self.trial[idx], self.episode_in_trial[idx],
                            k, n)
        return low + (high - low) * u

    def _resample_commands(self, mask: torch.Tensor, k) -> None:
        # fixed (low == high): a draw is low + 0 * u = low + 0.0; skip the ~100-op hash of every reset (tested)
        new = (self._fixed_command if self._fixed_commands
               else self._uniform(streams.COMMAND, self._cmd_low, self._cmd_high, 3, k))
        self.commands = torch.where(mask[:, None], new, self.commands)

    def _push(self, mask: torch.Tensor) -> None:
        if bool(mask.any()):
            v = self.config.randomization.push_max_velocity
            self.push(self._uniform(streams.PUSH, -v, v, 2, self.episode_step // self.push_every), mask)


def make_walk_sim(
    env_id: str = "Go2Walk-v0",
    num_envs: int = 1,
    backend: str = "cpu",
    config: WalkConfig | dict | str | Path | None = None,
    obs_mode: str | None = None,
    max_episode_steps: int | None = None,
    render: bool = False,
    family: str | None = None,
    tasks: Any = None,
    resample_tasks: str = "trial",
    privileged: bool = False,
    **overrides: Any,
) -> WalkSimulation:
    """Build the batched simulation behind ``env_id`` exactly as the Gymnasium envs do.

    ``obs_mode`` (None: the config's, "noleak" by default) and ``overrides`` are WalkConfig fields.
    ``family``, ``tasks`` (a task spec for all envs or a list of N, see :mod:`go2bench.envs.tasks`),
    ``resample_tasks`` and ``privileged`` are the envs' arguments of the same names; specs are
    validated before the scene is built.
    """
    if obs_mode is not None:
        overrides = {**overrides, "obs_mode": obs_mode}
    robot, cfg = S.resolve(robot_for_env(env_id), config, overrides)
    assignment = S.resolve_tasks(robot, cfg, num_envs, family, tasks, resample_tasks, privileged)
    sim = WalkSimulation(robot, cfg, num_envs=num_envs, backend=backend, render=render,
                         max_episode_steps=max_episode_steps, family=family, privileged=privileged)
    if assignment is not None:
        sim.tasks.assign(assignment)
    return sim
