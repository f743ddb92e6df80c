"""An agent's score pooled over several training runs: the IQM of all their trials, with an interval over runs.

Why: one training run is one draw of the training randomness, and on the family protocol it is a large one
(``benchmarks/RESULTS.md``, the fifth session: the same Vintix recipe retrained with other seeds gave final
IQMs 0.55, 0.36 and 0.30 on one Mini Cheetah dataset). An interval over thetas and evaluation seeds says nothing
about it. As rliable (Agarwal et al. 2021) asks, an agent's score should pool several runs, and its interval
resample runs as well as tasks.

Bootstrap unit (:func:`pooled_aggregate`). Three things vary: the training run (the model), the theta (the test
task) and the evaluation seed (the rollout). Every run is evaluated on the SAME thetas and evaluation seeds, so
runs and thetas are crossed, not nested. A replicate draws the runs with replacement, ONE resample of the thetas
shared by every run (a theta hard for one model is hard for all; drawing thetas separately per run would treat one
sample of 32 thetas as three independent ones and narrow the interval), and within each (run, theta) the
evaluation seeds with replacement, as ``ci95_thetas`` does within a theta. With one run this is exactly the
evaluator's ``ci95_thetas`` (same draws). With three runs the run draw has only 10 distinct outcomes and the
percentile bootstrap shrinks the between-run spread by (n-1)/n: the interval is a lower bound on the
uncertainty, so the per-run finals are reported beside it. :func:`paired_difference` compares two agents run
by run with the same draws; :func:`recipe_difference` two recipes whose runs are independent trainings (any run
counts): each recipe's runs drawn on their own, the thetas and evaluation seeds shared.

:func:`pool_runs` applies this to family results files (format ``go2bench.eval/2``) of one agent, env, family,
split and protocol, and refuses, in one line naming the files and the field, runs that are not of one protocol.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from go2bench.eval.family_results import metric_scores
from go2bench.eval.iqm import BOOTSTRAP_REPS, iqm, percentile_interval

__all__ = ["METRICS", "POOLED_CI_TEXT", "PoolError", "trial_scores", "metric_matrices", "pooled_aggregate",
           "paired_difference", "protocol_fields", "pool_runs", "recipe_difference"]

METRICS = ("zero_shot", "final", "auc", "rise")
POOLED_CI_TEXT = ("95% percentile bootstrap of the pooled IQM (ci95_pooled): per replicate the training runs with "
                  "replacement, one resample of the thetas shared by all runs (crossed design), and the evaluation "
                  "seeds within each (run, theta)")


class PoolError(ValueError):
    """Results that cannot be pooled; the message names the files and the field that differs."""


# ------------------------------------------------------------------------------------- trial matrices
def trial_scores(results: dict[str, Any]) -> dict[str, Any]:
    """The per-trial normalised scores of a family results dict: eval seeds x thetas x episodes."""
    fam = results["family"]
    seeds, ids = fam["seeds"], [t["id"] for t in fam["tasks"]]
    N = np.full((len(seeds), len(ids), fam["episodes"]), np.nan)
    for t in fam["trials"]:
        N[seeds.index(t["seed"]), ids.index(t["task_id"])] = t["normalized"]
    if np.isnan(N).any():
        raise ValueError("results trials do not cover every (seed, theta)")
    return {"eval_seeds": list(seeds), "task_ids": ids, "normalized": N.tolist()}


def metric_matrices(N: Any) -> dict[str, np.ndarray]:
    """Zero-shot, final, AUC and rise (final minus zero-shot per trial) of ``N`` (..., eval seeds, thetas, episodes)."""
    N = np.asarray(N, dtype=np.float64)
    flat = N.reshape(-1, *N.shape[-2:])
    m = {name: x.reshape(N.shape[:-1]) for name, (_, x) in metric_scores(flat).items()}
    m["rise"] = m["final"] - m["zero_shot"]
    return m


# ------------------------------------------------------------------------------------- statistics
def _draws(rng: np.random.Generator, reps: int, runs: Sequence[int], E: int, J: int):
    """Run draws A (one per group of ``runs[g]`` runs, in that order), theta draws B, eval-seed draws C.

    B and C are shared by every group (rows of C are by drawn-run slot, as many as the largest group needs)."""
    # eval seeds per cell, then thetas: the draw order of iqm.bootstrap_distribution (so one run gives ci95_thetas)
    C = rng.integers(0, E, size=(reps, max(runs) * E, J))
    B = rng.integers(0, J, size=(reps, 1, J))
    return [rng.integers(0, S, size=(reps, S)) for S in runs], B, C


def _resampled(X: np.ndarray, A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """IQM per replicate of X (runs, eval seeds, thetas): entry [s, e, j] is X[A[s], C[s*E + e, j], B[j]]."""
    S, E, _ = X.shape
    seed_idx = np.repeat(A, E, axis=1)[:, :, None]
    return iqm(X[seed_idx, C[:, :S * E], B].reshape(len(A), -1), axis=1)


def pooled_aggregate(X: Any, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict[str, Any]:
    """IQM of X (training runs, eval seeds, thetas) pooled over everything, with its crossed bootstrap interval."""
    X = np.asarray(X, dtype=np.float64)
    (A,), B, C = _draws(np.random.default_rng(seed), reps, X.shape[:1], *X.shape[1:])
    return {"iqm": iqm(X), "ci95_pooled": list(percentile_interval(_resampled(X, A, B, C))), "mean": float(X.mean()),
            "training_seeds": X.shape[0]}


def paired_difference(x: Any, y: Any, reps: int = BOOTSTRAP_REPS, seed: int = 0, unseeded: bool = False
                      ) -> dict[str, Any]:
    """IQM(x) - IQM(y) with the same draws for both: x's run s paired with y's run s (same run count), or
    ``unseeded`` x (one evaluation of an untrained reference) against all of y's runs."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape[1:] != y.shape[1:] or (x.shape[0] != (1 if unseeded else y.shape[0])):
        raise ValueError(f"paired difference of shapes {x.shape} and {y.shape}")
    (A,), B, C = _draws(np.random.default_rng(seed), reps, y.shape[:1], *y.shape[1:])
    xa = np.zeros((reps, 1), dtype=A.dtype) if unseeded else A
    d = _resampled(x, xa, B, C) - _resampled(y, A, B, C)
    return {"value": iqm(x) - iqm(y), "ci95_pooled": list(percentile_interval(d))}


# ------------------------------------------------------------------------------------- results files
def _thetas(res: dict[str, Any]) -> list:
    return [(t["id"], t["bin"], t["theta"]) for t in res["family"]["tasks"]]


# what must agree for family results to be runs of one protocol (the evaluation backend and device need not)
PROTOCOL: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("agent", lambda r: r["agent"]),
    ("env", lambda r: r["env"]),
    ("family.name", lambda r: r["family"]["name"]),
    ("family.suite", lambda r: r["family"]["suite"]),
    ("family.robot", lambda r: r["family"]["robot"]),
    ("family.split", lambda r: r["family"]["split"]),
    ("family.tasks (the thetas)", _thetas),
    ("family.seeds (evaluation seeds)", lambda r: r["family"]["seeds"]),
    ("family.episodes", lambda r: r["family"]["episodes"]),
    ("max_episode_steps", lambda r: r["max_episode_steps"]),
    ("config.warmup_steps", lambda r: r["config"].get("warmup_steps", 0)),
    ("obs_mode", lambda r: r["obs_mode"]),
    ("config.walk_config", lambda r: r["config"].get("walk_config")),
    ("family.references.returns", lambda r: r["family"]["references"]["returns"]),
    ("robot_split (a held-out robot's fold)", lambda r: [(r.get("robot_split") or {}).get(k) for k in
                                                         ("split", "held_out", "dataset")]),
)


def protocol_fields(res: dict[str, Any]) -> dict[str, Any]:
    """The fields of a family results dict that runs pooled together share."""
    return {name: get(res) for name, get in PROTOCOL}


def _source(res: dict[str, Any], i: int) -> str:
    return str(res.get("_path") or f"results {i + 1} ({res.get('agent_spec') or res.get('agent')})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_protocol(ref: dict[str, Any], r: dict[str, Any], what: str, rule: str, skip: tuple[str, ...] = ()) -> None:
    """Refuse ``r`` (``what``: "<context>: <r's source> differs from <ref's source>") unless its protocol is ref's."""
    first = protocol_fields(ref)
    for field, value in protocol_fields(r).items():
        if field not in skip and value != first[field]:
            shown = "" if field.startswith(("family.tasks", "config.walk", "family.ref")) else \
                f" ({_short(first[field])} vs {_short(value)})"
            raise PoolError(f"{what} in {field}{shown}: {rule}")


def _check_poolable(runs: Sequence[dict[str, Any]], name: str, single: bool = False) -> None:
    if len(runs) < (1 if single else 2):
        raise PoolError(f"pool {name}: no results files" if single else f"pool {name}: one results file "
                        f"({_source(runs[0], 0) if runs else 'none'}); pooling needs two or more training runs")
    for i, r in enumerate(runs):
        if "family" not in r:
            raise PoolError(f"pool {name}: {_source(r, i)} is not a task-family result; only family results pool")
    seen: dict[Any, str] = {}
    for i, r in enumerate(runs):
        _check_protocol(runs[0], r, f"pool {name}: {_source(r, i)} differs from {_source(runs[0], 0)}",
                        "only runs of one agent on one env, family, split and protocol pool")
        model = r.get("checkpoint_sha256") or r.get("agent_spec") or r["agent"]
        if model in seen:
            raise PoolError(f"pool {name}: {_source(r, i)} and {seen[model]} evaluate the same model "
                            f"({_short(model)}); pool different training runs, each once")
        seen[model] = _source(r, i)


def _trials(runs: Sequence[dict[str, Any]]) -> np.ndarray:
    """The normalised scores of family results, stacked: runs, eval seeds, thetas, episodes."""
    return np.stack([np.asarray(trial_scores(r)["normalized"]) for r in runs])


def pool_runs(runs: Sequence[dict[str, Any]], name: str = "pool", reps: int = BOOTSTRAP_REPS, seed: int = 0
              ) -> dict[str, Any]:
    """Family results of several training runs of one agent and protocol (loaded dicts) as one pooled score.

    Returns the protocol, ``runs`` (their count), ``sources``, ``checkpoints`` (sha256 per run), per metric
    (:data:`METRICS`) the pooled ``iqm`` with ``ci95_pooled`` and ``mean``, ``finals_by_run`` (each run's own
    final IQM) and ``per_episode`` (pooled IQM and interval per episode index). A :class:`PoolError` names the
    files and the field when the runs are not of one agent and protocol."""
    _check_poolable(runs, name)
    N = _trials(runs)
    m = metric_matrices(N)
    per_k = [pooled_aggregate(N[..., k], reps, seed) for k in range(N.shape[-1])]
    first = runs[0]
    return {
        "agent": first["agent"], "env": first["env"], "family": first["family"]["name"],
        "split": first["family"]["split"], "suite": first["family"]["suite"], "runs": len(runs),
        "sources": [_source(r, i) for i, r in enumerate(runs)],
        "agent_specs": [r.get("agent_spec") for r in runs], "checkpoints": [r.get("checkpoint_sha256") for r in runs],
        "thetas": N.shape[2], "eval_seeds": list(first["family"]["seeds"]), "episodes": N.shape[3],
        "max_episode_steps": first["max_episode_steps"], "warmup_steps": first["config"].get("warmup_steps", 0),
        **{k: {key: v for key, v in pooled_aggregate(m[k], reps, seed).items() if key != "training_seeds"}
           for k in METRICS},
        "finals_by_run": [iqm(x) for x in m["final"]],
        "per_episode": {"episode_index": list(range(N.shape[3])), "iqm": [p["iqm"] for p in per_k],
                        "ci95_pooled_low": [p["ci95_pooled"][0] for p in per_k],
                        "ci95_pooled_high": [p["ci95_pooled"][1] for p in per_k], "mean": [p["mean"] for p in per_k]},
        "bootstrap": {"reps": int(reps), "seed": int(seed), "ci95_pooled": POOLED_CI_TEXT},
    }


def recipe_difference(runs_a: Sequence[dict[str, Any]], runs_b: Sequence[dict[str, Any]], metric: str = "final",
                      reps: int = BOOTSTRAP_REPS, seed: int = 0, names: tuple[str, str] = ("a", "b")
                      ) -> dict[str, Any]:
    """Pooled IQM of recipe A's runs minus recipe B's on ``metric``, two recipes whose runs are independent trainings.

    Family results dicts of one protocol (agents may differ), any run counts, one run included. Per replicate each
    recipe's runs are drawn with replacement on their own (runs are not paired across recipes), while ONE theta
    resample and the evaluation-seed draws are shared by both: every run of either recipe saw the same thetas and
    seeds, so a theta's difficulty cancels from the difference. The run draws go to the recipes in an order fixed
    by their scores, not by the argument order, so swapping A and B negates every replicate. Returns ``value``
    (the difference of the pooled IQMs), ``ci95_pooled`` (95% percentile interval) and ``runs`` (A's, B's count)."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}: use one of {', '.join(METRICS)}")
    for runs, name in zip((runs_a, runs_b), names):
        _check_poolable(runs, name, single=True)
    _check_protocol(runs_a[0], runs_b[0], f"compare {names[0]} - {names[1]}: {_source(runs_b[0], 0)} differs from "
                    f"{_source(runs_a[0], 0)}", "only recipes on one env, family, split and protocol compare",
                    skip=("agent",))
    xy = [metric_matrices(_trials(runs))[metric] for runs in (runs_a, runs_b)]
    order = sorted((0, 1), key=lambda g: (xy[g].shape[0], xy[g].tobytes()))
    drawn, B, C = _draws(np.random.default_rng(seed), reps, [xy[g].shape[0] for g in order], *xy[0].shape[1:])
    A = dict(zip(order, drawn))
    d = _resampled(xy[0], A[0], B, C) - _resampled(xy[1], A[1], B, C)
    return {"metric": metric, "value": iqm(xy[0]) - iqm(xy[1]), "ci95_pooled": list(percentile_interval(d)),
            "runs": [len(runs_a), len(runs_b)], "bootstrap": {"reps": int(reps), "seed": int(seed)}}
