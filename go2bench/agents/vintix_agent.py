"""Vintix as a batched in-context agent (the protocol of :mod:`go2bench.agents.protocol`).

:class:`VintixAgent` adapts a ``go2bench.vintix.inference.VintixPolicy`` (KV-cached, batched over
envs): ``reset`` starts empty contexts for the env's task group, ``act`` forwards
(obs, prev_reward, episode_start). Two ways to see only the current episode:

* a checkpoint trained with ``--context episode`` (``policy.context == "episode"``): the
  well-posed no-context baseline, ``vintix-episodic``; its policy forgets at every episode start
  by itself, as in its training windows;
* ``no_context=True`` on a checkpoint trained on whole histories, ``vintix-nocontext``: a
  diagnostic, not a baseline. Its context is cleared at episode starts
  (``policy.clear_context(episode_start)``), which that model reads as the start of a noisy history.

By default ``reset`` uses the group trained on the env (``policy.group_for_env``); :meth:`VintixAgent.pin_group`
fixes the group instead, for a robot the model never saw (the leave-one-robot-out evaluation runs the held-out
robot through the group of its pooled training robots, :mod:`go2bench.eval.robot_split_protocol`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "zoo" / "vintix" / "vintix.pt"

__all__ = ["VintixAgent", "load_vintix_agent", "DEFAULT_CHECKPOINT"]

# registry name of each agent kind: (trained context, cleared at episode starts by the agent)
AGENT_NAMES = {("history", False): "vintix", ("history", True): "vintix-nocontext",
               ("episode", False): "vintix-episodic", ("episode", True): "vintix-episodic"}


class VintixAgent:
    """In-context agent over a VintixPolicy; keeps each env's context across its episodes."""

    def __init__(self, policy: Any, no_context: bool = False, checkpoint: str | None = None,
                 name: str | None = None) -> None:
        self.policy = policy
        self.no_context = bool(no_context)
        self.context = getattr(policy, "context", "history")  # what its training windows spanned
        self.checkpoint = checkpoint
        self.name = name or AGENT_NAMES[(self.context, self.no_context)]
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


def family_checkpoint(env_id: str, family: str, context: str = "history") -> Path:
    """Where the zoo ships the Vintix of ``env_id``'s ``family`` trained with ``context`` (it may not exist):
    ``go2bench/zoo/<env>/<family>/vintix/vintix.pt`` ("history") or ``.../vintix-episodic/vintix.pt`` ("episode")."""
    kind = "vintix" if context == "history" else "vintix-episodic"
    return DEFAULT_CHECKPOINT.parent.parent / env_id / family / kind / "vintix.pt"


def load_vintix_agent(checkpoint: str | Path | None = None, device: str = "cpu", no_context: bool = False,
                      context: str | None = None, cuda_graph: bool | None = None,
                      decode: str = "cache") -> VintixAgent:
    """A :class:`VintixAgent` from a checkpoint (default: the shipped ``go2bench/zoo/vintix/vintix.pt``).

    ``context``: the training context the checkpoint must have ("history" or "episode"); a
    checkpoint of the other kind is refused naming the agent to evaluate it as. ``cuda_graph``: see
    :class:`~go2bench.vintix.inference.VintixPolicy` (default: on for a CUDA device). ``decode``: "cache" (the
    sliding-window KV cache), "window" (:class:`~go2bench.vintix.recompute.WindowPolicy`: the cache rebuilt from
    the last half window every half window, so it stays a training window) or "recompute"
    (:class:`~go2bench.vintix.recompute.RecomputePolicy`: a full forward per env per step).
    """
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
    if decode == "cache":
        policy = VintixPolicy.load(str(path), device=device, cuda_graph=cuda_graph)
    elif decode in ("window", "recompute"):
        from go2bench.vintix.recompute import RecomputePolicy, WindowPolicy

        policy = (WindowPolicy if decode == "window" else RecomputePolicy).load(str(path), device=device)
    else:
        raise ValueError(f"decode must be 'cache', 'window' or 'recompute', got {decode!r}")
    trained = getattr(policy, "context", "history")
    if context is not None and trained != context:
        raise ValueError(
            f"{path} was trained with context {trained!r}, not {context!r}: evaluate it as "
            + ("vintix-episodic:PATH (the no-context baseline)" if trained == "episode" else
               "vintix:PATH (or vintix-nocontext:PATH, the diagnostic)")
            + "; `go2bench train --context episode` trains the baseline")
    return VintixAgent(policy, no_context=no_context, checkpoint=str(path))

