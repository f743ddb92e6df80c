"""The evaluation protocol of task families (``go2bench eval --family F --split S``).

* **Trials.** The thetas are the suite's ``split`` (all of them, or the first ``trials``); every
  (theta, seed) pair is one trial. All trials run in one batched scene, one env each, laid out
  seed-major: env ``i = s * M + j`` runs theta ``j`` (of M) with seed ``seeds[s]``
  (``tasks=[(split, j), ...]``). The agent is cold-started once (``agent.reset(num_envs, env_id,
  seeds[0])``: every env starts with an empty context) and each env then runs ``episodes`` (K)
  consecutive episodes with its theta held (the simulation holds theta for a trial; the protocol
  checks that every episode of a trial ran with the trial's theta and raises otherwise).
* **Common random numbers.** The scene is seeded with ``seeds[0]`` and env i's trial counter is set
  to its seed, so every random draw of env i (commands, pushes, randomisation: see
  :mod:`go2bench.envs.streams`) is a function of (seeds[0], i, its seed, episode): the same for
  every agent evaluated with the same arguments, whatever the other envs do or when they fall.
* **Scores.** Returns are normalised per theta by the random agent's and the privileged teacher's
  returns on that theta in episodes of the same length (:mod:`go2bench.eval.family_reference`).
  Aggregates are interquartile means over trials with 95% stratified bootstrap intervals
  (:mod:`go2bench.eval.iqm`): per episode index, zero-shot (episode 1), final (mean of the last
  3 episodes of each trial) and area under the curve (mean over the K episodes of each trial).
* **Agents.** An agent whose observation size is the privileged one (theta appended, e.g. the
  privileged teacher) gets a privileged scene; every other agent sees the plain observation.
* **Side by side.** Agents of one observation mode can run at once (:func:`evaluate_family_side_by_side`):
  one scene of A x n envs, the layout above tiled per agent, env ``a * n + i`` keyed as env i
  (:mod:`go2bench.eval.side_by_side`); each agent's results equal its own evaluation's. The scene is
  privileged if any agent reads theta; the others are given the observation without the theta block
  (appended last, so the columns before it are the plain observation's numbers).

The results dict is :func:`go2bench.eval.family_results.build_family_results`'s (format
``go2bench.eval/2``).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from go2bench.agents.protocol import as_batched_agent
from go2bench.envs import robot_for_env
from go2bench.envs import spaces as S
from go2bench.envs.families import get_family
from go2bench.envs.robots import get_robot
from go2bench.envs.suites import load_suite
from go2bench.envs.walk_config import make_walk_config
from go2bench.envs.walk_sim import WalkSimulation, make_walk_sim
from go2bench.eval.family_reference import DEFAULT_CACHE, resolve_family_references
from go2bench.eval.family_results import FamilyRun, build_family_results
from go2bench.eval.iqm import BOOTSTRAP_REPS
from go2bench.eval.side_by_side import run_side_by_side

__all__ = ["DEFAULT_FAMILY_SEEDS", "evaluate_family", "evaluate_family_side_by_side", "trial_layout", "wants_privileged", "make_family_agent",
           "family_tasks", "family_scene_kind", "make_family_sim"]

DEFAULT_FAMILY_SEEDS = (0, 1, 2)


def make_family_agent(spec: str, env_id: str, family: str | None, device: str = "cpu", seed: int = 0,
                      trust_checkpoint: bool = False):
    """:func:`go2bench.agents.registry.make_agent`, passing ``family=`` when the registry takes it."""
    from go2bench.agents.registry import make_agent

    kwargs: dict[str, Any] = {"device": device, "seed": seed, "trust_checkpoint": trust_checkpoint}
    if family is not None and "family" in inspect.signature(make_agent).parameters:
        kwargs["family"] = family
    return make_agent(spec, env_id, **kwargs)


def trial_layout(num_thetas: int, seeds: Sequence[int]) -> tuple[list[int], list[int]]:
    """(theta position, seed) of every env of the scene, seed-major: env ``s * M + j`` runs theta j, seed s."""
    return [j for _ in seeds for j in range(num_thetas)], [int(s) for s in seeds for _ in range(num_thetas)]


def family_tasks(env_id: str, family: str, split: str, trials: int | None = None):
    """(suite, its first ``trials`` tasks of ``split``, all when None) of ``family`` for the robot of ``env_id``."""
    suite = load_suite(get_family(family).name, robot_for_env(env_id))
    tasks = list(suite.split(split))
    if trials is not None:
        if not 1 <= trials <= len(tasks):
            raise ValueError(f"trials must be between 1 and the {len(tasks)} {split} thetas of {suite.name}, "
                             f"got {trials}")
        tasks = tasks[:trials]
    return suite, tasks


def family_scene_kind(agent, env_id: str, family: str, obs_mode: str | None = None) -> tuple[str, bool]:
    """(obs_mode, privileged) of the scene ``agent`` is evaluated in: agents of one kind can share a scene."""
    card = getattr(agent, "model_card", None) or {}
    obs_mode = obs_mode or card.get("obs_mode") or "noleak"
    return obs_mode, wants_privileged(agent, env_id, family, obs_mode)


def make_family_sim(env_id: str, family: str, split: str, trials: int | None, seeds: Sequence[int],
                    backend: str = "cpu", config: Any = None, obs_mode: str = "noleak",
                    max_episode_steps: int | None = None, privileged: bool = False,
                    copies: int = 1) -> WalkSimulation:
    """The scene :func:`evaluate_family` builds for these arguments (one env per trial), to share between agents;
    ``copies``: that layout tiled for agents side by side (:func:`evaluate_family_side_by_side`)."""
    _, tasks = family_tasks(env_id, family, split, trials)
    theta_pos, _ = trial_layout(len(tasks), seeds)
    specs = [(split, tasks[j].index) for j in theta_pos] * copies
    return make_walk_sim(env_id, len(specs), backend, config, obs_mode, max_episode_steps, family=family,
                         tasks=specs, privileged=privileged)


def wants_privileged(agent, env_id: str, family: str, obs_mode: str) -> bool:
    """Whether ``agent`` reads the privileged observation (theta appended) of ``family``: by its ``obs_dim``."""
    dim = getattr(agent, "obs_dim", None)
    robot = get_robot(robot_for_env(env_id))
    plain, privileged = S.observation_dim(robot, obs_mode), S.observation_dim(robot, obs_mode, family)
    return dim is not None and dim == privileged and dim != plain


def evaluate_family(agent, env_id: str = "Go2Walk-v0", family: str = "velocity", split: str = "test",
                    trials: int | None = None, episodes: int = 10, seeds: Sequence[int] = DEFAULT_FAMILY_SEEDS,
                    backend: str = "cpu", obs_mode: str | None = None, config: Any = None,
                    max_episode_steps: int | None = None, sim: WalkSimulation | None = None,
                    agent_spec: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The family protocol (module docstring); returns the results dict of ``go2bench eval --family``.

    ``sim``: an existing simulation of ``family`` with exactly one env per trial (its tasks are
    reassigned; ``backend``/``obs_mode``/``config``/``max_episode_steps`` are then its own).
    ``kwargs``: :func:`evaluate_family_side_by_side`'s (references, reference_cache, ...).
    """
    return evaluate_family_side_by_side([agent], env_id, family, split, trials, episodes, seeds, backend, obs_mode,
                                        config, max_episode_steps, sim, agent_specs=[agent_spec], **kwargs)[0]


def evaluate_family_side_by_side(
    agents: Sequence[Any],
    env_id: str = "Go2Walk-v0",
    family: str = "velocity",
    split: str = "test",
    trials: int | None = None,
    episodes: int = 10,
    seeds: Sequence[int] = DEFAULT_FAMILY_SEEDS,
    backend: str = "cpu",
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    sim: WalkSimulation | None = None,
    references: str | Path | Mapping | None = None,
    reference_cache: str | Path | None = DEFAULT_CACHE,
    compute_references: bool = True,
    reference_episodes: int = 3,
    agent_specs: Sequence[str | None] | None = None,
    device: str | None = None,
    progress: bool = True,
    bootstrap_reps: int = BOOTSTRAP_REPS,
    bootstrap_seed: int = 0,
    warmup_steps: int = 0,
) -> list[dict[str, Any]]:
    """:func:`evaluate_family` of A agents of one obs_mode at once: one scene of A x (trials x seeds) envs,
    agent a on envs ``a * n + i`` (:mod:`go2bench.eval.side_by_side`); each agent's results equal those of
    its own :func:`evaluate_family` call. ``sim``: an existing simulation of ``family`` with A envs per trial.

    ``references``: reference returns given by the caller (a mapping or JSON file, see
    :mod:`go2bench.eval.family_reference`); missing ones come from the cache, the model cards, or are
    measured (``compute_references``). ``warmup_steps``: before its K counted episodes each trial plays
    unscored episodes (theta held) until it has taken that many steps (:func:`~go2bench.eval.episodes.run_episodes`).
    """
    if episodes < 1:
        raise ValueError("episodes must be at least 1")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    agents = [as_batched_agent(a) for a in agents]
    specs_of = list(agent_specs) if agent_specs is not None else [None] * len(agents)
    if not agents or len(specs_of) != len(agents):
        raise ValueError("give at least one agent, and one agent spec per agent")
    fam = get_family(family)
    robot = robot_for_env(env_id)
    suite, tasks = family_tasks(env_id, fam.name, split, trials)
    theta_pos, trial_seeds = trial_layout(len(tasks), seeds)
    specs = [(split, tasks[j].index) for j in theta_pos] * len(agents)
    if sim is not None:
        _check_sim(sim, env_id, fam.name, len(specs))
        obs_mode, max_episode_steps = sim.config.obs_mode, sim.max_episode_steps
    kinds = [family_scene_kind(a, env_id, fam.name, obs_mode) for a in agents]
    if len({mode for mode, _ in kinds}) != 1:
        raise ValueError(f"agents side by side must share one obs_mode; got {sorted({m for m, _ in kinds})}")
    obs_mode = kinds[0][0]
    reads_theta = [p for _, p in kinds]
    if sim is not None and any(reads_theta) and not sim.privileged:
        raise ValueError("an agent reads the privileged observation but the simulation was built with "
                         "privileged=False")
    # one scene for every agent: privileged if any agent reads theta; the others read the observation without
    # the theta block appended at its end (the same numbers as a plain scene's)
    privileged = sim.privileged if sim is not None else any(reads_theta)
    plain_dim = S.observation_dim(get_robot(robot), obs_mode)
    obs_dims = [plain_dim if privileged and not p else None for p in reads_theta]
    steps = max_episode_steps or make_walk_config(config).max_episode_steps
    task_ids = [t.id for t in tasks]
    refs = resolve_family_references(
        env_id, fam.name, suite.name, task_ids, [(split, t.index) for t in tasks], steps,
        config=config if sim is None else sim.config, given=references, cache_dir=reference_cache,
        compute=compute_references, episodes=reference_episodes, backend=backend if sim is None else sim.backend,
        device=device or "cpu")
    for task_id, lo, hi in zip(task_ids, *refs.arrays(task_ids)):  # usable references, checked before running
        if not hi > lo:
            raise ValueError(f"{task_id}: the privileged teacher's reference return {hi} does not exceed the random "
                             f"agent's {lo} ({refs.sources[task_id]}); no scale to normalise this theta with: the "
                             f"{env_id} {fam.name} privileged teacher fails on it (retrain it: docs/teachers.md)")

    own_sim = sim is None
    if sim is None:
        sim = make_family_sim(env_id, fam.name, split, trials, seeds, backend, config, obs_mode, max_episode_steps,
                              privileged, copies=len(agents))
    else:
        from go2bench.envs.tasks import resolve

        sim.tasks.assign(resolve(fam.name, sim.robot_description, specs, len(specs)))
    try:
        from tqdm.auto import tqdm

        names = ", ".join(s or a.name for s, a in zip(specs_of, agents))
        bar = tqdm(total=len(specs) * episodes, desc=f"eval {names} {env_id} {fam.name}/{split}",
                   unit="ep", disable=not progress, leave=False)
        t0 = time.perf_counter()
        runs = run_side_by_side(agents, env_id, sim, episodes, seeds[0], progress=bar, trial_keys=trial_seeds,
                                obs_dims=obs_dims, warmup_steps=warmup_steps)
        bar.close()
        wall = time.perf_counter() - t0
        data = [_collect(run, tasks, seeds, episodes, sim) for run in runs]
        meta = {"backend": sim.backend, "device": device, "max_episode_steps": sim.max_episode_steps,
                "obs_mode": sim.config.obs_mode, "walk_config": sim.config.to_dict(),
                "wall_s": wall, "suite": suite.name, "robot": robot, "warmup_steps": int(warmup_steps)}
    finally:
        if own_sim:
            sim.close()
    if meta["max_episode_steps"] != refs.max_episode_steps:
        raise ValueError(f"reference returns are for {refs.max_episode_steps}-step episodes, the simulation runs "
                         f"{meta['max_episode_steps']}")
    return [build_family_results(FamilyRun(
        agent=agent, agent_spec=spec, env_id=env_id, family=fam.name, split=split, tasks=tasks, seeds=seeds,
        episodes=episodes, references=refs, meta={**meta, "steps": run["steps"], "privileged": p}, **d),
        bootstrap_reps, bootstrap_seed)
        for agent, spec, run, d, p in zip(agents, specs_of, runs, data, reads_theta)]


def _check_sim(sim, env_id: str, family: str, n: int) -> None:
    if sim.robot_description.name != robot_for_env(env_id):
        raise ValueError(f"sim holds robot {sim.robot_description.name!r}, not the robot of {env_id}")
    if getattr(sim, "family", None) != family:
        raise ValueError(f"the simulation was built for family {getattr(sim, 'family', None)!r}, not {family!r}")
    if sim.num_envs != n:
        raise ValueError(f"the simulation has {sim.num_envs} envs; this evaluation needs one per trial and agent "
                         f"({n})")


def _collect(run: dict[str, Any], tasks, seeds: Sequence[int], episodes: int, sim) -> dict[str, Any]:
    """The run's records as (seeds, thetas, episodes) arrays; checks that theta was held within every trial."""
    S_, M, K = len(seeds), len(tasks), episodes
    shape = (S_, M, K)
    out = {k: np.zeros(shape) for k in ("returns", "lengths")}
    out.update(falls=np.zeros(shape, bool), diverged=np.zeros(shape, bool), tracking=np.zeros(shape + (3,)))
    names = run["reward_term_names"]
    terms = np.zeros(shape + (len(names),))
    layout = sim.tasks.layout
    for r in run["records"]:
        s, j = divmod(r.env, M)
        task_id, theta = r.task
        expected = tasks[j].vector(layout)
        if task_id != tasks[j].id or not np.allclose(theta, expected, rtol=0, atol=1e-9):
            raise RuntimeError(f"env {r.env} ran episode {r.episode} of its trial with task {task_id} {theta}, "
                               f"not its trial's {tasks[j].id} {expected}: theta was not held")
        idx = (s, j, r.episode)
        out["returns"][idx], out["lengths"][idx] = r.ret, r.length
        out["falls"][idx], out["diverged"][idx] = r.fell, r.diverged
        out["tracking"][idx] = np.asarray(r.tracking_error_xyz) / max(r.length, 1)
        terms[idx] = r.reward_terms
    out["reward_terms"] = {name: terms[..., k] for k, name in enumerate(names)}
    return out
