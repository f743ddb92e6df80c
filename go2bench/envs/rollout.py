"""A short batched rollout with a summary: the smoke test a new user runs first."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np

import go2bench  # noqa: F401  (registers the envs)


def rollout_summary(
    env_id: str, agent: str = "random", num_envs: int = 16, steps: int = 200, backend: str = "cpu", seed: int = 0
) -> dict[str, Any]:
    """Roll out ``agent`` ("random" or "zero") in ``num_envs`` batched envs for ``steps`` steps."""
    t0 = time.perf_counter()
    env = gym.make_vec(env_id, num_envs=num_envs, backend=backend)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    rewards = np.zeros(num_envs)
    ended = falls = 0
    heights = []
    t1 = time.perf_counter()
    for _ in range(steps):
        if agent == "random":
            actions = rng.uniform(-1.0, 1.0, size=(num_envs, 12)).astype(np.float32)
        else:
            actions = np.zeros((num_envs, 12), dtype=np.float32)
        _, reward, terminated, truncated, _ = env.step(actions)
        rewards += reward
        ended += int((terminated | truncated).sum())
        falls += int(terminated.sum())
        heights.append(float(env.unwrapped.sim.base_pos[:, 2].mean()))
    step_s = time.perf_counter() - t1
    env.close()
    return {
        "env": env_id,
        "agent": agent,
        "num_envs": num_envs,
        "steps": steps,
        "backend": backend,
        "seed": seed,
        "build_s": round(build_s, 2),
        "env_steps_per_s": round(num_envs * steps / step_s, 1),
        "mean_reward_per_step": float(rewards.mean() / steps),
        "episodes_ended": ended,
        "falls": falls,
        "mean_base_height": float(np.mean(heights)),
    }
