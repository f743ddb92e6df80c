"""A rollout buffer of torch tensors on the policy's device, for SB3's PPO.

Why: SB3's :class:`~stable_baselines3.common.buffers.RolloutBuffer` keeps numpy arrays; every
``add`` copies the step's values and log-probabilities to the host and every minibatch copies its
rows back to the device. With the simulation and the policy on one GPU, that is a round trip per
step and per minibatch for nothing. This buffer has the same interface (``reset``, ``add``,
``compute_returns_and_advantage``, ``get``), the same GAE(lambda) in float32, and never leaves the
device, except for ``values``/``returns``: SB3's ``PPO.train`` reads them once per update for its
``explained_variance`` log (numpy), so they are numpy copies made on that read.

Passed to SB3 through its own extension point, ``PPO(..., rollout_buffer_class=DeviceRolloutBuffer)``.
"""

from __future__ import annotations

from typing import Any, Generator

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.type_aliases import RolloutBufferSamples


class DeviceRolloutBuffer(RolloutBuffer):
    """``n_steps`` x ``n_envs`` transitions as (n_steps, n_envs, ...) tensors on ``device``.

    ``add`` takes tensors (or arrays) of any device; ``get`` yields minibatches drawn with one
    ``torch.randperm`` on the device (seeded by SB3's ``set_random_seed``, which seeds torch).
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Space, action_space: spaces.Space,
                 device: torch.device | str = "auto", gae_lambda: float = 1.0, gamma: float = 0.99,
                 n_envs: int = 1) -> None:
        if not isinstance(observation_space, spaces.Box) or not isinstance(action_space, spaces.Box):
            raise TypeError("DeviceRolloutBuffer holds Box observations and Box actions only")
        self._storage: dict[str, torch.Tensor] = {}
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)

    def reset(self) -> None:
        if not self._storage:  # allocated once, overwritten by every rollout
            t, n, f32 = self.buffer_size, self.n_envs, dict(device=self.device, dtype=torch.float32)
            self._storage = {
                "observations": torch.zeros((t, n, *self.obs_shape), **f32),
                "actions": torch.zeros((t, n, self.action_dim), **f32),
                **{k: torch.zeros((t, n), **f32)
                   for k in ("rewards", "episode_starts", "values", "log_probs", "advantages", "returns")},
            }
        self.pos = 0
        self.full = False
        self.generator_ready = False

    # The tensors, by the names SB3's RolloutBuffer uses for its arrays.
    observations = property(lambda self: self._storage["observations"])
    actions = property(lambda self: self._storage["actions"])
    rewards = property(lambda self: self._storage["rewards"])
    episode_starts = property(lambda self: self._storage["episode_starts"])
    log_probs = property(lambda self: self._storage["log_probs"])
    advantages = property(lambda self: self._storage["advantages"])

    @property
    def values(self) -> np.ndarray:
        """A host copy (what ``PPO.train`` hands to ``explained_variance``); :meth:`tensor` for the device one."""
        return self._storage["values"].cpu().numpy()

    @property
    def returns(self) -> np.ndarray:
        """A host copy, like :attr:`values`."""
        return self._storage["returns"].cpu().numpy()

    def tensor(self, name: str) -> torch.Tensor:
        """The stored (n_steps, n_envs, ...) tensor ``name`` on the device."""
        return self._storage[name]

    def _as(self, x: Any) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device, dtype=torch.float32)

    def add(self, obs: Any, action: Any, reward: Any, episode_start: Any, value: Any, log_prob: Any) -> None:
        """Store one step of all envs (same arguments as SB3's ``RolloutBuffer.add``)."""
        if self.full:
            raise RuntimeError(f"the rollout buffer already holds {self.buffer_size} steps; reset() it first")
        s, p, n = self._storage, self.pos, self.n_envs
        s["observations"][p].copy_(self._as(obs).reshape(n, *self.obs_shape))
        s["actions"][p].copy_(self._as(action).reshape(n, self.action_dim))
        s["rewards"][p].copy_(self._as(reward).reshape(n))
        s["episode_starts"][p].copy_(self._as(episode_start).reshape(n))
        s["values"][p].copy_(self._as(value).reshape(n))
        s["log_probs"][p].copy_(self._as(log_prob).reshape(n))
        self.pos += 1
        self.full = self.pos == self.buffer_size

    def compute_returns_and_advantage(self, last_values: Any, dones: Any) -> None:
        """GAE(lambda) advantages and TD(lambda) returns, as SB3 computes them, on the device.

        ``last_values``: V of the observation after the last step (n_envs or (n_envs, 1));
        ``dones``: whether the last step ended each env's episode (its value is then not used).
        """
        s = self._storage
        rewards, values, starts = s["rewards"], s["values"], s["episode_starts"]
        next_values = self._as(last_values).reshape(self.n_envs)
        next_non_terminal = 1.0 - self._as(dones).reshape(self.n_envs)
        last_gae = torch.zeros(self.n_envs, device=self.device, dtype=torch.float32)
        gl = self.gamma * self.gae_lambda
        for step in reversed(range(self.buffer_size)):
            if step < self.buffer_size - 1:
                next_non_terminal = 1.0 - starts[step + 1]
                next_values = values[step + 1]
            delta = rewards[step] + self.gamma * next_values * next_non_terminal - values[step]
            last_gae = delta + gl * next_non_terminal * last_gae
            s["advantages"][step] = last_gae
        torch.add(s["advantages"], values, out=s["returns"])

    def get(self, batch_size: int | None = None) -> Generator[RolloutBufferSamples, None, None]:
        """Minibatches of ``batch_size`` rows (all rows if None) in a random order, as device tensors."""
        if not self.full:
            raise RuntimeError("the rollout buffer is not full yet")
        total = self.buffer_size * self.n_envs
        batch_size = total if batch_size is None else batch_size
        indices = torch.randperm(total, device=self.device)
        start = 0
        while start < total:
            yield self._get_samples(indices[start:start + batch_size])
            start += batch_size

    def _get_samples(self, batch_inds: Any, env: Any = None) -> RolloutBufferSamples:
        s = self._storage
        idx = torch.as_tensor(batch_inds, device=self.device)
        flat = lambda name: s[name].reshape(self.buffer_size * self.n_envs, *s[name].shape[2:])  # noqa: E731
        return RolloutBufferSamples(
            flat("observations")[idx], flat("actions")[idx], flat("values")[idx], flat("log_probs")[idx],
            flat("advantages")[idx], flat("returns")[idx],
        )
