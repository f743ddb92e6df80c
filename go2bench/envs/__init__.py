"""Gymnasium environments of go2bench, registered cheaply (Genesis is imported only on make).

The task registry (:mod:`go2bench.envs.registry`) is the one home of env ids, robots and names.
"""

from __future__ import annotations

from go2bench.envs.registry import MAX_EPISODE_STEPS, TASKS, register_envs, robot_for_env, task_spec

# env id -> robot name, derived from the registry (kept for callers that only need the robot)
ENV_ROBOTS: dict[str, str] = {env_id: spec.robot for env_id, spec in TASKS.items()}

__all__ = ["ENV_ROBOTS", "MAX_EPISODE_STEPS", "TASKS", "register_envs", "robot_for_env", "task_spec"]
