"""Counter-based random numbers: a draw is a pure function of (seed, stream, env, trial, episode, k).

A stateful generator shared by a batch of envs hands out numbers in the order envs ask for them,
so env 3's command in its 5th episode depends on how many other envs fell before it. Here every
draw is a hash of its key instead: env ``i`` sees the same commands, pushes, randomised dynamics,
initial poses and task draws in episode ``e`` of trial ``t`` whatever the other envs of the batch do and
whenever it gets there. That gives evaluations common random numbers across agents.

The hash is Chris Wellons' "lowbias32" integer mixer, written so that it runs unchanged on Python
ints (the suite generator, :mod:`go2bench.envs.suites`) and on int64 torch tensors (the batched
simulation, on any device), with every intermediate value below 2**63: results are exact and do
not depend on the torch or NumPy version. Uniforms have 24 random bits, exact in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the functions that need it: suites import this module without it
    import torch

_M32 = 0xFFFFFFFF

# Stream ids: one per kind of draw, so that e.g. commands and pushes never share numbers.
COMMAND, PUSH, FRICTION, MASS, STRENGTH, TASK, SUITE, INIT_POSE = 1, 2, 3, 4, 5, 6, 7, 8


def _mul32(x, c: int):
    """(x * c) mod 2**32 for 0 <= x < 2**32, keeping every product below 2**49."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def mix32(x):
    """A bijective 32-bit integer hash (lowbias32) of an int or an int64 tensor in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def key(seed: int, stream: int) -> int:
    """The 32-bit root of one stream of one seed (any Python int; taken modulo 2**64)."""
    s = int(seed) % (1 << 64)
    return mix32(mix32(mix32(s & _M32) ^ (s >> 32)) ^ stream)


def chain(h, *counters):
    """Fold counters (ints or int64 tensors, taken modulo 2**32) into the hash ``h``."""
    for c in counters:
        h = mix32(h ^ (c & _M32))
    return h


def to_unit(h):
    """A hash in [0, 2**32) to a uniform number in [0, 1) with 24 bits (exact in float32)."""
    if isinstance(h, int):
        return (h >> 8) / float(1 << 24)
    import torch

    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


def uniform(seed: int, stream: int, env: torch.Tensor, trial: torch.Tensor, episode: torch.Tensor,
            k: torch.Tensor | int, n: int) -> torch.Tensor:
    """(len(env), n) float32 uniforms in [0, 1) keyed by (seed, stream, env, trial, episode, k, column).

    ``env``, ``trial`` and ``episode`` are int64 tensors of one length; ``k`` numbers the draws
    within an episode (e.g. the index of a push).
    """
    import torch

    h = chain(torch.full_like(env, key(seed, stream)), env, trial, episode, k)
    cols = torch.arange(n, device=env.device, dtype=torch.int64)
    return to_unit(mix32(h[:, None] ^ cols[None, :]))


def python_uniform(seed: int, stream: int, *counters: int) -> float:
    """One uniform in [0, 1) from Python ints (no torch arithmetic; used by the suite generator)."""
    return to_unit(chain(key(seed, stream), *counters))
