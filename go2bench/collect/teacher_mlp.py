"""The teacher's deterministic action as a bare chain of ``addmm`` and in-place activations.

Why: the collector calls the teacher once per step, and on a GPU that call is bound by its launches and
by Python: SB3's modules add a ``Flatten``, a ``Sequential``, a module call per layer (hooks, ``forward``
dispatch) and ``linear``'s own ``t()`` per layer (:func:`go2bench.agents.sb3_actor.deterministic_actor`
computes the same thing through those modules).  Here each ``Linear`` is the ``addmm(bias, x, W.t())``
that ``torch.nn.functional.linear`` itself calls for 2-D input, with ``W.t()`` taken once, and each
activation runs in place on the fresh ``addmm`` output (the same kernel): the same ops on the same
values, so the same bits on any device, in 7 ops for a 3-layer net instead of 11 plus the module calls.
A policy of any other shape keeps :func:`~go2bench.agents.sb3_actor.deterministic_actor`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from go2bench.agents.sb3_actor import deterministic_actor

__all__ = ["teacher_mlp"]

# in-place forms of the activations SB3 policies use (same kernels as the modules' forward)
_INPLACE: dict[type, Callable[[nn.Module], Callable[[torch.Tensor], torch.Tensor]]] = {
    nn.ELU: lambda m: lambda x: F.elu(x, m.alpha, inplace=True),
    nn.Tanh: lambda m: torch.tanh_,
    nn.ReLU: lambda m: torch.relu_,
}


def _plan(policy) -> list | None:
    """[(W.t(), bias, activation or None)] of the actor's path, or None when it is not a plain MLP."""
    from stable_baselines3.common.distributions import DiagGaussianDistribution
    from stable_baselines3.common.torch_layers import FlattenExtractor
    from gymnasium import spaces

    # a Box observation: SB3's preprocessing is .float() (a no-op on float32) and the flatten one of 2-D input
    if (type(getattr(policy, "action_dist", None)) is not DiagGaussianDistribution
            or type(getattr(policy, "pi_features_extractor", None)) is not FlattenExtractor
            or not isinstance(getattr(policy, "observation_space", None), spaces.Box)
            or len(policy.observation_space.shape) != 1):
        return None
    body = getattr(getattr(policy, "mlp_extractor", None), "policy_net", None)
    modules = [*body, policy.action_net] if isinstance(body, nn.Sequential) else []
    if type(getattr(policy, "action_net", None)) is not nn.Linear or not modules:
        return None
    plan = []
    for m in modules:
        if type(m) is nn.Linear and m.bias is not None:
            plan.append([m.weight.detach().t(), m.bias.detach(), None])
        elif type(m) in _INPLACE and plan and plan[-1][2] is None:
            plan[-1][2] = _INPLACE[type(m)](m)
        else:
            return None
    return plan


def teacher_mlp(policy) -> Callable[[torch.Tensor], torch.Tensor]:
    """``obs (B, D) float32 -> action (B, A)`` bit-equal to ``policy._predict(obs, deterministic=True)``; call
    it under ``torch.no_grad()``.  The weights are read at this call: build it again after loading others."""
    plan = _plan(policy)
    if plan is None:
        return deterministic_actor(policy)

    def actor(obs: torch.Tensor) -> torch.Tensor:
        x = obs
        for wt, b, act in plan:
            x = torch.addmm(b, x, wt)
            if act is not None:
                x = act(x)
        return x

    return actor
