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
  HDF5 groups on the writer thread, per-history statistics read back from disk, JSON), groups of
  ``--group-size`` rows (default: one chunk, so that short benchmark histories write while they
  step, as a long collection does).  Rate = rows written / wall of the whole call.

The table shows the best round of each and the median within-round ratio (paired).  Then the
bytes per step on disk for no compression, lzf and gzip (one history rewritten with each, write
and read times) answer whether compression pays off.

    python benchmarks/collect_throughput.py                         # CPU, N = 16, 64
    python benchmarks/collect_throughput.py --backend gpu --num-envs 1024,4096 --steps 10000 --reps 1 \
        --group-size 10000
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import h5py
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def bench_n(gs, args, n: int) -> dict:
    from env_throughput import RawGenesisLoop, _sync

    from go2bench.collect.collector import collect
    from go2bench.collect.config import CollectConfig
    from go2bench.envs import robot_for_env
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import make_walk_config
    from go2bench.envs.walk_sim import make_walk_sim

    rd, cfg = get_robot(robot_for_env(args.env)), make_walk_config(None)
    sim = make_walk_sim(args.env, n, args.backend)
    raw = (RawGenesisLoop(gs, rd, cfg, n) if args.separate_scenes else
           RawGenesisLoop(gs, rd, cfg, n, scene=sim.scene, robot=sim.robot))
    gen = torch.Generator().manual_seed(0)
    acts = ((torch.rand((args.steps, n, 12), generator=gen) * 2 - 1) * 0.3).to(gs.device)
    chunk = min(1000, args.steps)
    ccfg = CollectConfig(env=args.env, num_histories=n, steps_per_history=args.steps, seed=0,
                         chunk_steps=chunk, group_size=args.group_size or chunk)
    warm = replace(ccfg, steps_per_history=min(args.warmup_steps, args.steps))
    from go2bench.collect.family import load_collect_teacher

    # the teacher is loaded once, as the scene is built once (an older collect() loads it in every call)
    once = {"teacher": load_collect_teacher(ccfg, str(sim.device), False)} if "teacher" in inspect.signature(
        collect).parameters else {}
    raw_t, col_t, col_rate, col_rows, col_sim = [], [], [], [], []
    tmp = Path(tempfile.mkdtemp(prefix="collect_bench_"))
    try:
        for rep in range(args.reps + 1):  # round 0 warms up both paths, with --warmup-steps steps
            steps = args.steps if rep else min(args.warmup_steps, args.steps)
            _sync(args.backend)
            t0 = time.perf_counter()
            for i in range(steps):
                raw.step(acts[i])
            _sync(args.backend)
            t_raw = time.perf_counter() - t0
            out = tmp / f"round{rep}" / "bench"
            t0 = time.perf_counter()
            s = collect(out, ccfg if rep else warm, progress=False, plot=False, sim=sim, **once)
            t_col = time.perf_counter() - t0
            keep = rep == args.reps
            if not keep:
                shutil.rmtree(out.parent)
            if rep == 0:
                continue
            raw_t.append(t_raw)
            col_t.append(t_col)
            col_rate.append(s["rows_written"] / t_col)
            col_rows.append(s["rows_written"])
            col_sim.append(s["env_steps_simulated"])
        sizes = compression_sizes(out / "trajectories_env_0000.h5", tmp)
    finally:
        if args.separate_scenes:
            raw.close()
        sim.close()
        shutil.rmtree(tmp, ignore_errors=True)
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
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    args.steps = args.steps or 5000
    ns = [int(x) for x in (args.num_envs or ("1024,4096" if args.backend == "gpu" else "16,64")).split(",")]

    from go2bench.core.provenance import hardware, versions
    from go2bench.envs import genesis_runtime

    gs = genesis_runtime.init(args.backend)
    rows = [bench_n(gs, args, n) for n in ns]
    print(f"\ncollection vs raw Genesis ({args.env}, {args.backend}, {hardware(backend=args.backend)})")
    print(f"{'N':>6} {'raw steps/s':>12} {'collect rows/s':>15} {'paired ratio':>13} {'written/simulated':>18}"
          f" {'simulated/raw':>14}")
    for r in rows:
        print(f"{r['num_envs']:>6} {r['raw_sps']:>12,.0f} {r['collect_sps']:>15,.0f} {r['collect_over_raw_paired']:>13.2f}"
              f" {r['written_fraction']:>18.2f} {r['simulated_over_raw_paired']:>14.2f}")
    print("\ndisk (one history of the last round):")
    for comp, d in rows[-1]["disk"].items():
        print(f"  {comp:>5}: {d['bytes_per_step']:.1f} bytes/step, write {d['write_s_per_1M_steps']:.2f} s and "
              f"read {d['read_s_per_1M_steps']:.2f} s per 1M steps")
    out = Path(args.out or f"benchmarks/results/collect_throughput_{args.backend}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "collect_throughput", "backend": args.backend, "env": args.env,
                               "hardware": hardware(backend=args.backend), "versions": versions(),
                               "date": time.strftime("%Y-%m-%d"), "args": vars(args), "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
