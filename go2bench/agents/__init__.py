"""Agents that act in go2bench envs (random, PPO teachers, Vintix, plug-ins) and their evaluation.

Exports (imported lazily, so ``import go2bench.agents`` stays cheap):

* :class:`WalkSB3VecEnv` (alias ``Go2SB3VecEnv``): a stable-baselines3 VecEnv over the batched simulation;
* :func:`train_teacher`, :class:`PPOConfig`: the PPO teacher recipe;
* :func:`load_teacher`, :class:`TeacherAgent`, :class:`RandomAgent`: batched agents with ``act(obs)``;
* :func:`export_teacher`: a ``go2bench teach`` run as a shippable zoo entry;
* :class:`BatchedAgent`, :func:`make_agent`, :func:`available_agents`: the agent protocol and registry;
* :class:`VintixAgent`, :func:`load_vintix_agent`: an in-context Vintix checkpoint as an agent;
* :func:`evaluate_in_context`, :func:`evaluate`, :func:`normalized_score`: evaluation.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "WalkSB3VecEnv": "go2bench.agents.sb3_vec_env",
    "Go2SB3VecEnv": "go2bench.agents.sb3_vec_env",
    "make_walk_sim": "go2bench.envs.walk_sim",
    "train_teacher": "go2bench.agents.ppo",
    "PPOConfig": "go2bench.agents.ppo",
    "load_teacher": "go2bench.agents.teacher",
    "TeacherAgent": "go2bench.agents.teacher",
    "RandomAgent": "go2bench.agents.teacher",
    "export_teacher": "go2bench.agents.teacher",
    "evaluate": "go2bench.agents.evaluate",
    "evaluate_in_context": "go2bench.agents.evaluate",
    "normalized_score": "go2bench.agents.evaluate",
    "BatchedAgent": "go2bench.agents.protocol",
    "make_agent": "go2bench.agents.registry",
    "available_agents": "go2bench.agents.registry",
    "VintixAgent": "go2bench.agents.vintix_agent",
    "load_vintix_agent": "go2bench.agents.vintix_agent",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'go2bench.agents' has no attribute {name!r}")
