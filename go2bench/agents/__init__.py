"""Agents that act in go2bench envs: random, PPO teachers, Vintix and third-party plug-ins.

Every agent follows one batched protocol (:mod:`go2bench.agents.protocol`):
``reset(num_envs, env_id, seed)`` and ``act(obs, prev_reward, episode_start) -> actions``.
Exports are imported lazily, so ``import go2bench.agents`` stays cheap:

* :class:`BatchedAgent`, :func:`make_agent`, :func:`available_agents`: the protocol and registry;
* :class:`RandomAgent`: uniform actions in [-1, 1], seeded;
* :func:`load_teacher`, :class:`TeacherAgent`, :func:`export_teacher`: PPO teachers;
* :class:`VintixAgent`, :func:`load_vintix_agent`: an in-context Vintix checkpoint as an agent.

Training teachers lives in :mod:`go2bench.teachers`, evaluation in :mod:`go2bench.eval`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchedAgent": "go2bench.agents.protocol",
    "make_agent": "go2bench.agents.registry",
    "available_agents": "go2bench.agents.registry",
    "RandomAgent": "go2bench.agents.random",
    "load_teacher": "go2bench.agents.teacher",
    "TeacherAgent": "go2bench.agents.teacher",
    "export_teacher": "go2bench.agents.teacher",
    "VintixAgent": "go2bench.agents.vintix_agent",
    "load_vintix_agent": "go2bench.agents.vintix_agent",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'go2bench.agents' has no attribute {name!r}")
