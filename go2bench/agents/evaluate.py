"""Minimal batched evaluation of an agent on a Walk env (extended by the evaluation issue).

``episodes`` in all are split into fixed per-env quotas before the run (env i counts its first
``episodes // num_envs`` episodes, plus one for the first ``episodes % num_envs`` envs). Envs keep
stepping after their quota (the batch steps together) but are no longer counted, so short
(fallen) episodes are not over-represented the way "the first K episodes to finish" would be.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from go2bench.envs import robot_for_env
from go2bench.envs import spaces as S
from go2bench.envs.walk_sim import WalkSimulation, make_walk_sim


def normalized_score(mean_return: float, random_score: float | None, expert_score: float | None) -> float | None:
    """(mean_return - random_score) / (expert_score - random_score); None without reference scores."""
    if random_score is None or expert_score is None:
        return None
    if expert_score == random_score:
        raise ValueError(f"expert_score and random_score are equal ({expert_score}); no scale to normalise with")
    return (mean_return - random_score) / (expert_score - random_score)


def _reference_scores(agent, env_id: str, random_score, expert_score) -> tuple[float | None, float | None]:
    if random_score is not None and expert_score is not None:
        return random_score, expert_score
    card = getattr(agent, "model_card", None) or {}
    if card.get("random_score") is None or card.get("expert_score") is None:
        from go2bench.agents.teacher import read_model_card, zoo_path

        card = read_model_card(zoo_path(env_id)) or {}
    rs = random_score if random_score is not None else card.get("random_score")
    es = expert_score if expert_score is not None else card.get("expert_score")
    return rs, es


def evaluate(
    agent,
    env_id: str = "Go2Walk-v0",
    episodes: int = 64,
    num_envs: int = 64,
    seed: int = 0,
    backend: str = "cpu",
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    sim: WalkSimulation | None = None,
    random_score: float | None = None,
    expert_score: float | None = None,
) -> dict[str, Any]:
    """Run ``agent`` until ``episodes`` episodes are done; returns per-episode and summary numbers.

    ``agent.act(obs (N, obs_dim)) -> (N, 12)``. ``sim``: an existing simulation to use (it is
    reseeded and reset; ``num_envs``/``backend``/``obs_mode``/``config`` are then ignored).
    ``obs_mode`` None takes the agent's model card's, else the config's. Reference scores for
    ``normalized_score`` come from the arguments, else the agent's model card, else the shipped
    teacher's card of ``env_id``.
    """
    if episodes < 1:
        raise ValueError("episodes must be at least 1")
    card = getattr(agent, "model_card", None) or {}
    if sim is not None:
        if sim.robot_description.name != robot_for_env(env_id):
            raise ValueError(f"sim holds robot {sim.robot_description.name!r}, not the robot of {env_id}")
        return _evaluate(agent, env_id, episodes, seed, sim, random_score, expert_score)
    sim = make_walk_sim(env_id, num_envs, backend, config, obs_mode or card.get("obs_mode"), max_episode_steps)
    try:
        return _evaluate(agent, env_id, episodes, seed, sim, random_score, expert_score)
    finally:
        sim.close()


def _evaluate(agent, env_id, episodes, seed, sim, random_score, expert_score) -> dict[str, Any]:
    n, dev = sim.num_envs, sim.device
    agent_dim = getattr(agent, "obs_dim", None)
    if agent_dim is not None and agent_dim != sim.obs_dim:
        raise ValueError(
            f"the agent expects {agent_dim}-dim observations but the env gives {sim.obs_dim} "
            f"(obs_mode {sim.config.obs_mode!r}); pass the obs_mode it was trained with"
        )

    quota = np.full(n, episodes // n, dtype=np.int64)
    quota[: episodes % n] += 1
    counted = np.zeros(n, dtype=np.int64)
    records: list[tuple[int, int, float, int, bool, bool, float]] = []

    if hasattr(agent, "reset"):
        agent.reset(seed)
    sim.seed(seed)
    obs = sim.reset()
    ep_ret = torch.zeros(n, dtype=torch.float64, device=dev)
    ep_len = torch.zeros(n, dtype=torch.int64, device=dev)
    ep_err = torch.zeros(n, dtype=torch.float64, device=dev)
    t0 = time.perf_counter()
    steps = 0
    max_steps = int(quota.max()) * sim.max_episode_steps + 1  # every episode ends by its time limit
    while (counted < quota).any():
        if steps >= max_steps:
            raise RuntimeError("evaluation did not finish within the time limit of every episode")
        actions = S.to_action_tensor(agent.act(obs), (n, S.ACTION_DIM), dev)
        command_x = sim.commands[:, 0].clone()  # the command the agent acted on
        r = sim.step(actions)
        steps += 1
        ep_ret += r.reward
        ep_len += 1
        ep_err += (sim.base_lin_vel[:, 0] - command_x).abs()
        done = r.terminated | r.truncated
        if bool(done.any()):
            idx = done.nonzero().flatten()
            rows = torch.stack(
                (ep_ret[idx], ep_len[idx].double(), ep_err[idx], r.terminated[idx].double(), r.diverged[idx].double()),
                dim=1,
            ).cpu().numpy()
            for i, (ret, length, err, fell, div) in zip(idx.tolist(), rows):
                if counted[i] < quota[i]:
                    records.append((i, int(counted[i]), float(ret), int(length), bool(fell), bool(div), float(err)))
                    counted[i] += 1
            ep_ret[idx] = 0.0
            ep_len[idx] = 0
            ep_err[idx] = 0.0
            obs = sim.reset(done)
        else:
            obs = r.obs
    wall = time.perf_counter() - t0

    records.sort()  # by env, then episode: independent of completion order
    returns = [r[2] for r in records]
    lengths = [r[3] for r in records]
    mean_return = float(np.mean(returns))
    rs, es = _reference_scores(agent, env_id, random_score, expert_score)
    return {
        "agent": getattr(agent, "name", type(agent).__name__),
        "env": env_id,
        "episodes": len(records),
        "num_envs": n,
        "seed": seed,
        "backend": sim.backend,
        "obs_mode": sim.config.obs_mode,
        "max_episode_steps": sim.max_episode_steps,
        "returns": returns,
        "lengths": lengths,
        "falls": [r[4] for r in records],
        "tracking_errors": [r[6] / r[3] for r in records],
        "env_index": [r[0] for r in records],
        "diverged": int(sum(r[5] for r in records)),
        "mean_return": mean_return,
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "fall_rate": float(np.mean([r[4] for r in records])),
        "mean_tracking_error": float(sum(r[6] for r in records) / max(1, sum(lengths))),
        "random_score": rs,
        "expert_score": es,
        "normalized_score": normalized_score(mean_return, rs, es),
        "env_steps": steps * n,
        "wall_s": round(wall, 3),
    }


def save_results(results: dict[str, Any], path: str | Path) -> None:
    import json

    Path(path).write_text(json.dumps(results, indent=2))
