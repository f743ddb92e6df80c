"""Where a collection step's time goes beyond the raw Genesis loop, and how many torch ops each part dispatches.

Why (issue 16): collection must run at >= 0.85 of the raw loop; the gap is the stepping process's own
per-step work, and on a GPU that work is bound by kernel launches (each non-view torch op is at least one
launch, ~5-10 us of host time), so the op count per step is what to cut. One process, one scene of N envs
stepped by the raw loop (``env_throughput.RawGenesisLoop``: random actions, the task's math, masked resets)
and by the real ``go2bench.collect.collect`` (writing into a temporary folder); ``--reps`` rounds alternate
the two, ``--steps`` steps per history. The parts are timed by wrapping what does them (self time: nested
wrapped calls are excluded, ``step_profile.Clock``):

    teacher     the collector's actor (the teacher MLP)
    loop        the rest of the step loop: the blend, the records, the flags, the per-step done check
    sim.step    WalkSimulation.step less the physics          physics   scene.step (the raw loop's too)
    resets      WalkSimulation.reset (the raw loop: its own)  chunk     noise and eps of a chunk
    writer      handing chunks to the writers, their drain, the dataset's statistics at the end

Ops: a short run of each loop under a ``TorchDispatchMode`` that counts the aten ops of each part:
``launch`` ops (not views: a kernel launch each on a GPU), ``view`` ops, and host reads
(``_local_scalar_dense``: a device sync on a GPU). Genesis' own kernels (physics, getters) are not torch
ops and are not counted; they are the same in both loops. On CUDA the part times are host times.

    PYTHONPATH=. python benchmarks/collect_step_profile.py                 # CPU, 64 envs
    PYTHONPATH=/old/checkout python benchmarks/collect_step_profile.py --out old.json   # another go2bench
    python benchmarks/collect_step_profile.py --backend gpu --num-envs 1024 --steps 2000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_profile import Clock  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COLLECT_PARTS = ("teacher", "loop", "sim.step", "physics", "resets", "chunk", "writer")
RAW_PARTS = ("raw step", "physics", "resets")
# names a go2bench version may give the collector's actor factory and blend (the script profiles old code too)
ACTOR_FACTORIES = ("deterministic_actor", "teacher_mlp")
BLENDS = ("blend_unchecked",)


class OpCounter(TorchDispatchMode):
    """Counts aten ops per label of the innermost labelled call running (``wrap``)."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = ["other"]
        self.ops: dict[str, Counter] = defaultdict(Counter)
        self.calls: Counter = Counter()

    def wrap(self, label: str, fn):
        def counted(*args, **kwargs):
            self.calls[label] += 1
            self.labels.append(label)
            try:
                return fn(*args, **kwargs)
            finally:
                self.labels.pop()
        return counted

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[self.labels[-1]][func] += 1
        return func(*args, **(kwargs or {}))


def _kind(func) -> str:
    if func.__name__.startswith("_local_scalar_dense"):
        return "host_read"
    rets = func._schema.returns
    return "view" if rets and rets[0].alias_info is not None and not rets[0].alias_info.is_write else "launch"


def summarise_ops(counter: OpCounter, steps: int) -> dict:
    """Per label, ops per step by kind, the calls per step and the ten most frequent ops."""
    out = {}
    for label, ops in counter.ops.items():
        kinds = Counter()
        for func, k in ops.items():
            kinds[_kind(func)] += k
        out[label] = {**{k: round(kinds[k] / steps, 2) for k in ("launch", "view", "host_read")},
                      "calls": round(counter.calls[label] / steps, 3),
                      "launch_per_call": round(kinds["launch"] / max(counter.calls[label], 1), 1),
                      "top": {str(f): round(k / steps, 2) for f, k in ops.most_common(10)}}
    return out


@contextmanager
def hooks(wrap, sim, raw):
    """Wrap the parts of both loops with ``wrap(label, fn)``; everything is restored on exit."""
    import go2bench.collect.collector as C
    from go2bench.collect.schedule import NoiseSchedule

    saved: list[tuple[object, str, bool, object]] = []

    def patch(obj, name, label, factory=False):
        if not hasattr(obj, name):
            return
        fn = getattr(obj, name)
        own = name in vars(obj)  # else a method found on the class: restored by deleting the wrapper
        saved.append((obj, name, own, vars(obj).get(name)))
        # a factory returns the callable to time (the collector builds its actor per call)
        setattr(obj, name, (lambda *a, **k: wrap(label, fn(*a, **k))) if factory else wrap(label, fn))

    for name in ACTOR_FACTORIES:
        patch(C, name, "teacher", factory=True)
    for name in BLENDS:  # the blend is part of the loop's own work (a go2bench that calls it from the loop)
        patch(C, name, "loop")
    patch(C, "uniform_noise", "chunk")
    patch(NoiseSchedule, "eps", "chunk")
    patch(C, "_loop", "loop")
    patch(C, "_finish_dataset", "writer")
    open_writers = C._open_writers

    def wrapped_open(*a, **k):
        pool = open_writers(*a, **k)
        for name in ("buffers", "submit", "close"):
            setattr(pool, name, wrap("writer", getattr(pool, name)))
        return pool

    saved.append((C, "_open_writers", True, open_writers))
    C._open_writers = wrapped_open
    patch(sim, "step", "sim.step")
    patch(sim, "reset", "resets")
    patch(sim.scene, "step", "physics")
    patch(raw, "step", "raw step")
    patch(raw, "reset", "resets")
    try:
        yield
    finally:
        for obj, name, own, value in reversed(saved):
            if own:
                setattr(obj, name, value)
            else:
                delattr(obj, name)


def run_collect(sim, ccfg, teacher, tmp: Path, tag: str) -> dict:
    from go2bench.collect.collector import collect

    out = tmp / tag / "bench"
    try:
        return collect(out, ccfg, progress=False, plot=False, sim=sim, teacher=teacher)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def run_raw(raw, acts, steps: int, backend: str) -> float:
    from env_throughput import _sync

    _sync(backend)
    t0 = time.perf_counter()
    for i in range(steps):
        raw.step(acts[i % len(acts)])
    _sync(backend)
    return time.perf_counter() - t0


def profile(args) -> dict:
    from env_throughput import _sync

    import go2bench
    from go2bench.collect.config import CollectConfig
    from go2bench.collect.family import load_collect_teacher
    from go2bench.envs import genesis_runtime, robot_for_env
    from go2bench.envs.genesis_runtime import torch_threads_beside_simulation
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import make_walk_config
    from go2bench.envs.walk_sim import make_walk_sim
    from env_throughput import RawGenesisLoop

    n = args.num_envs
    gs = genesis_runtime.init(args.backend)
    sim = make_walk_sim(args.env, n, args.backend)
    raw = RawGenesisLoop(gs, get_robot(robot_for_env(args.env)), make_walk_config(None), n, scene=sim.scene,
                         robot=sim.robot)
    chunk = min(1000, args.steps)
    ccfg = CollectConfig(env=args.env, num_histories=n, steps_per_history=args.steps, seed=0, chunk_steps=chunk,
                         group_size=chunk)
    teacher = load_collect_teacher(ccfg, str(sim.device), False)
    gen = torch.Generator().manual_seed(0)
    acts = ((torch.rand((1000, n, 12), generator=gen) * 2 - 1) * 0.3).to(sim.device)
    tmp = Path(tempfile.mkdtemp(prefix="collect_step_profile_"))
    res = {"raw": defaultdict(list), "collect": defaultdict(list)}
    try:
        # warm-up of both paths (first-call costs), then rounds raw / collect with the parts timed
        run_raw(raw, acts, 50, args.backend)
        run_collect(sim, replace(ccfg, steps_per_history=min(100, args.steps), chunk_steps=min(100, chunk)),
                    teacher, tmp, "warm")
        for rep in range(args.reps):
            clock, calls = Clock(), Counter()

            def timed(label, fn):
                inner = clock.wrap(label, fn)

                def call(*a, **k):
                    calls[label] += 1
                    return inner(*a, **k)
                return call

            with hooks(timed, sim, raw):
                resets0 = int(raw.resets)
                with torch_threads_beside_simulation(sim.device):  # one torch thread, as the collector runs
                    wall = run_raw(raw, acts, args.steps, args.backend)
                r = res["raw"]
                r["step_us"].append(wall / args.steps * 1e6)
                r["env_resets_per_step"].append((int(raw.resets) - resets0) / args.steps)
                r["steps_with_a_reset"].append(calls["resets"] / args.steps)
                for label in RAW_PARTS:
                    r[label].append(clock.step.get(label, 0.0) / args.steps * 1e6)
                clock.step.clear()
                calls.clear()
                _sync(args.backend)
                t0 = time.perf_counter()
                s = run_collect(sim, ccfg, teacher, tmp, f"round{rep}")
                wall = time.perf_counter() - t0
            steps = s["env_steps_simulated"] // n  # batch steps
            c = res["collect"]
            c["call_us_per_step"].append(wall / steps * 1e6)
            c["step_us"].append(sum(clock.step.get(k, 0.0) for k in COLLECT_PARTS) / steps * 1e6)  # the loop's wall
            c["steps_with_a_reset"].append((calls["resets"] - 1) / steps)  # less the reset at the loop's start
            c["written_over_simulated"].append(s["rows_written"] / s["env_steps_simulated"])
            for label in COLLECT_PARTS:
                c[label].append(clock.step.get(label, 0.0) / steps * 1e6)
            print(f"round {rep + 1}/{args.reps}: raw {res['raw']['step_us'][-1]:.0f} us/step, collect loop "
                  f"{c['step_us'][-1]:.0f} us/step ({steps} batch steps)", flush=True)

        # op counts: short runs under the counting mode
        counter = OpCounter()
        count_steps = args.count_steps
        with hooks(counter.wrap, sim, raw), torch_threads_beside_simulation(sim.device):
            with counter:
                run_raw(raw, acts, count_steps, args.backend)
            raw_ops = summarise_ops(counter, count_steps)
            counter.ops.clear()
            counter.calls.clear()
            cc = replace(ccfg, steps_per_history=count_steps, chunk_steps=min(count_steps, chunk),
                         group_size=min(count_steps, chunk))
            with counter:
                s = run_collect(sim, cc, teacher, tmp, "count")
            col_ops = summarise_ops(counter, s["env_steps_simulated"] // n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        sim.close()
    med = {k: {part: statistics.median(v) for part, v in d.items()} for k, d in res.items()}
    return {"num_envs": n, "steps_per_history": args.steps, "reps": args.reps, "count_steps": args.count_steps,
            "code": str(Path(go2bench.__file__).resolve().parent), "median": med,
            "rounds": {k: dict(d) for k, d in res.items()}, "ops_per_step": {"raw": raw_ops, "collect": col_ops}}


def totals(ops: dict) -> dict:
    return {k: round(sum(v[k] for v in ops.values()), 1) for k in ("launch", "view", "host_read")}


def print_table(row: dict) -> None:
    m, ops = row["median"], row["ops_per_step"]
    print(f"\nN={row['num_envs']}, {row['steps_per_history']} steps per history, median of {row['reps']} rounds, "
          f"go2bench at {row['code']}")
    print(f"{'part':<10} {'raw us/step':>12} {'collect us/step':>16} {'raw ops (launch/view/read)':>28} "
          f"{'collect ops':>18}")
    for part in dict.fromkeys(RAW_PARTS + COLLECT_PARTS):
        r, c = m["raw"].get(part), m["collect"].get(part)
        ro, co = ops["raw"].get(part), ops["collect"].get(part)
        fmt = lambda o: f"{o['launch']:.1f}/{o['view']:.1f}/{o['host_read']:.1f}" if o else "-"  # noqa: E731
        print(f"{part:<10} {'-' if r is None else f'{r:.0f}':>12} {'-' if c is None else f'{c:.0f}':>16} "
              f"{fmt(ro):>28} {fmt(co):>18}")
    rt, ct = totals(ops["raw"]), totals(ops["collect"])
    print(f"{'whole':<10} {m['raw']['step_us']:>12.0f} {m['collect']['step_us']:>16.0f} "
          f"{rt['launch']:.1f}/{rt['view']:.1f}/{rt['host_read']:.1f}".rjust(28) + " "
          + f"{ct['launch']:.1f}/{ct['view']:.1f}/{ct['host_read']:.1f}".rjust(18))
    print(f"collect() call: {m['collect']['call_us_per_step']:.0f} us per batch step; simulated/raw per step "
          f"{m['raw']['step_us'] / m['collect']['call_us_per_step']:.2f}; written/simulated "
          f"{m['collect']['written_over_simulated']:.2f}")
    print(f"steps with a reset: raw {m['raw']['steps_with_a_reset']:.2f} ({m['raw']['env_resets_per_step']:.2f} env "
          f"resets per step), collector {m['collect']['steps_with_a_reset']:.2f}")
    own = {k: round(sum(ops["collect"].get(p, {}).get(k, 0) for p in ("teacher", "loop", "chunk")), 1)
           for k in ("launch", "view")}
    print(f"the collector's own ops per step (teacher, loop, chunk): {own['launch']} launch, {own['view']} view")
    for name, o in (("raw", ops["raw"].get("resets")), ("collector", ops["collect"].get("resets"))):
        if o:
            print(f"{name} resets: {o['launch_per_call']} launch ops per call, {o['calls']:.2f} calls per step "
                  "(op-count run)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--env", default="Go2Walk-v0")
    p.add_argument("--num-envs", type=int, default=None, help="histories = envs (default CPU 64, GPU 1024)")
    p.add_argument("--steps", type=int, default=1000, help="steps per history of a timed round")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--count-steps", type=int, default=100, help="steps of the op-counting runs")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/collect_step_profile_<backend>"
                   ".json)")
    args = p.parse_args(argv)
    args.num_envs = args.num_envs or (1024 if args.backend == "gpu" else 64)

    from go2bench.core.provenance import hardware, versions, write_json_atomic

    load0 = os.getloadavg()
    row = profile(args)
    print_table(row)
    out = Path(args.out) if args.out else RESULTS_DIR / f"collect_step_profile_{args.backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, {"benchmark": "collect_step_profile", "config": vars(args), "versions": versions(),
                            "hardware": hardware(backend=args.backend), "date": time.strftime("%Y-%m-%d"),
                            "loadavg_before": load0, "loadavg_after": os.getloadavg(), **row})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
