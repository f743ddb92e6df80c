"""Where the time of one ``make_vec`` step goes: Genesis calls, the task's math, the Gymnasium wrapper.

Why (issue 16): the vector env must step at >= 0.9 of a minimal Genesis loop; this shows which part
of a step costs what, so that fusing work can aim at it. One process, one scene of N envs, the real
physics; the step's parts are timed by wrapping the methods that do them (a wrapper costs well
under a microsecond):

    control     robot.control_dofs_position        (the minimal loop does it too)
    physics     scene.step
    getters     robot.get_pos/quat/vel/ang, get_dofs_position/velocity (the minimal loop too, though
                perhaps in costlier forms: go2bench.envs.genesis_io)
    state math  the rest of WalkSimulation._read_state (body-frame rotations)
    rewards     WalkSimulation._weighted_reward_terms
    termination roll_pitch (older go2bench) or step_math.tilted
    observation WalkSimulation.observe
    divergence  WalkSimulation._diverged
    other sim   the rest of WalkSimulation.step (action clipping and latency, flags, cleanup, result)
    wrapper     the rest of VectorEnv.step (action checks, numpy, info dict, autoreset)

Each part is the median over ``--steps`` steps (us per step); per-step times vary with other
processes on the machine, medians of the parts and ``p10`` of the whole step are robust to that.
Runs against whatever ``go2bench`` is on the path, so the same script profiles an older checkout:

    PYTHONPATH=. python benchmarks/step_profile.py --num-envs 64
    PYTHONPATH=/path/to/old/checkout python benchmarks/step_profile.py --out old.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GETTERS = ("get_pos", "get_quat", "get_vel", "get_ang", "get_dofs_position", "get_dofs_velocity")
ORDER = ("control", "physics", "getters", "state math", "rewards", "termination", "observation", "divergence",
         "other sim", "wrapper")


class Clock:
    """Accumulates the wall time of wrapped calls per label within the current step; nested calls are excluded."""

    def __init__(self) -> None:
        self.step: dict[str, float] = defaultdict(float)
        self.stack: list[float] = []  # time spent in nested wrapped calls, per open call

    def wrap(self, label: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                inner = self.stack.pop()
                self.step[label] += dt - inner
                if self.stack:
                    self.stack[-1] += dt
        return timed


def profile(n: int, steps: int, warmup: int, seed: int) -> dict:
    import gymnasium as gym

    import go2bench  # noqa: F401 (registers the envs)
    from go2bench.envs import walk_sim
    try:
        from go2bench.envs import step_math
    except ImportError:  # an older go2bench
        step_math = None

    env = gym.make_vec("Go2Walk-v0", num_envs=n)
    env.reset(seed=seed)
    venv, sim = env.unwrapped, env.unwrapped.sim
    clock = Clock()
    robot, scene = sim.robot, sim.scene
    robot.control_dofs_position = clock.wrap("control", robot.control_dofs_position)
    scene.step = clock.wrap("physics", scene.step)
    for g in GETTERS:
        setattr(robot, g, clock.wrap("getters", getattr(robot, g)))
    sim._read_state = clock.wrap("state math", sim._read_state)
    sim._weighted_reward_terms = clock.wrap("rewards", sim._weighted_reward_terms)
    sim.observe = clock.wrap("observation", sim.observe)
    sim._diverged = clock.wrap("divergence", sim._diverged)
    walk_sim.roll_pitch = clock.wrap("termination", walk_sim.roll_pitch)
    if step_math is not None and hasattr(step_math, "tilted"):
        step_math.tilted = clock.wrap("termination", step_math.tilted)
    sim.step = clock.wrap("other sim", sim.step)
    step = clock.wrap("wrapper", venv.step)

    rng = np.random.default_rng(seed)
    actions = rng.uniform(-0.3, 0.3, (warmup + steps, n, 12)).astype(np.float32)
    parts: dict[str, list[float]] = defaultdict(list)
    totals = []
    for i in range(warmup + steps):
        clock.step.clear()
        t0 = time.perf_counter()
        step(actions[i])
        total = time.perf_counter() - t0
        if i >= warmup:
            totals.append(total * 1e6)
            for label in ORDER:
                parts[label].append(clock.step.get(label, 0.0) * 1e6)
    env.close()
    med = {label: statistics.median(parts[label]) for label in ORDER}
    return {
        "num_envs": n, "steps": steps, "code": str(Path(go2bench.__file__).resolve().parent),
        "median_us": med, "step_median_us": statistics.median(totals), "step_p10_us": float(np.percentile(totals, 10)),
        "sum_of_medians_us": sum(med.values()),
        "beyond_minimal_loop_us": sum(v for k, v in med.items() if k not in ("control", "physics", "getters")),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/step_profile_cpu_N<n>.json)")
    args = p.parse_args(argv)
    row = profile(args.num_envs, args.steps, args.warmup, args.seed)
    print(f"N={row['num_envs']}, {row['steps']} steps, go2bench at {row['code']}; median us per step")
    for label in ORDER:
        print(f"  {label:12s} {row['median_us'][label]:9.1f}")
    print(f"  {'beyond the minimal loop':24s} {row['beyond_minimal_loop_us']:9.1f}")
    print(f"  whole step: median {row['step_median_us']:.1f}, p10 {row['step_p10_us']:.1f}")
    out = Path(args.out) if args.out else RESULTS_DIR / f"step_profile_cpu_N{args.num_envs}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": vars(args), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "loadavg": os.getloadavg(), "torch": torch.__version__}
    out.write_text(json.dumps({**meta, **row}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
