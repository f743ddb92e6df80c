"""The random baseline: uniform actions in [-1, 1], seeded, with the batched agent protocol."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from go2bench.envs.registry import robot_for_env
from go2bench.envs.robots import NUM_JOINTS, get_robot


class RandomAgent:
    """Uniform random actions in [-1, 1]; the same seed gives the same action sequence."""

    name = "random"
    model_card: dict[str, Any] | None = None
    obs_dim: int | None = None  # acts on any observation layout

    def __init__(self, seed: int | None = 0, action_dim: int = NUM_JOINTS) -> None:
        self.seed = seed
        self.action_dim = action_dim
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray | torch.Tensor, prev_reward=None, episode_start=None) -> np.ndarray:
        n = int(obs.shape[0])
        return self.rng.uniform(-1.0, 1.0, size=(n, self.action_dim)).astype(np.float32)

    def reset(self, num_envs: int | None = None, env_id: str | None = None, seed: int | None = None) -> None:
        """Restart the action stream (from ``seed``, or from the constructor's seed).

        Protocol signature ``reset(num_envs, env_id, seed)``; ``env_id`` sets the action size to
        that robot's joint count.
        """
        if env_id is not None:
            self.action_dim = get_robot(robot_for_env(env_id)).num_joints
        self.rng = np.random.default_rng(self.seed if seed is None else seed)
