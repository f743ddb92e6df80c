"""Where a scene build's time goes, and which kernel-cache entries a build misses (issue 16).

Each case runs in a fresh Python process (as every go2bench command does) and times ``import
genesis``, ``gs.init``, the scene build (``make_walk_sim``) and the first step; around each process it
snapshots the kernel caches (``~/.cache/quadrants``, ``~/.cache/genesis``; Genesis writes them when
the process exits) and reports the files the process added or rewrote: a build that adds files compiled kernels the carried cache did not hold (a miss), and
the added names say which. Cases run in order, so listing a case twice shows the warm-cache build.

    python benchmarks/build_probe.py --backend gpu --case Go2Walk-v0:4096 --case Go2Walk-v0:4096 \
        --case Go2Walk-v0:4096:dynamics --case Go2Walk-v0:16384

Prints a table and writes ``benchmarks/results/build_probe_<backend>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CACHE_DIRS = ("~/.cache/quadrants", "~/.cache/genesis")


def snapshot() -> dict[str, int]:
    """{path: size} of every file in the kernel caches."""
    files: dict[str, int] = {}
    for root in CACHE_DIRS:
        base = Path(os.path.expanduser(root))
        if base.is_dir():
            for p in base.rglob("*"):
                if p.is_file():
                    files[str(p)] = p.stat().st_size
    return files


def run_case(env_id: str, num_envs: int, family: str | None, backend: str) -> dict:
    """One build in this process (called in a child process by main)."""
    t0 = time.perf_counter()
    import genesis  # noqa: F401  (the import itself is what is timed)

    t_import = time.perf_counter() - t0
    import torch

    from go2bench.envs import genesis_runtime
    from go2bench.envs.walk_sim import make_walk_sim

    t1 = time.perf_counter()
    genesis_runtime.init(backend)
    t_init = time.perf_counter() - t1
    t2 = time.perf_counter()
    sim = make_walk_sim(env_id, num_envs=num_envs, backend=backend, family=family,
                        tasks=("train", 0) if family else None)
    t_build = time.perf_counter() - t2
    t3 = time.perf_counter()
    sim.reset()
    sim.step(torch.zeros((num_envs, sim.action_low.shape[0]), device=sim.device))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t_first = time.perf_counter() - t3
    return {"env": env_id, "num_envs": num_envs, "family": family, "backend": backend,
            "import_s": round(t_import, 2), "init_s": round(t_init, 2), "build_s": round(t_build, 2),
            "first_step_s": round(t_first, 2)}


def cache_delta(before: dict[str, int], after: dict[str, int]) -> dict:
    """Files a process added or rewrote in the caches (Genesis writes kernels when the process exits)."""
    changed = sorted(p for p in after if before.get(p) != after[p])
    return {"cache_files_before": len(before), "cache_mb_before": round(sum(before.values()) / 2**20, 1),
            "added_files": len(changed), "added_mb": round(sum(after[p] for p in changed) / 2**20, 2),
            "added_examples": [os.path.relpath(p, os.path.expanduser("~")) for p in changed[:12]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--case", action="append", default=[], metavar="ENV:NUM_ENVS[:FAMILY]")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        env_id, n, family = (args.child.split(":") + [""])[:3]
        print("RESULT " + json.dumps(run_case(env_id, int(n), family or None, args.backend)), flush=True)
        return
    cases = args.case or ["Go2Walk-v0:64", "Go2Walk-v0:64"]
    rows = []
    for case in cases:
        before, t0 = snapshot(), time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--backend", args.backend, "--child", case],
                              capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        row = json.loads(line[-1][7:]) if line else {"case": case, "error": (proc.stderr or proc.stdout)[-2000:]}
        row["process_s"] = round(time.perf_counter() - t0, 2)
        row.update(cache_delta(before, snapshot()))
        rows.append(row)
        print(f"{case:32s} " + ("ERROR" if "error" in row else
              f"import {row['import_s']:6.1f} s  build {row['build_s']:6.1f} s  first step {row['first_step_s']:5.1f} s  "
              f"process {row['process_s']:6.1f} s  cache before {row['cache_mb_before']:6.1f} MB, "
              f"added {row['added_files']} files / {row['added_mb']} MB"), flush=True)
    from go2bench.core.provenance import hardware, versions, write_json_atomic

    out = args.out or Path(__file__).resolve().parent / "results" / f"build_probe_{args.backend}.json"
    write_json_atomic(out, {"benchmark": "build_probe", "cases": cases, "rows": rows, "versions": versions(),
                            "hardware": hardware()})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
