"""Host vs device PPO rollouts side by side: env-steps/s including learning, and time to training return R.

Why (issue 16): a teacher's wall time was mostly the rollout's device->host round trip and per-env
Python work, not simulation or learning. ``go2bench teach --rollout device`` keeps the rollout on
the simulation's device with the same PPO update; this script measures both paths in one process,
on one simulation, one after the other, each from a fresh policy with the same seed, as ``go2bench
teach`` trains (``PPOConfig()`` and the KL-adaptive learning rate):

* ``env_steps_per_s``: env steps / wall time of whole PPO iterations (rollout + update), from the
  start of ``learn`` (its setup and env reset included, as SB3's ``time_elapsed``); learning stops
  at the first step after an update once ``--train-seconds`` have passed, or once the training
  return reached the highest threshold;
* ``first_reaches``: for each threshold R (``--thresholds``, default 15, 20, 21), the time and
  env steps at the end of the first rollout after which the training return (mean undiscounted
  return of the last 100 finished training episodes, SB3's ``ep_rew_mean``; stochastic policy)
  is >= R; None if not within the time;
* ``rollout_share``: part of the time spent collecting rollouts (the rest is PPO's update);
* ``trace``: (seconds, env steps, training return, learning rate) after every rollout.

Before the timed runs, each path trains one untimed iteration on a throwaway policy (first-call
costs of torch and CUDA out of the timing). The ratios device/host are of the same run.

Usage::

    # one H200 (the issue's numbers: 4096 envs; about 5 minutes with a cached scene build)
    python benchmarks/teacher_rollout_modes.py --backend gpu --device cuda --num-envs 4096
    # the 2-core CPU (throughput only: returns stay low in a minute)
    python benchmarks/teacher_rollout_modes.py --backend cpu --device cpu --num-envs 64 --train-seconds 60
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ppo_throughput import OtherCPU  # noqa: E402  (a sibling script: CPU time used by other processes)

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _callbacks(seconds: float, stop_return: float | None):
    from stable_baselines3.common.callbacks import BaseCallback

    from go2bench.teachers.ppo import mean_training_return

    class Trace(BaseCallback):
        """Records every rollout's end; stops at the first step after an update once time or return is reached."""

        def __init__(self) -> None:
            super().__init__(0)
            self.trace: list[tuple[float, int, float | None, float]] = []
            self.rollout_s = 0.0
            self.stop = False
            self.t_end = None

        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()

        def _on_rollout_start(self) -> None:
            self.r0, self.first = time.perf_counter(), True

        def _on_rollout_end(self) -> None:
            now = time.perf_counter()
            self.rollout_s += now - self.r0
            ret = mean_training_return(self.model)
            lr = float(self.model.lr_schedule(self.model._current_progress_remaining))
            self.trace.append((round(now - self.t0, 3), int(self.model.num_timesteps), ret, lr))
            self.stop = now - self.t0 >= seconds or (stop_return is not None and ret is not None
                                                     and ret >= stop_return)

        def _on_step(self) -> bool:
            if self.first:
                self.first = False
                if self.stop:  # the previous iteration's update is done: end on whole iterations
                    self.t_end = time.perf_counter()
                    return False
            return True

    return Trace()


def run_mode(venv, mode: str, device: str, seed: int, seconds: float, thresholds: list[float]) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import CallbackList

    from go2bench.teachers.ppo import KLAdaptiveLRCallback, PPOConfig, make_ppo

    cfg = PPOConfig()
    model = make_ppo(venv, cfg, device=device, seed=seed, tensorboard_log=None, verbose=0, rollout=mode)
    trace = _callbacks(seconds, max(thresholds) if thresholds else None)
    callbacks = [trace] + ([KLAdaptiveLRCallback(cfg.desired_kl, cfg.lr_min, cfg.lr_max)] if cfg.adaptive_lr else [])
    other = OtherCPU()
    other.start()
    t_learn = time.perf_counter()
    model.learn(total_timesteps=10**12, callback=CallbackList(callbacks), reset_num_timesteps=True)
    t_end = trace.t_end or time.perf_counter()
    wall = t_end - t_learn  # from the start of learn: setup and env reset included, as SB3's time_elapsed
    steps = int(model.num_timesteps) - (venv.num_envs if trace.t_end else 0)  # the cut rollout's one step
    first = {}
    for thr in thresholds:
        hit = next((t for t in trace.trace if t[2] is not None and t[2] >= thr), None)
        first[f"{thr:g}"] = None if hit is None else {"seconds": round(hit[0] + trace.t0 - t_learn, 2),
                                                      "env_steps": hit[1]}
    last = trace.trace[-1] if trace.trace else (0.0, 0, None, None)
    return {
        "rollout": mode,
        "env_steps_per_s": round(steps / wall, 1),
        "env_steps": steps,
        "wall_s": round(wall, 2),
        "setup_s": round(trace.t0 - t_learn, 3),
        "iterations": len(trace.trace),
        "rollout_share": round(trace.rollout_s / max(t_end - trace.t0, 1e-9), 3),
        "first_reaches": first,
        "final_training_return": last[2],
        "final_learning_rate": last[3],
        "other_cpu": other.stop(),
        "trace": trace.trace,
    }


def warm_up(venv, modes: list[str], device: str, seed: int) -> None:
    """One untimed PPO iteration per path on a throwaway policy (allocator, kernels, cuBLAS handles)."""
    from go2bench.teachers.ppo import PPOConfig, make_ppo

    for mode in modes:
        cfg = PPOConfig()
        model = make_ppo(venv, cfg, device=device, seed=seed + 1, tensorboard_log=None, verbose=0, rollout=mode)
        model.learn(total_timesteps=cfg.n_steps * venv.num_envs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _fmt_first(c: dict[str, Any] | None) -> str:
    return "-" if c is None else f"{c['seconds']:.0f}s/{c['env_steps'] / 1e6:.1f}M"


def print_table(rows: list[dict[str, Any]], thresholds: list[float], ratios: dict[str, Any]) -> None:
    head = (f"{'rollout':>8} {'env-steps/s':>12} {'iters':>6} {'rollout share':>13} "
            + " ".join(f"{'R>=' + format(t, 'g'):>12}" for t in thresholds) + f" {'final R':>8}")
    print("\nPPO incl. learning; R: training return (last 100 episodes) first reached at: seconds / env steps")
    print(head)
    print("-" * len(head))
    for r in rows:
        fr = r["final_training_return"]
        print(f"{r['rollout']:>8} {r['env_steps_per_s']:>12,.0f} {r['iterations']:>6} {r['rollout_share']:>13.2f} "
              + " ".join(f"{_fmt_first(r['first_reaches'][f'{t:g}']):>12}" for t in thresholds)
              + f" {'-' if fr is None else format(fr, '.2f'):>8}")
    if ratios:
        print("device / host: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="Go2Walk-v0", help="Go2Walk-v0 or MiniCheetahWalk-v0")
    p.add_argument("--backend", choices=["cpu", "gpu"], default="cpu", help="Genesis backend")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device of the policy")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--modes", default="host,device",
                   help="comma-separated rollout modes, run in this order (repeat to interleave on a busy machine)")
    p.add_argument("--train-seconds", type=float, default=100.0,
                   help="wall time of each mode's training (it stops earlier once the highest threshold is reached)")
    p.add_argument("--thresholds", default="15,20,21", help="training returns whose first crossing is timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed iteration per mode")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/teacher_rollout_modes_"
                                               "<backend>_<env>_<N>.json)")
    args = p.parse_args(argv)
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.threshold_list = [float(t) for t in args.thresholds.split(",") if t.strip()]
    if not args.mode_list or any(m not in ("host", "device") for m in args.mode_list):
        p.error("--modes takes host and/or device")
    if args.num_envs < 1 or not args.train_seconds > 0:
        p.error("--num-envs and --train-seconds must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    from go2bench.core.provenance import hardware, versions, write_json_atomic
    from go2bench.teachers.ppo import PPOConfig
    from go2bench.teachers.sb3_vec_env import WalkSB3VecEnv

    out = Path(args.out) if args.out else (
        RESULTS_DIR / f"teacher_rollout_modes_{args.backend}_{args.env}_{args.num_envs}.json")
    meta: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k not in ("mode_list", "threshold_list")},
        "ppo_config": vars(PPOConfig()) | {"adaptive_lr_callback": True},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "hardware": hardware(args.device, args.backend),
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "versions": versions(),
        "loadavg_1min_at_start": os.getloadavg()[0],
        "note": ("one process, one simulation; each mode trains a fresh policy (same seed) from a reset simulation, "
                 "one mode after the other; times from the start of learn (SB3's time_elapsed), scene build "
                 "excluded; training return = mean undiscounted return of the last 100 finished training episodes "
                 "(stochastic policy), read after every rollout. other_cpu: CPU seconds per wall second used by "
                 "other processes during that mode (0 idle; the 2-core CPU machine is shared)."),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    venv = WalkSB3VecEnv(args.env, args.num_envs, backend=args.backend, seed=args.seed)
    meta["build_s"] = round(time.perf_counter() - t0, 2)
    print(f"scene built in {meta['build_s']:.1f} s ({args.num_envs} envs, {args.backend})", flush=True)
    if not args.no_warmup:
        t0 = time.perf_counter()
        warm_up(venv, list(dict.fromkeys(args.mode_list)), args.device, args.seed)
        meta["warmup_s"] = round(time.perf_counter() - t0, 2)
    rows: list[dict[str, Any]] = []
    ratios: dict[str, Any] = {}
    for mode in args.mode_list:
        row = run_mode(venv, mode, args.device, args.seed, args.train_seconds, args.threshold_list)
        rows.append(row)
        print(f"[{mode}] {row['env_steps_per_s']:,.0f} env-steps/s incl. learning, {row['iterations']} iterations, "
              f"final training return {row['final_training_return']}, first reaches "
              + ", ".join(f"{k}: {_fmt_first(v)}" for k, v in row["first_reaches"].items()), flush=True)
        ratios = device_over_host(rows)
        meta["loadavg_1min_at_end"] = os.getloadavg()[0]
        write_json_atomic(out, {**meta, "rows": rows, "device_over_host": ratios})  # partial results survive
    venv.close()
    print_table(rows, args.threshold_list, ratios)
    print(f"wrote {out}")
    return 0


def device_over_host(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios device/host: mean env-steps/s over each mode's runs; times to R of each mode's first run."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["rollout"], []).append(r)
    if "host" not in by or "device" not in by:
        return {}
    mean = lambda runs: sum(r["env_steps_per_s"] for r in runs) / len(runs)  # noqa: E731
    ratios: dict[str, Any] = {"env_steps_per_s": round(mean(by["device"]) / mean(by["host"]), 3)}
    h, d = by["host"][0], by["device"][0]
    for k, dk in d["first_reaches"].items():
        hk = h["first_reaches"].get(k)
        if dk and hk:
            ratios[f"time_to_{k}"] = round(dk["seconds"] / hk["seconds"], 3)
    return ratios


if __name__ == "__main__":
    raise SystemExit(main())
