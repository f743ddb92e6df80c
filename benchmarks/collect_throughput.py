"""Collection throughput: env-steps written to disk per second, against a raw Genesis loop.

Why: a learning history is a sequential simulation, so the collector must add little to the
simulation itself (issue 16: >= 0.85 of the raw loop).  For each N (histories = envs), in one
process, one go2bench simulation is built once and a raw Genesis loop (``RawGenesisLoop`` of
``env_throughput.py``: control, step, state readout, observation, rewards, termination, masked
resets; random actions) steps the *same* scene (one build per N, so that the GPU table fits in a
device call; ``--separate-scenes`` builds its own, as before); then ``--reps`` rounds alternate

* ``raw``:     the raw loop for ``--steps`` steps;
* ``collect``: ``go2bench.collect.collect`` of N histories of ``--steps`` steps each into a fresh
  temporary folder (teacher inference, noise schedule, blending, device->host copy per chunk,
  HDF5 groups on the writer thread, per-history statistics, JSON), groups of ``--group-size`` rows
  (default: one chunk, so that short benchmark histories write while they step, as a long
  collection does).  Rate = rows written / wall of the whole call.

The table shows the best round of each and the median within-round ratio (paired).  Then, unless
``--no-compression-study`` (the default on the GPU, where a device call's minutes are scarce), the
bytes per step on disk for no compression, lzf and gzip (one history rewritten with each, write
and read times) answer whether compression pays off.

Surviving a cap (a device call is cut by ``timeout``): every phase prints a timestamped line, the
JSON is rewritten after every phase (``"complete": false`` until every N is done; an N cut short
is kept apart under ``cut_short``, never among ``rows``), and ``--max-seconds S`` stops cleanly:
a phase whose estimate (from the phases already measured) would end past S is not started, and a
phase still running at S is interrupted (SIGALRM); either way the run says so and writes its JSON.

    python benchmarks/collect_throughput.py                         # CPU, N = 16, 64
    python benchmarks/collect_throughput.py --backend gpu --num-envs 1024,4096 --steps 10000 --reps 1 \
        --group-size 10000 --max-seconds 500
"""

from __future__ import annotations

import time

T0 = time.time()  # the process's start, as a caller's cap counts it (before torch's import)

import argparse  # noqa: E402
import inspect  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

MARGIN_S = 5.0  # kept free at the end of --max-seconds: writing the JSON, leaving the process


def log(msg: str) -> None:
    print(f"[collect_throughput +{time.time() - T0:6.1f} s] {msg}", flush=True)


class BudgetExceeded(Exception):
    """--max-seconds reached: the run stops and writes what it measured."""


class Budget:
    """--max-seconds: whether the next phase fits, from the durations of the phases measured so far.

    A phase's estimate is the longest time its kind took per unit of work (env-steps for rounds, one
    build for builds); a kind not seen yet is started (nothing to estimate from) and the alarm bounds it.
    """

    def __init__(self, max_seconds: float | None, start: float = T0):
        self.max_seconds, self.start = max_seconds, start
        self._per_unit: dict[str, float] = {}
        self.current = "start-up"  # the phase running now, for the alarm's message

    def elapsed(self) -> float:
        return time.time() - self.start

    def record(self, kind: str, seconds: float, units: float = 1.0) -> None:
        self._per_unit[kind] = max(self._per_unit.get(kind, 0.0), seconds / max(units, 1e-9))

    def estimate(self, kind: str, units: float = 1.0) -> float | None:
        return self._per_unit[kind] * units if kind in self._per_unit else None

    def check(self, what: str, kind: str, units: float = 1.0) -> None:
        """Raise :class:`BudgetExceeded` when ``what`` would end past the budget (less the margin)."""
        self.current = what
        if self.max_seconds is None:
            return
        est = self.estimate(kind, units) or 0.0
        left = self.max_seconds - MARGIN_S - self.elapsed()
        if est > left:
            raise BudgetExceeded(f"{what} (estimated {est:.0f} s) does not fit in the {left:.0f} s left of "
                                 f"--max-seconds {self.max_seconds:g}")

    def arm(self, on_expire) -> None:
        """Interrupt whatever runs when the budget (less a margin for the JSON) is spent; ``on_expire(reason)``
        first (the JSON: unwinding a collection may wait for its writer thread)."""
        if self.max_seconds is None or not hasattr(signal, "SIGALRM"):
            return

        def expired(signum, frame):
            reason = f"--max-seconds {self.max_seconds:g} reached during {self.current}"
            on_expire(reason)
            raise BudgetExceeded(reason)

        signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, max(self.max_seconds - MARGIN_S / 2 - self.elapsed(), 0.01))

    def disarm(self) -> None:
        if self.max_seconds is not None and hasattr(signal, "SIGALRM"):
            signal.setitimer(signal.ITIMER_REAL, 0)


def bench_n(gs, args, n: int, budget: Budget, part: dict, save) -> dict:
    """All rounds at N histories; ``part`` holds what is measured so far (saved after every phase)."""
    from env_throughput import RawGenesisLoop, _sync

    from go2bench.collect.collector import collect
    from go2bench.collect.config import CollectConfig
    from go2bench.collect.family import load_collect_teacher
    from go2bench.envs import robot_for_env
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import make_walk_config
    from go2bench.envs.walk_sim import make_walk_sim

    part.update(num_envs=n, raw_sps_rounds=[], collect_sps_rounds=[], collect_rows_rounds=[], phases={})

    def phase(name: str, seconds: float) -> None:
        part["phases"][name] = round(seconds, 2)
        save()

    rd, cfg = get_robot(robot_for_env(args.env)), make_walk_config(None)
    budget.check(f"N={n}: scene build", "build", 2 if args.separate_scenes else 1)
    t0 = time.perf_counter()
    sim = make_walk_sim(args.env, n, args.backend)
    raw = (RawGenesisLoop(gs, rd, cfg, n) if args.separate_scenes else
           RawGenesisLoop(gs, rd, cfg, n, scene=sim.scene, robot=sim.robot))
    t_build = time.perf_counter() - t0
    budget.record("build", t_build, 2 if args.separate_scenes else 1)
    log(f"N={n}: scene{'s' if args.separate_scenes else ''} built in {t_build:.1f} s")
    phase("build_s", t_build)
    interrupted = False
    try:
        gen = torch.Generator().manual_seed(0)
        acts = ((torch.rand((args.steps, n, 12), generator=gen) * 2 - 1) * 0.3).to(gs.device)
        chunk = min(1000, args.steps)
        ccfg = CollectConfig(env=args.env, num_histories=n, steps_per_history=args.steps, seed=0,
                             chunk_steps=chunk, group_size=args.group_size or chunk)
        warm = replace(ccfg, steps_per_history=min(args.warmup_steps, args.steps))
        part["group_size"] = ccfg.group_size
        # the teacher is loaded once, as the scene is built once (an older collect() loads it in every call)
        budget.check(f"N={n}: teacher load", "teacher")
        t0 = time.perf_counter()
        once = {"teacher": load_collect_teacher(ccfg, str(sim.device), False)} if "teacher" in inspect.signature(
            collect).parameters else {}
        log(f"N={n}: teacher loaded in {time.perf_counter() - t0:.1f} s")
        phase("teacher_load_s", time.perf_counter() - t0)
        raw_t, col_t, col_rate, col_rows, col_sim = [], [], [], [], []
        tmp = Path(tempfile.mkdtemp(prefix="collect_bench_"))
        try:
            for rep in range(args.reps + 1):  # round 0 warms up both paths, with --warmup-steps steps
                steps = args.steps if rep else min(args.warmup_steps, args.steps)
                label = f"N={n} round {rep}/{args.reps}{' (warm-up)' if rep == 0 else ''}"
                budget.check(f"{label}: raw loop", "raw", n * steps)
                _sync(args.backend)
                t0 = time.perf_counter()
                for i in range(steps):
                    raw.step(acts[i])
                _sync(args.backend)
                t_raw = time.perf_counter() - t0
                budget.record("raw", t_raw, n * steps)
                log(f"{label}: raw loop {n * steps / t_raw:,.0f} env-steps/s ({steps} steps in {t_raw:.1f} s)")
                if rep:
                    part["raw_sps_rounds"].append(n * steps / t_raw)
                    phase(f"round{rep}_raw_s", t_raw)
                out = tmp / f"round{rep}" / "bench"
                budget.check(f"{label}: collect", "collect", n * steps)
                t0 = time.perf_counter()
                s = collect(out, ccfg if rep else warm, progress=False, plot=False, sim=sim, **once)
                t_col = time.perf_counter() - t0
                # per env-step SIMULATED: a short warm-up still steps to the end of the episode it is in
                budget.record("collect", t_col, max(s["env_steps_simulated"], n * steps))
                log(f"{label}: collect {s['rows_written'] / t_col:,.0f} rows/s ({s['rows_written']:,} rows, "
                    f"{s['env_steps_simulated']:,} env-steps simulated, in {t_col:.1f} s; "
                    f"{s['rows_written'] / t_col / (n * steps / t_raw):.2f} of this round's raw loop)")
                keep = rep == args.reps and args.compression_study
                if not keep:
                    shutil.rmtree(out.parent)
                if rep == 0:
                    phase("warmup_round_s", t_raw + t_col)
                    continue
                raw_t.append(t_raw)
                col_t.append(t_col)
                col_rate.append(s["rows_written"] / t_col)
                col_rows.append(s["rows_written"])
                col_sim.append(s["env_steps_simulated"])
                part["collect_sps_rounds"].append(col_rate[-1])
                part["collect_rows_rounds"].append(col_rows[-1])
                phase(f"round{rep}_collect_s", t_col)
            sizes = None
            if args.compression_study:
                budget.check(f"N={n}: compression study", "compression")
                t0 = time.perf_counter()
                sizes = compression_sizes(out / "trajectories_env_0000.h5", tmp)
                log(f"N={n}: compression study in {time.perf_counter() - t0:.1f} s")
                phase("compression_study_s", time.perf_counter() - t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BudgetExceeded:
        interrupted = True  # the process ends in a moment: its JSON first, no scene teardown
        raise
    finally:
        if not interrupted:
            if args.separate_scenes:
                raw.close()
            sim.close()
    raw_rate = [n * args.steps / t for t in raw_t]
    return {
        "num_envs": n, "steps_per_history": args.steps, "group_size": ccfg.group_size,
        "teacher_loaded_once": bool(once), "separate_scenes": args.separate_scenes,
        "raw_sps": max(raw_rate), "collect_sps": max(col_rate),
        "collect_over_raw_paired": statistics.median(c / r for c, r in zip(col_rate, raw_rate)),
        # the collector's overhead alone: env-steps it simulated per second over the raw loop's (a long
        # history writes nearly all of them; a short one wastes the tail of the episode that crosses N)
        "simulated_over_raw_paired": statistics.median(s / t / r for s, t, r in zip(col_sim, col_t, raw_rate)),
        "raw_sps_rounds": raw_rate, "collect_sps_rounds": col_rate, "collect_rows_rounds": col_rows,
        # histories finish the episode that crosses N while the batch keeps stepping: the
        # fraction of simulated env-steps that were written (-> 1 as N grows past episode length)
        "written_fraction": statistics.median(r / s for r, s in zip(col_rows, col_sim)),
        "disk": sizes,
        "phases_s": part["phases"],
    }


def compression_sizes(h5_path: Path, tmp: Path) -> dict:
    """Bytes per step and write/read seconds per 1M steps of one history under each compression."""
    with h5py.File(h5_path, "r") as f:
        groups = {k: {d: f[k][d][()] for d in f[k]} for k in f}
    rows = sum(len(g["reward"]) for g in groups.values())
    out = {}
    for comp in (None, "lzf", "gzip"):
        p = tmp / f"c_{comp}.h5"
        t0 = time.perf_counter()
        with h5py.File(p, "w") as f:
            for k, g in groups.items():
                grp = f.create_group(k)
                for d, arr in g.items():
                    grp.create_dataset(d, data=arr, compression=comp)
        tw = time.perf_counter() - t0
        t0 = time.perf_counter()
        with h5py.File(p, "r") as f:
            for k in f:
                for d in f[k]:
                    f[k][d][()]
        tr = time.perf_counter() - t0
        out[str(comp)] = {"bytes_per_step": p.stat().st_size / rows, "write_s_per_1M_steps": tw / rows * 1e6,
                          "read_s_per_1M_steps": tr / rows * 1e6}
    return out


def write_result(out: Path, head: dict, rows: list, part: dict | None, stopped: str | None, complete: bool) -> None:
    """The JSON, rewritten after every phase: complete rows only in ``rows``; an N in progress or cut short apart."""
    from go2bench.core.provenance import write_json_atomic

    doc = {**head, "rows": rows, "complete": complete, "stopped": stopped,
           "elapsed_s": round(time.time() - T0, 1)}
    if part:
        key = "cut_short" if stopped else "in_progress"
        doc[key] = {**part, "note": "rounds measured before the run " + ("was stopped" if stopped else "went on")
                    + "; not a result of the table"}
    write_json_atomic(out, doc)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--env", default="Go2Walk-v0")
    p.add_argument("--num-envs", default=None, help="comma-separated (default CPU 16,64; GPU 1024,4096)")
    p.add_argument("--steps", type=int, default=None, help="steps per history per round (default CPU 5000, GPU 5000)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--group-size", type=int, default=None, help="rows per HDF5 group (default: one chunk; on a "
                   "GPU give the collector's default, 10000: a writer thread writes about 0.4M rows/s in 1000-row "
                   "groups per CPU core, so small groups would bound the table)")
    p.add_argument("--warmup-steps", type=int, default=1000, help="steps of the discarded round 0")
    p.add_argument("--separate-scenes", action="store_true", help="give the raw loop its own scene (one more build)")
    p.add_argument("--compression-study", action=argparse.BooleanOptionalAction, default=None,
                   help="rewrite one history with each compression (default: on for the CPU, off for the GPU)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop cleanly (JSON written, marked incomplete) "
                   "before this many seconds since the process started; give a caller's cap less a few seconds")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.steps = args.steps or 5000
    if args.compression_study is None:
        args.compression_study = args.backend == "cpu"
    ns = [int(x) for x in (args.num_envs or ("1024,4096" if args.backend == "gpu" else "16,64")).split(",")]

    from go2bench.core.provenance import hardware, versions
    from go2bench.envs import genesis_runtime

    out = Path(args.out or f"benchmarks/results/collect_throughput_{args.backend}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.max_seconds)
    head = {"benchmark": "collect_throughput", "backend": args.backend, "env": args.env,
            "hardware": hardware(backend=args.backend), "versions": versions(),
            "date": time.strftime("%Y-%m-%d"), "args": vars(args)}
    rows: list[dict] = []
    part: dict = {}
    stopped = None

    def expire(reason: str) -> None:
        log(f"!!! STOPPING: {reason}; the JSON says so !!!")
        write_result(out, head, rows, part or None, reason, False)

    budget.arm(expire)
    try:
        budget.check("Genesis initialisation", "init")
        gs = genesis_runtime.init(args.backend)
        log(f"Genesis initialised ({args.backend}); N = {ns}, {args.steps} steps x {args.reps} rounds"
            + (f", --max-seconds {args.max_seconds:g}" if args.max_seconds else ""))
        for n in ns:
            part = {}
            rows.append(bench_n(gs, args, n, budget, part,
                                lambda: write_result(out, head, rows, part, None, False)))
            part = {}
            write_result(out, head, rows, None, None, False)
    except BudgetExceeded as exc:
        stopped = str(exc)
    finally:
        budget.disarm()
    if stopped:
        done = [r["num_envs"] for r in rows] or "none"
        cut = f" N={part['num_envs']} cut short (its rounds are in cut_short, not in the table)." if part else ""
        print(f"\n!!! STOPPED after {budget.elapsed():.0f} s: {stopped}. N done: {done}.{cut} !!!", flush=True)
    write_result(out, head, rows, part or None, stopped, stopped is None)
    print(f"\ncollection vs raw Genesis ({args.env}, {args.backend}, {head['hardware']})"
          + ("  -- INCOMPLETE" if stopped else ""))
    print(f"{'N':>6} {'raw steps/s':>12} {'collect rows/s':>15} {'paired ratio':>13} {'written/simulated':>18}"
          f" {'simulated/raw':>14}")
    for r in rows:
        print(f"{r['num_envs']:>6} {r['raw_sps']:>12,.0f} {r['collect_sps']:>15,.0f}"
              f" {r['collect_over_raw_paired']:>13.2f} {r['written_fraction']:>18.2f}"
              f" {r['simulated_over_raw_paired']:>14.2f}")
    if rows and rows[-1]["disk"]:
        print("\ndisk (one history of the last round):")
        for comp, d in rows[-1]["disk"].items():
            print(f"  {comp:>5}: {d['bytes_per_step']:.1f} bytes/step, write {d['write_s_per_1M_steps']:.2f} s and "
                  f"read {d['read_s_per_1M_steps']:.2f} s per 1M steps")
    print(f"wrote {out}" + (" (incomplete)" if stopped else ""), flush=True)
    return 3 if stopped else 0


if __name__ == "__main__":
    raise SystemExit(main())
