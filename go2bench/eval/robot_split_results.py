"""Results of the cold-start evaluation of a leave-one-robot-out fold (``go2bench eval --robots-split S --held-out R``).

* **Protocol.** The default-task protocol of :func:`go2bench.eval.protocol.evaluate_in_context` on
  R's env with the fold's parameters (:mod:`go2bench.envs.robot_split`): per seed one batched scene,
  reseeded, the agent cold-started, and every env runs K consecutive episodes, its context kept.
  Overriding K, envs, seeds or the episode length (the CPU tests do) is recorded as ``as_split: false``.
* **Agent.** A Vintix agent must never have seen R: a checkpoint with a group trained on R's env or
  robot is refused, and so is one without the split's shared group trained on this fold's pooled
  dataset; the agent is then pinned to that group (R's observations have the training robots'
  layout, and are normalised with the pooled training statistics stored in the group). Other
  agents (R's teacher, random) run as they are: they are the references.
* **Scores.** ``(return - random) / (expert - random)`` with R's shipped teacher's and random agent's
  returns (the model card, :mod:`go2bench.eval.reference`). Per episode index, zero-shot (episode
  1), final (mean of each run's last 3 episodes), AUC (mean of its K) and rise (final minus
  zero-shot): the IQM over runs (one env of one seed) with 95% stratified bootstrap intervals,
  strata = seeds (:mod:`go2bench.eval.iqm`, the metrics of :func:`go2bench.eval.family_results.metric_scores`).

The results are a ``go2bench.eval/1`` file (the leaderboard reads it) with ``config.robots_split``,
``config.held_out`` and the ``robot_split`` block checked by :func:`validate_robot_split_block`.

A task family's fold (``go2bench eval --family F --robots-split S --held-out R``) is scored by the family protocol
on R's env (:mod:`go2bench.eval.family_results`, per-theta references of R): its results are a normal
``go2bench.eval/2`` file whose ``robot_split`` block is only the record of the fold (:func:`add_family_fold_record`:
split, held_out, env, train_robots, group, dataset, family, agent_group); the scores are the ``family`` block's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from go2bench.envs.robot_split import Fold, fold_dataset_name, fold_group_name
from go2bench.eval.family_results import FINAL_EPISODES, metric_scores
from go2bench.eval.iqm import BOOTSTRAP_REPS, IQM_TEXT, aggregate
from go2bench.eval.results import BOOL, INT, INTERVAL, NUMBER, OBJECT, STR, ResultsError, list_of

__all__ = ["TARGET_FINAL", "fold_record", "robot_split_block", "add_family_fold_record", "validate_robot_split_block",
           "normalised_returns"]

TARGET_FINAL = 0.5  # the GPU run's goal: every held-out robot's final normalised IQM at least this
METRICS = ("zero_shot", "final", "auc", "rise")
CI_TEXT = "stratified bootstrap, strata = seeds: each seed's envs resampled with replacement; percentile interval"
CI_SEEDS_TEXT = "seeds resampled with replacement too, then envs within each (rliable task_bootstrap=True)"


def normalised_returns(results: dict[str, Any]) -> np.ndarray:
    """(seeds, envs, episodes) normalised returns of a results dict; ValueError without reference scores."""
    lo, hi = results["random_score"], results["expert_score"]
    if lo is None or hi is None or not hi > lo:
        raise ValueError(f"{results['env']}: no usable reference scores (random {lo}, expert {hi}); the shipped "
                         "teacher's model card has them, or pass --random-score and --expert-score")
    R = np.array([s["returns"] for s in results["per_seed"]], dtype=np.float64)
    return (R - lo) / (hi - lo)


def fold_record(fold: Fold, agent_group: dict[str, Any] | None = None) -> dict[str, Any]:
    """Which fold a result is of: the fields every ``robot_split`` block starts with."""
    return {"split": fold.split, "held_out": fold.held_out, "env": fold.env_id, "train_robots": list(fold.train),
            "group": fold.group, "dataset": fold.dataset, "agent_group": agent_group}


def add_family_fold_record(results: dict[str, Any], fold: Fold, agent_group: dict[str, Any] | None = None
                           ) -> dict[str, Any]:
    """Mark family ``results`` as the evaluation of ``fold``'s (a family fold's) held-out robot (module docstring)."""
    if fold.family is None or results.get("family", {}).get("name") != fold.family or results["env"] != fold.env_id:
        raise ValueError(f"results of {results['env']} are not of the {fold.family} fold holding out {fold.held_out}")
    results["config"].update(robots_split=fold.split, held_out=fold.held_out)
    results["robot_split"] = {**fold_record(fold, agent_group), "family": fold.family}
    return results


def robot_split_block(results: dict[str, Any], fold: Fold, as_split: bool, agent_group: dict[str, Any] | None = None,
                      bootstrap_reps: int = BOOTSTRAP_REPS, bootstrap_seed: int = 0) -> dict[str, Any]:
    """The ``robot_split`` block of the results of an evaluation on ``fold``'s held-out robot."""
    N = normalised_returns(results)
    runs = np.transpose(N, (1, 0, 2))  # (envs, seeds, episodes): rows = runs, columns = strata (seeds)
    K = N.shape[2]
    scores = {name: (eps, x) for name, (eps, x) in metric_scores(runs).items()}
    scores["rise"] = (scores["final"][0], scores["final"][1] - scores["zero_shot"][1])

    def stats(x: np.ndarray) -> dict[str, Any]:
        a = aggregate(x, bootstrap_reps, bootstrap_seed)
        return {"iqm": a["iqm"], "ci95": a["ci95"], "ci95_seeds": a["ci95_thetas"], "mean": a["mean"]}

    per_k = [stats(runs[:, :, k]) for k in range(K)]
    agg = {name: {"episodes": eps, **stats(x)} for name, (eps, x) in scores.items()}
    return {
        **fold_record(fold, agent_group),
        "protocol": {"episodes": K, "num_envs": int(N.shape[1]), "seeds": list(results["seeds"]),
                     "max_episode_steps": results["max_episode_steps"], "as_split": bool(as_split)},
        "references": {"random": results["random_score"], "expert": results["expert_score"],
                       "source": results["reference_scores_source"]},
        "normalized": N.tolist(),
        "per_episode": {"episode_index": list(range(K)), "iqm": [p["iqm"] for p in per_k],
                        "ci95_low": [p["ci95"][0] for p in per_k], "ci95_high": [p["ci95"][1] for p in per_k],
                        "ci95_seeds_low": [p["ci95_seeds"][0] for p in per_k],
                        "ci95_seeds_high": [p["ci95_seeds"][1] for p in per_k], "mean": [p["mean"] for p in per_k]},
        **agg,
        "target": {"final_iqm_at_least": TARGET_FINAL, "final_met": bool(agg["final"]["iqm"] >= TARGET_FINAL),
                   "rising": bool(agg["rise"]["ci95"][0] > 0)},
        "bootstrap": {"reps": int(bootstrap_reps), "seed": int(bootstrap_seed), "level": 0.95, "method": "percentile",
                      "statistic": IQM_TEXT, "ci95": CI_TEXT, "ci95_seeds": CI_SEEDS_TEXT,
                      "final_episodes": FINAL_EPISODES},
    }


# ------------------------------------------------------------------------------------- schema
RECORD = [("split", STR), ("held_out", STR), ("env", STR), ("train_robots", list_of(STR)), ("group", STR),
          ("dataset", STR)]
BLOCK = [*RECORD, ("protocol", OBJECT), ("protocol.as_split", BOOL), ("references", OBJECT),
         ("references.random", NUMBER), ("references.expert", NUMBER), ("normalized", list_of(list_of(list_of(NUMBER)))),
         ("per_episode", OBJECT), ("target", OBJECT), ("bootstrap", OBJECT)]
METRIC = [("episodes", list_of(INT)), ("iqm", NUMBER), ("ci95", INTERVAL), ("ci95_seeds", INTERVAL), ("mean", NUMBER)]
PER_EPISODE = ("episode_index", "iqm", "ci95_low", "ci95_high", "ci95_seeds_low", "ci95_seeds_high", "mean")


def _field(obj: Any, dotted: str, kind, source, prefix: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise ResultsError(f"{source}: missing field {prefix + dotted!r}")
        obj = obj[part]
    if not kind(obj):
        raise ResultsError(f"{source}: field {prefix + dotted!r} must be {kind.text}")
    return obj


def validate_robot_split_block(data: dict[str, Any], source: Any = "results") -> None:
    """The ``robot_split`` block of a results file: its fields, and its scores recomputed from the returns."""
    block = _field(data, "robot_split", OBJECT, source, "")
    family = "family" in data  # a family fold's results: the block is the fold's record (module docstring)
    for name, kind in (RECORD + [("family", STR)] if family else BLOCK):
        _field(block, name, kind, source, "robot_split.")
    cfg = data["config"]
    K = cfg["episodes"]
    if block["env"] != data["env"] or cfg.get("held_out") != block["held_out"]:
        raise ResultsError(f"{source}: field 'robot_split.env' must be the evaluated env and held_out config.held_out")
    if family:
        fam = block["family"]
        if fam != data["family"]["name"] or cfg.get("robots_split") != block["split"]:
            raise ResultsError(f"{source}: field 'robot_split.family' must be family.name and split "
                               "config.robots_split")
        if (block["dataset"] != fold_dataset_name(block["split"], block["held_out"], fam)
                or not block["group"].endswith(fold_group_name("", fam))):
            raise ResultsError(f"{source}: field 'robot_split.dataset' must be the {fam} fold's training set "
                               f"{fold_dataset_name(block['split'], block['held_out'], fam)!r} (and its group end "
                               f"in {fold_group_name('', fam)!r})")
        return
    for key in PER_EPISODE:
        v = _field(block, f"per_episode.{key}", list_of(NUMBER), source, "robot_split.")
        if len(v) != K:
            raise ResultsError(f"{source}: field 'robot_split.per_episode.{key}' must be a list of {K} numbers")
    for name in METRICS:
        for key, kind in METRIC:
            _field(block, f"{name}.{key}", kind, source, "robot_split.")
    ref = block["references"]
    if (ref["random"], ref["expert"]) != (data["random_score"], data["expert_score"]):
        raise ResultsError(f"{source}: field 'robot_split.references' must be random_score and expert_score")
    try:
        expected = normalised_returns(data)
    except ValueError as e:
        raise ResultsError(f"{source}: {e}") from None
    got = np.asarray(block["normalized"], dtype=np.float64)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-6, atol=1e-9):
        raise ResultsError(f"{source}: field 'robot_split.normalized' must be (returns - random) / (expert - random)")
