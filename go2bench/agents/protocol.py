"""The batched agent protocol that ``go2bench eval`` drives.

An agent acts for all N envs of one batched simulation at once::

    class BatchedAgent(Protocol):
        name: str
        def reset(self, num_envs: int, env_id: str, seed: int | None = None) -> None
        def act(self, obs, prev_reward, episode_start) -> (N, act_dim) actions

* ``reset`` is a cold start for all envs: an in-context agent forgets everything it has seen.
  The evaluator calls it once per seed, before the first observation.
* ``act(obs, prev_reward, episode_start)``:

  - ``obs`` (N, obs_dim) float32 torch tensor (on the simulation's device);
  - ``prev_reward`` (N,) float32: the reward of each env's previous step. At an episode start this
    is the last reward of the env's previous episode (0 at the cold start), i.e. the reward stream
    of an env runs on across its episodes, as in a learning history; mask it with
    ``episode_start`` if the agent does not want it;
  - ``episode_start`` (N,) bool: ``obs`` is the first observation of a new episode of that env;

  and returns (N, act_dim) actions (torch tensor or numpy array, any float dtype), in env units.

An in-context agent keeps its context across the episodes of an env; the evaluator never resets
it between episodes. Optional attributes the evaluator reads when present: ``obs_dim`` (checked
against the env), ``model_card`` (a dict; its ``random_score``/``expert_score`` are not used for
normalisation, which always uses the shipped teacher's card) and ``checkpoint`` (a file path;
its sha256 goes into the results).

:func:`as_batched_agent` wraps an older agent with only ``act(obs)`` (and optionally
``reset(seed)``) into the protocol.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = ["BatchedAgent", "as_batched_agent", "LegacyAgentAdapter"]


@runtime_checkable
class BatchedAgent(Protocol):
    name: str

    def reset(self, num_envs: int, env_id: str, seed: int | None = None) -> None: ...

    def act(
        self, obs: torch.Tensor, prev_reward: torch.Tensor, episode_start: torch.Tensor
    ) -> torch.Tensor | np.ndarray: ...


def _positional_arity(fn) -> int | None:
    """How many positional arguments ``fn`` takes (None: unknown or ``*args``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


class LegacyAgentAdapter:
    """Protocol view of an agent with ``act(obs)`` only; ``reset(seed)`` is forwarded when present."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.name = getattr(agent, "name", type(agent).__name__)

    def __getattr__(self, item: str) -> Any:  # obs_dim, model_card, checkpoint, ...
        return getattr(self.agent, item)

    def reset(self, num_envs: int, env_id: str, seed: int | None = None) -> None:
        reset = getattr(self.agent, "reset", None)
        if reset is not None:
            reset(seed) if _positional_arity(reset) == 1 else reset()

    def act(self, obs, prev_reward=None, episode_start=None):
        return self.agent.act(obs)


def as_batched_agent(agent: Any) -> Any:
    """``agent`` itself if its ``act`` takes (obs, prev_reward, episode_start), else a :class:`LegacyAgentAdapter`."""
    if not callable(getattr(agent, "act", None)):
        raise TypeError(f"{type(agent).__name__} has no act(obs, prev_reward, episode_start) method")
    arity = _positional_arity(agent.act)
    if arity is not None and arity < 3:
        return LegacyAgentAdapter(agent)
    return agent
