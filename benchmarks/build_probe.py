"""Where a scene build's time goes, and which kernel-cache entries a build misses (issue 16).

Each case runs in a fresh Python process (as every go2bench command does) and times ``import
genesis``, ``gs.init``, the scene build (``make_walk_sim``) and the first step; around each process it
snapshots the caches (``~/.cache/quadrants`` kernels, ``~/.cache/genesis`` SDF grids, both written when
the process exits, and the CUDA driver's PTX->SASS cache ``~/.nv/ComputeCache`` or $CUDA_CACHE_PATH,
written as kernels load) and reports the files the process added or rewrote: a build that adds files
compiled what the carried caches did not hold (a miss), and the added names say which. Cases run in
order, so listing a case twice shows the warm-cache build.

    python benchmarks/build_probe.py --backend gpu --case Go2Walk-v0:4096 --case Go2Walk-v0:4096 \
        --case Go2Walk-v0:4096:dynamics --case Go2Walk-v0:16384

A case is ``ENV:NUM_ENVS[:FAMILY]`` followed by any of these flags:
  ``@full``       load the robot's URDF with its <visual> elements (as go2bench did before
                  ``envs.collision_urdf``): the baseline of the collision-only loading;
  ``@cold-cuda``  give the process an empty CUDA compute cache (a new $CUDA_CACHE_PATH, removed
                  afterwards; the real one is left as it is): what a machine without it pays.
``--timeout`` bounds each process and ``--budget`` all of them (a killed process writes no kernel
cache; the phases it finished are still reported). Prints a table (seconds; build time also as a ratio
to the first case's, and as CPU time of all threads) and writes
``benchmarks/results/build_probe_<backend>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ("full", "cold-cuda")


def cache_dirs() -> dict[str, Path]:
    """The caches a build reads, by short name."""
    cuda = os.environ.get("CUDA_CACHE_PATH") or "~/.nv/ComputeCache"
    return {name: Path(os.path.expanduser(p)) for name, p in
            (("quadrants", "~/.cache/quadrants"), ("genesis", "~/.cache/genesis"), ("cuda", cuda))}


def snapshot() -> dict[str, int]:
    """{path: size} of every file in the caches."""
    files: dict[str, int] = {}
    for base in cache_dirs().values():
        if base.is_dir():
            for p in base.rglob("*"):
                if p.is_file():
                    files[str(p)] = p.stat().st_size
    return files


def parse_case(case: str) -> tuple[str, int, str | None, set[str]]:
    """``ENV:NUM_ENVS[:FAMILY][@flag...]`` -> (env id, number of envs, family or None, flags)."""
    spec, *flags = case.split("@")
    env_id, n, family = (spec.split(":") + ["", ""])[:3]
    unknown = set(flags) - set(FLAGS)
    if unknown or not n.isdigit():
        raise ValueError(f"case {case!r}: expected ENV:NUM_ENVS[:FAMILY] and flags from {FLAGS}")
    return env_id, int(n), family or None, set(flags)


def _phase(name: str, seconds: float) -> float:
    print(f"PHASE {name} {seconds:.2f}", flush=True)  # read by the parent, also from a killed process
    return round(seconds, 2)


def run_case(env_id: str, num_envs: int, family: str | None, backend: str, full_urdf: bool = False) -> dict:
    """One build in this process (called in a child process by main)."""
    if full_urdf:
        from go2bench.envs import collision_urdf

        collision_urdf.collision_only = lambda urdf: urdf  # the URDF as written, visuals and all
    t0 = time.perf_counter()
    import genesis  # noqa: F401  (the import itself is what is timed)

    row = {"env": env_id, "num_envs": num_envs, "family": family, "backend": backend, "full_urdf": full_urdf,
           "import_s": _phase("import", time.perf_counter() - t0)}
    import torch

    from go2bench.envs import genesis_runtime
    from go2bench.envs.walk_sim import make_walk_sim

    t1 = time.perf_counter()
    genesis_runtime.init(backend)
    row["init_s"] = _phase("init", time.perf_counter() - t1)
    t2, c2 = time.perf_counter(), time.process_time()
    sim = make_walk_sim(env_id, num_envs=num_envs, backend=backend, family=family,
                        tasks=("train", 0) if family else None)
    row["build_s"] = _phase("build", time.perf_counter() - t2)
    row["build_cpu_s"] = round(time.process_time() - c2, 2)  # all threads; less sensitive than wall time to a busy host
    t3 = time.perf_counter()
    sim.reset()
    sim.step(torch.zeros((num_envs, sim.action_low.shape[0]), device=sim.device))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    row["first_step_s"] = _phase("first_step", time.perf_counter() - t3)
    return row


def cache_delta(before: dict[str, int], after: dict[str, int]) -> dict:
    """Sizes of the caches before the process, and the files it added or rewrote."""
    changed = sorted(p for p in after if before.get(p) != after[p])
    mb_before = {name: round(sum(s for p, s in before.items() if p.startswith(str(d) + os.sep)) / 2**20, 1)
                 for name, d in cache_dirs().items()}
    return {"cache_files_before": len(before), "cache_mb_before": round(sum(before.values()) / 2**20, 1),
            "cache_mb_before_by_dir": mb_before,
            "added_files": len(changed), "added_mb": round(sum(after[p] for p in changed) / 2**20, 2),
            "added_examples": [os.path.relpath(p, os.path.expanduser("~")) for p in changed[:12]]}


def run_process(case: str, backend: str, timeout: float | None) -> dict:
    """One case in a child process, bounded by ``timeout`` seconds; its row, or what it finished before dying."""
    flags = parse_case(case)[3]
    env = dict(os.environ)
    cold = tempfile.mkdtemp(prefix="cuda-cache-") if "cold-cuda" in flags else None
    if cold:
        env["CUDA_CACHE_PATH"] = cold
    cmd = [sys.executable, __file__, "--backend", backend, "--child", case]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        out, err, error = proc.stdout, proc.stderr, None if proc.returncode == 0 else f"exit code {proc.returncode}"
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err, error = "", f"killed after the {timeout:.0f} s timeout"
    finally:
        if cold:
            shutil.rmtree(cold, ignore_errors=True)
    result = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if result:
        return {"case": case, **json.loads(result[-1][7:])}
    row = {"case": case, "error": error or "no result", "log_tail": (err or out)[-2000:]}
    for ln in out.splitlines():  # the phases finished before it died
        if ln.startswith("PHASE "):
            _, name, secs = ln.split()
            row[f"{name}_s"] = float(secs)
    return row


def _fmt(row: dict, key: str) -> str:
    return f"{row[key]:7.1f}" if key in row else "      -"


def print_row(row: dict, base_build: float | None) -> None:
    ratio = f"{row['build_s'] / base_build:5.2f}x" if base_build and "build_s" in row else "     -"
    by = row["cache_mb_before_by_dir"]
    print(f"{row['case']:34s} {_fmt(row, 'import_s')} {_fmt(row, 'init_s')} {_fmt(row, 'build_s')} {ratio} "
          f"{_fmt(row, 'build_cpu_s')} "
          f"{_fmt(row, 'first_step_s')} {_fmt(row, 'process_s')}  {by['quadrants']:6.1f} {by['genesis']:6.1f} "
          f"{by['cuda']:6.1f}  {row['added_files']:4d} / {row['added_mb']:6.2f} MB" +
          (f"  ERROR: {row['error']}" if "error" in row else ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--case", action="append", default=[], metavar="ENV:NUM_ENVS[:FAMILY][@FLAG...]")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per process (killed past it)")
    ap.add_argument("--budget", type=float, default=None, help="seconds for all processes; later cases get what is left")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        env_id, n, family, flags = parse_case(args.child)
        print("RESULT " + json.dumps(run_case(env_id, n, family, args.backend, "full" in flags)), flush=True)
        return
    cases = args.case or ["Go2Walk-v0:64", "Go2Walk-v0:64"]
    for case in cases:
        try:
            parse_case(case)
        except ValueError as e:
            ap.error(str(e))
    print(f"{'case':34s} {'import':>7s} {'init':>7s} {'build':>7s} {'ratio':>6s} {'cpu':>7s} {'step1':>7s} {'process':>7s}  "
          f"{'MB: qd':>6s} {'gs':>6s} {'cuda':>6s}  added files", flush=True)
    rows, start, base = [], time.perf_counter(), None
    for case in cases:
        left = None if args.budget is None else args.budget - (time.perf_counter() - start)
        limits = [t for t in (args.timeout, left) if t is not None]
        timeout = min(limits) if limits else None
        before, t0 = snapshot(), time.perf_counter()
        if timeout is not None and timeout < 5:
            row = {"case": case, "error": "skipped: no time left in the budget"}
        else:
            row = run_process(case, args.backend, timeout)
        row["process_s"] = round(time.perf_counter() - t0, 2)
        row.update(cache_delta(before, snapshot()))
        rows.append(row)
        base = base if base is not None else row.get("build_s")
        print_row(row, base)
    from go2bench.core.provenance import hardware, versions, write_json_atomic

    out = args.out or Path(__file__).resolve().parent / "results" / f"build_probe_{args.backend}.json"
    write_json_atomic(out, {"benchmark": "build_probe", "cases": cases, "timeout_s": args.timeout,
                            "budget_s": args.budget, "rows": rows, "versions": versions(), "hardware": hardware()})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
