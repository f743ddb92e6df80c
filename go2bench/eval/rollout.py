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
    """Roll out ``agent`` ("random", "zero" or "teacher") in ``num_envs`` batched envs for ``steps`` steps."""
    from go2bench.agents.random import RandomAgent
    from go2bench.agents.teacher import load_teacher

    policy = {"random": lambda: RandomAgent(seed), "teacher": lambda: load_teacher(env_id), "zero": lambda: None}
    if agent not in policy:
        raise ValueError(f"agent must be one of {sorted(policy)}, got {agent!r}")
    actor = policy[agent]()
    if actor is not None:
        actor.reset(num_envs, env_id, seed)  # the protocol's cold start: the random agent takes the robot's joints
    t0 = time.perf_counter()
    env = gym.make_vec(env_id, num_envs=num_envs, backend=backend)
    build_s = time.perf_counter() - t0
    action_shape = env.action_space.shape  # (num_envs, joints of the robot)
    obs, _ = env.reset(seed=seed)
    rewards = np.zeros(num_envs)
    ended = falls = 0
    heights, speeds = [], []
    t1 = time.perf_counter()
    for _ in range(steps):
        actions = np.zeros(action_shape, dtype=np.float32) if actor is None else actor.act(obs)
        obs, reward, terminated, truncated, _ = env.step(actions)
        rewards += reward
        ended += int((terminated | truncated).sum())
        falls += int(terminated.sum())
        heights.append(float(env.unwrapped.sim.base_pos[:, 2].mean()))
        speeds.append(float(env.unwrapped.sim.base_lin_vel[:, 0].mean()))
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
        "mean_forward_velocity": float(np.mean(speeds[len(speeds) // 2 :])),  # second half: after start-up
    }
