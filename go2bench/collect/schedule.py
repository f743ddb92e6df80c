"""Noise schedule and action blending for Algorithm-Distillation learning histories.

Vintix learns in-context improvement from *learning histories*: trajectories in which a
teacher's actions are blended with uniform noise whose weight ``eps`` fades from 1 (pure
noise) to a floor ``1 - max_perf`` as the history advances.  A history of ``N`` steps thus
looks like an agent that gets better over time, without having to record a real RL run.

Schedule (n = cumulative env steps of the history across episodes)::

    eps(n) = (1 - (n / ((1 - f) N)) ** p) ** (1 / p)   for n <= (1 - f) N, else 0
    eps(n) = max(eps(n), 1 - max_perf)

``p`` shapes the decay (smaller p drops faster), the last fraction ``f`` of the history is
noise-free and ``max_perf < 1`` keeps a noise floor.  Both functions are vectorised so one
call serves every history of a batched scene (numpy or torch, CPU or GPU).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseSchedule", "blend_actions", "blend_unchecked"]


def _is_real(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


@dataclass(frozen=True)
class NoiseSchedule:
    """The (p, f, max_perf) schedule of one dataset; ``steps_per_history`` is N."""

    p: float = 0.6
    f: float = 0.05
    max_perf: float = 1.0
    steps_per_history: int = 1_000_000

    def __post_init__(self):
        for name in ("p", "f", "max_perf"):
            v = getattr(self, name)
            if not _is_real(v) or not math.isfinite(float(v)):
                raise ValueError(f"NoiseSchedule.{name} must be a finite number, got {v!r}")
        if not self.p > 0:
            raise ValueError(f"NoiseSchedule.p must be > 0, got {self.p!r}")
        if not 0 <= self.f < 1:
            raise ValueError(f"NoiseSchedule.f must satisfy 0 <= f < 1, got {self.f!r}")
        if not 0 < self.max_perf <= 1:
            raise ValueError(f"NoiseSchedule.max_perf must satisfy 0 < max_perf <= 1, got {self.max_perf!r}")
        n = self.steps_per_history
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"NoiseSchedule.steps_per_history (N) must be an integer >= 1, got {n!r}")

    @property
    def noise_free_from(self) -> float:
        """Step count (1 - f) N from which the schedule is 0 (before the max_perf floor)."""
        return (1.0 - self.f) * self.steps_per_history

    @property
    def floor(self) -> float:
        return 1.0 - self.max_perf

    def eps(self, n):
        """Noise weight for cumulative step counts ``n`` (scalar, numpy array or torch tensor).

        Returns the same kind as the input: a torch tensor (on n's device; n's floating dtype,
        float32 for integer input) or a numpy float64 array (0-d for scalars). Negative n is
        treated as 0.
        """
        torch = sys.modules.get("torch")  # a tensor argument means torch is loaded; configs need not load it
        if torch is not None and isinstance(n, torch.Tensor):
            dtype = n.dtype if n.is_floating_point() else torch.float32
            # compute in float64 so torch and numpy agree to rounding of the output dtype
            x = n.to(torch.float64).clamp(min=0.0) / self.noise_free_from
            base = (1.0 - x.clamp(max=1.0).pow(self.p)).clamp(min=0.0)
            e = torch.where(x <= 1.0, base.pow(1.0 / self.p), torch.zeros_like(base))
            return e.clamp(min=self.floor).to(dtype)
        x = np.maximum(np.asarray(n, dtype=np.float64), 0.0) / self.noise_free_from
        base = np.maximum(1.0 - np.minimum(x, 1.0) ** self.p, 0.0)
        e = np.where(x <= 1.0, base ** (1.0 / self.p), 0.0)
        return np.maximum(e, self.floor)


def blend_actions(eps, teacher_actions, noise_uniform01, low, high):
    """Blend teacher actions with uniform noise: ``clip(eps*u + (1-eps)*a, low, high)``.

    eps: (B,) noise weight per history; teacher_actions, noise_uniform01: (B, A) with the
    noise drawn from U[0, 1) by the caller (so the RNG stream is the caller's); low, high:
    per-joint action bounds, shape (A,) or scalars. ``u = low + (high - low) * noise``.
    All torch; the result has teacher_actions' dtype and device.  The blend is ``torch.lerp``,
    exact at both ends (eps = 0 gives a, eps = 1 gives u) and one kernel per step of the collector.
    """
    import torch

    a = teacher_actions
    if not isinstance(a, torch.Tensor):
        raise TypeError("blend_actions expects torch tensors")
    if a.dim() != 2:
        raise ValueError(f"teacher_actions must be (B, A), got shape {tuple(a.shape)}")
    if tuple(noise_uniform01.shape) != tuple(a.shape):
        raise ValueError(
            f"noise_uniform01 shape {tuple(noise_uniform01.shape)} != teacher_actions shape {tuple(a.shape)}"
        )
    e = torch.as_tensor(eps, dtype=a.dtype, device=a.device)
    if e.dim() == 0:
        e = e.expand(a.shape[0])
    if e.shape != (a.shape[0],):
        raise ValueError(f"eps must have shape ({a.shape[0]},), got {tuple(e.shape)}")
    lo = torch.as_tensor(low, dtype=a.dtype, device=a.device).expand(a.shape[1])
    hi = torch.as_tensor(high, dtype=a.dtype, device=a.device).expand(a.shape[1])
    if bool((lo > hi).any()):
        raise ValueError("blend_actions: low must be <= high for every joint")
    u = lo + (hi - lo) * noise_uniform01.to(dtype=a.dtype, device=a.device)
    return blend_unchecked(e, a, u, lo, hi)


def blend_unchecked(eps, teacher_actions, u, low, high):
    """:func:`blend_actions` past its checks, given the noise action ``u = low + (high - low) * noise``
    (computed for a whole chunk at once): no host sync, for a loop that checked its bounds once.

    eps (B,), teacher_actions and u (B, A), low and high (A,): tensors of one dtype and device.
    """
    import torch

    return torch.clamp(torch.lerp(teacher_actions, u, eps.unsqueeze(1)), min=low, max=high)
