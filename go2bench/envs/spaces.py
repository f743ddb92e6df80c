"""Spaces, input checks and construction shared by the single and the vector Walk env."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import gymnasium as gym
from gymnasium import spaces

from go2bench.core.config import ConfigError
from go2bench.envs import tasks as T
from go2bench.envs.families import FAMILIES, get_family
from go2bench.envs.robots import RobotDescription, get_robot
from go2bench.envs.tasks import TaskAssignment, check_compatible
from go2bench.envs.walk_config import WalkConfig, make_walk_config

RENDER_MODES = ("rgb_array",)


def observation_layout(robot: RobotDescription, obs_mode: str,
                       privileged_family: str | None = None) -> list[tuple[str, int]]:
    """The observation's blocks in order, (name, size): the one definition of the layout.

    "noleak" is what the original workflow's agents saw; "full" adds the last action. A
    ``privileged_family`` appends its theta normalised to [-1, 1] as the block "task"
    (``families.ThetaLayout.normalise``; the privileged teacher's input, never an agent's).
    In the velocity family the "commands" block is there but zero.
    """
    j = robot.num_joints
    layout = [("base_ang_vel", 3), ("projected_gravity", 3), ("commands", 3), ("dof_pos", j), ("dof_vel", j)]
    if obs_mode == "full":
        layout.append(("last_action", j))
    elif obs_mode != "noleak":
        raise ValueError(f"obs_mode must be 'noleak' or 'full', got {obs_mode!r}")
    if privileged_family is not None:
        layout.append(("task", get_family(privileged_family).layout(robot).dim))
    return layout


def observation_dim(robot: RobotDescription, obs_mode: str, privileged_family: str | None = None) -> int:
    """Size of the observation vector (33 for a 12-joint robot in "noleak", 45 in "full", + theta if privileged)."""
    return sum(size for _, size in observation_layout(robot, obs_mode, privileged_family))


def observation_space(obs_dim: int) -> spaces.Box:
    return spaces.Box(low=-np.inf, high=np.inf, shape=(obs_dim,), dtype=np.float32)


def action_space(robot: RobotDescription) -> spaces.Box:
    """Joint-position offsets in units of the action scale, bounded by the robot's joint limits."""
    low, high = robot.action_bounds()
    return spaces.Box(low=np.array(low, np.float32), high=np.array(high, np.float32), dtype=np.float32)


def resolve(
    robot: str | RobotDescription, config: WalkConfig | dict | str | Path | None, overrides: dict[str, Any]
) -> tuple[RobotDescription, WalkConfig]:
    """The robot description and the task config from env keyword arguments."""
    rd = robot if isinstance(robot, RobotDescription) else get_robot(robot)
    return rd, make_walk_config(config, **overrides)


def resolve_tasks(robot: RobotDescription, config: WalkConfig, num_envs: int, family: str | None, tasks: Any,
                  resample_tasks: str = "trial", privileged: bool = False) -> TaskAssignment | None:
    """Check the family arguments of an env before any scene is built; the tasks to assign, or None.

    Without a family, ``tasks``, ``privileged`` and ``resample_tasks`` other than the default are errors.
    """
    if family is None:
        if tasks is not None or privileged or resample_tasks != "trial":
            raise ConfigError("task, tasks, resample_tasks and privileged need a task family: pass family="
                              f"{sorted(FAMILIES)}")
        return None
    if not isinstance(privileged, bool):
        raise ConfigError(f"privileged must be True or False, got {privileged!r}")
    get_family(family)
    check_compatible(family, config)
    return T.resolve(family, robot, tasks, num_envs, resample_tasks)


def check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")


def render(sim, render_mode: str | None) -> np.ndarray | None:
    """A frame of env 0 in ``render_mode``; a warning and None when the env has no render mode."""
    if render_mode is None:
        gym.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
        return None
    return sim.render()


def to_action_tensor(actions: Any, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Validate actions and return them as a float32 tensor on ``device``.

    Wrong shapes and non-finite values are errors (they would silently corrupt the simulation);
    finite values outside the action space are clipped by the simulation, as Gymnasium's
    ClipAction would do.
    """
    if isinstance(actions, torch.Tensor):
        arr = actions.detach().to(dtype=torch.float32)
    else:
        try:
            arr = np.asarray(actions, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ValueError(f"actions must be numeric with shape {shape}: {e}") from None
    if tuple(arr.shape) != shape:
        raise ValueError(f"actions have shape {tuple(arr.shape)}; expected {shape} (one action per joint)")
    # A tensor: one reduction (a float64 sum of float32 values cannot overflow, so it is finite exactly
    # when every action is), fewer torch ops than an elementwise test; an array: NumPy's test is cheapest.
    if isinstance(arr, torch.Tensor):
        ok = math.isfinite(float(arr.sum(dtype=torch.float64)))
    else:
        ok = bool(np.isfinite(arr).all())
    if not ok:
        finite = np.isfinite(arr.cpu().numpy() if isinstance(arr, torch.Tensor) else arr)
        bad = np.argwhere(~finite)[0].tolist()
        raise ValueError(f"actions contain NaN or inf (first at index {bad}); actions must be finite")
    return arr.to(device) if isinstance(arr, torch.Tensor) else torch.from_numpy(arr).to(device)
