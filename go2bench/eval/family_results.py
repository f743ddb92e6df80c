"""Results of the task-family protocol: format ``go2bench.eval/2``, built and checked here.

A family results file has every field of format ``go2bench.eval/1`` (:mod:`go2bench.eval.results`;
``per_seed`` holds, per seed, thetas x episodes arrays, so ``config.num_envs`` is the number of
thetas; ``normalized_score`` and ``per_episode.normalized_*`` are plain means and t-intervals of the
per-theta normalised scores; ``random_score``/``expert_score`` are null), ``config.family``,
``config.split``, ``config.trials`` (thetas), ``config.privileged``, and the ``family`` block::

    name, suite, split, robot, episodes (K), seeds, trials_per_seed (M), scene_envs (M x seeds)
    tasks:      [{id, index, bin, theta: {name: value}}]                    M entries, suite order
    trials:     [{env, task_id, seed, returns[K], normalized[K], lengths[K], falls[K],
                  tracking_error: {x[K], y[K], yaw[K]}, reward_terms: {name: [K]}}]   env order
    references: {max_episode_steps, returns: {task_id: {random, privileged}}, sources: {...}}
    per_episode: {episode_index[K], iqm[K], ci95_low[K], ci95_high[K], ci95_thetas_low[K],
                  ci95_thetas_high[K], mean[K]}
    zero_shot, final, auc: {episodes: [...], iqm, ci95: [lo, hi], ci95_thetas: [lo, hi], mean}
    by_bin:     {train | interpolation | extrapolation: {trials, zero_shot, final, auc}}  (IQMs)
    tracking_error: {x, y, yaw}   mean over steps of |target - actual| (m/s, m/s, rad/s)
    reward_terms: {name: mean episode sum}
    bootstrap:  {reps, seed, level, method, statistic, ci95, ci95_thetas}   (what the intervals are)

``normalized[k] = (returns[k] - random) / (privileged - random)`` with the references of the
trial's theta (checked on load). Zero-shot is episode 1, final the mean of each trial's last
``min(3, K)`` episodes, AUC the mean of each trial's K episodes; each is then aggregated over the
trials (seeds x thetas) by the IQM with stratified bootstrap intervals (:mod:`go2bench.eval.iqm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from go2bench.core.provenance import versions
from go2bench.eval.family_reference import REFERENCE_AGENTS, FamilyReferences
from go2bench.eval.iqm import BOOTSTRAP_REPS, IQM_TEXT, aggregate, iqm
from go2bench.eval.results import (BOOL, FAMILY_RESULTS_FORMAT, INT, INTERVAL, NUMBER, OBJECT, STR, TERMS,
                                   ResultsError, agent_fields, list_of)
from go2bench.eval.stats import normalize_per_theta, summarize

__all__ = ["FamilyRun", "build_family_results", "validate_family_block", "metric_scores", "FINAL_EPISODES", "METRICS"]

FINAL_EPISODES = 3
METRICS = ("zero_shot", "final", "auc")
AXES = ("x", "y", "yaw")
CI_TEXT = ("stratified bootstrap, strata = thetas: each theta's seeds resampled with replacement "
           "(rliable StratifiedBootstrap); percentile interval")
CI_THETAS_TEXT = "thetas resampled with replacement too, then seeds within each (rliable task_bootstrap=True)"


@dataclass
class FamilyRun:
    """Everything one family evaluation measured; arrays are (seeds, thetas, episodes)."""

    agent: Any
    agent_spec: str | None
    env_id: str
    family: str
    split: str
    tasks: Sequence[Any]  # SuiteTask (id, index, bin, theta) per theta position
    seeds: Sequence[int]
    episodes: int
    references: FamilyReferences
    meta: dict[str, Any]  # backend, device, max_episode_steps, obs_mode, walk_config, privileged, steps, wall_s,
    #                       suite, robot
    returns: np.ndarray
    lengths: np.ndarray
    falls: np.ndarray
    diverged: np.ndarray
    tracking: np.ndarray  # (seeds, thetas, episodes, 3): mean over the episode's steps, x / y / yaw
    reward_terms: dict[str, np.ndarray]


def metric_scores(N: np.ndarray) -> dict[str, tuple[list[int], np.ndarray]]:
    """Zero-shot, final and AUC of normalised scores ``N`` (rows, columns, episodes): per metric, the
    episode indices it uses and its (rows, columns) matrix (rows = runs, columns = strata for :func:`aggregate`)."""
    K = N.shape[2]
    last = list(range(max(0, K - FINAL_EPISODES), K))
    return {"zero_shot": ([0], N[:, :, 0]), "final": (last, N[:, :, last].mean(axis=2)),
            "auc": (list(range(K)), N.mean(axis=2))}


def _bin_group(bin_: str) -> str:
    return bin_.split(":", 1)[0]


def build_family_results(run: FamilyRun, bootstrap_reps: int = BOOTSTRAP_REPS, bootstrap_seed: int = 0
                         ) -> dict[str, Any]:
    """The results dict (format ``go2bench.eval/2``) of one family evaluation."""
    R = np.asarray(run.returns, dtype=np.float64)
    S_, M, K = R.shape
    L, F = np.asarray(run.lengths, dtype=np.float64), np.asarray(run.falls, dtype=bool)
    T = np.asarray(run.tracking, dtype=np.float64)
    ids = [t.id for t in run.tasks]
    rand, priv = run.references.arrays(ids)
    N = normalize_per_theta(R, rand, priv)
    meta, who = run.meta, agent_fields(run.agent, run.agent_spec)
    seeds = [int(s) for s in run.seeds]
    per_seed = [{
        "seed": seed, "returns": R[s].tolist(), "lengths": L[s].astype(int).tolist(), "falls": F[s].tolist(),
        "tracking_errors": T[s, :, :, 0].tolist(), "diverged": int(np.asarray(run.diverged)[s].sum()),
        "env_steps": int(meta["steps"]) * M, "wall_s": round(float(meta["wall_s"]) / S_, 3),
    } for s, seed in enumerate(seeds)]
    raw = summarize(R, None, None)
    nrm = summarize(N, 0.0, 1.0)
    for key in ("normalized_score", "normalized_ci95_low", "normalized_ci95_high"):
        raw["per_episode"][key] = nrm["per_episode"][key]
    raw["per_episode"]["ci_unit"] = nrm["per_episode"]["ci_unit"] + " (per-theta normalised scores)"
    terms = {name: np.asarray(v, dtype=np.float64) for name, v in run.reward_terms.items()}
    agg = {name: {"episodes": eps, **aggregate(x, bootstrap_reps, bootstrap_seed)}
           for name, (eps, x) in metric_scores(N).items()}
    per_k = [aggregate(N[:, :, k], bootstrap_reps, bootstrap_seed) for k in range(K)]
    groups = sorted({_bin_group(t.bin) for t in run.tasks})
    by_bin = {}
    for g in groups:
        cols = [j for j, t in enumerate(run.tasks) if _bin_group(t.bin) == g]
        by_bin[g] = {"trials": len(cols) * S_, **{name: iqm(x[:, cols]) for name, (_, x) in metric_scores(N).items()}}
    trials = []
    for s, seed in enumerate(seeds):
        for j, task in enumerate(run.tasks):
            trials.append({
                "env": s * M + j, "task_id": task.id, "seed": seed, "returns": R[s, j].tolist(),
                "normalized": N[s, j].tolist(), "lengths": L[s, j].astype(int).tolist(), "falls": F[s, j].tolist(),
                "tracking_error": {a: T[s, j, :, k].tolist() for k, a in enumerate(AXES)},
                "reward_terms": {name: v[s, j].tolist() for name, v in terms.items()},
            })
    family = {
        "name": run.family, "suite": meta["suite"], "split": run.split, "robot": meta["robot"], "episodes": K,
        "seeds": seeds, "trials_per_seed": M, "scene_envs": S_ * M,
        "tasks": [{"id": t.id, "index": t.index, "bin": t.bin, "theta": t.theta} for t in run.tasks],
        "trials": trials,
        "references": run.references.block(ids),
        "per_episode": {"episode_index": list(range(K)), "iqm": [p["iqm"] for p in per_k],
                        "ci95_low": [p["ci95"][0] for p in per_k], "ci95_high": [p["ci95"][1] for p in per_k],
                        "ci95_thetas_low": [p["ci95_thetas"][0] for p in per_k],
                        "ci95_thetas_high": [p["ci95_thetas"][1] for p in per_k],
                        "mean": [p["mean"] for p in per_k]},
        **agg,
        "by_bin": by_bin,
        "tracking_error": {a: float((T[..., k] * L).sum() / L.sum()) for k, a in enumerate(AXES)},
        "reward_terms": {name: float(v.mean()) for name, v in terms.items()},
        "bootstrap": {"reps": int(bootstrap_reps), "seed": int(bootstrap_seed), "level": 0.95, "method": "percentile",
                      "statistic": IQM_TEXT, "ci95": CI_TEXT, "ci95_thetas": CI_THETAS_TEXT},
    }
    return {
        "format": FAMILY_RESULTS_FORMAT,
        "agent": who["agent"], "agent_spec": who["agent_spec"], "env": run.env_id,
        "config": {
            "agent": who["agent_spec"], "env": run.env_id, "episodes": K, "num_envs": M, "seeds": seeds,
            "backend": meta["backend"], "device": meta.get("device"), "max_episode_steps": meta["max_episode_steps"],
            "obs_mode": meta["obs_mode"], "walk_config": meta["walk_config"], "family": run.family,
            "split": run.split, "trials": M, "privileged": bool(meta["privileged"]),
            "warmup_steps": int(meta.get("warmup_steps", 0)),  # unscored steps per trial before its episodes
        },
        "versions": versions(), "checkpoint": who["checkpoint"], "checkpoint_sha256": who["checkpoint_sha256"],
        "episodes": int(R.size), "num_envs": M, "seeds": seeds, "max_episode_steps": meta["max_episode_steps"],
        "obs_mode": meta["obs_mode"],
        **raw,
        "normalized_score": nrm["normalized_score"], "normalized_score_ci95": nrm["normalized_score_ci95"],
        "mean_length": float(L.mean()), "fall_rate": float(F.mean()),
        "mean_tracking_error": family["tracking_error"]["x"],
        "reward_terms": family["reward_terms"],
        "random_score": None, "expert_score": None,
        "reference_scores_source": "per theta: family.references",
        "reference_scores_note": "normalised per theta by the random agent's and the privileged teacher's returns "
                                 f"on that theta in {meta['max_episode_steps']}-step episodes",
        "returns": R.reshape(-1).tolist(), "lengths": L.reshape(-1).astype(int).tolist(), "per_seed": per_seed,
        "diverged": int(np.asarray(run.diverged).sum()), "env_steps": int(meta["steps"]) * S_ * M,
        "wall_s": round(float(meta["wall_s"]), 3), "video": None,
        "family": family,
    }


# ------------------------------------------------------------------------------------- schema
TOP = [("config.family", STR), ("config.split", STR), ("config.trials", INT), ("config.privileged", BOOL)]
BLOCK = [("name", STR), ("suite", STR), ("split", STR), ("robot", STR), ("episodes", INT), ("seeds", list_of(INT)),
         ("trials_per_seed", INT), ("scene_envs", INT), ("tasks", list_of(OBJECT)), ("trials", list_of(OBJECT)),
         ("references", OBJECT), ("references.max_episode_steps", INT), ("references.returns", OBJECT),
         ("per_episode", OBJECT), ("by_bin", OBJECT), ("tracking_error", TERMS), ("reward_terms", TERMS),
         ("bootstrap", OBJECT), ("bootstrap.reps", INT), ("bootstrap.seed", INT)]
PER_EPISODE = ("episode_index", "iqm", "ci95_low", "ci95_high", "ci95_thetas_low", "ci95_thetas_high", "mean")
TASK = [("id", STR), ("index", INT), ("bin", STR), ("theta", TERMS)]
TRIAL = [("env", INT), ("task_id", STR), ("seed", INT), ("returns", list_of(NUMBER)), ("normalized", list_of(NUMBER)),
         ("lengths", list_of(INT)), ("falls", list_of(BOOL)), ("tracking_error", OBJECT), ("reward_terms", OBJECT)]
METRIC = [("episodes", list_of(INT)), ("iqm", NUMBER), ("ci95", INTERVAL), ("ci95_thetas", INTERVAL), ("mean", NUMBER)]


def _get(d: Any, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            raise KeyError(dotted)
        d = d[part]
    return d


def _check(obj: Any, fields, prefix: str, source) -> None:
    for field, kind in fields:
        try:
            value = _get(obj, field)
        except KeyError:
            raise ResultsError(f"{source}: missing field {prefix + field!r}") from None
        if not kind(value):
            text = repr(value)
            text = text if len(text) <= 60 else text[:57] + "..."
            raise ResultsError(f"{source}: field {prefix + field!r} must be {kind.text}, got {text}")


def validate_family_block(data: dict[str, Any], source: Any = "results") -> None:
    """The ``family`` block and ``config.family`` fields of a ``go2bench.eval/2`` file; a ResultsError otherwise."""
    _check(data, TOP + [("family", OBJECT)], "", source)
    fam = data["family"]
    _check(fam, BLOCK, "family.", source)
    cfg = data["config"]

    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ResultsError(f"{source}: field {field!r} must be {what}")

    K, M, seeds = fam["episodes"], fam["trials_per_seed"], fam["seeds"]
    need(K == cfg["episodes"], "family.episodes", f"config.episodes ({cfg['episodes']})")
    need(M == cfg["num_envs"] == cfg["trials"], "family.trials_per_seed", "config.num_envs and config.trials")
    need(seeds == cfg["seeds"], "family.seeds", "config.seeds")
    need(fam["name"] == cfg["family"] and fam["split"] == cfg["split"], "family.name", "config.family (and split)")
    need(fam["references"]["max_episode_steps"] == data["max_episode_steps"], "family.references.max_episode_steps",
         f"max_episode_steps ({data['max_episode_steps']}): references of the same episode length")
    need(len(fam["tasks"]) == M, "family.tasks", f"a list of {M} tasks")
    for i, task in enumerate(fam["tasks"]):
        _check(task, TASK, f"family.tasks[{i}].", source)
    need(len(fam["trials"]) == M * len(seeds), "family.trials", f"a list of {M * len(seeds)} trials (thetas x seeds)")
    refs = fam["references"]["returns"]
    for i, trial in enumerate(fam["trials"]):
        where = f"family.trials[{i}]"
        _check(trial, TRIAL, where + ".", source)
        for key in ("returns", "normalized", "lengths", "falls"):
            need(len(trial[key]) == K, f"{where}.{key}", f"a list of {K} values (one per episode)")
        for axis in AXES:
            v = trial["tracking_error"].get(axis)
            need(list_of(NUMBER)(v) and len(v) == K, f"{where}.tracking_error.{axis}", f"a list of {K} numbers")
        ref = refs.get(trial["task_id"])
        need(isinstance(ref, dict) and all(NUMBER(ref.get(a)) for a in REFERENCE_AGENTS),
             f"family.references.returns.{trial['task_id']}", "an object of 'random' and 'privileged' returns")
        lo, hi = ref["random"], ref["privileged"]
        expected = [(r - lo) / (hi - lo) for r in trial["returns"]]
        need(np.allclose(trial["normalized"], expected, rtol=1e-6, atol=1e-9), f"{where}.normalized",
             "(returns - random) / (privileged - random) with its theta's references")
    pe = fam["per_episode"]
    for key in PER_EPISODE:
        kind = list_of(INT) if key == "episode_index" else list_of(NUMBER)
        need(kind(pe.get(key)) and len(pe[key]) == K, f"family.per_episode.{key}", f"a list of {K} numbers")
    for name in METRICS:
        need(isinstance(fam.get(name), dict), f"family.{name}", "an object")
        _check(fam[name], METRIC, f"family.{name}.", source)
