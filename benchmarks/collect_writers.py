"""Collection with its writers on a thread vs in P processes, the GPU case emulated on the CPU.

Why (issue 16): on one H200 the collection reached 0.38 of the raw Genesis loop at 1024 histories: a
step of 1024 envs takes ~2.4 ms, nearly all of it GPU time during which the stepping thread only
waits, and the writer thread's ~3 us of HDF5/statistics work per row holds the same GIL.  A GPU run
costs device time, so here the real ``go2bench.collect.collect`` loop (teacher call, noise, blend,
per-chunk buffers, HDF5 groups, statistics, JSON) drives a stand-in simulation, :class:`SleepSim`,
whose step sleeps ``--step-ms`` (GIL released, as a CUDA sync is) and does a few small tensor ops;
the teacher is a stand-in as cheap as launching an MLP's kernels (``--real-teacher``: the shipped
one, whose CPU matmuls are no part of the GPU case).  For each N, paired rounds:

* ``raw``: the stand-in stepped alone for ``--steps`` steps (actions, step, masked resets);
* ``collect P``: ``collect()`` of N histories x ``--steps`` steps with ``writer_processes=P``
  (0: today's writer thread) into a fresh folder.  Rate = rows written / wall of the whole call,
  writer start-up included.

The table gives rows/s and the ratio to the raw rate of the same round.  Caveat printed with it:
this machine may have few cores; P processes then compete with the stepping thread and with each
other for them, unlike a GPU host (32 cores).  The per-process writer throughput (rows/s of one
process's CPU) is what projects to such a host.

    python benchmarks/collect_writers.py --num-envs 256,1024,4096 --steps 2000 --processes 0,1,2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

# go2bench and torch are imported where used: a spawned writer process imports this script again (as any
# spawned process imports its parent's main module), and should not pay torch's import for nothing.
__all__ = ["SleepSim", "cheap_teacher"]


class SleepSim:
    """What the collector uses of a WalkSimulation, stepping in ``step_s`` of sleep (the GIL released).

    Deterministic: observations and rewards are functions of (env, episode step); episodes end by the
    time limit only.  Enough for the collector's bytes-identical checks and for timing its overhead."""

    def __init__(self, robot: str, num_envs: int, step_s: float, max_episode_steps: int = 1000,
                 obs_mode: str = "noleak"):
        import torch

        from go2bench.envs.robots import get_robot
        from go2bench.envs.spaces import observation_dim
        from go2bench.envs.walk_config import make_walk_config

        self.robot_description = get_robot(robot)
        self.config = replace(make_walk_config(None), obs_mode=obs_mode)
        self.num_envs, self.step_s, self.max_episode_steps = num_envs, step_s, max_episode_steps
        self.device, self.family, self.privileged, self.tasks = torch.device("cpu"), None, False, None
        low, high = self.robot_description.action_bounds()
        self.action_low, self.action_high = torch.as_tensor(low), torch.as_tensor(high)
        d = observation_dim(self.robot_description, obs_mode)
        self._base = torch.linspace(-1, 1, d).expand(num_envs, d)  # rows depend on the history, not the column
        self.episode_step = torch.zeros(num_envs, dtype=torch.int64)

    def _obs(self):
        return self._base + 0.001 * self.episode_step[:, None]

    def reset(self, mask=None):
        import torch

        self.episode_step = (torch.zeros_like(self.episode_step) if mask is None
                             else self.episode_step.masked_fill(mask, 0))
        return self._obs()

    def step(self, actions) -> SimpleNamespace:
        import torch

        time.sleep(self.step_s)
        self.episode_step = self.episode_step + 1
        truncated = self.episode_step >= self.max_episode_steps
        reward = actions[:, 0] * 0.01 + 0.001 * self.episode_step
        return SimpleNamespace(obs=self._obs(), reward=reward, terminated=torch.zeros_like(truncated),
                               truncated=truncated)

    def close(self) -> None:
        pass


class _CheapPolicy:
    def _predict(self, obs, deterministic: bool = True):
        return (obs[:, :12] * 0.5).tanh()


def cheap_teacher(env: str):
    """The shipped teacher's record (source, card, bounds) with a policy as cheap as launching its kernels."""
    from go2bench.collect.config import CollectConfig
    from go2bench.collect.family import load_collect_teacher

    t = load_collect_teacher(CollectConfig(env=env), "cpu", False)
    return SimpleNamespace(source=t.source, model_card=t.model_card, obs_dim=t.obs_dim, _low=t._low,
                           _high=t._high, policy=_CheapPolicy())


def raw_loop(sim: SleepSim, steps: int) -> tuple[float, float]:
    """Env-steps/s of the stand-in alone, and its CPU seconds per env-step."""
    import torch

    acts = torch.zeros(sim.num_envs, sim.robot_description.num_joints)
    sim.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        r = sim.step(acts)
        done = r.terminated | r.truncated
        if bool(done.any()):
            sim.reset(done)
    n = sim.num_envs * steps
    return n / (time.perf_counter() - t0), (time.process_time() - c0) / n


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (all its threads) and of its joined children (the writer processes)."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="Go2Walk-v0")
    p.add_argument("--num-envs", default="256,1024,4096")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--step-ms", type=float, default=2.4, help="stand-in step time (H200: ~2.4 ms at 1024 envs)")
    p.add_argument("--processes", default="0,1,2", help="writer_processes values (0: the writer thread)")
    p.add_argument("--group-size", type=int, default=1000)
    p.add_argument("--chunk-steps", type=int, default=1000)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--real-teacher", action="store_true")
    p.add_argument("--out", default="benchmarks/results/collect_writers_cpu.json")
    args = p.parse_args(argv)
    from go2bench.collect.collector import collect
    from go2bench.collect.config import CollectConfig
    from go2bench.core.provenance import hardware, versions, write_json_atomic

    ns = [int(x) for x in args.num_envs.split(",")]
    ps = [int(x) for x in args.processes.split(",")]
    robot = "go2" if args.env.startswith("Go2") else "mini_cheetah"
    if args.real_teacher:
        from go2bench.collect.family import load_collect_teacher

        teacher = load_collect_teacher(CollectConfig(env=args.env), "cpu", False)
    else:
        teacher = cheap_teacher(args.env)
    head = {"benchmark": "collect_writers", "hardware": hardware(backend="cpu"), "versions": versions(),
            "date": time.strftime("%Y-%m-%d"), "args": vars(args), "cpus": len(os.sched_getaffinity(0))}
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="collect_writers_"))
    try:
        for n in ns:
            sim = SleepSim(robot, n, args.step_ms / 1e3)
            cfg = CollectConfig(env=args.env, num_histories=n, steps_per_history=args.steps, seed=0,
                                chunk_steps=args.chunk_steps, group_size=args.group_size)
            row = {"num_envs": n, "raw_sps_rounds": [], "collect": {}}
            for rep in range(args.reps):
                raw, raw_cpu = raw_loop(sim, args.steps)
                row["raw_sps_rounds"].append(raw)
                row.setdefault("raw_cpu_us_per_env_step", []).append(raw_cpu * 1e6)
                for procs in ps:
                    out = tmp / f"n{n}_p{procs}_r{rep}" / "bench"
                    t0, (own0, kids0) = time.perf_counter(), _cpu()
                    s = collect(out, replace(cfg, writer_processes=procs), progress=False, plot=False, sim=sim,
                                teacher=teacher)
                    wall, (own1, kids1) = time.perf_counter() - t0, _cpu()
                    rate = s["rows_written"] / wall
                    c = row["collect"].setdefault(str(procs), {"rows_per_s": [], "over_raw": [], "rows": [],
                                                               "stepping_cpu_us_per_row": [], "writer_cpu_us_per_row": []})
                    c["rows_per_s"].append(rate)
                    c["over_raw"].append(rate / raw)
                    c["rows"].append(s["rows_written"])
                    # P=0: the stepping process's CPU includes the writer thread's; P>0: the writers' is apart
                    c["stepping_cpu_us_per_row"].append((own1 - own0) / s["rows_written"] * 1e6)
                    c["writer_cpu_us_per_row"].append((kids1 - kids0) / s["rows_written"] * 1e6)
                    print(f"N={n} P={procs} round {rep}: {rate:,.0f} rows/s ({s['rows_written']:,} rows in {wall:.1f} s)"
                          f", {rate / raw:.2f} of the raw {raw:,.0f}; CPU us/row: stepping process "
                          f"{c['stepping_cpu_us_per_row'][-1]:.2f}, writer processes {c['writer_cpu_us_per_row'][-1]:.2f}",
                          flush=True)
                    shutil.rmtree(out.parent)
            row["raw_sps"] = max(row["raw_sps_rounds"])
            for c in row["collect"].values():
                c["best_rows_per_s"] = max(c["rows_per_s"])
                c["over_raw_paired"] = statistics.median(c["over_raw"])
                for k in ("stepping_cpu_us_per_row", "writer_cpu_us_per_row"):
                    c[k.replace("_us", "_us_median")] = statistics.median(c[k])
            rows.append(row)
            write_json_atomic(Path(args.out), {**head, "rows": rows, "complete": False})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json_atomic(Path(args.out), {**head, "rows": rows, "complete": True})
    print(f"\ncollect() over a stand-in simulation stepping in {args.step_ms} ms (GIL released), {args.steps} steps, "
          f"groups of {args.group_size}; {head['cpus']} CPUs: P processes share them with the stepping thread")
    print(f"{'N':>6} {'raw steps/s':>12} " + " ".join(f"{'P=' + str(q) + ' rows/s':>14} {'ratio':>6}" for q in ps))
    for r in rows:
        print(f"{r['num_envs']:>6} {r['raw_sps']:>12,.0f} " + " ".join(
            f"{r['collect'][str(q)]['best_rows_per_s']:>14,.0f} {r['collect'][str(q)]['over_raw_paired']:>6.2f}"
            for q in ps))
    print("\nCPU us per row (median): stepping process / writer processes; P=0 counts the writer thread in the "
          "stepping process")
    for r in rows:
        print(f"{r['num_envs']:>6} raw loop {statistics.median(r['raw_cpu_us_per_env_step']):.2f} " + " ".join(
            f" P={q}: {r['collect'][str(q)]['stepping_cpu_us_median_per_row']:.2f} / "
            f"{r['collect'][str(q)]['writer_cpu_us_median_per_row']:.2f}" for q in ps))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
