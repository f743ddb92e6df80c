"""Several agents evaluated one after the other in one process (``go2bench eval --agent A --agent B ...``).

Why: a Genesis scene build costs one to two minutes on a fresh GPU machine, often more than an
agent's evaluation; building it once per process instead of once per agent is most of the saving.

* **Scene kinds.** Agents are grouped by the scene they need (the default protocol and a
  leave-one-robot-out fold: the observation mode; the family protocol: the observation mode and
  whether the agent reads the privileged observation). Each kind is built once, when its first
  agent comes, and every scene is closed at the end. Agents run in the order given.
* **Same numbers as separate processes.** Every protocol reseeds its scene, resets it and resets
  the trial counters for each agent (common random numbers, see :mod:`go2bench.eval.protocol`), so
  each agent's results equal those of a process evaluating it alone with the same arguments.
* **Side by side** (the default, :func:`evaluate_side_by_side`):
  the agents of one scene kind run at once in one scene, each on its own envs
  (:mod:`go2bench.eval.side_by_side`), with the same results as alone up to the simulation's batch-size
  rounding; kinds run in order of their first agent, results come per kind. The default protocol, the family
  protocol and leave-one-robot-out folds alike; ``side_by_side=False`` runs them one after the other.
* **Timing.** Each result gets a ``process`` block: the build seconds of the scene it used and
  whether it was built for it, the process's scene build seconds so far, this agent's evaluation
  seconds (agent loading included; side by side, the scene's shared seconds), its position, the
  number of agents, and ``side_by_side``, ``scene_agents`` and ``scene_envs``: whether it shared
  its scene with other agents acting at the same steps, how many, and the scene's envs.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable, Sequence

from go2bench.envs.robot_split import Fold
from go2bench.eval.family_protocol import (DEFAULT_FAMILY_SEEDS, evaluate_family_side_by_side, family_scene_kind,
                                           make_family_agent, make_family_sim)
from go2bench.eval.iqm import BOOTSTRAP_REPS
from go2bench.eval.robot_split_protocol import prepare_agent
from go2bench.eval.robot_split_results import add_family_fold_record

__all__ = ["evaluate_agents", "evaluate_side_by_side", "evaluate_in_context_agents", "evaluate_family_agents",
           "evaluate_robot_split_agents"]

OnResult = Callable[[str, dict], None]


def _make_all(specs: Sequence[str], make: Callable[[str], Any]) -> list[Any]:
    """(agent, load seconds) of every spec: all made before any scene, so a bad spec fails in seconds."""
    if not specs:
        raise ValueError("at least one agent is needed")
    if len(set(specs)) != len(specs):
        raise ValueError(f"agent {next(s for s in specs if specs.count(s) > 1)!r} is given twice")
    loaded: list[Any] = []
    for spec in specs:
        t0 = time.perf_counter()
        loaded.append((make(spec), time.perf_counter() - t0))
    return loaded


def _process(build_s: dict, kind: Hashable, built: bool, eval_s: float, index: int, agents: int, scene_agents: int,
             sim: Any) -> dict[str, Any]:
    """The ``process`` block of one result (module docstring)."""
    return {"scene_build_s": round(build_s[kind], 3), "scene_built_for_this_agent": built,
            "scene_builds_s": round(sum(build_s.values()), 3), "scene_kind": [str(k) for k in _tuple(kind)],
            "eval_s": round(eval_s, 3), "agent_index": index, "agents": agents, "side_by_side": scene_agents > 1,
            "scene_agents": scene_agents, "scene_envs": getattr(sim, "num_envs", None)}


def evaluate_agents(specs: Sequence[str], make: Callable[[str], Any], scene_kind: Callable[[Any], Hashable],
                    build: Callable[[Hashable], Any], evaluate: Callable[[Any, str, Any], dict],
                    on_result: OnResult | None = None) -> list[dict]:
    """Evaluate ``specs`` in order: ``make(spec)`` every agent first (a bad spec fails before any scene
    is built), then per agent ``build(kind)`` its scene once per ``scene_kind(agent)`` and
    ``evaluate(agent, spec, sim)``; ``on_result(spec, results)`` after each."""
    loaded = _make_all(specs, make)
    sims: dict[Hashable, Any] = {}
    build_s: dict[Hashable, float] = {}
    out = []
    try:
        for i, spec in enumerate(specs):
            agent, load_s = loaded[i]
            loaded[i] = None  # released after its evaluation
            t0 = time.perf_counter() - load_s
            kind = scene_kind(agent)
            built = kind not in sims
            if built:
                t1 = time.perf_counter()
                sims[kind] = build(kind)
                build_s[kind] = time.perf_counter() - t1
            res = evaluate(agent, spec, sims[kind])
            eval_s = time.perf_counter() - t0 - (build_s[kind] if built else 0.0)  # agent loading included
            res["process"] = _process(build_s, kind, built, eval_s, i, len(specs), 1, sims[kind])
            del agent
            out.append(res)
            if on_result is not None:
                on_result(spec, res)
    finally:
        for sim in sims.values():
            sim.close()
    return out


def evaluate_side_by_side(specs: Sequence[str], make: Callable[[str], Any], scene_kind: Callable[[Any], Hashable],
                          build: Callable[[Hashable, list[Any]], Any],
                          evaluate: Callable[[list[Any], list[str], Any], list[dict]],
                          on_result: OnResult | None = None) -> list[dict]:
    """Evaluate ``specs`` side by side: every agent made first, then per scene kind (in order of first
    appearance) ``build(kind, agents)`` one scene for its agents, ``evaluate(agents, specs, sim)`` them at once
    and close it; ``on_result(spec, results)`` per agent as its kind is done. Returns results in spec order."""
    loaded = _make_all(specs, make)
    groups: dict[Hashable, list[int]] = {}
    for i, (agent, _) in enumerate(loaded):
        groups.setdefault(scene_kind(agent), []).append(i)
    build_s: dict[Hashable, float] = {}
    out: dict[int, dict] = {}
    for kind, idx in groups.items():
        t0 = time.perf_counter()
        sim = build(kind, [loaded[i][0] for i in idx])
        build_s[kind] = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            results = evaluate([loaded[i][0] for i in idx], [specs[i] for i in idx], sim)
            eval_s = time.perf_counter() - t0 + sum(loaded[i][1] for i in idx)  # the scene's, agent loading included
        finally:
            sim.close()
        for k, (i, res) in enumerate(zip(idx, results)):
            loaded[i] = None
            res["process"] = _process(build_s, kind, k == 0, eval_s, i, len(specs), len(idx), sim)
            out[i] = res
            if on_result is not None:
                on_result(specs[i], res)
    return [out[i] for i in range(len(specs))]


def _evaluate(side_by_side: bool, specs: Sequence[str], make: Callable[[str], Any],
              scene_kind: Callable[[Any], Hashable], build: Callable[..., Any],
              evaluate: Callable[[list[Any], list[str], Any], list[dict]], on_result: OnResult | None) -> list[dict]:
    """:func:`evaluate_side_by_side`, or :func:`evaluate_agents` with ``evaluate`` called on one agent at a time."""
    if side_by_side:
        return evaluate_side_by_side(specs, make, scene_kind, build, evaluate, on_result)
    return evaluate_agents(specs, make, scene_kind, build, lambda a, spec, sim: evaluate([a], [spec], sim)[0],
                           on_result)


def _tuple(kind: Hashable) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _obs_mode(agent, obs_mode: str | None) -> str:
    return obs_mode or (getattr(agent, "model_card", None) or {}).get("obs_mode") or "noleak"


def evaluate_in_context_agents(specs: Sequence[str], env_id: str = "Go2Walk-v0", *, num_envs: int = 10,
                               seeds: Sequence[int] = (0,), backend: str = "cpu", obs_mode: str | None = None,
                               config: Any = None, max_episode_steps: int | None = None, device: str = "cpu",
                               trust_checkpoint: bool = False, on_result: OnResult | None = None,
                               side_by_side: bool = True, **protocol: Any) -> list[dict]:
    """:func:`~go2bench.eval.protocol.evaluate_in_context` for every agent spec. ``side_by_side`` (default): the
    agents of one observation mode run at once in one scene of A x ``num_envs`` envs
    (:func:`~go2bench.eval.protocol.evaluate_in_context_side_by_side`); else one after the other, one scene
    per observation mode. ``protocol``: its other arguments (episodes, random_score, expert_score, progress,
    video with one agent).
    """
    from go2bench.agents.registry import make_agent
    from go2bench.envs.walk_sim import make_walk_sim
    from go2bench.eval.protocol import evaluate_in_context_side_by_side

    seeds = list(seeds)
    video = protocol.get("video")
    if video and len(specs) > 1:
        raise ValueError("a video is recorded for one agent only; evaluate the agent to film on its own")

    def build(kind, agents=(None,)):
        return make_walk_sim(env_id, num_envs * len(agents), backend, config, kind, max_episode_steps,
                             render=bool(video))

    def evaluate(agents, agent_specs, sim):
        return evaluate_in_context_side_by_side(agents, env_id, seeds=seeds, sim=sim, agent_specs=agent_specs,
                                                device=device, **protocol)

    def make(spec):
        return make_agent(spec, env_id, device=device, seed=seeds[0], trust_checkpoint=trust_checkpoint)

    def kind(agent):
        return _obs_mode(agent, obs_mode)

    return _evaluate(side_by_side, specs, make, kind, build, evaluate, on_result)


def evaluate_family_agents(specs: Sequence[str], env_id: str = "Go2Walk-v0", family: str = "velocity",
                           split: str = "test", *, trials: int | None = None,
                           seeds: Sequence[int] = DEFAULT_FAMILY_SEEDS, backend: str = "cpu",
                           obs_mode: str | None = None, config: Any = None, max_episode_steps: int | None = None,
                           device: str = "cpu", trust_checkpoint: bool = False, on_result: OnResult | None = None,
                           side_by_side: bool = True, fold: Fold | None = None, **protocol: Any) -> list[dict]:
    """:func:`~go2bench.eval.family_protocol.evaluate_family` for every agent spec. ``side_by_side`` (default):
    the agents of one observation mode run at once in one scene of A x trials envs, privileged if any of them
    reads theta (the others read the observation without it)
    (:func:`~go2bench.eval.family_protocol.evaluate_family_side_by_side`); else one after the other, one scene
    per kind. ``protocol``: the protocol's other arguments (episodes, references, reference_cache,
    compute_references, reference_episodes, progress, bootstrap_reps).

    ``fold``: a leave-one-robot-out fold of ``family`` (:meth:`~go2bench.envs.robot_split.Fold.for_family`) whose
    held-out robot's env is ``env_id``: every agent is checked to be a cold start and pinned to the fold's group
    as it is made, before any scene is built (:func:`~go2bench.eval.robot_split_protocol.prepare_agent`), and each
    result gets the fold's ``robot_split`` record (:func:`~go2bench.eval.robot_split_results.add_family_fold_record`)."""
    seeds = list(seeds)
    groups: dict[str, Any] = {}  # spec -> its Vintix group record on the fold
    if fold is not None and (fold.family != family or fold.env_id != env_id):
        raise ValueError(f"the fold holding out {fold.held_out} ({fold.env_id}, {fold.family}) is not the "
                         f"evaluated {env_id} {family}")

    def make(spec):
        agent = make_family_agent(spec, env_id, family, device=device, seed=seeds[0], trust_checkpoint=trust_checkpoint)
        if fold is not None:
            groups[spec] = prepare_agent(agent, fold)
        return agent

    def kind(agent):  # side by side: one scene per observation mode, privileged if any of its agents reads theta
        k = family_scene_kind(agent, env_id, family, obs_mode)
        return k[0] if side_by_side else k

    def build(kind, agents=None):
        if side_by_side:
            mode, privileged = kind, any(family_scene_kind(a, env_id, family, kind)[1] for a in agents)
        else:
            (mode, privileged), agents = kind, [None]
        return make_family_sim(env_id, family, split, trials, seeds, backend, config, mode, max_episode_steps,
                               privileged, copies=len(agents))

    def evaluate(agents, agent_specs, sim):
        results = evaluate_family_side_by_side(agents, env_id, family, split, trials=trials, seeds=seeds,
                                               config=config, sim=sim, agent_specs=agent_specs, device=device,
                                               **protocol)
        if fold is not None:
            for spec, res in zip(agent_specs, results):
                add_family_fold_record(res, fold, groups[spec])
        return results

    return _evaluate(side_by_side, specs, make, kind, build, evaluate, on_result)


def evaluate_robot_split_agents(specs: Sequence[str], split: str, held_out: str, *, episodes: int | None = None,
                                num_envs: int | None = None, seeds: Sequence[int] | None = None,
                                max_episode_steps: int | None = None, backend: str = "cpu",
                                obs_mode: str | None = None, device: str = "cpu", trust_checkpoint: bool = False,
                                bootstrap_reps: int = BOOTSTRAP_REPS, on_result: OnResult | None = None,
                                side_by_side: bool = True, **protocol: Any) -> list[dict]:
    """:func:`~go2bench.eval.robot_split_protocol.evaluate_robot_split` for every agent spec; arguments left
    None are the fold's. ``side_by_side`` (default): the agents of one observation mode at once in one scene
    of A x ``num_envs`` envs (e.g. a fold's Vintix beside its no-context ablation); else one after the other,
    one scene per observation mode."""
    from go2bench.agents.registry import make_agent
    from go2bench.envs.robot_split import load_robot_split
    from go2bench.envs.walk_sim import make_walk_sim
    from go2bench.eval.robot_split_protocol import evaluate_robot_split_side_by_side

    fold = load_robot_split(split).fold(held_out)
    if protocol.get("video") and len(specs) > 1:
        raise ValueError("a video is recorded for one agent only; evaluate the agent to film on its own")

    def build(kind, agents=(None,)):
        return make_walk_sim(fold.env_id, (num_envs or fold.num_envs) * len(agents), backend, None, kind,
                             max_episode_steps or fold.max_episode_steps, render=bool(protocol.get("video")))

    def evaluate(agents, agent_specs, sim):
        return evaluate_robot_split_side_by_side(
            agents, split, fold.held_out, episodes=episodes, num_envs=num_envs, seeds=seeds,
            max_episode_steps=max_episode_steps, bootstrap_reps=bootstrap_reps, sim=sim, agent_specs=agent_specs,
            device=device, **protocol)

    def make(spec):
        return make_agent(spec, fold.env_id, device=device, seed=(seeds or fold.seeds)[0],
                          trust_checkpoint=trust_checkpoint)

    def kind(agent):
        return _obs_mode(agent, obs_mode)

    return _evaluate(side_by_side, specs, make, kind, build, evaluate, on_result)
