"""Time and env steps a PPO teacher needs to learn to walk, read from ``go2bench teach`` logs.

Why: the quality bar of a teacher is a mean return >= 21 (``expert_score`` of the model card,
measured after training by evaluating the deterministic policy). How long training takes to get
there, and to the milestones on the way, is what someone budgeting GPU time wants to know; the
training logs already hold it, in the tables stable-baselines3 prints after every iteration.

For each log this reports the wall time (``time_elapsed``) and env steps (``total_timesteps``) of
the first iteration whose ``ep_rew_mean`` reaches 10, 15, 20 and 21, the final ``ep_rew_mean``,
the mean fps, and, from the matching ``<env_id>_model_card.json`` next to the log, the evaluated
``expert_score``, ``fall_rate``, ``mean_tracking_error`` and ``hardware``.

Caveats:

* ``ep_rew_mean`` is the mean return of the last 100 episodes finished during training rollouts,
  i.e. of the *stochastic* policy (sampled actions), lagging behind the current policy. It is not
  the evaluated ``expert_score`` (deterministic policy, after training), which is the quality bar;
  reaching 21 here is therefore only an indication. SB3 prints it to 3 significant digits, so
  "reaches 21" means a printed 21 (a true value of at least 20.95).
* SB3 prints ``time_elapsed`` as whole seconds since the start of ``learn`` (so crossing times are
  floored to the second and exclude scene building before training); ``fps`` is SB3's running
  average since the start, so the last table's ``fps`` is the run's mean (also given as
  ``total_timesteps / time_elapsed``).
* In the shipped GPU run (``benchmarks/results/gpu_teachers``), both teachers (Go2 and Mini
  Cheetah) trained side by side, in two processes on one H100, so each had about half the GPU: a
  teacher alone on the GPU would likely be faster.

Usage::

    python benchmarks/teacher_time_to_walk.py                      # the two GPU teacher logs
    python benchmarks/teacher_time_to_walk.py runs/teach.log --out /tmp/ttw.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GPU_DIR = RESULTS_DIR / "gpu_teachers"
DEFAULT_LOGS = (GPU_DIR / "teach_Go2Walk-v0.log", GPU_DIR / "teach_MiniCheetahWalk-v0.log")
THRESHOLDS = (10.0, 15.0, 20.0, 21.0)
KEYS = ("ep_rew_mean", "ep_len_mean", "time_elapsed", "total_timesteps", "fps")
_ROW = re.compile(r"^\|\s+([A-Za-z_/]+)\s+\|\s+(\S+)\s+\|\s*$")
_RULE = re.compile(r"^-{10,}\s*$")
_ENV = re.compile(r"teach_(.+?)\.log$")
_REPO = RESULTS_DIR.parent.parent


def _show(path: Path) -> str:
    """``path`` relative to the repository when inside it (so the JSON does not name this machine)."""
    try:
        return str(path.resolve().relative_to(_REPO))
    except ValueError:
        return str(path)


def parse_log(path: Path) -> list[dict[str, float]]:
    """The SB3 tables of ``path`` (one dict of numeric rows per table, in order)."""
    tables: list[dict[str, float]] = []
    current: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        if _RULE.match(line):  # table borders: a table ends at the rule after its rows
            if current:
                tables.append(current)
                current = {}
            continue
        m = _ROW.match(line)
        if m:
            try:
                current[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    if current:
        tables.append(current)
    return [t for t in tables if "total_timesteps" in t]


def env_id_of(path: Path, text: str) -> str | None:
    m = _ENV.search(path.name)
    if m:
        return m.group(1)
    m = re.search(r"^(\S+Walk-v\d+): [\d,]+ steps in", text, re.M)
    return m.group(1) if m else None


def analyse(path: Path) -> dict[str, Any]:
    tables = parse_log(path)
    if not tables:
        raise SystemExit(f"{path}: no SB3 log tables found")
    with_rew = [t for t in tables if "ep_rew_mean" in t]
    last = tables[-1]
    env_id = env_id_of(path, path.read_text(errors="replace"))
    row: dict[str, Any] = {"log": _show(path), "env_id": env_id, "iterations": len(tables)}
    crossings = {}
    for thr in THRESHOLDS:
        hit = next((t for t in with_rew if t["ep_rew_mean"] >= thr), None)
        crossings[f"{thr:g}"] = (
            None if hit is None else {
                "time_elapsed_s": hit["time_elapsed"],
                "total_timesteps": int(hit["total_timesteps"]),
                "ep_rew_mean": hit["ep_rew_mean"],
                "ep_len_mean": hit.get("ep_len_mean"),
            }
        )
    row["first_reaches_ep_rew_mean"] = crossings
    row["final"] = {
        "ep_rew_mean": with_rew[-1]["ep_rew_mean"] if with_rew else None,
        "ep_len_mean": with_rew[-1].get("ep_len_mean") if with_rew else None,
        "time_elapsed_s": last.get("time_elapsed"),
        "total_timesteps": int(last["total_timesteps"]),
    }
    row["mean_fps"] = last.get("fps")  # SB3's fps: steps since the start of learn / time since then
    row["mean_fps_from_totals"] = (
        last["total_timesteps"] / last["time_elapsed"] if last.get("time_elapsed") else None
    )
    card_path = path.parent / f"{env_id}_model_card.json" if env_id else None
    if card_path is not None and card_path.exists():
        card = json.loads(card_path.read_text())
        row["model_card"] = _show(card_path)
        for k in ("expert_score", "random_score", "fall_rate", "mean_tracking_error", "evaluated_episodes",
                  "hardware", "num_envs", "device", "backend", "training_steps", "wall_time_s", "env_steps_per_s"):
            row[k] = card.get(k)
        row["meets_quality_bar"] = card.get("expert_score") is not None and card["expert_score"] >= 21.0
    else:
        row["model_card"] = None
    return row


def _cell(c: dict[str, Any] | None) -> str:
    return "never" if c is None else f"{c['time_elapsed_s']:.0f}s/{c['total_timesteps'] / 1e6:.1f}M"


def print_table(rows: list[dict[str, Any]]) -> None:
    print("first iteration whose training ep_rew_mean (stochastic policy, last 100 episodes) reaches R: "
          "time_elapsed / env steps")
    head = (f"{'env':<20} " + " ".join(f"{'R>=' + format(t, 'g'):>12}" for t in THRESHOLDS)
            + f" {'final rew':>9} {'mean fps':>9} {'expert':>7} {'falls':>6} {'track err':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        c = r["first_reaches_ep_rew_mean"]
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        print(f"{str(r['env_id']):<20} " + " ".join(f"{_cell(c[f'{t:g}']):>12}" for t in THRESHOLDS)
              + f" {fmt(r['final']['ep_rew_mean'], '.2f'):>9} {fmt(r['mean_fps'], ',.0f'):>9}"
              f" {fmt(r.get('expert_score'), '.2f'):>7} {fmt(r.get('fall_rate'), '.1%'):>6}"
              f" {fmt(r.get('mean_tracking_error'), '.3f'):>9}")
    hw = {r.get("hardware") for r in rows if r.get("hardware")}
    if hw:
        print("hardware (model cards): " + "; ".join(sorted(hw)))
    print("expert/falls/track err: the model card's evaluation of the deterministic policy after training "
          "(quality bar: expert >= 21)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs", nargs="*", type=Path, default=list(DEFAULT_LOGS),
                   help="stdout logs of `go2bench teach` (default: the two GPU teacher logs)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "teacher_time_to_walk_gpu.json")
    args = p.parse_args(argv)
    rows = [analyse(Path(log)) for log in args.logs]
    print_table(rows)
    result = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "thresholds": list(THRESHOLDS),
        "notes": [
            "ep_rew_mean is SB3's training statistic: mean return of the last 100 episodes of the training "
            "rollouts, i.e. of the stochastic policy; the quality bar (mean return >= 21) is the evaluated "
            "expert_score of the model card (deterministic policy, after training). SB3 prints ep_rew_mean to "
            "3 significant digits: a printed 21 is a true value >= 20.95.",
            "time_elapsed is SB3's whole seconds since the start of learn (scene building excluded); "
            "mean_fps is the last table's fps (SB3's running average since the start).",
            "In the GPU run of benchmarks/results/gpu_teachers both teachers trained side by side in two "
            "processes on one H100, so each had about half the GPU.",
        ],
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
