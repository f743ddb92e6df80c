"""The results file of ``go2bench eval``: one versioned schema, built, saved, loaded and checked here.

Formats: ``go2bench.eval/1`` (a JSON object, written by :func:`build_results`): the run's ``config`` and provenance (``versions``,
``checkpoint`` and its sha256), the statistics of :func:`go2bench.eval.stats.summarize`, the
reference scores used (:mod:`go2bench.eval.reference`), fall rate, tracking error, the mean
per-episode sum of each reward term, and every episode's return and length (flat lists in the
order seed, env, episode; ``per_seed`` holds them as envs x episodes arrays).

``go2bench.eval/2`` (task families, :mod:`go2bench.eval.family_results`): every field of
``/1`` (``config.num_envs`` counts the thetas run per seed; the top-level normalised numbers are
means of per-theta normalised scores with ``random_score``/``expert_score`` null), plus
``config.family``/``config.split`` and the required ``family`` block (per-trial returns and
normalised scores, per-theta references, IQMs with bootstrap intervals). Both formats load.

A ``/1`` file of a leave-one-robot-out evaluation also has ``config.robots_split``/``config.held_out``
and the ``robot_split`` block (:mod:`go2bench.eval.robot_split_results`), checked when present.

:func:`load_results` checks the version and the type of every field, and that the arrays agree
with ``config``; a :class:`ResultsError` names the file and the field. The leaderboard and the
pipeline read results only through it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from go2bench.core.provenance import file_sha256, versions, write_json_atomic
from go2bench.eval.reference import MEASURED_NOTE, ReferenceScores, given_reference_scores
from go2bench.eval.stats import summarize

__all__ = [
    "RESULTS_FORMAT",
    "FAMILY_RESULTS_FORMAT",
    "READABLE_FORMATS",
    "agent_fields",
    "ResultsError",
    "build_results",
    "renormalize_results",
    "validate_results",
    "save_results",
    "load_results",
]

RESULTS_FORMAT = "go2bench.eval/1"
FAMILY_RESULTS_FORMAT = "go2bench.eval/2"
READABLE_FORMATS = (RESULTS_FORMAT, FAMILY_RESULTS_FORMAT)


class ResultsError(ValueError):
    """A results file (or dict) does not follow the schema; the message names the file and the field."""


# ------------------------------------------------------------------------------------- build
def _reference_fields(refs: ReferenceScores) -> dict[str, Any]:
    return {"random_score": refs.random_score, "expert_score": refs.expert_score,
            "reference_scores_source": refs.source, "reference_scores_note": refs.note}


def _registered_name(spec: str, fallback: str) -> str:
    """The registry name in an agent spec (``fallback`` if the spec does not parse)."""
    try:
        from go2bench.agents.registry import parse_spec

        return parse_spec(spec)[0]
    except Exception:  # noqa: BLE001 - a label only
        return fallback


def agent_fields(agent, agent_spec: str | None = None) -> dict[str, Any]:
    """``agent`` (registered name), ``agent_spec``, ``checkpoint`` and its ``checkpoint_sha256``."""
    name = getattr(agent, "name", type(agent).__name__)
    checkpoint = getattr(agent, "checkpoint", None)
    ckpt_path = Path(checkpoint) if checkpoint else None
    sha = file_sha256(ckpt_path) if ckpt_path is not None and ckpt_path.is_file() else None
    if agent_spec is None:
        agent_spec = name if checkpoint is None else f"{name}:{checkpoint}"
    return {"agent": _registered_name(agent_spec, name), "agent_spec": agent_spec,
            "checkpoint": str(checkpoint) if checkpoint else None, "checkpoint_sha256": sha}


def build_results(agent, env_id: str, sim, episodes: int, seeds: list[int], per_seed: list[dict[str, Any]],
                  refs: ReferenceScores, reward_terms: dict[str, float], agent_spec: str | None = None,
                  device: str | None = None, wall_s: float = 0.0, video: str | None = None,
                  num_envs: int | None = None, warmup_steps: int = 0) -> dict[str, Any]:
    """The results dict of one in-context evaluation (``per_seed`` as :func:`evaluate_in_context` makes it).

    ``num_envs``: the agent's envs per seed (default ``sim.num_envs``; side by side, its share of the scene)."""
    num_envs = sim.num_envs if num_envs is None else int(num_envs)
    R = np.array([s["returns"] for s in per_seed], dtype=np.float64)
    L = np.array([s["lengths"] for s in per_seed], dtype=np.float64)
    F = np.array([s["falls"] for s in per_seed], dtype=np.float64)
    E = np.array([s["tracking_errors"] for s in per_seed], dtype=np.float64)
    who = agent_fields(agent, agent_spec)
    agent_spec = who["agent_spec"]
    return {
        "format": RESULTS_FORMAT,
        "agent": who["agent"],
        "agent_spec": agent_spec,
        "env": env_id,
        "config": {
            "agent": agent_spec,
            "env": env_id,
            "episodes": episodes,
            "num_envs": num_envs,
            "seeds": list(seeds),
            "backend": sim.backend,
            "device": device,
            "max_episode_steps": sim.max_episode_steps,
            "obs_mode": sim.config.obs_mode,
            "walk_config": sim.config.to_dict(),
            "warmup_steps": int(warmup_steps),  # unscored steps per env before the counted episodes
        },
        "versions": versions(),
        "checkpoint": who["checkpoint"],
        "checkpoint_sha256": who["checkpoint_sha256"],
        "episodes": int(R.size),
        "num_envs": num_envs,
        "seeds": list(seeds),
        "max_episode_steps": sim.max_episode_steps,
        "obs_mode": sim.config.obs_mode,
        **summarize(R, refs.random_score, refs.expert_score),
        "mean_length": float(L.mean()),
        "fall_rate": float(F.mean()),
        "mean_tracking_error": float((E * L).sum() / L.sum()),
        "reward_terms": dict(reward_terms),
        **_reference_fields(refs),
        "returns": R.reshape(-1).tolist(),
        "lengths": L.reshape(-1).astype(int).tolist(),
        "per_seed": per_seed,
        "diverged": int(sum(s["diverged"] for s in per_seed)),
        "env_steps": int(sum(s["env_steps"] for s in per_seed)),
        "wall_s": round(wall_s, 3),
        "video": video,
    }


def renormalize_results(res: dict[str, Any], random_score: float, expert_score: float) -> dict[str, Any]:
    """Recompute a results dict's normalised scores (and CIs) with reference scores measured elsewhere, in place.

    The pipeline's short-episode presets normalise with the random and teacher returns measured
    in the same run.
    """
    refs = given_reference_scores(random_score, expert_score, note=MEASURED_NOTE)
    R = np.array([s["returns"] for s in res["per_seed"]], dtype=np.float64)
    res.update(summarize(R, refs.random_score, refs.expert_score))
    res.update(_reference_fields(refs))
    return res


# ------------------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Kind:
    """A JSON value kind: its test and how an error message names it."""

    test: Callable[[Any], bool]
    text: str

    def __call__(self, value: Any) -> bool:
        return self.test(value)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def optional(kind: Kind) -> Kind:
    return Kind(lambda v: v is None or kind(v), f"{kind.text} or null")


def list_of(kind: Kind) -> Kind:
    return Kind(lambda v: isinstance(v, list) and all(kind(x) for x in v), f"a list, each item {kind.text}")


INT = Kind(_is_int, "an integer")
NUMBER = Kind(_is_number, "a finite number")
BOOL = Kind(lambda v: isinstance(v, bool), "true or false")
STR = Kind(lambda v: isinstance(v, str), "a string")
OBJECT = Kind(lambda v: isinstance(v, dict), "an object")
INTERVAL = Kind(lambda v: isinstance(v, list) and len(v) == 2 and all(x is None or _is_number(x) for x in v),
                "[low, high] (finite numbers or nulls)")
TERMS = Kind(lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items()),
             "an object of finite numbers")
PER_SEED = Kind(lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v), "a list of objects")

# (dotted field, kind, required)
FIELDS: list[tuple[str, Kind, bool]] = [
    ("agent", STR, True), ("agent_spec", STR, True), ("env", STR, True), ("config", OBJECT, True),
    ("config.agent", STR, True), ("config.env", STR, True), ("config.episodes", INT, True),
    ("config.num_envs", INT, True), ("config.seeds", list_of(INT), True), ("config.backend", STR, True),
    ("config.device", optional(STR), True), ("config.max_episode_steps", INT, True),
    ("config.obs_mode", STR, True), ("config.walk_config", OBJECT, False),
    ("versions", OBJECT, True), ("checkpoint", optional(STR), True), ("checkpoint_sha256", optional(STR), True),
    ("episodes", INT, True), ("num_envs", INT, True), ("seeds", list_of(INT), True),
    ("max_episode_steps", INT, True), ("obs_mode", STR, True),
    ("mean_return", NUMBER, True), ("std_return", NUMBER, True), ("ci95", INTERVAL, True),
    ("ci95_halfwidth", optional(NUMBER), True), ("ci_unit", STR, True), ("ci_units", INT, True),
    ("normalized_score", optional(NUMBER), True), ("normalized_score_ci95", INTERVAL, True),
    ("per_episode", OBJECT, True), ("per_episode.episode_index", list_of(INT), True),
    ("per_episode.mean_return", list_of(NUMBER), True),
    ("per_episode.return_ci95_low", list_of(optional(NUMBER)), True),
    ("per_episode.return_ci95_high", list_of(optional(NUMBER)), True),
    ("per_episode.normalized_score", list_of(optional(NUMBER)), True),
    ("per_episode.normalized_ci95_low", list_of(optional(NUMBER)), True),
    ("per_episode.normalized_ci95_high", list_of(optional(NUMBER)), True),
    ("mean_length", NUMBER, True), ("fall_rate", NUMBER, True), ("mean_tracking_error", NUMBER, True),
    ("reward_terms", TERMS, False),
    ("random_score", optional(NUMBER), True), ("expert_score", optional(NUMBER), True),
    ("reference_scores_source", optional(STR), True), ("reference_scores_note", STR, False),
    ("returns", list_of(NUMBER), True), ("lengths", list_of(INT), True), ("per_seed", PER_SEED, True),
    ("diverged", INT, True), ("env_steps", INT, True), ("wall_s", NUMBER, True),
    ("video", optional(STR), True), ("total_wall_s", NUMBER, False),
    # several agents in one process (go2bench.eval.multi_agent): scene build and per-agent seconds
    ("process", OBJECT, False), ("process.scene_build_s", NUMBER, False), ("process.eval_s", NUMBER, False),
]

# each entry of per_seed: (field, kind, whether it is an envs x episodes array)
PER_SEED_FIELDS: list[tuple[str, Kind, bool]] = [
    ("seed", INT, False), ("returns", list_of(list_of(NUMBER)), True), ("lengths", list_of(list_of(INT)), True),
    ("falls", list_of(list_of(BOOL)), True), ("tracking_errors", list_of(list_of(NUMBER)), True),
    ("diverged", INT, False), ("env_steps", INT, False), ("wall_s", NUMBER, False),
]

_MISSING = object()
_EXPECTED = f"expected a results file of `go2bench eval --out` (format {' or '.join(READABLE_FORMATS)})"


def _get(data: dict, dotted: str):
    cur: Any = data
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_results(data: Any, source: str | Path = "results") -> dict[str, Any]:
    """``data`` if it follows the schema of its format (``go2bench.eval/1`` or ``/2``); else a :class:`ResultsError`.

    ``source`` (a file name) starts every message.
    """
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: not a go2bench eval results file (top level is a {type(data).__name__})")
    fmt = data.get("format", _MISSING)
    if fmt is _MISSING:
        raise ResultsError(f"{source}: missing field 'format'; {_EXPECTED}")
    if fmt not in READABLE_FORMATS:
        raise ResultsError(f"{source}: field 'format' is {_shown(fmt)}; this go2bench reads "
                           f"{' and '.join(map(repr, READABLE_FORMATS))}")
    for field, kind, required in FIELDS:
        value = _get(data, field)
        if value is _MISSING:
            if required:
                raise ResultsError(f"{source}: missing field {field!r}; {_EXPECTED}")
            continue
        if not kind(value):
            raise ResultsError(f"{source}: field {field!r} must be {kind.text}, got {_shown(value)}")
    _check_shapes(data, source)
    if fmt == FAMILY_RESULTS_FORMAT:
        from go2bench.eval.family_results import validate_family_block

        validate_family_block(data, source)
    elif "family" in data:
        raise ResultsError(f"{source}: field 'family' belongs to format {FAMILY_RESULTS_FORMAT!r}, not {fmt!r}")
    if "robot_split" in data:
        from go2bench.eval.robot_split_results import validate_robot_split_block

        validate_robot_split_block(data, source)
    return data


def _check_shapes(data: dict[str, Any], source) -> None:
    """The arrays agree with each other and with ``config`` (envs x episodes per env x seeds)."""
    cfg = data["config"]
    k, n, seeds = cfg["episodes"], cfg["num_envs"], cfg["seeds"]

    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ResultsError(f"{source}: field {field!r} must be {what}")

    need(k >= 1, "config.episodes", "at least 1")
    need(n >= 1, "config.num_envs", "at least 1")
    need(len(seeds) >= 1, "config.seeds", "a non-empty list")
    total = k * n * len(seeds)
    need(data["episodes"] == total, "episodes", f"config.episodes x config.num_envs x seeds = {total}")
    for key in ("returns", "lengths"):
        need(len(data[key]) == total, key, f"a list of {total} values (one per episode)")
    per = data["per_episode"]
    for key in ("episode_index", "mean_return", "return_ci95_low", "return_ci95_high", "normalized_score",
                "normalized_ci95_low", "normalized_ci95_high"):
        need(len(per[key]) == k, f"per_episode.{key}", f"a list of {k} values (one per episode index)")
    need(len(data["per_seed"]) == len(seeds), "per_seed", f"a list of {len(seeds)} entries (one per seed)")
    for i, entry in enumerate(data["per_seed"]):
        for key, kind, array in PER_SEED_FIELDS:
            field = f"per_seed[{i}].{key}"
            if key not in entry:
                raise ResultsError(f"{source}: missing field {field!r}; {_EXPECTED}")
            need(kind(entry[key]), field, f"{kind.text}, got {_shown(entry[key])}")
            if array:
                need(len(entry[key]) == n and all(len(row) == k for row in entry[key]), field,
                     f"{n} lists (envs) of {k} values (episodes)")


def save_results(results: dict[str, Any], path: str | Path) -> None:
    """Check ``results`` against the schema, then write it to ``path`` atomically (parents are made)."""
    path = Path(path)
    validate_results(results, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, results)


def load_results(path: str | Path) -> dict[str, Any]:
    """Read one results file and check it (:func:`validate_results`); :class:`ResultsError` otherwise."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise ResultsError(f"{p}: cannot read: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ResultsError(f"{p}: not a JSON file ({e}); {_EXPECTED}") from None
    return validate_results(data, p)
