"""Gymnasium environments of go2bench, registered cheaply (Genesis is imported only on make)."""

from __future__ import annotations

import gymnasium

# env id -> robot name; one implementation, parameterised by the robot description.
ENV_ROBOTS: dict[str, str] = {
    "Go2Walk-v0": "go2",
    "MiniCheetahWalk-v0": "mini_cheetah",
}
MAX_EPISODE_STEPS = 1000


def register_envs() -> None:
    """Register every go2bench env with Gymnasium (idempotent)."""
    for env_id, robot in ENV_ROBOTS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="go2bench.envs.walk_env:WalkEnv",
            vector_entry_point="go2bench.envs.walk_vector_env:WalkVectorEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
            kwargs={"robot": robot},
        )


def robot_for_env(env_id: str) -> str:
    """The robot name behind a go2bench env id (accepts the "go2bench:" prefix)."""
    key = env_id.split(":", 1)[-1]
    if key not in ENV_ROBOTS:
        raise ValueError(f"unknown go2bench env {env_id!r}; known: {sorted(ENV_ROBOTS)}")
    return ENV_ROBOTS[key]
