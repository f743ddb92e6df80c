"""Vintix as a batched in-context agent (the protocol of :mod:`go2bench.agents.protocol`).

:class:`VintixAgent` adapts a ``go2bench.vintix.inference.VintixPolicy`` (KV-cached, batched over
envs): ``reset`` starts empty contexts for the env's task group, ``act`` forwards
(obs, prev_reward, episode_start). ``no_context=True`` is the ablation: before acting, the context
of every env whose episode starts is cleared (``policy.clear_context(episode_start)``), so the
model only ever sees the current episode. Everything else is the same code path.

By default ``reset`` uses the group trained on the env (``policy.group_for_env``); :meth:`VintixAgent.pin_group`
fixes the group instead, for a robot the model never saw (the leave-one-robot-out evaluation runs the held-out
robot through the group of its pooled training robots, :mod:`go2bench.eval.robot_split`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "zoo" / "vintix" / "vintix.pt"

__all__ = ["VintixAgent", "load_vintix_agent", "DEFAULT_CHECKPOINT"]


class VintixAgent:
    """In-context agent over a VintixPolicy; keeps each env's context across its episodes."""

    def __init__(self, policy: Any, no_context: bool = False, checkpoint: str | None = None,
                 name: str | None = None) -> None:
        self.policy = policy
        self.no_context = bool(no_context)
        self.checkpoint = checkpoint
        self.name = name or ("vintix-nocontext" if self.no_context else "vintix")
        self.group: str | None = None
        self.pinned_group: str | None = None
        self.obs_dim: int | None = None
        self.act_dim: int | None = None
        self.num_envs: int | None = None
        self.model_card = None

    def pin_group(self, group: str) -> None:
        """Use ``group`` on every env from now on, whatever env it is (a KeyError names the known groups)."""
        if group not in self.policy.groups:
            raise KeyError(f"the checkpoint has no group {group!r}; it has {sorted(self.policy.groups)}")
        self.pinned_group = group

    def reset(self, num_envs: int, env_id: str, seed: int | None = None) -> None:
        """Cold start: empty contexts for ``num_envs`` envs of ``env_id``'s task group (or the pinned group)."""
        self.group = self.pinned_group or self.policy.group_for_env(env_id)
        info = self.policy.groups.get(self.group, {})
        self.obs_dim = info.get("obs_dim")
        self.act_dim = info.get("act_dim")
        self.num_envs = int(num_envs)
        if seed is not None:
            torch.manual_seed(int(seed))  # for stochastic sampling, if the policy samples
        self.policy.reset(self.num_envs, self.group)

    def act(self, obs, prev_reward, episode_start) -> torch.Tensor:
        if self.group is None:
            raise RuntimeError("call reset(num_envs, env_id) before act()")
        dev = getattr(self.policy, "device", None)  # the model's device, when it says
        obs = torch.as_tensor(obs, dtype=torch.float32, device=dev)
        prev_reward = torch.as_tensor(prev_reward, dtype=torch.float32, device=obs.device)
        episode_start = torch.as_tensor(episode_start, dtype=torch.bool, device=obs.device)
        if obs.dim() != 2 or obs.shape[0] != self.num_envs:
            raise ValueError(f"obs must have shape ({self.num_envs}, obs_dim); got {tuple(obs.shape)}")
        if self.obs_dim is not None and obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"the Vintix group {self.group!r} expects {self.obs_dim}-dim observations; got {obs.shape[1]}"
            )
        if self.no_context and bool(episode_start.any()):
            self.policy.clear_context(episode_start)
        with torch.no_grad():
            return self.policy.act(obs, prev_reward, episode_start)


def load_vintix_agent(checkpoint: str | Path | None = None, device: str = "cpu", no_context: bool = False) -> VintixAgent:
    """A :class:`VintixAgent` from a checkpoint (default: the shipped ``go2bench/zoo/vintix/vintix.pt``)."""
    if checkpoint is None:
        if not DEFAULT_CHECKPOINT.exists():
            raise FileNotFoundError(
                f"no Vintix checkpoint given and none shipped at {DEFAULT_CHECKPOINT}; pass one as "
                f"--agent vintix:PATH/TO/ckpt.pt (train one with `go2bench train`)"
            )
        checkpoint = DEFAULT_CHECKPOINT
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"Vintix checkpoint {path} does not exist")
    try:
        from go2bench.vintix.inference import VintixPolicy
    except ImportError as e:
        raise ImportError(f"the vintix agent needs go2bench.vintix.inference.VintixPolicy: {e}") from e
    policy = VintixPolicy.load(str(path), device=device)
    return VintixAgent(policy, no_context=no_context, checkpoint=str(path))

