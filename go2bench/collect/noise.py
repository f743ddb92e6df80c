"""Counter-based uniform noise: u(seed, history, step, joint) in [0, 1), the same on any device.

A learning history must be reproducible step by step whatever happens around it: which other
histories share the batch (``--env-ids``), where a run was interrupted and resumed, CPU or GPU.
A stateful generator cannot give that without a Python loop over histories, so the noise is a
pure function of its coordinates: a 32-bit integer hash (Chris Wellons' "lowbias32" mixer)
chained over (seed, history, step, joint), computed batched in torch int64 arithmetic that never
overflows (multiplications are split into 16-bit halves).  24 bits of the hash give a float32
exactly, so CPU and GPU produce identical noise.
"""

from __future__ import annotations

import torch

__all__ = ["hash32", "uniform_noise", "history_seed"]

_MASK = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for 0 <= x < 2**32 without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK


def hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 mixer on int64 tensors holding values in [0, 2**32)."""
    x = x & _MASK
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def history_seed(seed: int, history: torch.Tensor | int) -> torch.Tensor:
    """The 32-bit key of history ``history`` of a dataset collected with ``seed``."""
    h = torch.as_tensor(history, dtype=torch.int64)
    s = hash32(torch.tensor(int(seed) & _MASK, dtype=torch.int64, device=h.device) ^ _GOLDEN)
    return hash32(s ^ hash32(h + 1))


def uniform_noise(keys: torch.Tensor, steps: torch.Tensor, dim: int) -> torch.Tensor:
    """U[0, 1) float32 noise of shape ``steps.shape + (dim,)``.

    keys: per-history keys from :func:`history_seed`, broadcastable to ``steps``; steps: the
    cumulative step index within each history (int64, >= 0).
    """
    k = hash32(keys ^ hash32(steps & _MASK) ^ _mul32(steps >> 32, _GOLDEN))
    joints = torch.arange(dim, dtype=torch.int64, device=steps.device)
    h = hash32(k.unsqueeze(-1) ^ _mul32(joints + 1, _GOLDEN))
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))
