"""Training-window reads per second (``MultiTaskWindows.__getitem__``) at episode_sparsity 1, 2, 4, side by side.

Why: with ``episode_sparsity: 2`` a 2048-step window is one row range per kept episode (about five
for 500-step episodes), and reading every range of every key through h5py made such a window cost
2-3x a contiguous one; in the family study the sparse variant trained at under half the others'
speed on a shared host.  This times the same seeded window indices of one dataset read as each
sparsity, for each read path:

* ``direct``: the default (:class:`go2bench.histories.row_reader.RowReader`, raw rows by pread);
* ``h5py``: the same code with ``direct_reads = False`` (every range read through h5py);
* ``rev:<REV>`` (``--baseline-rev``): ``go2bench/vintix/data.py`` as committed at ``REV``, e.g. the
  commit before the fast path, loaded beside the current one.

Timings are medians over ``--rounds`` interleaved rounds; ratios are against sparsity 1 of the same
path (the sparse overhead) and against the baseline path at the same sparsity (``--baseline``, the
first of ``--paths`` by default), all measured in this run.  The dataset is synthetic
(:func:`go2bench.testing.write_synthetic_dataset`: the collector's layout, episodes of
``--episode-len`` steps) unless ``--dataset`` names a collected one.

Usage::

    python benchmarks/window_read_throughput.py                        # direct vs h5py, ~1 minute
    python benchmarks/window_read_throughput.py --baseline-rev 0984449 # also the old code, from git
    python benchmarks/window_read_throughput.py --dataset data/go2_velocity --sparsity 1,2
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "window_read_throughput_cpu.json"


def _module_at(rev: str, tmp: Path):
    """``go2bench.vintix.data`` as committed at ``rev``, imported under another name."""
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:go2bench/vintix/data.py"], check=True,
                         capture_output=True, text=True).stdout
    name = "window_bench_data_" + re.sub(r"\W", "_", rev)
    path = tmp / f"{name}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _dataset(args, tmp: Path) -> Path:
    if args.dataset:
        return Path(args.dataset).resolve()
    from go2bench.testing import write_synthetic_dataset

    return write_synthetic_dataset(tmp, "syn", n_histories=args.histories, steps=args.steps, obs_dim=args.obs_dim,
                                   act_dim=args.act_dim, episode_len=args.episode_len, group_size=args.group_size,
                                   demonstrator=not args.no_demonstrator)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=None, help="A collected dataset folder (default: a synthetic one).")
    ap.add_argument("--histories", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20_000, help="Steps per synthetic history.")
    ap.add_argument("--episode-len", type=int, default=500)
    ap.add_argument("--group-size", type=int, default=2000, help="Rows per HDF5 group (the GPU preset's).")
    ap.add_argument("--obs-dim", type=int, default=45)
    ap.add_argument("--act-dim", type=int, default=12)
    ap.add_argument("--no-demonstrator", action="store_true", help="Synthetic histories without demonstrator_action.")
    ap.add_argument("--context-len", type=int, default=2048)
    ap.add_argument("--trajectory-sparsity", type=int, default=128)
    ap.add_argument("--sparsity", default="1,2,4", help="episode_sparsity values; the first is the reference.")
    ap.add_argument("--paths", default="direct,h5py", help="Read paths of the current code: direct, h5py.")
    ap.add_argument("--baseline-rev", default=None, help="Also time data.py of this git revision (path rev:<REV>).")
    ap.add_argument("--baseline", default=None, help="Path the speedups are against (default: rev:<REV> if "
                    "given, else the last of --paths).")
    ap.add_argument("--windows", type=int, default=200, help="Windows per timing (seeded draw, same for all).")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)

    from go2bench.core.provenance import hardware, versions, write_json_atomic
    from go2bench.histories.dataset_config import load_dataset_configs
    from go2bench.vintix import data as current

    sparsities = [int(x) for x in args.sparsity.split(",")]
    paths = args.paths.split(",")
    if not set(paths) <= {"direct", "h5py"}:
        sys.exit(f"--paths: {args.paths!r}: use direct and/or h5py")
    with tempfile.TemporaryDirectory(prefix="window_reads_") as tmp_s:
        tmp = Path(tmp_s)
        modules = {p: current for p in paths}
        if args.baseline_rev:
            modules[f"rev:{args.baseline_rev}"] = _module_at(args.baseline_rev, tmp)
        names = list(modules)
        baseline = args.baseline or (f"rev:{args.baseline_rev}" if args.baseline_rev else names[-1])
        if baseline not in names:
            sys.exit(f"--baseline {baseline!r} is not one of the timed paths {names}")
        t0 = time.perf_counter()
        d = _dataset(args, tmp)
        write_s = time.perf_counter() - t0
        sets, draws = {}, {}
        for k in sparsities:
            cfg = tmp / f"cfg_{k}.yaml"
            cfg.write_text(f"bench: {{path: '{d.name}', group: g, episode_sparsity: {k}}}\n")
            specs = load_dataset_configs([cfg], d.parent)
            for name, mod in modules.items():
                ds = mod.MultiTaskWindows(specs, args.context_len, args.trajectory_sparsity)
                if name == "h5py":
                    ds.direct_reads = False
                sets[(name, k)] = ds
            draws[k] = np.random.default_rng(args.seed).integers(len(ds), size=args.windows)
        for (name, k), ds in sets.items():  # warm-up: open files, fill the page cache
            for i in draws[k][:20]:
                ds[int(i)]
        times = {key: [] for key in sets}
        for _ in range(args.rounds):
            for key, ds in sets.items():
                idx = draws[key[1]]
                t0 = time.perf_counter()
                for i in idx:
                    ds[int(i)]
                times[key].append((time.perf_counter() - t0) / len(idx))
        rows = []
        for (name, k), ts in times.items():
            ms = 1000 * statistics.median(ts)
            rows.append({"path": name, "episode_sparsity": k, "windows": len(sets[(name, k)]), "ms_per_window": ms,
                         "windows_per_s": 1000 / ms, "rounds_ms": [1000 * t for t in ts]})
        by = {(r["path"], r["episode_sparsity"]): r for r in rows}
        for r in rows:
            r["over_sparsity_%d" % sparsities[0]] = r["ms_per_window"] / by[(r["path"], sparsities[0])]["ms_per_window"]
            r["speedup_over_baseline"] = by[(baseline, r["episode_sparsity"])]["ms_per_window"] / r["ms_per_window"]
        for ds in sets.values():
            ds.close()

    ref = sparsities[0]
    print(f"\nwindows of {args.context_len} steps, trajectory_sparsity {args.trajectory_sparsity}, "
          f"{args.windows} windows x {args.rounds} rounds (median); baseline: {baseline}\n")
    print(f"| read path | episode_sparsity | windows/s | ms/window | x sparsity {ref} | speedup vs baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (names.index(r["path"]), r["episode_sparsity"])):
        print(f"| {r['path']} | {r['episode_sparsity']} | {r['windows_per_s']:,.0f} | {r['ms_per_window']:.3f} "
              f"| {r['over_sparsity_%d' % ref]:.2f} | {r['speedup_over_baseline']:.2f} |")
    out = Path(args.out)
    root = Path(__file__).resolve().parent.parent
    where = out.resolve().relative_to(root) if root in out.resolve().parents else out  # no machine's paths in results
    doc = {"benchmark": "window_read_throughput", "date": time.strftime("%Y-%m-%d %H:%M"),
           "config": {**vars(args), "out": str(where)},
           "dataset": str(d) if args.dataset else "synthetic", "dataset_write_s": write_s, "baseline": baseline,
           "hardware": hardware(), "versions": versions(), "rows": rows}
    write_json_atomic(out, doc)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
