"""What moves the in-context curve (issue 17): a grid of Vintix variants trained on one family dataset, one table.

Given a family dataset folder (the histories of one robot x family on the train thetas, as the pipeline's
``family`` stage collects them into ``family/data/<F>/<robot>_<F>``), this trains every variant of
:data:`VARIANTS` (each a set of ``go2bench train`` settings over a base config, the pipeline preset's
``family_train``), evaluates each under the family protocol (``go2bench eval --family F``) and writes one
study table to ``<out-dir>/<robot>_<family>/study.{md,json}``: per variant, zero-shot / final / AUC IQM and
rise (final minus zero-shot, IQM of the per-trial difference) with 95% intervals resampling thetas and seeds
(``ci95_thetas``), and its final's difference from the baseline measured in the same run.

Training seeds: one training per variant cannot rank variants 0.2-0.3 apart (the baseline's final IQM on one
dataset: 0.55, 0.36, 0.30 with training seeds 0, 1, 2). ``--train-seeds 0,1,2`` trains every variant once per
seed (run folders ``<variant>_s<seed>``; seed 0 keeps the plain name, so a work folder's trainings are reused),
evaluates all of them together, and writes a format-2 table: metrics pooled over each variant's completed seeds
with a bootstrap over training seeds, thetas and evaluation seeds, the per-seed finals, a status per seed and
the difference from the baseline on paired seeds (:mod:`family_study_table`, which says why that unit). One seed
(the default) writes the single-seed table as before. ``--combine OUT_DIR STUDY_JSON...`` puts studies already
measured (one dataset and protocol, training seeds apart) into one such table without running anything.

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
        --budget-s 420 --jobs 4 --reference-agent teacher-blind --backend gpu --device cuda --train-seeds 0,1,2
    python benchmarks/family_study.py --combine benchmarks/results/family_study_replicates \\
        benchmarks/results/family_study_{datasets,seed1,seed2}/mini_cheetah_velocity/study.json
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

import yaml

from go2bench.core.config import ConfigError, from_dict, to_dict
from go2bench.core.provenance import versions, write_json_atomic
from go2bench.eval.iqm import BOOTSTRAP_REPS
from go2bench.histories.reader import read_metadata
from go2bench.pipeline.stages import CLI, start_process, train_arguments
from go2bench.vintix.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the table module beside this script
from family_study_table import (CI_TEXT, FORMAT_1, FORMAT_2, combine_studies, group_rows,  # noqa: E402
                                make_seeds_table, make_table, scores, trial_scores)
from family_study_table import METRICS, load_study  # noqa: E402,F401  (the table's API, here as before)

RESULTS = Path(__file__).parent / "results" / "family_study"
CI_THETAS_TEXT = "95% percentile bootstrap resampling thetas, then seeds within each (ci95_thetas)"
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
            "reward_scale": meta.get("reward_scale"), "status": meta.get("status"),
            # tells two collections of one config apart (GPU collections differ run to run: docs/data.md), so that
            # --combine refuses studies of different data
            "total_transitions": meta.get("total_transitions")}


def write_variant_config(path: Path, dataset: Path, info: dict[str, Any], episode_sparsity: int) -> Path:
    """A one-dataset config (the seed's format) for ``dataset`` with ``episode_sparsity`` and the reward scale
    of its collection (the pipeline trains with the one it collected with)."""
    entry = {"type": "default", "path": dataset.name, "group": info["group"], "reward_scale": info["reward_scale"],
             "episode_sparsity": int(episode_sparsity)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({dataset.name: entry}, sort_keys=False))
    return path


def train_seeds(args) -> list[int | None]:
    """--train-seeds as a list of seeds, [None] when not given (one training per variant, today's names)."""
    if args.train_seeds is None:
        return [None]
    try:
        seeds = [int(x) for x in args.train_seeds.split(",")]
    except ValueError:
        raise ConfigError(f"--train-seeds {args.train_seeds!r}: give comma-separated integers, e.g. 0,1,2") from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--train-seeds {args.train_seeds!r}: give distinct seeds >= 0")
    if any(x.split("=", 1)[0].strip() == "seed" for x in args.set):
        raise ConfigError("--set seed=... and --train-seeds: give the training seeds with --train-seeds only")
    return seeds


def plan(args, info: dict[str, Any], work: Path) -> list[dict[str, Any]]:
    """Every variant to run: name, TrainConfig, dataset, what it tests."""
    from go2bench.pipeline import pipeline_config

    # the preset for this dataset's robot and family only: teachers of other robots or families are not needed
    preset = pipeline_config(args.preset, [f"family.families=[{info['family']}]", f"family.envs=[{info['env_id']}]"])
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
    out, seeds = [], train_seeds(args)  # [None] without --train-seeds: the base config's seed, plain names
    runs = [(label, folder, name, seed) for label, folder in datasets for name in (names if not label else ["baseline"])
            for seed in seeds]
    for label, folder, name, seed in runs:
        overrides, sparsity, what = VARIANTS[name]
        vname = f"{name}@{label}" if label else name
        cfg = replace(base, **overrides, **({} if seed is None else {"seed": seed}), out_dir=str(work / "runs"),
                      name=vname.replace("@", "_at_") + (f"_s{seed}" if seed else ""),
                      data_dir=str(folder.resolve().parent))
        if cfg.context == "episode" and info["max_episode_steps"]:
            cfg = replace(cfg, context_len=min(cfg.context_len, int(info["max_episode_steps"])))
        dcfg = write_variant_config(work / "configs" / f"{cfg.name}.yaml", folder.resolve(), info, sparsity)
        out.append({"name": vname, "seed": cfg.seed, "train": replace(cfg, dataset_config_paths=[str(dcfg)]),
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
    p.add_argument("--train-seeds", default=None, metavar="0,1,2",
                   help="train every variant once per seed; several: the pooled table (default: one training per\n"
                        "variant with the base config's seed, 0 unless --set seed=..., and the single-seed table)")
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


def combine(argv: list[str]) -> dict[str, Any]:
    """``--combine OUT_DIR STUDY_JSON [STUDY_JSON ...]``: one multi-seed table from studies already measured."""
    p = argparse.ArgumentParser(prog="family_study.py --combine", description=combine.__doc__)
    p.add_argument("out_dir", help="the table goes to OUT_DIR/<robot>_<family>/")
    p.add_argument("studies", nargs="+", help="study.json files of one dataset and protocol, training seeds apart")
    args = p.parse_args(argv)
    study = combine_studies(args.studies)
    study.update(command=" ".join(sys.argv), versions=versions())
    return write_study(Path(args.out_dir), study)


def write_study(out_root: Path, study: dict[str, Any]) -> dict[str, Any]:
    """study.json and study.md under OUT_DIR/<robot>_<family>/, the table printed."""
    tag = f"{study['dataset_info']['robot']}_{study['dataset_info']['family']}"
    table = make_seeds_table(study["rows"]) if study["format"] == FORMAT_2 else make_table(study["rows"])
    study["markdown"] = table
    out = out_root / tag
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "study.json", study)
    (out / "study.md").write_text(f"# Family study: {tag}\n\n{table}\n")
    print(table)
    log(f"wrote {out / 'study.json'} and study.md")
    return study


def main(argv=None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--combine"]:
        return combine(argv[1:])
    args = parse_args(argv)
    seeded = len(train_seeds(args)) > 1  # several training seeds: the pooled (format 2) table
    t0 = time.time()
    end = t0 + args.budget_s
    dataset = Path(args.dataset)
    info = dataset_info(dataset, args.family)
    work = Path(args.work or f"runs/family_study/{info['robot']}_{info['family']}")
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
    specs = {r["train"].name: ("vintix-episodic:" if r["reference"] else "vintix:") + r["checkpoint"] for r in trained}
    refs = {s: s for s in args.reference_agent}
    t_eval = time.time()
    found = evaluate(list(specs.values()) + list(refs), args, info, work, end) if specs or refs else {}
    eval_s = round(time.time() - t_eval, 1)
    rows = []
    for r in runs:
        res = found.get(specs.get(r["train"].name, ""))
        status = r["train_status"] if res or r["train_status"] != "done" else "NOT DONE: evaluation did not finish"
        rows.append({"name": r["name"], **({"seed": r["seed"]} if seeded else {}), "status": status,
                     "what": r["what"], "reference": r["reference"],
                     "steps": r.get("steps"), "planned_steps": r.get("planned_steps"), "params": r.get("params"),
                     "final_loss": r.get("final_loss"), "train_wall_s": r.get("train_wall_s"),
                     "episode_sparsity": r["episode_sparsity"], "dataset": r["dataset"],
                     "train_config": to_dict(r["train"]), "results": str(res) if res else None,
                     "metrics": scores(json.loads(res.read_text()), args.bootstrap_reps) if res else None})
    given = [(name, Path(p)) for name, p in (a.split("=", 1) for a in args.reference)]
    for name, path in [(s, found.get(s)) for s in refs] + given:
        ok = path is not None and path.exists()
        rows.append({"name": name, **({"seed": None} if seeded else {}),
                     "status": "reference" if ok else "NOT DONE: evaluation did not finish",
                     "what": "reference agent", "reference": True, "results": str(path) if ok else None,
                     "metrics": scores(json.loads(path.read_text()), args.bootstrap_reps) if ok else None})
    if seeded:  # the per-trial scores travel with the study: pooled here, combinable later
        for r in rows:
            r["trials"] = trial_scores(json.loads(Path(r["results"]).read_text())) if r["results"] else None
        rows = group_rows(rows, args.bootstrap_reps)
    else:
        base = next((r["metrics"]["final"]["iqm"] for r in rows if r["name"] == "baseline" and r["metrics"]), None)
        for r in rows:
            r["final_minus_baseline"] = (None if base is None or not r["metrics"]
                                         else r["metrics"]["final"]["iqm"] - base)
    study = {"format": FORMAT_2 if seeded else FORMAT_1, "dataset": str(dataset), "dataset_info": info,
             **({"train_seeds": train_seeds(args)} if seeded else {}), "rows": rows,
             "eval_mode": "one process, repeatable --agent, side by side" if eval_takes_several_agents() else "one process each",
             "seconds": {"total": round(time.time() - t0, 1), "eval": eval_s}, "budget_s": args.budget_s,
             "args": vars(args), "command": " ".join(sys.argv), "versions": versions(),
             "ci": CI_TEXT if seeded else CI_THETAS_TEXT}
    return write_study(Path(args.out_dir), study)


if __name__ == "__main__":
    try:
        main()
    except (ConfigError, ValueError) as e:
        sys.exit(f"error: {' '.join(str(e).split())}")
