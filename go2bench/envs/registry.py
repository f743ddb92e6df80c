"""The task registry: one :class:`TaskSpec` per registered env, the single home of task facts.

Every list of env ids, robots, dataset group and task names, and zoo paths in go2bench derives
from :data:`TASKS`. Adding a 12-joint robot is one robot description (``robots.py``) plus one
entry here. Importing this module is cheap (no torch, no Genesis).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium

__all__ = ["TaskSpec", "TASKS", "ZOO_DIR", "MAX_EPISODE_STEPS", "task_spec", "env_ids", "register_envs",
           "robot_for_env"]

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
MAX_EPISODE_STEPS = 1000


@dataclass(frozen=True)
class TaskSpec:
    """What go2bench knows about one env: its robot and the names its data and teacher go by."""

    env_id: str  # the Gymnasium id, e.g. "Go2Walk-v0"
    robot: str  # a key of go2bench.envs.robots.ROBOTS
    group: str  # the Vintix task group a multitask model keys on (dataset configs' ``group``)
    task_name: str  # the ``task_name`` written into the Vintix dataset files
    dataset: str  # the default dataset folder name, e.g. "go2_ad"
    description: str = ""

    @property
    def zoo_dir(self) -> Path:
        """The folder of this env's shipped teacher (policy + model card)."""
        return ZOO_DIR / self.env_id


TASKS: dict[str, TaskSpec] = {
    spec.env_id: spec
    for spec in (
        TaskSpec("Go2Walk-v0", "go2", "go2_walking", "go2_walking_ad", "go2_ad",
                 "Unitree Go2, URDF shipped with genesis-world"),
        TaskSpec("MiniCheetahWalk-v0", "mini_cheetah", "minicheetah_walking", "minicheetah_walking_ad",
                 "minicheetah_ad", "MIT Mini Cheetah, our own primitive-shape URDF from published parameters"),
        TaskSpec("A1Walk-v0", "a1", "a1_walking", "a1_walking_ad", "a1_ad",
                 "Unitree A1, our own primitive-shape URDF from published parameters"),
        TaskSpec("Go1Walk-v0", "go1", "go1_walking", "go1_walking_ad", "go1_ad",
                 "Unitree Go1, our own primitive-shape URDF from published parameters"),
        TaskSpec("AnymalCWalk-v0", "anymal_c", "anymalc_walking", "anymalc_walking_ad", "anymalc_ad",
                 "ANYbotics ANYmal C, URDF shipped with genesis-world"),
    )
}


def env_ids() -> list[str]:
    """Every registered go2bench env id, in registry order."""
    return list(TASKS)


def task_spec(env_id: str) -> TaskSpec:
    """The spec of a go2bench env id (the "go2bench:" prefix is accepted); a clear error otherwise."""
    key = str(env_id).split(":", 1)[-1]
    try:
        return TASKS[key]
    except KeyError:
        raise ValueError(f"unknown go2bench env {env_id!r}; known: {sorted(TASKS)}") from None


def robot_for_env(env_id: str) -> str:
    """The robot name behind a go2bench env id."""
    return task_spec(env_id).robot


def register_envs() -> None:
    """Register every go2bench env with Gymnasium (idempotent)."""
    for spec in TASKS.values():
        if spec.env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=spec.env_id,
            entry_point="go2bench.envs.walk_env:WalkEnv",
            vector_entry_point="go2bench.envs.walk_vector_env:WalkVectorEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
            kwargs={"robot": spec.robot},
        )
