"""Host CPU that writing learning histories costs per row, without a simulation (issue 16's collection ceiling).

A collection hands each chunk of C steps x H histories to its writer, which appends every history's rows to its
:class:`~go2bench.histories.writer.HistoryWriter` (groups of G rows, per-history statistics kept while writing,
the demonstrator action too, as the collector does). This measures that work alone, on synthetic rows of Go2's
shape: process CPU seconds per row written. Compare it with a GPU step's time per env (a 1024-env Go2 step takes
about 2.4 ms on an H200: 2.4 us per env-step): writer work of the same order, on a thread that shares the GIL
with the stepping thread, halves the collection's rate.

    python benchmarks/writer_host_cost.py --histories 256,1024 --group-sizes 1000,10000 --steps 4096
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from go2bench.core.provenance import versions, write_json_atomic
from go2bench.histories.writer import HistoryWriter

RESULTS = Path(__file__).parent / "results"
OBS_DIM, ACT_DIM, CHUNK = 45, 12, 64  # Go2's agent observation and action; the collector's chunk_steps


def measure(histories: int, group_size: int, steps: int, seed: int = 0) -> dict:
    """CPU seconds and wall of writing ``histories`` x ``steps`` rows in CHUNK-row appends, then closing."""
    rng = np.random.default_rng(seed)
    obs = rng.random((CHUNK, histories, OBS_DIM), dtype=np.float32)
    act = rng.random((CHUNK, histories, ACT_DIM), dtype=np.float32)
    rew = rng.random((CHUNK, histories), dtype=np.float32)
    step = np.arange(CHUNK, dtype=np.int32)
    folder = Path(tempfile.mkdtemp(prefix="writer_cost_"))
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        writers = [HistoryWriter(folder / f"h{i}.h5", OBS_DIM, ACT_DIM, group_size, stats=True, demonstrator=True)
                   for i in range(histories)]
        chunks = steps // CHUNK
        for c in range(chunks):
            step_num = (step + c * CHUNK) % 500  # 500-step episodes
            for j, w in enumerate(writers):
                w.append(obs[:, j], act[:, j], rew[:, j], step_num, act[:, j])
        for w in writers:
            w.close(final=True)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = histories * chunks * CHUNK
    return {"histories": histories, "group_size": group_size, "rows": rows, "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3), "cpu_us_per_row": round(cpu / rows * 1e6, 3),
            "rows_per_cpu_s": round(rows / cpu, 1)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--histories", default="256,1024")
    p.add_argument("--group-sizes", default="1000,10000")
    p.add_argument("--steps", type=int, default=4096, help="rows per history (a multiple of 64)")
    p.add_argument("--out", default=str(RESULTS / "writer_host_cost_cpu.json"))
    args = p.parse_args(argv)
    rows = [measure(h, g, args.steps) for h in map(int, args.histories.split(","))
            for g in map(int, args.group_sizes.split(","))]
    print(f"{'histories':>9} {'group':>6} {'rows':>11} {'CPU s':>7} {'us/row':>7} {'rows/CPU-s':>11}")
    for r in rows:
        print(f"{r['histories']:>9} {r['group_size']:>6} {r['rows']:>11,} {r['cpu_s']:>7.1f} "
              f"{r['cpu_us_per_row']:>7.2f} {r['rows_per_cpu_s']:>11,.0f}")
    out = {"benchmark": "writer_host_cost", "args": vars(args), "rows": rows, "versions": versions(),
           "note": "one process, no simulation: the writer's host work per row (appends, groups, statistics)"}
    write_json_atomic(Path(args.out), out)
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
