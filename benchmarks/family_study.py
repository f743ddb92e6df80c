"""What moves the in-context curve (issue 17): a grid of Vintix variants trained on one family dataset, one table.

Given a family dataset folder (the histories of one robot x family on the train thetas, as the pipeline's
``family`` stage collects them into ``family/data/<F>/<robot>_<F>``), this trains every variant of
:data:`VARIANTS` (each a set of ``go2bench train`` settings over a base config, the pipeline preset's
``family_train``), evaluates each under the family protocol (``go2bench eval --family F``) and writes one
study table to ``<out-dir>/<robot>_<family>/study.{md,json}``: per variant, zero-shot / final / AUC IQM and
rise (final minus zero-shot, IQM of the per-trial difference) with 95% intervals resampling thetas and seeds
(``ci95_thetas``), and its final's difference from the baseline measured in the same run.

Budget: everything is bounded by ``--budget-s`` of wall time. Trainings run ``--jobs`` at a time per GPU
(small models are launch-bound, so several share one GPU), each with ``--max_steps`` and a ``--max_minutes``
cap that ends by the training deadline (``--eval-reserve-s`` before the end); the evaluation gets what is
left. A variant whose training is cut short, killed, or whose evaluation does not finish is a NOT DONE
row, never dropped. Evaluation: one ``go2bench eval`` process for all agents when its ``--agent`` option
is repeatable (then ``--out`` names a folder; the agents of one scene kind run side by side in one scene,
:mod:`go2bench.eval.side_by_side`, so their results come together: a deadline that cuts that process
leaves the whole kind NOT DONE), else one process per agent (the first alone, so that the shared
reference cache is measured once, then ``--eval-jobs`` at a time).

The episode-sparsity variant keeps every 2nd episode of each history (``episode_sparsity: 2`` in the
dataset config, nothing copied): the histories then show twice the improvement per episode of context, the
Algorithm Distillation paper's argument for subsampling; it halves the stream, so it needs histories of at
least 2 x context steps. History length and noise schedule are collection settings: compare layouts with
``--alt-dataset LABEL=FOLDER`` (the baseline trained on another collected folder, e.g. a 1M-step layout;
that one cannot be collected within one 10-minute GPU call).

    python benchmarks/family_study.py --dataset runs/fam/family/data/velocity/go2_velocity --preset gpu \\
        --budget-s 420 --jobs 4 --reference-agent teacher-blind --backend gpu --device cuda
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from go2bench.core.config import ConfigError, from_dict, to_dict
from go2bench.core.provenance import versions, write_json_atomic
from go2bench.eval.family_results import metric_scores
from go2bench.eval.iqm import BOOTSTRAP_REPS, aggregate
from go2bench.histories.reader import read_metadata
from go2bench.pipeline.stages import CLI, start_process, train_arguments
from go2bench.vintix.config import TrainConfig

RESULTS = Path(__file__).parent / "results" / "family_study"
METRICS = ("zero_shot", "final", "auc", "rise")
# name -> (TrainConfig overrides, episode_sparsity, what it tests); "episodic" is the no-context reference row
VARIANTS: dict[str, tuple[dict[str, Any], int, str]] = {
    "baseline": ({}, 1, "--preset's family_train (gpu: seed model, context 2048, next-action AD targets)"),
    "ctx4096": ({"context_len": 4096}, 1, "context 4096"),
    "ctx8192": ({"context_len": 8192}, 1, "context 8192"),
    "small": ({"model": "small"}, 1, "model size: the small preset (6 layers, width 384, ~8x the seed's params)"),
    "dpt": ({"target": "demonstrator_action"}, 1, "DPT-style targets: the teacher's clean action"),
    "sparse2": ({}, 2, "episode sparsity 2: every 2nd episode of each history"),
    "episodic": ({"context": "episode"}, 1, "reference: context limited to one episode (vintix-episodic)"),
}


def log(msg: str) -> None:
    print(f"[family_study {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------- plan
def dataset_info(folder: Path, family: str | None) -> dict[str, Any]:
    """env, family, robot, group, obs_mode and episode length of a collected dataset folder (one line if not)."""
    meta = read_metadata(folder)
    if not meta:
        raise ConfigError(f"{folder}: no dataset metadata; give a folder the family collection wrote")
    family = family or meta.get("family")
    if not family or not meta.get("env_id"):
        raise ConfigError(f"{folder}: metadata names no family/env_id; pass --family (and collect with an env)")
    from go2bench.envs.registry import task_spec

    spec = task_spec(meta["env_id"])
    return {"env_id": meta["env_id"], "family": family, "robot": meta.get("robot") or spec.robot,
            "group": meta.get("group_name") or f"{spec.group}_{family}", "obs_mode": meta.get("obs_mode", "noleak"),
            "max_episode_steps": (meta.get("collection") or {}).get("max_episode_steps"),
            "reward_scale": meta.get("reward_scale"), "status": meta.get("status")}


def write_variant_config(path: Path, dataset: Path, info: dict[str, Any], episode_sparsity: int) -> Path:
    """A one-dataset config (the seed's format) for ``dataset`` with ``episode_sparsity`` and the reward scale
    of its collection (the pipeline trains with the one it collected with)."""
    entry = {"type": "default", "path": dataset.name, "group": info["group"], "reward_scale": info["reward_scale"],
             "episode_sparsity": int(episode_sparsity)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({dataset.name: entry}, sort_keys=False))
    return path


def plan(args, info: dict[str, Any], work: Path) -> list[dict[str, Any]]:
    """Every variant to run: name, TrainConfig, dataset, what it tests."""
    from go2bench.pipeline import pipeline_config

    preset = pipeline_config(args.preset)
    base = preset.family_train
    info["reward_scale"] = float(info["reward_scale"] or preset.reward_scale)  # the collection's, else the pipeline's
    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    base = from_dict(TrainConfig, {**to_dict(base), **extra, "progress_bar": False, "max_steps": args.max_steps,
                                   "epochs": max(base.epochs, 1000)}, "--set")
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
    datasets = [("", Path(args.dataset))] + [(label, Path(p)) for label, p in
                                             (a.split("=", 1) for a in args.alt_dataset)]
    out = []
    for label, folder in datasets:
        for name in names if not label else ["baseline"]:
            overrides, sparsity, what = VARIANTS[name]
            vname = f"{name}@{label}" if label else name
            cfg = replace(base, **overrides, name=vname.replace("@", "_at_"), out_dir=str(work / "runs"),
                          data_dir=str(folder.resolve().parent))
            if cfg.context == "episode" and info["max_episode_steps"]:
                cfg = replace(cfg, context_len=min(cfg.context_len, int(info["max_episode_steps"])))
            dcfg = write_variant_config(work / "configs" / f"{cfg.name}.yaml", folder.resolve(), info, sparsity)
            out.append({"name": vname, "train": replace(cfg, dataset_config_paths=[str(dcfg)]),
                        "episode_sparsity": sparsity, "dataset": str(folder), "what": what + (
                            f" (trained on {label}: {folder})" if label else ""),
                        "reference": name == "episodic"})
    return out


# ------------------------------------------------------------------------------------- train
def train_all(runs: list[dict[str, Any]], args, deadline: float, work: Path) -> None:
    """Train every run, ``jobs x gpus`` at a time, each capped to end by ``deadline``; fills run["train_status"]."""
    slots = max(1, args.jobs * max(1, args.gpus))
    todo, live = list(runs), []
    while todo or live:
        while todo and len(live) < slots:
            run = todo.pop(0)
            _check_same_training(run)  # a folder trained otherwise (another dataset, other settings) is an error
            if _train_status(run, 0) == "done":  # a re-run into its --work folder keeps what is trained
                run["train_status"], run["train_wall_s"] = "done", 0.0
                log(f"train {run['name']}: already trained, kept")
                continue
            left = deadline - time.time()
            if left < 20:
                run["train_status"] = "NOT DONE: no training time left"
                continue
            # a run cut by an earlier call continues from its last checkpoint
            run_dir = Path(run["train"].out_dir) / run["train"].name
            cfg = replace(run["train"], max_minutes=round(left / 60, 3), resume=any(run_dir.glob("*.pt")))
            gpu = len(live) % args.gpus if args.backend == "gpu" and args.gpus > 1 else None
            log_file = work / "logs" / f"train_{cfg.name}.log"
            log_file.parent.mkdir(parents=True, exist_ok=True)
            run["t0"] = time.time()
            live.append((run, start_process([*CLI, "train", *train_arguments(cfg)], log_file, gpu)))
        time.sleep(1.0)
        for run, proc in list(live):
            over = time.time() > deadline + args.kill_grace_s
            if proc.poll() is None and not over:
                continue
            if proc.poll() is None:
                proc.kill()  # our own child, past its cap and the grace
                proc.wait()
            live.remove((run, proc))
            run["train_wall_s"] = round(time.time() - run.pop("t0"), 1)
            run["train_status"] = _train_status(run, proc.returncode)
            log(f"train {run['name']}: {run['train_status']} ({run['train_wall_s']} s)")


# TrainConfig fields that may differ between a run and its continuation (caps, resuming, logging, loaders)
CONTINUATION_FIELDS = {"max_minutes", "resume", "progress_bar", "log_every", "num_workers"}


def _check_same_training(run: dict[str, Any]) -> None:
    """Raise ConfigError when the run's folder holds a training of other settings or data than planned.

    The study keeps (or continues) what its --work folder already holds; a folder left by another study
    (another dataset: the configs have the same names) must not be taken for this one's."""
    run_dir = Path(run["train"].out_dir) / run["train"].name
    path = run_dir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text()).get("train_config", {})
    new = json.loads(json.dumps(to_dict(run["train"])))
    diff = sorted(k for k in set(old) | set(new) if k not in CONTINUATION_FIELDS and old.get(k) != new.get(k))
    if diff:
        raise ConfigError(f"{path}: {run['name']} was trained with other {', '.join(diff)} "
                          f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); give this study another --work folder")


def _train_status(run: dict[str, Any], code: int) -> str:
    from go2bench.vintix.train import SUMMARY_FILE

    run_dir = Path(run["train"].out_dir) / run["train"].name
    summary_path = run_dir / SUMMARY_FILE
    if not (run_dir / "final.pt").exists() or not summary_path.exists():
        return f"NOT DONE: training exited {code} without a checkpoint (see logs/train_{run['train'].name}.log)"
    s = json.loads(summary_path.read_text())
    run.update(steps=s["step"], planned_steps=s["planned_steps"], params=s.get("params"),
               final_loss=s.get("final_loss"), checkpoint=str(run_dir / "final.pt"))
    if code != 0:
        return f"NOT DONE: training exited {code}"
    if s.get("cut_short_by"):
        return f"NOT DONE: training cut short at step {s['step']} of {s['planned_steps']}"
    return "done"


# ------------------------------------------------------------------------------------- eval
def eval_takes_several_agents() -> bool:
    """Whether ``go2bench eval``'s --agent option is repeatable (checked on the command, not on versions)."""
    from go2bench.cli.eval import eval_command

    return any("--agent" in p.opts and getattr(p, "multiple", False) for p in eval_command.params)


def eval_base(args, info: dict[str, Any], work: Path) -> list[str]:
    cmd = [*CLI, "eval", "--env", info["env_id"], "--family", info["family"], "--split", args.split,
           "--episodes", str(args.episodes), "--seeds", args.seeds, "--backend", args.backend, "--device",
           args.device, "--obs-mode", info["obs_mode"], "--reference-cache", str(work / "references"),
           "--reference-episodes", str(args.reference_episodes), "--no-progress"]
    cmd += ["--max-episode-steps", str(args.max_episode_steps or info["max_episode_steps"] or 1000)]
    cmd += ["--warmup-steps", str(args.warmup_steps)] if args.warmup_steps else []
    return cmd + (["--trials", str(args.trials)] if args.trials else [])


def evaluate(specs: list[str], args, info: dict[str, Any], work: Path, deadline: float) -> dict[str, Path]:
    """Evaluate every agent spec before ``deadline``; returns spec -> results file for those that finished."""
    out_dir = work / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    base, log_file = eval_base(args, info, work), work / "logs" / "eval.log"
    several = eval_takes_several_agents()
    log(f"eval {len(specs)} agents: " + ("one process, side by side (--agent repeatable)" if several else "one process each"))
    if several:
        cmd = base + [a for s in specs for a in ("--agent", s)] + ["--out", str(out_dir / "all")]
        _wait([start_process(cmd, log_file, None)], deadline)
        return _found(out_dir / "all", specs)
    files = {s: out_dir / f"agent{i}.json" for i, s in enumerate(specs)}
    batches = [specs[:1]] + [specs[1:][i:i + args.eval_jobs] for i in range(0, len(specs) - 1, args.eval_jobs)]
    for batch in batches:
        procs = [start_process(base + ["--agent", s, "--out", str(files[s])], log_file,
                               k % args.gpus if args.backend == "gpu" and args.gpus > 1 else None)
                 for k, s in enumerate(batch)]
        _wait(procs, deadline)
    return {s: p for s, p in files.items() if p.exists()}


def _wait(procs: list[subprocess.Popen], deadline: float) -> None:
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()  # our own child: the evaluation did not finish within the budget
            p.wait()


def _found(folder: Path, specs: list[str]) -> dict[str, Path]:
    """The results files in ``folder`` by the agent spec they record (an index file records none)."""
    out = {}
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            spec = json.loads(p.read_text()).get("agent_spec")
        except (OSError, ValueError, AttributeError):
            continue
        if spec in specs:
            out[spec] = p
    return out


# ------------------------------------------------------------------------------------- table
def scores(results: dict[str, Any], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Zero-shot, final, AUC and rise of a family results dict, recomputed from its trials (seeds x thetas)."""
    fam = results["family"]
    seeds, ids = fam["seeds"], [t["id"] for t in fam["tasks"]]
    N = np.full((len(seeds), len(ids), fam["episodes"]), np.nan)
    for t in fam["trials"]:
        N[seeds.index(t["seed"]), ids.index(t["task_id"])] = t["normalized"]
    if np.isnan(N).any():
        raise ValueError("results trials do not cover every (seed, theta)")
    m = {name: x for name, (_, x) in metric_scores(N).items()}
    m["rise"] = m["final"] - m["zero_shot"]
    return {name: aggregate(x, reps, seed) for name, x in m.items()}


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "-"
    lo, hi = m["ci95_thetas"]
    return f"{m['iqm']:.2f} [{lo:.2f}, {hi:.2f}]"


def make_table(rows: list[dict[str, Any]]) -> str:
    """The markdown study table: one row per variant, then the reference rows."""
    head = ("| variant | status | steps | zero-shot | final | AUC | rise | final - baseline | what |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        m = r.get("metrics") or {}
        d = r.get("final_minus_baseline")
        lines.append(f"| {r['name']} | {r['status']} | {r.get('steps', '-')} | "
                     + " | ".join(_cell(m.get(k)) for k in METRICS)
                     + f" | {'-' if d is None else f'{d:+.2f}'} | {r['what']} |")
    return "\n".join(lines)


def load_study(path: str | Path) -> dict[str, Any]:
    """A study JSON read back, its rows checked (ValueError naming the file otherwise)."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != "go2bench.family_study/1" or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: not a family study table (format go2bench.family_study/1)")
    for r in data["rows"]:
        if r["status"] == "done" and set(r["metrics"]) != set(METRICS):
            raise ValueError(f"{path}: row {r['name']} lacks metrics")
    return data


# ------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", required=True, help="a collected family dataset folder (one robot x family)")
    p.add_argument("--family", default=None, help="default: the dataset metadata's")
    p.add_argument("--alt-dataset", action="append", default=[], metavar="LABEL=FOLDER",
                   help="the baseline also trained on this folder (another history length / noise schedule)")
    p.add_argument("--preset", default="gpu", help="pipeline preset whose family_train is the base config")
    p.add_argument("--variants", default=None, help=f"comma list of {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="TrainConfig field, all variants")
    p.add_argument("--max-steps", type=int, default=3000, help="optimizer steps per training")
    p.add_argument("--budget-s", type=float, required=True, help="wall-clock budget of everything")
    p.add_argument("--eval-reserve-s", type=float, default=None, help="seconds kept for evaluation (default 45%%)")
    p.add_argument("--kill-grace-s", type=float, default=30.0, help="past its cap, a training is killed after this")
    p.add_argument("--jobs", type=int, default=4, help="concurrent trainings per GPU")
    p.add_argument("--gpus", type=int, default=1)
    p.add_argument("--eval-jobs", type=int, default=4, help="concurrent eval processes (no repeatable --agent)")
    p.add_argument("--reference-agent", action="append", default=[], metavar="SPEC",
                   help="also evaluated, as a reference row (e.g. teacher-blind)")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=RESULTS.json",
                   help="an existing family results file, as a reference row")
    p.add_argument("--train-only", action="store_true",
                   help="train (or continue training) every variant, then stop: a later run evaluates")
    p.add_argument("--warmup-steps", type=int, default=0, help="go2bench eval --warmup-steps (0: the cold protocol)")
    p.add_argument("--split", default="test")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--max-episode-steps", type=int, default=None, help="default: the dataset's")
    p.add_argument("--reference-episodes", type=int, default=3)
    p.add_argument("--backend", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bootstrap-reps", type=int, default=BOOTSTRAP_REPS)
    p.add_argument("--work", default=None, help="runs, logs and results (default runs/family_study/<robot>_<family>)")
    p.add_argument("--out-dir", default=str(RESULTS), help="the study table goes to OUT_DIR/<robot>_<family>/")
    return p.parse_args(argv)


def main(argv=None) -> dict[str, Any]:
    args = parse_args(argv)
    t0 = time.time()
    end = t0 + args.budget_s
    dataset = Path(args.dataset)
    info = dataset_info(dataset, args.family)
    tag = f"{info['robot']}_{info['family']}"
    work = Path(args.work or f"runs/family_study/{tag}")
    runs = plan(args, info, work)
    from go2bench.vintix.data import load_or_compute_stats

    for folder in {r["dataset"] for r in runs}:  # once, before the trainings race for the cache
        load_or_compute_stats(Path(folder))
    reserve = args.eval_reserve_s if args.eval_reserve_s is not None else 0.45 * args.budget_s
    train_all(runs, args, end - (0 if args.train_only else reserve), work)
    if args.train_only:
        log("--train-only: " + "; ".join(f"{r['name']} {r['train_status']} at step {r.get('steps')}" for r in runs))
        return {}
    trained = [r for r in runs if "checkpoint" in r]  # a cut-short model is evaluated too, its row NOT DONE
    specs = {r["name"]: ("vintix-episodic:" if r["reference"] else "vintix:") + r["checkpoint"] for r in trained}
    refs = {s: s for s in args.reference_agent}
    t_eval = time.time()
    found = evaluate(list(specs.values()) + list(refs), args, info, work, end) if specs or refs else {}
    eval_s = round(time.time() - t_eval, 1)
    rows = []
    for r in runs:
        res = found.get(specs.get(r["name"], ""))
        status = r["train_status"] if res or r["train_status"] != "done" else "NOT DONE: evaluation did not finish"
        rows.append({"name": r["name"], "status": status, "what": r["what"], "reference": r["reference"],
                     "steps": r.get("steps"), "planned_steps": r.get("planned_steps"), "params": r.get("params"),
                     "final_loss": r.get("final_loss"), "train_wall_s": r.get("train_wall_s"),
                     "episode_sparsity": r["episode_sparsity"], "dataset": r["dataset"],
                     "train_config": to_dict(r["train"]), "results": str(res) if res else None,
                     "metrics": scores(json.loads(res.read_text()), args.bootstrap_reps) if res else None})
    given = [(name, Path(p)) for name, p in (a.split("=", 1) for a in args.reference)]
    for name, path in [(s, found.get(s)) for s in refs] + given:
        ok = path is not None and path.exists()
        rows.append({"name": name, "status": "reference" if ok else "NOT DONE: evaluation did not finish",
                     "what": "reference agent", "reference": True, "results": str(path) if ok else None,
                     "metrics": scores(json.loads(path.read_text()), args.bootstrap_reps) if ok else None})
    base = next((r["metrics"]["final"]["iqm"] for r in rows if r["name"] == "baseline" and r["metrics"]), None)
    for r in rows:
        r["final_minus_baseline"] = None if base is None or not r["metrics"] else r["metrics"]["final"]["iqm"] - base
    table = make_table(rows)
    study = {"format": "go2bench.family_study/1", "dataset": str(dataset), "dataset_info": info, "rows": rows,
             "eval_mode": "one process, repeatable --agent, side by side" if eval_takes_several_agents() else "one process each",
             "seconds": {"total": round(time.time() - t0, 1), "eval": eval_s}, "budget_s": args.budget_s,
             "args": vars(args), "command": " ".join(sys.argv), "versions": versions(),
             "ci": "95% percentile bootstrap resampling thetas, then seeds within each (ci95_thetas)",
             "markdown": table}
    out = Path(args.out_dir) / tag
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "study.json", study)
    (out / "study.md").write_text(f"# Family study: {tag}\n\n{table}\n")
    print(table)
    log(f"wrote {out / 'study.json'} and study.md in {study['seconds']['total']} s")
    return study


if __name__ == "__main__":
    try:
        main()
    except (ConfigError, ValueError) as e:
        sys.exit(f"error: {' '.join(str(e).split())}")
