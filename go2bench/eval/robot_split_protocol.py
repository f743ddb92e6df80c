"""Running the cold-start evaluation of a leave-one-robot-out fold; see :mod:`go2bench.eval.robot_split_results`.

The protocol, the agent checks and the scores are described there; this module only checks the
agent, runs :func:`go2bench.eval.protocol.evaluate_in_context_side_by_side` (several agents at once, or
one) with the fold's parameters and adds the ``robot_split`` block.
"""

from __future__ import annotations

from typing import Any, Sequence

from go2bench.envs.robot_split import Fold, load_robot_split
from go2bench.eval.iqm import BOOTSTRAP_REPS
from go2bench.eval.protocol import evaluate_in_context_side_by_side
from go2bench.eval.robot_split_results import robot_split_block

__all__ = ["prepare_agent", "is_split_protocol", "evaluate_robot_split", "evaluate_robot_split_side_by_side"]


def prepare_agent(agent, fold: Fold) -> dict[str, Any] | None:
    """Check that ``agent`` never saw the held-out robot and pin a Vintix agent to the fold's group.

    Returns the group's record (name, dataset, histories) for the results, or None for agents
    without task groups. ValueError (one line) for a checkpoint that saw the robot or lacks the group
    (a family fold's, :meth:`~go2bench.envs.robot_split.Fold.for_family`, is trained on that family's histories).
    """
    groups = getattr(getattr(agent, "policy", None), "groups", None)
    if not isinstance(groups, dict):
        return None
    seen = [g for g, info in groups.items()
            if info.get("env_id") == fold.env_id or info.get("robot") == fold.held_out]
    if seen:
        raise ValueError(f"the checkpoint's group(s) {seen} were trained on {fold.held_out} ({fold.env_id}), the "
                         f"held-out robot of this {fold.split} fold: not a cold start; train on the fold's "
                         "dataset config (go2bench data robot-split)")
    info = groups.get(fold.group)
    if info is None:
        todo = (f"not trained on this {fold.family} fold's training set: pool the training robots' {fold.family} "
                f"histories with `go2bench data robot-split --split {fold.split} --held-out {fold.held_out} --config "
                f"<their {fold.family} dataset config, e.g. a pipeline run's family/dataset_config_{fold.family}.yaml>` "
                "and train on the dataset config it writes" if fold.family else
                f"train it on the dataset config of `go2bench data robot-split --split {fold.split} --held-out "
                f"{fold.held_out}`")
        raise ValueError(f"the checkpoint has no group {fold.group!r} (it has {sorted(groups)}); {todo}")
    if info.get("dataset") != fold.dataset:
        raise ValueError(f"the checkpoint's group {fold.group!r} was trained on dataset {info.get('dataset')!r}, not "
                         f"on {fold.dataset!r}, the training set of the fold holding out {fold.held_out}")
    agent.pin_group(fold.group)
    return {"name": fold.group, "dataset": info.get("dataset"), "num_histories": info.get("num_histories")}


def is_split_protocol(fold: Fold, chosen: dict[str, Any], warmup_steps: int = 0) -> bool:
    """Whether a run with ``chosen`` settings (None: the fold's) is the fold's own protocol: a cold start (no
    warm-up) with the fold's episodes, envs, seeds and episode length."""
    return not warmup_steps and all(v is None or v == getattr(fold, k) for k, v in chosen.items())


def evaluate_robot_split(agent, split: str, held_out: str, *, episodes: int | None = None,
                         num_envs: int | None = None, seeds: Sequence[int] | None = None,
                         max_episode_steps: int | None = None, bootstrap_reps: int = BOOTSTRAP_REPS,
                         agent_spec: str | None = None, **protocol: Any) -> dict[str, Any]:
    """Evaluate ``agent`` from a cold start on the held-out robot of ``split``'s fold (module docstring).

    ``episodes``/``num_envs``/``seeds``/``max_episode_steps`` default to the fold's; ``protocol``
    goes to :func:`~go2bench.eval.protocol.evaluate_in_context` (backend, obs_mode, sim, random_score,
    expert_score, device, progress, video, ...). Returns the results dict.
    """
    return evaluate_robot_split_side_by_side([agent], split, held_out, episodes=episodes, num_envs=num_envs,
                                             seeds=seeds, max_episode_steps=max_episode_steps,
                                             bootstrap_reps=bootstrap_reps, agent_specs=[agent_spec], **protocol)[0]


def evaluate_robot_split_side_by_side(agents: Sequence[Any], split: str, held_out: str, *,
                                      episodes: int | None = None, num_envs: int | None = None,
                                      seeds: Sequence[int] | None = None, max_episode_steps: int | None = None,
                                      bootstrap_reps: int = BOOTSTRAP_REPS,
                                      agent_specs: Sequence[str | None] | None = None,
                                      **protocol: Any) -> list[dict[str, Any]]:
    """:func:`evaluate_robot_split` of several agents at once, side by side in one scene of A x ``num_envs``
    envs (:func:`~go2bench.eval.protocol.evaluate_in_context_side_by_side`): e.g. a fold's Vintix beside its
    no-context ablation. Every agent is checked (a cold start) before the scene is built; one results dict
    per agent, each equal to its own evaluation's. ``sim``: an existing scene, its envs shared equally."""
    fold = load_robot_split(split).fold(held_out)
    chosen = {"episodes": episodes, "num_envs": num_envs, "seeds": None if seeds is None else tuple(seeds),
              "max_episode_steps": max_episode_steps}
    sim = protocol.get("sim")
    if sim is not None:
        chosen["num_envs"], chosen["max_episode_steps"] = sim.num_envs // max(len(agents), 1), sim.max_episode_steps
    as_split = is_split_protocol(fold, chosen, protocol.get("warmup_steps", 0))
    run = {k: (getattr(fold, k) if v is None else v) for k, v in chosen.items()}
    groups = [prepare_agent(agent, fold) for agent in agents]
    results = evaluate_in_context_side_by_side(
        agents, fold.env_id, episodes=run["episodes"], num_envs=run["num_envs"], seeds=run["seeds"],
        max_episode_steps=run["max_episode_steps"], agent_specs=agent_specs, **protocol)
    for res, group in zip(results, groups):
        res["config"].update(robots_split=fold.split, held_out=fold.held_out)
        res["robot_split"] = robot_split_block(res, fold, as_split, group, bootstrap_reps)
    return results
