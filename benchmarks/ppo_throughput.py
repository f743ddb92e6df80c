"""PPO training throughput (env-steps/s including learning) next to raw adapter throughput, on CPU.

Why (issue 4): the env benchmark (``env_throughput.py``) shows how fast the simulation and its
wrappers step, but what a user of the teachers waits for is PPO: rollouts through the SB3 adapter
*plus* the policy forward passes, GAE and the gradient updates. Timings taken in different runs on
a shared machine cannot be compared, so this script measures both numbers in the same process, on
the same adapter, one right after the other, and reports their ratio (the share of raw env
throughput that survives learning).

For each N (``--num-envs``), in one process on CPU:

(a) ``raw``: one :class:`WalkSB3VecEnv` (Genesis CPU backend) is built, reset, warmed up, then
    stepped for ``--seconds`` with random actions, uniform in [-1, 1] (a pool of pre-generated
    batches, made outside the timing). This includes everything SB3 sees from the env: the numpy
    boundary, same-step autoresets and their info dicts.
(b) ``ppo``: on the *same* adapter, ``make_ppo(venv, PPOConfig(), device="cpu", seed=0,
    tensorboard_log=None, verbose=0)`` and ``model.learn`` with the teacher recipe's KL-adaptive
    learning rate callback (as ``go2bench teach`` does) and a wall-time stop, after
    ``--ppo-warmup-iterations`` untimed iterations (whose steps are not counted). Once ``--seconds``
    have passed, learning stops at the first env step of the next rollout, i.e. right after a
    completed update, so the measurement covers whole PPO iterations (rollout + update) and not a
    trailing rollout without its update. Throughput = ``model.num_timesteps`` / time since the
    start of training (after SB3's setup and env reset); ``rollout_share`` is the part of that time
    spent collecting rollouts.

The machine this was written on has 2 cores shared with other work: the JSON records the 1-minute
load average at start and end, and, per measurement, the CPU time other processes used per wall
second (``other_cpu``, from /proc/stat; 0 = idle machine, 2 = both cores busy elsewhere).

Usage::

    python benchmarks/ppo_throughput.py                          # Go2Walk-v0, N = 64,256, 30 s each
    python benchmarks/ppo_throughput.py --num-envs 64 --seconds 10 --env MiniCheetahWalk-v0
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq; no steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class OtherCPU:
    """CPU seconds per wall second used by processes other than this one over an interval."""

    def start(self) -> None:
        self.t, self.busy, self.own = time.perf_counter(), _busy_cpu_s(), time.process_time()

    def stop(self) -> float:
        wall = time.perf_counter() - self.t
        other = (_busy_cpu_s() - self.busy) - (time.process_time() - self.own)
        return round(max(0.0, other) / wall, 2)


def bench_raw(venv, seconds: float, warmup: int, seed: int) -> dict[str, Any]:
    n = venv.num_envs
    rng = np.random.default_rng(seed)
    actions = [rng.uniform(-1.0, 1.0, (n, venv.action_space.shape[0])).astype(np.float32) for _ in range(32)]
    venv.seed(seed)
    venv.reset()
    for i in range(warmup):
        venv.step(actions[i % len(actions)])
    steps = dones = 0
    other = OtherCPU()
    other.start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, done, _ = venv.step(actions[steps % len(actions)])
        dones += int(done.sum())
        steps += 1
    wall = time.perf_counter() - t0
    return {
        "raw_steps_per_s": steps * n / wall,
        "raw_env_steps": steps * n,
        "raw_wall_s": wall,
        "raw_episode_ends_per_env_step": dones / (steps * n),
        "raw_other_cpu": other.stop(),
    }


def bench_ppo(venv, seconds: float, seed: int, warmup_iterations: int) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import CallbackList

    from go2bench.teachers.ppo import KLAdaptiveLRCallback, PPOConfig, WallTimeLimitCallback, make_ppo

    class StopAfterUpdate(WallTimeLimitCallback):
        """Once the wall time has passed, stop at the first step of the next rollout (after an update)."""

        def _on_training_start(self) -> None:
            super()._on_training_start()
            self.rollouts, self.rollout_s, self.steps_in_rollout = 0, 0.0, 0

        def _on_rollout_start(self) -> None:
            self.r0, self.steps_in_rollout = time.perf_counter(), 0

        def _on_rollout_end(self) -> None:
            self.rollouts += 1
            self.rollout_s += time.perf_counter() - self.r0

        def _on_step(self) -> bool:
            self.steps_in_rollout += 1
            if self.steps_in_rollout == 1 and not super()._on_step():
                self.rollout_s += time.perf_counter() - self.r0  # the one env step of the cut rollout
                self.t_end = time.perf_counter()
                return False
            return True

    cfg = PPOConfig()
    model = make_ppo(venv, cfg, device="cpu", seed=seed, tensorboard_log=None, verbose=0)
    if warmup_iterations > 0:  # untimed: first-call costs of torch (allocations, kernels) out of the timing
        model.learn(total_timesteps=warmup_iterations * cfg.n_steps * venv.num_envs)
    stop = StopAfterUpdate(seconds)
    callbacks = [stop] + ([KLAdaptiveLRCallback(cfg.desired_kl, cfg.lr_min, cfg.lr_max)] if cfg.adaptive_lr else [])
    other = OtherCPU()
    other.start()
    t_learn = time.perf_counter()
    model.learn(total_timesteps=10**12, callback=CallbackList(callbacks), reset_num_timesteps=True)
    t_end = getattr(stop, "t_end", time.perf_counter())
    wall = t_end - stop.t0
    return {
        "ppo_steps_per_s": model.num_timesteps / wall,
        "ppo_env_steps": int(model.num_timesteps),
        "ppo_wall_s": wall,
        "ppo_setup_s": stop.t0 - t_learn,
        "ppo_iterations": stop.rollouts,
        "ppo_rollout_share": stop.rollout_s / wall,
        "ppo_batch_size": cfg.resolved_batch_size(venv.num_envs),
        "ppo_other_cpu": other.stop(),
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="Go2Walk-v0", help="Go2Walk-v0 or MiniCheetahWalk-v0")
    p.add_argument("--num-envs", default="64,256", help="comma-separated N list")
    p.add_argument("--seconds", type=float, default=30.0, help="wall time of each measurement (raw, and PPO)")
    p.add_argument("--warmup", type=int, default=20, help="untimed raw adapter steps before the raw measurement")
    p.add_argument("--ppo-warmup-iterations", type=int, default=2,
                   help="untimed PPO iterations (rollout + update) before the PPO measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/ppo_throughput_cpu_<env>.json)")
    args = p.parse_args(argv)
    args.num_envs_list = [int(x) for x in args.num_envs.split(",") if x.strip()]
    if not args.num_envs_list or any(n < 1 for n in args.num_envs_list) or args.seconds <= 0 or args.warmup < 0 \
            or args.ppo_warmup_iterations < 0:
        p.error("num-envs and seconds must be positive, warmup non-negative")
    return args


def print_table(env: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{env}, CPU, env-steps/s (raw: random actions through WalkSB3VecEnv; PPO: incl. updates)")
    head = f"{'N':>5} {'raw steps/s':>12} {'PPO steps/s':>12} {'PPO/raw':>8} {'rollout share':>13} {'other CPU raw,ppo':>17}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['num_envs']:>5} {r['raw_steps_per_s']:>12,.0f} {r['ppo_steps_per_s']:>12,.0f} "
            f"{r['ppo_over_raw']:>8.3f} {r['ppo_rollout_share']:>13.2f} "
            f"{r['raw_other_cpu']:>8.2f},{r['ppo_other_cpu']:.2f}"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    from go2bench.core.provenance import hardware, versions
    from go2bench.teachers.ppo import PPOConfig
    from go2bench.teachers.sb3_vec_env import WalkSB3VecEnv

    out = Path(args.out) if args.out else RESULTS_DIR / f"ppo_throughput_cpu_{args.env.split(':')[-1]}.json"
    meta: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items()},
        "ppo_config": vars(PPOConfig()) | {"adaptive_lr_callback": True},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "hardware": hardware("cpu", "cpu"),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "torch_num_threads": torch.get_num_threads(),
        "QD_NUM_THREADS": os.environ.get("QD_NUM_THREADS"),
        "versions": versions(),
        "loadavg_1min_at_start": os.getloadavg()[0],
        "note": (
            "one process, Genesis CPU backend, policy on CPU; raw and PPO use the same adapter, one after the "
            "other. The machine has 2 cores shared with other work: compare raw and PPO of one row (same run), "
            "not absolute numbers across runs; *_other_cpu is the CPU time other processes used per wall second "
            "during that measurement (0 idle .. 2 both cores busy elsewhere); the load averages include this "
            "benchmark's own busy threads. PPO: the teacher recipe "
            "(PPOConfig defaults, KL-adaptive learning rate), whole iterations (rollout + update) only."
        ),
    }
    rows: list[dict[str, Any]] = []
    for n in args.num_envs_list:
        t0 = time.perf_counter()
        venv = WalkSB3VecEnv(args.env, n, backend="cpu", seed=args.seed)
        row: dict[str, Any] = {"num_envs": n, "build_s": time.perf_counter() - t0}
        row |= bench_raw(venv, args.seconds, args.warmup, args.seed)
        print(f"[N={n}] raw {row['raw_steps_per_s']:,.0f} env-steps/s (other CPU {row['raw_other_cpu']})", flush=True)
        row |= bench_ppo(venv, args.seconds, args.seed, args.ppo_warmup_iterations)
        row["ppo_over_raw"] = row["ppo_steps_per_s"] / row["raw_steps_per_s"]
        print(
            f"[N={n}] PPO {row['ppo_steps_per_s']:,.0f} env-steps/s, {row['ppo_iterations']} iterations, "
            f"rollout share {row['ppo_rollout_share']:.2f} (other CPU {row['ppo_other_cpu']})",
            flush=True,
        )
        venv.close()
        rows.append(row)
        meta["loadavg_1min_at_end"] = os.getloadavg()[0]
        out.parent.mkdir(parents=True, exist_ok=True)  # written after every N: a long run keeps partial results
        out.write_text(json.dumps({**meta, "rows": rows}, indent=2))
    print_table(args.env, rows)
    print(f"\nload average (1 min): {meta['loadavg_1min_at_start']:.2f} at start, {meta['loadavg_1min_at_end']:.2f} at end")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
