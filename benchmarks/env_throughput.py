"""Env-steps per second of go2bench's vector env against raw Genesis loops, in one run.

Why: go2bench wraps one batched Genesis scene in a Gymnasium ``VectorEnv``. The wrapper must not
cost much: the targets (issue 16) are the NumPy ``VectorEnv`` at >= 0.9 of a minimal Genesis loop on
the CPU and >= 0.85 of the raw task loop on the GPU, and the torch ``VectorEnv`` (``array_api=
"torch"``: device tensors in and out) at >= 0.95 of the raw loop on the GPU at 4096 and 16384 envs.

For each N, in one process, this script builds its scenes once (one or two raw, one go2bench) and
times these paths on the same pre-generated random actions (uniform in [-A, A], A =
``--action-amplitude``, in action units, i.e. joint offsets of up to A * action_scale rad):

(m) ``minimal``: the raw scene stepped with only ``control_dofs_position`` (PD targets),
               ``scene.step()`` and the state readout (pos, quat, lin/ang vel, dof pos/vel, the
               six Genesis getters): no task math, no resets; the floor for any task loop.
(a) ``raw``:   a loop written directly against Genesis, using only the robot data
               (:class:`RobotDescription`), the default ``WalkConfig`` numbers and
               ``genesis_runtime.init`` (for ``gs.init``). Same scene options as ``WalkSimulation``
               (plane + URDF at ``base_init_height``, dt, substeps, no self-collision, PD gains,
               force range, joints looked up by name). Each step: ``control_dofs_position``,
               ``scene.step()``, the state readout (pos, quat, lin/ang vel, dof pos/vel, body-frame
               rotations), the 33-dim observation, the six reward terms, the roll/pitch termination
               test, and a masked ``set_qpos`` reset of finished envs (so that all paths simulate
               a similar mix of standing and falling robots). It applies actions without
               go2bench's one-step action latency, which changes nothing in the cost.
(b) ``vec``:   ``gymnasium.make_vec(env_id, num_envs=N, backend=...)`` stepped with numpy actions;
               includes the numpy <-> torch conversion at the Gymnasium boundary, action
               validation, the info dict and same-step autoresets. Autoresets are realistic and
               their rate is reported (``*_reset_fraction``): at the default A = 0.3 robots
               seldom fall, and the only reset is the 1000-step time limit of the go2bench
               scene, which (b) and (c) share; A = 1.0 makes ~0.5% of env-steps end an episode.
(t) ``vec_torch``: the same scene as a ``VectorEnv`` with ``array_api="torch"`` (a second
               ``WalkVectorEnv`` over ``env.unwrapped.sim``), stepped with device tensors; same-step
               autoresets, info dict on the device.
(c) ``torch``: ``WalkSimulation.step`` of the same env (``env.unwrapped.sim``) with torch actions,
               plus ``sim.reset(done)`` of finished envs: the torch path with no Gymnasium API.

The raw loops run in one or two identical scenes (``--raw-scenes``; default two on the CPU, one on
the GPU, where a scene of 16384 envs takes minutes to build), one built before and one after the
go2bench scene: on CPU, the first scene built for a given N in a process was seen to step slower
(a few percent at N >= 64, up to ~10-30% at N <= 4) than later, identical ones. In every round the
faster of the two raw scenes is the baseline, which is conservative for the wrapper.

After a warmup of every path, ``--reps`` rounds each time every path for ``--steps`` steps, in an
order that rotates between rounds. The table shows each path's best round (env-steps/s) and two
ratios to raw: best/best, and the median over rounds of the within-round ratio ("paired", which
resists load from other processes that drifts between rounds); the JSON keeps every round.

Usage::

    python benchmarks/env_throughput.py                       # CPU, Go2, N = 1,16,64,256,1024
    python benchmarks/env_throughput.py --num-envs 64 --reps 30
    python benchmarks/env_throughput.py --env MiniCheetahWalk-v0
    python benchmarks/env_throughput.py --backend gpu --num-envs 4096,16384
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import socket
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

DEFAULT_NUM_ENVS = {"cpu": (1, 16, 64, 256, 1024), "gpu": (1, 64, 1024, 4096, 16384)}
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PATHS = ("minimal", "raw", "vec", "vec_torch", "torch")  # minimal and raw: the faster of the raw scenes per round


# ---------------------------------------------------------------------------------------------- raw
def _quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    w, u = q[:, :1], q[:, 1:]
    return v * (2.0 * w * w - 1.0) - 2.0 * w * torch.cross(u, v, dim=1) + 2.0 * u * (u * v).sum(1, keepdim=True)


class RawGenesisLoop:
    """The Walk task written straight against Genesis: no go2bench env classes."""

    def __init__(self, gs, rd, cfg, num_envs: int, scene=None, robot=None) -> None:
        """``scene``, ``robot``: step an already built scene of ``num_envs`` envs (one build fewer) instead."""
        self.n = num_envs
        self.rd = rd
        if scene is not None:
            self.scene, self.robot = scene, robot
        else:
            self._build(gs, rd, cfg, num_envs)
        self._setup(gs, rd, cfg, num_envs)

    def _build(self, gs, rd, cfg, num_envs: int) -> None:
        self.scene = gs.Scene(
            sim_options=gs.options.SimOptions(dt=cfg.dt, substeps=cfg.substeps),
            rigid_options=gs.options.RigidOptions(
                enable_self_collision=False, batch_dofs_info=False, batch_links_info=False
            ),
            vis_options=gs.options.VisOptions(rendered_envs_idx=[0]),
            show_viewer=False,
        )
        self.scene.add_entity(gs.morphs.URDF(file="urdf/plane/plane.urdf", fixed=True))
        self.robot = self.scene.add_entity(
            gs.morphs.URDF(file=rd.urdf, pos=(0.0, 0.0, rd.base_init_height), quat=(1.0, 0.0, 0.0, 0.0))
        )
        self.scene.build(n_envs=num_envs)

    def _setup(self, gs, rd, cfg, num_envs: int) -> None:
        d = gs.device
        joints = [self.robot.get_joint(name) for name in rd.joint_names]
        self.dofs_idx = [j.dofs_idx_local[0] for j in joints]
        qs_idx = [j.qs_idx_local[0] for j in joints]
        self.robot.set_dofs_kp([rd.kp] * 12, self.dofs_idx)
        self.robot.set_dofs_kv([rd.kd] * 12, self.dofs_idx)
        self.robot.set_dofs_force_range([-t for t in rd.torque_limits], list(rd.torque_limits), self.dofs_idx)

        f32 = dict(device=d, dtype=torch.float32)
        self.default = torch.tensor(rd.default_pose, **f32)
        qpos = self.robot.get_qpos()[0].clone()
        qpos[:3] = torch.tensor((0.0, 0.0, rd.base_init_height), **f32)
        qpos[3:7] = torch.tensor((1.0, 0.0, 0.0, 0.0), **f32)
        qpos[qs_idx] = self.default
        self.init_qpos = qpos[None]
        self.gravity = torch.tensor([[0.0, 0.0, -1.0]], **f32).expand(num_envs, 3)
        c = cfg.commands
        self.commands = torch.tensor([[c.lin_vel_x[0], c.lin_vel_y[0], c.ang_vel_yaw[0]]], **f32).expand(num_envs, 3)
        s = cfg.obs_scales
        self.scaled_commands = self.commands * torch.tensor([s.lin_vel, s.lin_vel, s.ang_vel], **f32)
        self.s = s
        self.w = {k: getattr(cfg.rewards, k) * cfg.dt for k in vars(cfg.rewards)}
        self.sigma = cfg.tracking_sigma
        self.height_target = rd.base_height_target if cfg.base_height_target is None else cfg.base_height_target
        self.roll_limit = math.radians(rd.termination_roll_deg)
        self.pitch_limit = math.radians(rd.termination_pitch_deg)
        self.max_steps = cfg.max_episode_steps
        self.episode_step = torch.zeros(num_envs, device=d, dtype=torch.int64)
        self.last_actions = torch.zeros((num_envs, 12), **f32)
        self.resets = torch.zeros((), device=d, dtype=torch.int64)
        self.reset(torch.ones(num_envs, device=d, dtype=torch.bool))

    def reset(self, mask: torch.Tensor) -> None:
        self.robot.set_qpos(self.init_qpos, envs_idx=mask, zero_velocity=True)
        self.episode_step.masked_fill_(mask, 0)
        self.last_actions.masked_fill_(mask[:, None], 0.0)

    def step_minimal(self, actions: torch.Tensor):
        """PD targets, one physics step and the state readout: what every task loop does at the least."""
        r = self.robot
        r.control_dofs_position(self.default + self.rd.action_scale * actions, self.dofs_idx)
        self.scene.step()
        return (r.get_pos(), r.get_quat(), r.get_vel(), r.get_ang(), r.get_dofs_position(self.dofs_idx),
                r.get_dofs_velocity(self.dofs_idx))

    def _observe(self):
        r = self.robot
        pos, quat = r.get_pos(), r.get_quat()
        lin = _quat_rotate_inverse(quat, r.get_vel())
        ang = _quat_rotate_inverse(quat, r.get_ang())
        grav = _quat_rotate_inverse(quat, self.gravity)
        dof_pos = r.get_dofs_position(self.dofs_idx)
        dof_vel = r.get_dofs_velocity(self.dofs_idx)
        s = self.s
        obs = torch.cat(
            [ang * s.ang_vel, grav, self.scaled_commands, (dof_pos - self.default) * s.dof_pos, dof_vel * s.dof_vel], 1
        )
        return obs, pos, quat, lin, ang, dof_pos

    def step(self, actions: torch.Tensor):
        self.robot.control_dofs_position(self.default + self.rd.action_scale * actions, self.dofs_idx)
        self.scene.step()
        self.episode_step += 1
        obs, pos, quat, lin, ang, dof_pos = self._observe()
        w, sigma = self.w, self.sigma
        reward = (
            w["tracking_lin_vel"] * torch.exp(-((self.commands[:, :2] - lin[:, :2]) ** 2).sum(1) / sigma)
            + w["tracking_ang_vel"] * torch.exp(-((self.commands[:, 2] - ang[:, 2]) ** 2) / sigma)
            + w["lin_vel_z"] * lin[:, 2] ** 2
            + w["base_height"] * (pos[:, 2] - self.height_target) ** 2
            + w["action_rate"] * ((self.last_actions - actions) ** 2).sum(1)
            + w["similar_to_default"] * (dof_pos - self.default).abs().sum(1)
        )
        qw, qx, qy, qz = quat.unbind(1)
        roll = torch.atan2(2.0 * (qw * qx + qy * qz), 1.0 - 2.0 * (qx * qx + qy * qy))
        pitch = torch.asin(torch.clamp(2.0 * (qw * qy - qz * qx), -1.0, 1.0))
        terminated = (roll.abs() > self.roll_limit) | (pitch.abs() > self.pitch_limit)
        truncated = self.episode_step >= self.max_steps
        done = terminated | truncated
        self.last_actions = actions
        self.resets += done.sum()
        if bool(done.any()):
            self.reset(done)
            obs = self._observe()[0]
        return obs, reward, terminated, truncated

    def close(self) -> None:
        self.scene.destroy()


# ---------------------------------------------------------------------------------------------- timing
def _sync(backend: str) -> None:
    if backend == "gpu":
        torch.cuda.synchronize()


def _time_steps(step: Callable[[int], None], first: int, count: int, backend: str) -> tuple[float, float]:
    """Wall and process-CPU seconds of ``count`` steps."""
    _sync(backend)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(first, first + count):
        step(i)
    _sync(backend)
    return time.perf_counter() - t0, time.process_time() - c0


def bench_one_n(gs, gym, args, rd, cfg, n: int, steps: int) -> dict[str, Any]:
    from go2bench.envs.walk_vector_env import WalkVectorEnv

    backend = args.backend
    gen = torch.Generator().manual_seed(args.seed)
    total = args.warmup + steps
    a_cpu = (torch.rand((total, n, 12), generator=gen) * 2.0 - 1.0) * args.action_amplitude
    a_dev = a_cpu.to(gs.device)  # what a torch user hands over (made outside the timing)
    a_np = a_cpu.numpy()  # what a numpy user hands to the Gymnasium env (made outside the timing)

    # Raw scenes around the go2bench scene: in one process, the scene built first was seen to step a
    # few percent slower than later, identical ones (CPU backend), so the raw baseline of a round is the
    # faster of the two (conservative for the wrapper).
    build: dict[str, float] = {}
    raws: dict[str, RawGenesisLoop] = {}
    t0 = time.perf_counter()
    raws["raw_a"] = RawGenesisLoop(gs, rd, cfg, n)
    build["raw_a"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    env = gym.make_vec(args.env, num_envs=n, backend=backend)
    build["vec"] = time.perf_counter() - t0
    if args.raw_scenes == 2:
        t0 = time.perf_counter()
        raws["raw_b"] = RawGenesisLoop(gs, rd, cfg, n)
        build["raw_b"] = time.perf_counter() - t0
    env.reset(seed=args.seed)
    sim = env.unwrapped.sim
    try:
        tenv = WalkVectorEnv(num_envs=n, sim=sim, array_api="torch")  # the same scene, torch in and out
        tenv.reset(seed=args.seed)
    except (TypeError, ValueError):  # a go2bench from before the torch mode (to measure a baseline with this script)
        tenv = None

    zero = torch.zeros((), device=sim.device, dtype=torch.int64)
    counts = {"vec": 0, "vec_torch": zero.clone(), "torch": zero.clone()}

    def step_vec(i: int) -> None:
        _, _, _, _, info = env.step(a_np[i])
        if "_final_obs" in info:
            counts["vec"] += int(info["_final_obs"].sum())

    def step_vec_torch(i: int) -> None:
        _, _, _, _, info = tenv.step(a_dev[i])
        if "_final_obs" in info:
            counts["vec_torch"] += info["_final_obs"].sum()  # stays on the device

    def step_torch(i: int) -> None:
        r = sim.step(a_dev[i])
        done = r.terminated | r.truncated
        counts["torch"] += done.sum()
        if bool(done.any()):
            sim.reset(done)

    fns: dict[str, Callable[[int], Any]] = {}
    for name, raw in raws.items():
        fns[f"minimal_{name[-1]}"] = lambda i, raw=raw: raw.step_minimal(a_dev[i])
        fns[name] = lambda i, raw=raw: raw.step(a_dev[i])
    fns.update(vec=step_vec, vec_torch=step_vec_torch, torch=step_torch)
    if tenv is None:
        del fns["vec_torch"], counts["vec_torch"]
    timed = tuple(fns)

    def n_resets() -> dict[str, int]:
        out = {name: int(raw.resets) for name, raw in raws.items()}
        out.update({p: int(c) for p, c in counts.items()})
        return out

    warm = {p: _time_steps(fns[p], 0, args.warmup, backend)[0] for p in timed}
    resets0 = n_resets()
    times: dict[str, list[float]] = {p: [] for p in timed}
    cpu_times: dict[str, list[float]] = {p: [] for p in timed}
    for rep in range(args.reps):
        k = rep % len(timed)
        for p in timed[k:] + timed[:k]:
            wall, cpu = _time_steps(fns[p], args.warmup, steps, backend)
            times[p].append(wall)
            cpu_times[p].append(cpu)
    resets = {p: v - resets0[p] for p, v in n_resets().items()}

    if tenv is not None:
        tenv.close()  # leaves the shared scene open
    env.close()  # releases the go2bench scene (WalkSimulation.close)
    for r in raws.values():
        r.close()
    del env, tenv, sim, raws, fns, a_dev
    gc.collect()

    scenes = [name[-1] for name in ("raw_a", "raw_b") if name in times]
    for base in ("raw", "minimal"):  # the faster raw scene of each round
        parts = [f"{base}_{x}" if base == "minimal" else f"raw_{x}" for x in scenes]
        times[base] = [min(ts) for ts in zip(*(times[q] for q in parts))]
        cpu_times[base] = [min(ts) for ts in zip(*(cpu_times[q] for q in parts))]
        warm[base] = min(warm[q] for q in parts)
    resets["raw"] = sum(resets[f"raw_{x}"] for x in scenes)
    resets["minimal"] = 0  # the minimal loop never resets
    row: dict[str, Any] = {"num_envs": n, "steps": steps, "build_s": build}
    for p in tuple(q for q in PATHS if q in times) + tuple(q for q in timed if q not in PATHS):
        row[f"{p}_sps"] = n * steps / min(times[p])
        row[f"{p}_sps_median"] = n * steps / statistics.median(times[p])
        row[f"{p}_times_s"] = times[p]
        row[f"{p}_cpu_times_s"] = cpu_times[p]  # process CPU time (all threads) of each round
        row[f"{p}_warmup_s"] = warm[p]
        if p in resets:  # fraction of env-steps that ended an episode (and were reset) during the timed rounds
            row[f"{p}_reset_fraction"] = resets[p] / (n * steps * args.reps * (len(scenes) if p == "raw" else 1))
    for p in ("raw", "vec", "vec_torch", "torch"):
        for base in ("raw", "minimal"):
            if p not in times:
                continue
            if p == base:
                continue
            row[f"{p}_over_{base}"] = row[f"{p}_sps"] / row[f"{base}_sps"]  # best / best
            # median over rounds of the ratio within one round: robust to load that drifts between rounds
            row[f"{p}_over_{base}_paired"] = statistics.median(b / t for b, t in zip(times[base], times[p]))
    if len(scenes) == 2:
        row["raw_a_over_raw_b_paired"] = statistics.median(b / a for a, b in zip(times["raw_a"], times["raw_b"]))
    return row


# ---------------------------------------------------------------------------------------------- main
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _default_steps(backend: str, n: int) -> int:
    if backend == "cpu":
        return 50 if n < 256 else (20 if n < 1024 else 10)
    return 100


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--env", default="Go2Walk-v0", help="Go2Walk-v0 or MiniCheetahWalk-v0")
    p.add_argument("--num-envs", default=None, help="comma-separated N list (default CPU 1,16,64,256,1024; GPU 1,64,1024,4096,16384)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per round (default: GPU 100; CPU 50 for N<256, 20 for N<1024, 10 above)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps per path before the repetitions")
    p.add_argument("--reps", type=int, default=None,
                   help="rounds (default CPU 20, GPU 5); each times every path once, in rotating order.\n"
                   "Best round per path is reported (many short rounds resist other processes on the machine)")
    p.add_argument("--action-amplitude", type=float, default=0.3, help="actions uniform in [-A, A] (action units)")
    p.add_argument("--raw-scenes", type=int, choices=(1, 2), default=None,
                   help="raw scenes per N (default CPU 2, GPU 1: a 16384-env scene takes minutes to build)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/env_throughput_<backend>_<env>.json)")
    args = p.parse_args(argv)
    if args.num_envs is None:
        args.num_envs_list = list(DEFAULT_NUM_ENVS[args.backend])
    else:
        args.num_envs_list = [int(x) for x in args.num_envs.split(",") if x.strip()]
    if args.reps is None:
        args.reps = 20 if args.backend == "cpu" else 5
    if args.raw_scenes is None:
        args.raw_scenes = 2 if args.backend == "cpu" else 1
    if any(n < 1 for n in args.num_envs_list) or args.reps < 1 or args.warmup < 0 or (args.steps is not None and args.steps < 1):
        p.error("num-envs, steps and reps must be positive, warmup non-negative")
    return args


def _fmt(x: float) -> str:
    return f"{x:,.0f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    """Env-steps/s (best round) and paired ratios: to the minimal loop and to the raw task loop."""
    head = (f"{'N':>6} {'steps':>5} {'minimal':>9} {'raw':>9} {'vec':>9} {'vec/min':>7} {'vec/raw':>7} "
            f"{'vec_torch':>9} {'vt/min':>6} {'vt/raw':>6} {'torch':>9} {'t/raw':>6} {'resets raw,vec,vt,torch':>27}")
    print(head)
    print("-" * len(head))
    for r in rows:
        r = {"vec_torch_sps": math.nan, "vec_torch_over_minimal_paired": math.nan, "vec_torch_over_raw_paired": math.nan,
             "vec_torch_reset_fraction": math.nan, **r}  # rows of a go2bench without the torch mode
        rf = ",".join(f"{r[f'{p}_reset_fraction']:.4f}" for p in ("raw", "vec", "vec_torch", "torch"))
        print(
            f"{r['num_envs']:>6} {r['steps']:>5} {_fmt(r['minimal_sps']):>9} {_fmt(r['raw_sps']):>9} "
            f"{_fmt(r['vec_sps']):>9} {r['vec_over_minimal_paired']:>7.3f} {r['vec_over_raw_paired']:>7.3f} "
            f"{_fmt(r['vec_torch_sps']):>9} {r['vec_torch_over_minimal_paired']:>6.3f} "
            f"{r['vec_torch_over_raw_paired']:>6.3f} {_fmt(r['torch_sps']):>9} {r['torch_over_raw_paired']:>6.3f} {rf:>27}"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    import gymnasium as gym

    import go2bench  # registers the envs
    from go2bench.envs import genesis_runtime, robot_for_env
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import WalkConfig

    rd = get_robot(robot_for_env(args.env))
    cfg = WalkConfig()  # the defaults the env uses; read as data by the raw loop
    gs = genesis_runtime.init(args.backend)  # once per process; the env's own init call reuses it

    out = Path(args.out) if args.out else RESULTS_DIR / f"env_throughput_{args.backend}_{args.env.split(':')[-1]}.json"
    meta = {
        "config": {k: v for k, v in vars(args).items()},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "loadavg_at_start": os.getloadavg(),
        "torch_num_threads": torch.get_num_threads(),
        "QD_NUM_THREADS": os.environ.get("QD_NUM_THREADS"),
        "versions": {
            "torch": torch.__version__,
            "genesis": getattr(gs, "__version__", None) or _version("genesis-world"),
            "gymnasium": gym.__version__,
            "go2bench": go2bench.__version__,
            "numpy": np.__version__,
        },
        "device": torch.cuda.get_device_name() if args.backend == "gpu" else platform.processor() or platform.machine(),
        "robot": rd.name,
        "raw_loop_includes": "control_dofs_position, scene.step, state readout, 33-dim obs, 6 reward terms, "
        "roll/pitch termination, masked set_qpos reset of fallen envs; raw scenes raw_a (built before) and raw_b "
        "(after the go2bench scene, with --raw-scenes 2), raw = the faster of them in each round",
        "minimal_loop_includes": "control_dofs_position, scene.step, the six state getters (in the raw scenes); "
        "minimal = the faster raw scene in each round",
        "note": "every path but minimal resets finished envs (vec, vec_torch: same-step autoreset); "
        "*_reset_fraction is the fraction of env-steps that ended an episode; vec, vec_torch and torch share one "
        "scene (one time-limit truncation of all envs once it passes 1000 steps)",
    }
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for n in args.num_envs_list:
        steps = args.steps or _default_steps(args.backend, n)
        if 3 * (args.warmup + args.reps * steps) >= 1000:  # vec, vec_torch and torch step one shared scene
            print(f"[N={n}] note: the shared go2bench scene passes the 1000-step time limit: "
                  "expect one truncation of every env in the vec or torch path", flush=True)
        t0 = time.perf_counter()
        row = bench_one_n(gs, gym, args, rd, cfg, n, steps)
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(
            f"[N={n}] minimal {_fmt(row['minimal_sps'])}  raw {_fmt(row['raw_sps'])}  "
            f"vec {_fmt(row['vec_sps'])} (/min {row['vec_over_minimal_paired']:.3f}, /raw {row['vec_over_raw_paired']:.3f})  "
            f"vec_torch {_fmt(row.get('vec_torch_sps', math.nan))} (/raw {row.get('vec_torch_over_raw_paired', math.nan):.3f})  "
            f"torch {_fmt(row['torch_sps'])} (/raw {row['torch_over_raw_paired']:.3f})  "
            f"build {'/'.join(f'{v:.1f}' for v in row['build_s'].values())}s  wall {row['wall_s']:.0f}s",
            flush=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)  # written after every N, so a long run keeps partial results
        meta["loadavg_at_end"] = os.getloadavg()  # other processes on the machine skew CPU timings
        out.write_text(json.dumps({**meta, "total_wall_s": time.perf_counter() - t_start, "rows": rows}, indent=2))
    print()
    print(f"{args.env}, backend={args.backend}; env-steps/s: best of {args.reps} rounds; ratios: median over "
          "rounds of the within-round ratio (paired); vt = vec_torch; best/best ratios are in the JSON")
    print_table(rows)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
