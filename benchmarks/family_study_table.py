"""The family study's table: per-variant metrics from the per-trial scores, pooled over training seeds, in Markdown.

One training run per variant cannot rank variants 0.2-0.3 apart: on ONE Mini Cheetah dataset the baseline's final
IQM was 0.55, 0.36 and 0.30 with training seeds 0, 1 and 2. With several training seeds
(``family_study.py --train-seeds``, or single-seed studies put together by ``family_study.py --combine``) a study
is format ``go2bench.family_study/2``: one row per variant, its per-seed rows (status, training, per-trial
normalised scores) under ``per_seed``, and metrics POOLED over its completed seeds: the IQM of the per-trial
scores of all those seeds together.

The statistics (trial matrices, the pooled IQM and its crossed bootstrap over training seeds, thetas and
evaluation seeds, the paired difference) are the library's, :mod:`go2bench.eval.pooled`, which says why that
unit; ``go2bench leaderboard --pool`` pools results files with them too.

``final - baseline`` pairs seeds: the variant's seed s with the baseline's seed s, on the seeds both completed
(a variant of seed 0 only is compared with the baseline's seed 0 only), with the same draws for both rows.
A reference agent (not trained, no seed) is compared with the baseline pooled over all its completed seeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from go2bench.eval.iqm import BOOTSTRAP_REPS, aggregate, iqm
from go2bench.eval.pooled import METRICS, metric_matrices, paired_difference, pooled_aggregate, trial_scores

FORMAT_1, FORMAT_2 = "go2bench.family_study/1", "go2bench.family_study/2"
ROOT = Path(__file__).resolve().parents[1]
CI_TEXT = ("95% percentile bootstrap of the pooled IQM (ci95_pooled): per replicate the training seeds with "
           "replacement, one resample of the thetas shared by all seeds (crossed design), and the evaluation seeds "
           "within each (training seed, theta); final - baseline pairs seeds (same draws for both rows)")
# args that fix the numbers of a study (its evaluation protocol and training); the rest is scheduling
PROTOCOL_ARGS = ("preset", "family", "split", "episodes", "seeds", "trials", "max_episode_steps", "reference_episodes",
                 "warmup_steps", "backend", "device", "max_steps", "bootstrap_reps")
# TrainConfig fields that may differ between the seeds of one variant (besides the seed): names, paths, caps
SEED_FREE_FIELDS = {"seed", "name", "out_dir", "data_dir", "dataset_config_paths", "max_minutes", "resume",
                    "progress_bar", "log_every", "num_workers"}


# ------------------------------------------------------------------------------------- one evaluation
def scores(results: dict[str, Any], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Zero-shot, final, AUC and rise of a family results dict, recomputed from its trials (seeds x thetas)."""
    N = trial_scores(results)["normalized"]
    return {name: aggregate(x, reps, seed) for name, x in metric_matrices(N).items()}


# ------------------------------------------------------------------------------------- pooling
def _stack(per_seed: list[dict[str, Any]], name: str) -> dict[str, np.ndarray]:
    """Per metric, the (seeds, eval seeds, thetas) matrix of the given per-seed rows (one protocol, checked)."""
    first = per_seed[0]["trials"]
    for p in per_seed[1:]:
        if (p["trials"]["eval_seeds"], p["trials"]["task_ids"]) != (first["eval_seeds"], first["task_ids"]):
            raise ValueError(f"row {name}: its seeds were evaluated on other thetas or evaluation seeds")
    return metric_matrices([p["trials"]["normalized"] for p in per_seed])


def group_rows(rows: list[dict[str, Any]], reps: int = BOOTSTRAP_REPS) -> list[dict[str, Any]]:
    """Per-seed rows (each with ``seed``, None for an untrained reference, and ``trials``) -> one row per variant."""
    names = list(dict.fromkeys(r["name"] for r in rows))
    out = []
    for name in names:
        per_seed = sorted((r for r in rows if r["name"] == name), key=lambda r: -1 if r["seed"] is None else r["seed"])
        pooled = [p for p in per_seed if p["status"] in ("done", "reference") and p.get("trials")]
        if per_seed[0]["seed"] is None:
            status = per_seed[0]["status"]
        elif all(p["status"] == "done" for p in per_seed):
            status = "done (" + ", ".join(f"s{p['seed']}" for p in per_seed) + ")"
        else:
            status = "; ".join(f"s{p['seed']} {p['status']}" for p in per_seed)
        m = _stack(pooled, name) if pooled else None
        out.append({"name": name, "what": per_seed[0]["what"], "reference": per_seed[0]["reference"],
                    "status": status, "pooled_seeds": [p["seed"] for p in pooled],
                    "metrics": {k: pooled_aggregate(m[k], reps) for k in METRICS} if m else None,
                    "final_minus_baseline": None, "per_seed": per_seed})
    base = next((r for r in out if r["name"] == "baseline" and r["metrics"]), None)
    for r in out:
        if base is None or not r["metrics"]:
            continue
        unseeded = r["pooled_seeds"] == [None]
        seeds = base["pooled_seeds"] if unseeded else [s for s in r["pooled_seeds"] if s in base["pooled_seeds"]]
        if not seeds:
            continue
        pick = [p for p in base["per_seed"] if p["seed"] in seeds]
        mine = [p for p in r["per_seed"] if p["seed"] in seeds or unseeded][:1 if unseeded else None]
        d = paired_difference(_stack(mine, r["name"])["final"], _stack(pick, "baseline")["final"], reps,
                              unseeded=unseeded)
        r["final_minus_baseline"] = {**d, "baseline_seeds": seeds}
    return out


# ------------------------------------------------------------------------------------- Markdown
def _cell(m: dict[str, Any] | None, key: str = "ci95_thetas") -> str:
    if m is None:
        return "-"
    lo, hi = m[key]
    return f"{m['iqm']:.2f} [{lo:.2f}, {hi:.2f}]"


def make_table(rows: list[dict[str, Any]]) -> str:
    """The markdown study table of a single-seed study: one row per variant, then the reference rows."""
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


def _final_by_seed(r: dict[str, Any]) -> str:
    if r["pooled_seeds"] == [None]:
        return "-"
    cells = []
    for p in r["per_seed"]:
        m = p.get("metrics")
        cells.append("-" if not m else f"{m['final']['iqm']:.2f}" + ("" if p["status"] == "done" else " (cut)"))
    return " / ".join(cells)


def _difference(r: dict[str, Any]) -> str:
    d = r["final_minus_baseline"]
    if d is None:
        return "-"
    if r["name"] == "baseline":
        return "+0.00"
    lo, hi = d["ci95_pooled"]
    seeds = ", ".join(f"s{s}" for s in d["baseline_seeds"])
    return f"{d['value']:+.2f} [{lo:+.2f}, {hi:+.2f}] ({'vs ' if r['pooled_seeds'] == [None] else ''}{seeds})"


def make_seeds_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of a multi-seed study: metrics pooled over each variant's completed training seeds."""
    lines = ["| variant | status | steps | zero-shot | final | AUC | rise | final by seed | final - baseline | what |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        steps = list(dict.fromkeys(str(p["steps"]) for p in r["per_seed"] if p.get("steps") is not None))
        m = r.get("metrics") or {}
        lines.append(f"| {r['name']} | {r['status']} | {' / '.join(steps) or '-'} | "
                     + " | ".join(_cell(m.get(k), "ci95_pooled") for k in METRICS)
                     + f" | {_final_by_seed(r)} | {_difference(r)} | {r['what']} |")
    return "\n".join(lines)


def render(study: dict[str, Any]) -> str:
    """The table of a study of either format."""
    return make_seeds_table(study["rows"]) if study["format"] == FORMAT_2 else make_table(study["rows"])


def load_study(path: str | Path) -> dict[str, Any]:
    """A study JSON read back, its rows checked (ValueError naming the file otherwise)."""
    data = json.loads(Path(path).read_text())
    if data.get("format") not in (FORMAT_1, FORMAT_2) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: not a family study table (format {FORMAT_1} or /2)")
    for r in data["rows"]:
        done = r["status"] == "done" if data["format"] == FORMAT_1 else r["status"].startswith(("done", "reference"))
        if done and set(r["metrics"] or ()) != set(METRICS):
            raise ValueError(f"{path}: row {r['name']} lacks metrics")
        if data["format"] == FORMAT_2 and not all(set(p["metrics"] or ()) == set(METRICS)
                                                 for p in r["per_seed"] if p["status"] == "done"):
            raise ValueError(f"{path}: row {r['name']} has a done seed without metrics")
    return data


# ------------------------------------------------------------------------------------- combining
def _results_file(row: dict[str, Any], study_path: Path, study: dict[str, Any]) -> Path:
    """The row's results file: as recorded, or where the device script ships its --work folder (``run/``)."""
    p = Path(row["results"])
    found = [p, study_path.parent / p]
    work = study.get("args", {}).get("work")
    if work and p.parts[:len(Path(work).parts)] == Path(work).parts:
        found.append(study_path.parent / "run" / p.relative_to(work))
    for c in found:
        if c.is_file():
            return c
    raise ValueError(f"{study_path}: row {row['name']}'s results {p} not found "
                     f"(looked in {', '.join(map(str, found))})")


def _seed_rows(path: Path, study: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-seed rows of a study, each with ``seed``, ``trials`` (read from its results file) and ``source``."""
    flat = ([dict(p, name=r["name"], what=r["what"], reference=r["reference"]) for r in study["rows"]
             for p in r["per_seed"]] if study["format"] == FORMAT_2 else
            [dict(r, seed=(r.get("train_config") or {}).get("seed")) for r in study["rows"]])
    for r in flat:
        r["source"] = _shown(path)
        r.pop("final_minus_baseline", None)  # against its own study's baseline: recomputed on paired seeds
        if r.get("trials") or not r.get("results"):
            continue
        found = _results_file(r, path, study)
        r["results"], res = _shown(found), json.loads(found.read_text())
        r["trials"] = trial_scores(res)
        got = metric_matrices(r["trials"]["normalized"])["final"]
        if r.get("metrics") and abs(iqm(got) - r["metrics"]["final"]["iqm"]) > 1e-9:
            raise ValueError(f"{path}: row {r['name']}'s results file does not give its final IQM")
    return flat


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def protocol(study: dict[str, Any]) -> dict[str, Any]:
    """What must agree for two studies to be replicates: dataset info, protocol args, --set without the seed."""
    args = study["args"]
    sets = sorted(s for s in args.get("set", []) if s.split("=", 1)[0].strip() != "seed")
    return {"dataset_info": study["dataset_info"], **{k: args.get(k) for k in PROTOCOL_ARGS}, "set": sets}


def combine_studies(paths: list[str | Path], reps: int | None = None) -> dict[str, Any]:
    """Several studies of one robot, family and protocol (training seeds apart) as one multi-seed study."""
    studies = [(Path(p), load_study(p)) for p in paths]
    first = protocol(studies[0][1])
    for p, s in studies[1:]:
        diff = sorted(k for k, v in protocol(s).items() if v != first[k])
        if diff:
            raise ValueError(f"{p}: differs from {studies[0][0]} in {', '.join(diff)}: only studies of one dataset "
                             "and protocol, training seeds apart, combine")
    rows, trained, refs = [], {}, {}
    for p, s in studies:
        for r in _seed_rows(p, s):
            key = (r["name"], r["seed"])
            if r["seed"] is None and key in refs:  # one untrained agent evaluated again: the same numbers expected
                gap = np.abs(np.subtract(r["trials"]["normalized"], refs[key]["trials"]["normalized"])).max()
                if gap > 1e-3:
                    raise ValueError(f"{p}: reference {r['name']} scored up to {gap:.3g} apart from its run in "
                                     f"{refs[key]['source']}: not the same protocol")
                continue
            if key in trained:
                raise ValueError(f"{p}: {r['name']} with training seed {r['seed']} is also in "
                                 f"{trained[key]['source']}; give each (variant, seed) once")
            (refs if r["seed"] is None else trained)[key] = r
            rows.append(r)
    for name in {r["name"] for r in trained.values()}:
        cfgs = [(r["source"], {k: v for k, v in (r.get("train_config") or {}).items() if k not in SEED_FREE_FIELDS})
                for r in trained.values() if r["name"] == name]
        for src, cfg in cfgs[1:]:
            diff = sorted(k for k in set(cfg) | set(cfgs[0][1]) if cfg.get(k) != cfgs[0][1].get(k))
            if diff:
                raise ValueError(f"{src}: {name} was trained with other {', '.join(diff)} than in {cfgs[0][0]}")
    rows.sort(key=lambda r: r["seed"] is None)  # trained variants first, references last (stable)
    reps = reps or first["bootstrap_reps"] or BOOTSTRAP_REPS
    seeds = sorted({r["seed"] for r in rows if r["seed"] is not None})
    return {"format": FORMAT_2, "dataset": studies[0][1]["dataset"], "dataset_info": first["dataset_info"],
            "train_seeds": seeds, "rows": group_rows(rows, reps), "ci": CI_TEXT,
            "args": {k: v for k, v in first.items() if k != "dataset_info"} | {"train_seeds": seeds},
            "sources": [{"path": _shown(p), "training_seeds": sorted({r["seed"] for r in _flat_seeds(s)} - {None})}
                        for p, s in studies]}


def _flat_seeds(study: dict[str, Any]) -> list[dict[str, Any]]:
    if study["format"] == FORMAT_2:
        return [p for r in study["rows"] for p in r["per_seed"]]
    return [{"seed": (r.get("train_config") or {}).get("seed")} for r in study["rows"]]
