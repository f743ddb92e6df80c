"""The teacher's deterministic action without a host sync (collection, evaluation).

SB3's ``policy._predict(obs, deterministic=True)`` builds a ``torch.distributions.Normal`` and
returns its mean; the distribution validates its arguments, which reads values back to the host
(two syncs per step on a GPU) and costs a handful of small ops on the CPU.  The mean is the action
head's output, so :func:`deterministic_actor` computes just that: the same modules on the same
input, hence the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["deterministic_actor"]


def deterministic_actor(policy) -> Callable[[torch.Tensor], torch.Tensor]:
    """``obs -> action`` equal to ``policy._predict(obs, deterministic=True)`` for SB3's Gaussian
    ``ActorCriticPolicy``; any other policy gets ``_predict`` itself."""
    from stable_baselines3.common.distributions import DiagGaussianDistribution

    if type(getattr(policy, "action_dist", None)) is not DiagGaussianDistribution:
        return lambda obs: policy._predict(obs, deterministic=True)

    def actor(obs: torch.Tensor) -> torch.Tensor:
        features = policy.extract_features(obs, policy.pi_features_extractor)
        return policy.action_net(policy.mlp_extractor.forward_actor(features))

    return actor
