"""Per-theta reference returns of task families: the random agent's and the privileged teacher's.

A family score is normalised per theta, ``(return - random(theta)) / (privileged(theta) - random(theta))``,
with references measured on that same theta, with the same episode length and the same WalkConfig
(everything but ``obs_mode``, which changes no physics). For each suite task id and each of the two
reference agents, the return is taken from the first of:

1. ``given``: a mapping or a JSON file passed by the caller (``go2bench eval --references FILE``),
   never written back;
2. the cache: ``<cache_dir>/<env>/<suite>-T<steps>-<config hash>.json`` (default ``runs/references``);
3. the zoo's shipped reference files ``go2bench/zoo/<env>/<family>/references/<suite>-T<steps>-<config
   hash>.json`` (read only; the same format as the cache: measurements of the GPU runs, so that an evaluation
   of those settings does not spend a scene build on them);
4. the teachers' model cards ``go2bench/zoo/<env>/<family>/{privileged,blind}/model_card.json``
   (``per_task_returns`` of :mod:`go2bench.teachers.task_eval`), when measured in episodes of the
   same length (``per_task_eval.max_episode_steps``) with the same WalkConfig (the card's
   ``walk_config``; a card without one counts only for the default config). :func:`card_returns`
   lists the layouts it reads;
5. a measurement (``compute=True``): one env per missing theta, ``episodes`` episodes each, the
   privileged teacher (``teacher-privileged`` from the agent registry, else the zoo folder above)
   and :class:`~go2bench.agents.random.RandomAgent` (seed 0) in one privileged scene; written to
   the cache.

File format (cache and ``given``)::

    {"format": "go2bench.references/1", "env": "Go2Walk-v0", "family": "velocity", "suite": "velocity-v0",
     "max_episode_steps": 1000, "walk_config_sha256": "...",          # optional in a given file
     "returns": {"velocity-v0/test/3": {"random": -0.4, "privileged": 17.9}, ...}}

A given file may also be the bare ``returns`` mapping.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from go2bench.core.provenance import write_json_atomic
from go2bench.envs.registry import task_spec

__all__ = ["REFERENCE_FORMAT", "DEFAULT_CACHE", "REFERENCE_AGENTS", "FamilyReferences", "walk_config_hash",
           "cache_path", "read_reference_file", "card_returns", "resolve_family_references",
           "measure_task_returns", "load_privileged_teacher"]

REFERENCE_FORMAT = "go2bench.references/1"
DEFAULT_CACHE = Path("runs/references")
REFERENCE_AGENTS = ("random", "privileged")


@dataclass
class FamilyReferences:
    """Reference returns per suite task id: ``returns[id] = {"random": x, "privileged": y}``, with sources."""

    max_episode_steps: int
    returns: dict[str, dict[str, float]] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def put(self, task_id: str, agent: str, value: float, source: str) -> None:
        self.returns.setdefault(task_id, {})[agent] = float(value)
        self.sources.setdefault(task_id, {})[agent] = source

    def has(self, task_id: str, agent: str) -> bool:
        return agent in self.returns.get(task_id, {})

    def arrays(self, task_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(random, privileged) returns of ``task_ids``, in order; a KeyError names a missing one."""
        missing = [t for t in task_ids for a in REFERENCE_AGENTS if not self.has(t, a)]
        if missing:
            raise KeyError(f"no reference returns for {missing[:5]}")
        return (np.array([self.returns[t]["random"] for t in task_ids]),
                np.array([self.returns[t]["privileged"] for t in task_ids]))

    def block(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """The ``family.references`` block of a results file."""
        return {"max_episode_steps": self.max_episode_steps,
                "returns": {t: dict(self.returns[t]) for t in task_ids},
                "sources": {t: dict(self.sources[t]) for t in task_ids}}


def walk_config_hash(config: Any) -> str:
    """sha256 of a WalkConfig's dict without ``obs_mode`` (a view of the state, not physics or reward)."""
    from go2bench.envs.walk_config import make_walk_config

    d = make_walk_config(config).to_dict()
    d.pop("obs_mode", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def cache_path(cache_dir: str | Path, env_id: str, suite: str, max_episode_steps: int, config_hash: str) -> Path:
    return Path(cache_dir) / env_id / f"{suite}-T{max_episode_steps}-{config_hash[:12]}.json"


def read_reference_file(path: str | Path, max_episode_steps: int | None = None, config_hash: str | None = None
                        ) -> dict[str, dict[str, float]]:
    """``{task_id: {"random": x, "privileged": y}}`` of a reference file; a ValueError names what is wrong.

    ``max_episode_steps`` / ``config_hash``: when the file records them, they must match.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: cannot read reference returns: {e}") from None
    return parse_references(data, str(p), max_episode_steps, config_hash)


def parse_references(data: Any, where: str, max_episode_steps: int | None = None,
                     config_hash: str | None = None) -> dict[str, dict[str, float]]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object of reference returns")
    if "returns" in data:
        steps = data.get("max_episode_steps")
        if max_episode_steps is not None and steps is not None and int(steps) != int(max_episode_steps):
            raise ValueError(f"{where}: reference returns of {steps}-step episodes; this evaluation runs "
                             f"{max_episode_steps}-step episodes")
        sha = data.get("walk_config_sha256")
        if config_hash is not None and sha is not None and sha != config_hash:
            raise ValueError(f"{where}: reference returns measured with another WalkConfig")
        data = data["returns"]
    out: dict[str, dict[str, float]] = {}
    for task_id, entry in data.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: {task_id!r} must map 'random'/'privileged' to returns, got {entry!r}")
        for agent, value in entry.items():
            if agent not in REFERENCE_AGENTS:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"{where}: {task_id}.{agent} must be a finite number, got {value!r}")
            out.setdefault(str(task_id), {})[agent] = float(value)
    return out


# ------------------------------------------------------------------------------------- model cards
def card_returns(card: Mapping[str, Any], own: str) -> dict[str, dict[str, float]]:
    """Reference returns in a teacher's model card, ``{agent: {task_id: return}}``.

    ``per_task_returns`` may be ``{agent: {task_id: number}}`` (what the teachers write, with agents
    "teacher" -- the card's own, ``own``: "privileged" or "blind" -- and "random"),
    ``{task_id: number}`` (the card's own agent) or ``{task_id: {agent: number}}``;
    ``random_per_task_returns: {task_id: number}`` adds the random agent.
    """
    out: dict[str, dict[str, float]] = {}
    agents = {"teacher": own, "random": "random", "privileged": "privileged", "blind": "blind"}
    ptr = card.get("per_task_returns") or {}
    if isinstance(ptr, Mapping):
        for k, v in ptr.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(own, {})[str(k)] = float(v)
            elif isinstance(v, Mapping) and k in agents:
                out.setdefault(agents[k], {}).update({str(t): float(x) for t, x in v.items()})
            elif isinstance(v, Mapping):
                for agent, x in v.items():
                    out.setdefault(agents.get(agent, str(agent)), {})[str(k)] = float(x)
    rnd = card.get("random_per_task_returns")
    if isinstance(rnd, Mapping):
        out.setdefault("random", {}).update({str(t): float(x) for t, x in rnd.items()})
    return out


def _card_references(env_id: str, family: str, max_episode_steps: int, config_hash: str
                     ) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """(card path, returns) of the zoo's privileged and blind cards of ``family`` measured like this evaluation."""
    found = []
    for own in ("privileged", "blind"):
        path = task_spec(env_id).zoo_dir / family / own / "model_card.json"
        if not path.is_file():
            continue
        card = json.loads(path.read_text())
        measured = card.get("per_task_eval") if isinstance(card.get("per_task_eval"), Mapping) else {}
        steps = measured.get("max_episode_steps", card.get("max_episode_steps"))
        if steps is None or int(steps) != int(max_episode_steps):
            continue
        try:
            same = walk_config_hash(card.get("walk_config")) == config_hash
        except (ValueError, TypeError):  # a config this go2bench cannot read is not this evaluation's
            same = False
        if not same:
            continue
        found.append((f"go2bench/zoo/{env_id}/{family}/{own}/model_card.json", card_returns(card, own)))
    return found


# ------------------------------------------------------------------------------------- measuring
def load_privileged_teacher(env_id: str, family: str, device: str = "cpu"):
    """The privileged teacher of ``family``: the registry's ``teacher-privileged``, else the zoo folder."""
    from go2bench.agents.registry import available_agents
    from go2bench.eval.family_protocol import make_family_agent

    if "teacher-privileged" in available_agents():
        return make_family_agent("teacher-privileged", env_id, family, device=device)
    folder = task_spec(env_id).zoo_dir / family / "privileged"
    if not (folder / "model_card.json").is_file():
        raise FileNotFoundError(
            f"no privileged teacher of the {family} family for {env_id} ({folder} has no model card) to measure "
            f"reference returns with; pass them with --references FILE (see go2bench.eval.family_reference)")
    from go2bench.agents.teacher import load_teacher

    return load_teacher(folder, device=device)


def measure_task_returns(agent, env_id: str, family: str, specs: Sequence[Any], episodes: int, sim) -> np.ndarray:
    """Mean return of ``agent`` over ``episodes`` episodes on each task of ``specs`` (one env each) in ``sim``."""
    from go2bench.envs.tasks import resolve
    from go2bench.eval.episodes import run_episodes

    sim.tasks.assign(resolve(family, sim.robot_description, list(specs), sim.num_envs))
    run = run_episodes(agent, env_id, sim, np.full(sim.num_envs, episodes), seed=0)
    R = np.zeros((sim.num_envs, episodes))
    for r in run["records"]:
        R[r.env, r.episode] = r.ret
    return R.mean(axis=1)


def resolve_family_references(
    env_id: str, family: str, suite: str, task_ids: Sequence[str], specs: Sequence[Any], max_episode_steps: int,
    config: Any = None, given: str | Path | Mapping | None = None, cache_dir: str | Path | None = DEFAULT_CACHE,
    compute: bool = True, episodes: int = 3, backend: str = "cpu", device: str = "cpu",
) -> FamilyReferences:
    """The reference returns of every task of ``task_ids`` (``specs``: their task specs), see the module docstring."""
    refs = FamilyReferences(int(max_episode_steps))
    sha = walk_config_hash(config)
    if given is not None:
        where = "references given" if isinstance(given, Mapping) else str(given)
        data = parse_references(given, where, max_episode_steps, sha) if isinstance(given, Mapping) else \
            read_reference_file(given, max_episode_steps, sha)
        for t in task_ids:
            for a, v in data.get(t, {}).items():
                refs.put(t, a, v, where)
    cache = cache_path(cache_dir, env_id, suite, max_episode_steps, sha) if cache_dir is not None else None
    name = cache_path("", env_id, suite, max_episode_steps, sha).name
    shipped = (task_spec(env_id).zoo_dir / family / "references" / name, f"go2bench/zoo/{env_id}/{family}/references/{name}")
    for path, label in ((cache, str(cache)), shipped):
        if path is None or not path.is_file():
            continue
        for t, entry in read_reference_file(path, max_episode_steps, sha).items():
            for a, v in entry.items():
                if t in task_ids and not refs.has(t, a):
                    refs.put(t, a, v, label)
    for source, by_agent in _card_references(env_id, family, max_episode_steps, sha):
        for a in REFERENCE_AGENTS:
            for t, v in by_agent.get(a, {}).items():
                if t in task_ids and not refs.has(t, a):
                    refs.put(t, a, v, source)
    missing = [(t, s) for t, s in zip(task_ids, specs) if not all(refs.has(t, a) for a in REFERENCE_AGENTS)]
    if not missing:
        return refs
    if not compute:
        raise ValueError(f"no reference returns for {len(missing)} task(s) ({missing[0][0]}, ...) of {env_id} with "
                         f"{max_episode_steps}-step episodes; pass --references FILE or let them be measured")
    _measure(refs, env_id, family, missing, max_episode_steps, config, episodes, backend, device)
    if cache is not None:
        _write_cache(cache, refs, env_id, family, suite, max_episode_steps, sha, episodes)
    return refs


def _measure(refs, env_id, family, missing, max_episode_steps, config, episodes, backend, device) -> None:
    from go2bench.agents.random import RandomAgent
    from go2bench.envs.walk_sim import make_walk_sim

    teacher = load_privileged_teacher(env_id, family, device) if any(
        not refs.has(t, "privileged") for t, _ in missing) else None
    obs_mode = (getattr(teacher, "model_card", None) or {}).get("obs_mode")
    specs = [s for _, s in missing]
    sim = make_walk_sim(env_id, len(specs), backend, config, obs_mode, max_episode_steps, family=family,
                        tasks=specs, privileged=teacher is not None)
    try:
        stamp = f"measured {time.strftime('%Y-%m-%d')}: mean of {episodes} episode(s), seed 0"
        for name, agent in (("privileged", teacher), ("random", RandomAgent(seed=0))):
            todo = [i for i, (t, _) in enumerate(missing) if not refs.has(t, name)]
            if agent is None or not todo:
                continue
            values = measure_task_returns(agent, env_id, family, specs, episodes, sim)
            for i in todo:
                refs.put(missing[i][0], name, float(values[i]), stamp)
    finally:
        sim.close()


def _write_cache(path: Path, refs: FamilyReferences, env_id, family, suite, steps, sha, episodes) -> None:
    old = read_reference_file(path, steps, sha) if path.is_file() else {}
    merged = {t: dict(v) for t, v in old.items()}
    for t, entry in refs.returns.items():
        for a, v in entry.items():
            if refs.sources[t][a].startswith("measured"):
                merged.setdefault(t, {})[a] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"format": REFERENCE_FORMAT, "env": env_id, "family": family, "suite": suite,
                             "max_episode_steps": steps, "walk_config_sha256": sha, "episodes": episodes,
                             "returns": dict(sorted(merged.items()))})
