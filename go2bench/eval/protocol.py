"""The in-context protocol of ``go2bench eval`` on a Walk env, for one agent or several side by side.

Protocol of :func:`evaluate_in_context` (what ``go2bench eval`` runs):

* for each seed, one batched simulation of N envs is reseeded (``sim.seed(seed)`` before the reset,
  so commands, randomisation and pushes are the same for every agent) and the agent is cold-started
  (``agent.reset(N, env_id, seed)``);
* each env runs K consecutive episodes; an in-context agent keeps its context across the episodes
  of an env (nothing is reset between episodes except the simulation of that env);
* the batch steps together: envs that finished their K episodes keep stepping but are not counted;
  the run stops when every env has K episodes;
* agents see ``act(obs, prev_reward, episode_start)`` (see :mod:`go2bench.agents.protocol`).

The statistics (mean return, its 95% CI with one env of one seed as the unit, the normalised score
and the per-episode-index curve) are :func:`go2bench.eval.stats.summarize`'s; the normalisation
uses :func:`go2bench.eval.reference.reference_scores` (by default the shipped teacher's model card,
whose scores are full-episode returns: with a shorter ``max_episode_steps`` the normalised score is
not comparable to the full task's, and the results record ``max_episode_steps``). The results dict
is :func:`go2bench.eval.results.build_results`'s schema.

Side by side (:func:`evaluate_in_context_side_by_side`, what ``go2bench eval --agent A --agent B``
runs): agents of one observation mode share one scene of A x N envs, agent a acting on envs
``a * N .. a * N + N - 1`` keyed as envs 0..N-1 (:mod:`go2bench.eval.side_by_side`), reseeded once
per seed; every agent's results equal its own evaluation's, in 1/A of the batch steps.
:func:`evaluate_in_context` is its one-agent case. The episode loop is :mod:`go2bench.eval.episodes`
(re-exported here).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from go2bench.agents.protocol import as_batched_agent
from go2bench.envs import robot_for_env
from go2bench.envs.walk_sim import WalkSimulation, make_walk_sim
from go2bench.eval.episodes import EpisodeRecord, agent_code, check_obs_dim, run_episodes
from go2bench.eval.reference import reference_scores
from go2bench.eval.results import build_results
from go2bench.eval.side_by_side import run_side_by_side

__all__ = ["EpisodeRecord", "run_episodes", "evaluate_in_context", "evaluate_in_context_side_by_side",
           "check_obs_dim", "agent_code"]


def evaluate_in_context(
    agent,
    env_id: str = "Go2Walk-v0",
    episodes: int = 10,
    num_envs: int = 10,
    seeds: Sequence[int] = (0,),
    backend: str = "cpu",
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    sim: WalkSimulation | None = None,
    random_score: float | None = None,
    expert_score: float | None = None,
    agent_spec: str | None = None,
    device: str | None = None,
    progress: bool = True,
    video: str | Path | None = None,
    video_max_frames: int = 500,
    warmup_steps: int = 0,
) -> dict[str, Any]:
    """The ``go2bench eval`` protocol (see the module docstring): K episodes per env, per seed.

    ``agent``: a :class:`~go2bench.agents.protocol.BatchedAgent` (or an ``act(obs)`` agent).
    ``sim``: an existing simulation (reseeded and reset; ``num_envs``/``backend``/``obs_mode``/
    ``config``/``max_episode_steps`` are then its own). Reference scores: the arguments, else the
    shipped teacher's model card of ``env_id``. ``video``: an .mp4 or .gif path for env 0 of the first seed
    (at most ``video_max_frames`` frames, 50 fps; mp4 needs imageio-ffmpeg; EGL rendering).
    ``warmup_steps``: before its K counted episodes each env plays unscored episodes until it has taken that
    many steps (an in-context agent keeps them in its context; :func:`~go2bench.eval.episodes.run_episodes`).
    Returns the results dict written by ``go2bench eval`` (:mod:`go2bench.eval.results`).
    """
    return evaluate_in_context_side_by_side(
        [agent], env_id, episodes, num_envs, seeds, backend, obs_mode, config, max_episode_steps, sim, random_score,
        expert_score, agent_specs=[agent_spec], device=device, progress=progress, video=video,
        video_max_frames=video_max_frames, warmup_steps=warmup_steps)[0]


def evaluate_in_context_side_by_side(
    agents: Sequence[Any],
    env_id: str = "Go2Walk-v0",
    episodes: int = 10,
    num_envs: int = 10,
    seeds: Sequence[int] = (0,),
    backend: str = "cpu",
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    sim: WalkSimulation | None = None,
    random_score: float | None = None,
    expert_score: float | None = None,
    agent_specs: Sequence[str | None] | None = None,
    device: str | None = None,
    progress: bool = True,
    video: str | Path | None = None,
    video_max_frames: int = 500,
    warmup_steps: int = 0,
) -> list[dict[str, Any]]:
    """:func:`evaluate_in_context` of A agents of one observation mode at once: one scene of A x ``num_envs``
    envs (``sim``: an existing one, its envs shared equally), agent a on envs ``a * N + i``; one results dict
    per agent, each equal to that of its own :func:`evaluate_in_context` call. ``wall_s`` is the scene's.
    A video (one agent only) films env 0 of the first seed."""
    if episodes < 1:
        raise ValueError("episodes must be at least 1")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("at least one seed is needed")
    agents = [as_batched_agent(a) for a in agents]
    specs_of = list(agent_specs) if agent_specs is not None else [None] * len(agents)
    if not agents or len(specs_of) != len(agents):
        raise ValueError("give at least one agent, and one agent spec per agent")
    if video and len(agents) > 1:
        raise ValueError("a video is recorded for one agent only; evaluate the agent to film on its own")
    writer = _video_writer(video) if video else None
    own_sim = sim is None
    if sim is None:
        # an agent without an obs_mode of its own (no model card) takes the others'
        modes = {m for m in (obs_mode or (getattr(a, "model_card", None) or {}).get("obs_mode") for a in agents) if m}
        if len(modes) > 1:
            raise ValueError(f"agents side by side must share one obs_mode; got {sorted(modes)}")
        sim = make_walk_sim(env_id, num_envs * len(agents), backend, config, next(iter(modes), None),
                            max_episode_steps, render=writer is not None)
    elif sim.robot_description.name != robot_for_env(env_id):
        raise ValueError(f"sim holds robot {sim.robot_description.name!r}, not the robot of {env_id}")
    try:
        from tqdm.auto import tqdm

        A = len(agents)
        if sim.num_envs % A:
            raise ValueError(f"the simulation's {sim.num_envs} envs cannot be shared equally by {A} agents")
        n = sim.num_envs // A
        names = ", ".join(s or a.name for s, a in zip(specs_of, agents))
        bar = tqdm(total=A * n * episodes * len(seeds), desc=f"eval {names} {env_id}", unit="ep",
                   disable=not progress, leave=False)
        per_seed: list[list[dict[str, Any]]] = [[] for _ in agents]
        term_sums: list[dict[str, float]] = [{} for _ in agents]
        frames = [] if writer is not None else None
        t0 = time.perf_counter()
        for i, seed in enumerate(seeds):  # the scene is reseeded per seed, every agent cold-started
            runs = run_side_by_side(agents, env_id, sim, episodes, seed, progress=bar,
                                    frames=frames if i == 0 else None, max_frames=video_max_frames,
                                    warmup_steps=warmup_steps)
            for a, run in enumerate(runs):
                per_seed[a].append(_seed_entry(seed, run, (n, episodes)))
                for j, name in enumerate(run["reward_term_names"]):
                    term_sums[a][name] = term_sums[a].get(name, 0.0) + sum(r.reward_terms[j] for r in run["records"])
        bar.close()
        wall = time.perf_counter() - t0
        if writer is not None:
            writer(frames)
        counted = n * episodes * len(seeds)
        refs = reference_scores(env_id, random_score, expert_score)
        return [build_results(
            agent, env_id, sim, episodes, seeds, per_seed[a], refs,
            reward_terms={name: total / counted for name, total in term_sums[a].items()}, agent_spec=specs_of[a],
            device=device, wall_s=wall, video=str(video) if video else None, num_envs=n, warmup_steps=warmup_steps)
            for a, agent in enumerate(agents)]
    finally:
        if own_sim:
            sim.close()


def _seed_entry(seed: int, run: dict[str, Any], shape: tuple[int, int]) -> dict[str, Any]:
    """One seed's episodes as envs x episodes arrays (the ``per_seed`` entry of the results)."""
    rec = run["records"]
    n = shape[0]
    return {
        "seed": seed,
        "returns": np.array([r.ret for r in rec]).reshape(shape).tolist(),
        "lengths": np.array([r.length for r in rec]).reshape(shape).tolist(),
        "falls": np.array([r.fell for r in rec]).reshape(shape).tolist(),
        "tracking_errors": np.array([r.tracking_error_sum / r.length for r in rec]).reshape(shape).tolist(),
        "diverged": int(sum(r.diverged for r in rec)),
        "env_steps": run["steps"] * n,
        "wall_s": round(run["wall_s"], 3),
        "warmup_episodes": [int(x) for x in run["warmup_episodes"]],
    }


def _video_writer(path: str | Path):
    """A function writing frames to ``path`` (.mp4 or .gif, 50 fps); a clear error now if it cannot be written."""
    from go2bench.eval.video_io import check_clip_path, write_clip

    check_clip_path(path)

    def write(frames: list) -> None:
        if not frames:
            raise RuntimeError("no frames were rendered for the video")
        write_clip(frames, path, fps=50)

    return write
