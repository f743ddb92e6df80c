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
(``_local_scalar_dense``: a device sync on a GPU). Genesis' own kernels (physics, getters, set_qpos) are not torch
ops and are not counted. On CUDA the part times are host times, and the
per-step done check waits for the GPU: the GPU time that the launches do not hide lands in ``loop`` (and in
``raw step``). The op-count run is short (its histories fade the noise in ``--count-steps``), so its resets per
step are not the timed rounds'; the ops per reset call are.

    PYTHONPATH=. python benchmarks/collect_step_profile.py                 # CPU, 64 envs
    git show REV:go2bench/collect/collector.py > /tmp/old_collector.py     # an older step loop, same rounds:
    PYTHONPATH=. python benchmarks/collect_step_profile.py --baseline /tmp/old_collector.py
    PYTHONPATH=/old/checkout python benchmarks/collect_step_profile.py --out old.json   # a whole older go2bench
    python benchmarks/collect_step_profile.py --backend gpu --num-envs 1024 --steps 2000
"""

from __future__ import annotations

import argparse
import importlib.util
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
def hooks(wrap, sim, raw, C):
    """Wrap the parts of the raw loop and of the collector module ``C`` with ``wrap(label, fn)``; everything is
    restored on exit."""
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
    patch(C, "finish_dataset" if hasattr(C, "finish_dataset") else "_finish_dataset", "writer")  # older collectors: _
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


def load_collector(path: str | None):
    """The collector module at ``path`` (the rest of go2bench from this tree), or this tree's."""
    if path is None:
        import go2bench.collect.collector as C

        return C
    spec = importlib.util.spec_from_file_location("collector_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_collect(C, sim, ccfg, teacher, tmp: Path, tag: str) -> dict:
    out = tmp / tag / "bench"
    try:
        return C.collect(out, ccfg, progress=False, plot=False, sim=sim, teacher=teacher)
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


class Timed:
    """``step_profile.Clock`` plus the number of calls per label."""

    def __init__(self) -> None:
        self.clock, self.calls = Clock(), Counter()

    def wrap(self, label: str, fn):
        inner = self.clock.wrap(label, fn)

        def call(*a, **k):
            self.calls[label] += 1
            return inner(*a, **k)
        return call

    def per_step(self, labels, steps: int) -> dict:
        return {label: self.clock.step.get(label, 0.0) / steps * 1e6 for label in labels}


def timed_raw(raw, acts, args, sim, C) -> dict:
    from go2bench.envs.genesis_runtime import torch_threads_beside_simulation

    t = Timed()
    with hooks(t.wrap, sim, raw, C):
        resets0 = int(raw.resets)
        with torch_threads_beside_simulation(sim.device):  # one torch thread, as the collector runs
            wall = run_raw(raw, acts, args.steps, args.backend)
    return {"step_us": wall / args.steps * 1e6, "env_resets_per_step": (int(raw.resets) - resets0) / args.steps,
            "steps_with_a_reset": t.calls["resets"] / args.steps, **t.per_step(RAW_PARTS, args.steps)}


def timed_collect(C, sim, raw, ccfg, teacher, tmp: Path, tag: str, args) -> dict:
    from env_throughput import _sync

    t = Timed()
    with hooks(t.wrap, sim, raw, C):
        _sync(args.backend)
        t0 = time.perf_counter()
        s = run_collect(C, sim, ccfg, teacher, tmp, tag)
        wall = time.perf_counter() - t0
    steps = s["env_steps_simulated"] // args.num_envs  # batch steps
    parts = t.per_step(COLLECT_PARTS, steps)
    return {"call_us_per_step": wall / steps * 1e6, "step_us": sum(parts.values()),  # the loop's wall
            "steps_with_a_reset": (t.calls["resets"] - 1) / steps,  # less the reset at the loop's start
            "written_over_simulated": s["rows_written"] / s["env_steps_simulated"], **parts}


def count_ops(C, sim, raw, ccfg, teacher, tmp: Path, args, loop: str) -> dict:
    """Ops per step of a short run of the raw loop or of ``C``'s collector, under the counting mode."""
    from go2bench.envs.genesis_runtime import torch_threads_beside_simulation

    counter = OpCounter()
    n = args.count_steps
    with hooks(counter.wrap, sim, raw, C), torch_threads_beside_simulation(sim.device), counter:
        if loop == "raw":
            run_raw(raw, acts_for(sim, args), n, args.backend)
            steps = n
        else:
            chunk = min(n, ccfg.chunk_steps)
            s = run_collect(C, sim, replace(ccfg, steps_per_history=n, chunk_steps=chunk, group_size=chunk), teacher,
                            tmp, f"count_{loop}")
            steps = s["env_steps_simulated"] // args.num_envs
    return summarise_ops(counter, steps)


def acts_for(sim, args) -> torch.Tensor:
    """The raw loop's random actions, as collect_throughput.py draws them."""
    gen = torch.Generator().manual_seed(0)
    return ((torch.rand((1000, args.num_envs, 12), generator=gen) * 2 - 1) * 0.3).to(sim.device)


def profile(args) -> dict:
    import go2bench
    from env_throughput import RawGenesisLoop
    from go2bench.collect.config import CollectConfig
    from go2bench.collect.family import load_collect_teacher
    from go2bench.envs import genesis_runtime, robot_for_env
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import make_walk_config
    from go2bench.envs.walk_sim import make_walk_sim

    n = args.num_envs
    loops = {"collect": load_collector(None)}
    if args.baseline:
        loops["baseline"] = load_collector(args.baseline)
    gs = genesis_runtime.init(args.backend)
    sim = make_walk_sim(args.env, n, args.backend)
    raw = RawGenesisLoop(gs, get_robot(robot_for_env(args.env)), make_walk_config(None), n, scene=sim.scene,
                         robot=sim.robot)
    chunk = min(1000, args.steps)
    ccfg = CollectConfig(env=args.env, num_histories=n, steps_per_history=args.steps, seed=0, chunk_steps=chunk,
                         group_size=chunk)
    teacher = load_collect_teacher(ccfg, str(sim.device), False)
    acts = acts_for(sim, args)
    tmp = Path(tempfile.mkdtemp(prefix="collect_step_profile_"))
    res: dict[str, dict[str, list]] = {k: defaultdict(list) for k in ("raw", *loops)}
    try:
        run_raw(raw, acts, 50, args.backend)  # warm-up of every path (first-call costs)
        for C in loops.values():
            run_collect(C, sim, replace(ccfg, steps_per_history=min(100, args.steps), chunk_steps=min(100, chunk)),
                        teacher, tmp, "warm")
        for rep in range(args.reps):
            rounds = {"raw": timed_raw(raw, acts, args, sim, loops["collect"])}
            for name in (list(loops) if rep % 2 == 0 else list(loops)[::-1]):  # alternate the collectors' order
                rounds[name] = timed_collect(loops[name], sim, raw, ccfg, teacher, tmp, f"{name}{rep}", args)
            for name, r in rounds.items():
                for k, v in r.items():
                    res[name][k].append(v)
            print(f"round {rep + 1}/{args.reps}: " + ", ".join(f"{name} {r['step_us']:.0f} us/step" for name, r in
                                                                 rounds.items()), flush=True)
        ops = {"raw": count_ops(loops["collect"], sim, raw, ccfg, teacher, tmp, args, "raw")}
        for name, C in loops.items():
            ops[name] = count_ops(C, sim, raw, ccfg, teacher, tmp, args, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        sim.close()
    med = {k: {part: statistics.median(v) for part, v in d.items()} for k, d in res.items()}
    paired = {name: statistics.median(r / c for r, c in zip(res["raw"]["step_us"], res[name]["call_us_per_step"]))
              for name in loops}
    if "baseline" in loops:
        paired["baseline_over_collect_call"] = statistics.median(
            b / c for b, c in zip(res["baseline"]["call_us_per_step"], res["collect"]["call_us_per_step"]))
    return {"num_envs": n, "steps_per_history": args.steps, "reps": args.reps, "count_steps": args.count_steps,
            "code": str(Path(go2bench.__file__).resolve().parent), "baseline": args.baseline, "median": med,
            "simulated_over_raw_paired": paired, "rounds": {k: dict(d) for k, d in res.items()}, "ops_per_step": ops}


def totals(ops: dict) -> dict:
    return {k: round(sum(v[k] for v in ops.values()), 1) for k in ("launch", "view", "host_read")}


def _fmt_ops(o: dict | None) -> str:
    return f"{o['launch']:.1f}/{o['view']:.1f}/{o['host_read']:.1f}" if o else "-"


def print_table(row: dict) -> None:
    m, ops = row["median"], row["ops_per_step"]
    loops = [k for k in ("collect", "baseline") if k in m]
    print(f"\nN={row['num_envs']}, {row['steps_per_history']} steps per history, median of {row['reps']} rounds, "
          f"go2bench at {row['code']}" + (f", baseline collector {row['baseline']}" if row["baseline"] else ""))
    print("us per batch step, and torch ops per step (launch/view/host read)")
    print(f"{'part':<10} " + " ".join(f"{k + ' us':>12}" for k in ("raw", *loops)) + " "
          + " ".join(f"{k + ' ops':>16}" for k in ("raw", *loops)))
    for part in dict.fromkeys(RAW_PARTS + COLLECT_PARTS):
        us = [m[k].get(part) for k in ("raw", *loops)]
        print(f"{part:<10} " + " ".join(f"{'-' if u is None else f'{u:.0f}':>12}" for u in us) + " "
              + " ".join(f"{_fmt_ops(ops[k].get(part)):>16}" for k in ("raw", *loops)))
    print(f"{'whole':<10} " + " ".join(f"{m[k]['step_us']:>12.0f}" for k in ("raw", *loops)) + " "
          + " ".join(f"{_fmt_ops(totals(ops[k])):>16}" for k in ("raw", *loops)))
    for k in loops:
        own = {x: round(sum(ops[k].get(p, {}).get(x, 0) for p in ("teacher", "loop", "chunk")), 1)
               for x in ("launch", "view")}
        res = ops[k].get("resets") or {}
        print(f"{k}: collect() {m[k]['call_us_per_step']:.0f} us per batch step, simulated/raw (paired) "
              f"{row['simulated_over_raw_paired'][k]:.3f}, written/simulated {m[k]['written_over_simulated']:.2f}, "
              f"steps with a reset {m[k]['steps_with_a_reset']:.2f}; own ops per step (teacher, loop, chunk) "
              f"{own['launch']} launch + {own['view']} view; {res.get('launch_per_call', 0)} launch ops per reset call")
    print(f"raw: steps with a reset {m['raw']['steps_with_a_reset']:.2f} ({m['raw']['env_resets_per_step']:.2f} env "
          "resets per step)")
    if "baseline_over_collect_call" in row["simulated_over_raw_paired"]:
        print(f"baseline / collect time per step (paired): {row['simulated_over_raw_paired']['baseline_over_collect_call']:.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="torch device: the simulation's, so "
                   "only a check (cpu for --backend cpu, cuda for gpu)")
    p.add_argument("--env", default="Go2Walk-v0")
    p.add_argument("--num-envs", type=int, default=None, help="histories = envs (default CPU 64, GPU 1024)")
    p.add_argument("--steps", type=int, default=1000, help="steps per history of a timed round")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--count-steps", type=int, default=100, help="steps of the op-counting runs")
    p.add_argument("--baseline", default=None, help="another collector.py (e.g. an older version's, extracted with "
                   "`git show REV:go2bench/collect/collector.py`), profiled in the same rounds, its order alternated")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/collect_step_profile_<backend>"
                   ".json, with _N<n> for a number of envs other than the default)")
    args = p.parse_args(argv)
    default_n = 1024 if args.backend == "gpu" else 64
    args.num_envs = args.num_envs or default_n
    if args.device not in (None, {"cpu": "cpu", "gpu": "cuda"}[args.backend]):
        p.error(f"--device {args.device} with --backend {args.backend}: the collector runs on the simulation's device")

    from go2bench.core.provenance import hardware, versions, write_json_atomic

    load0 = os.getloadavg()
    row = profile(args)
    print_table(row)
    suffix = "" if args.num_envs == default_n else f"_N{args.num_envs}"
    out = Path(args.out) if args.out else RESULTS_DIR / f"collect_step_profile_{args.backend}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, {"benchmark": "collect_step_profile", "config": vars(args), "versions": versions(),
                            "hardware": hardware(backend=args.backend), "date": time.strftime("%Y-%m-%d"),
                            "loadavg_before": load0, "loadavg_after": os.getloadavg(), **row})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
