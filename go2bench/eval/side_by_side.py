"""Several agents evaluated SIDE BY SIDE in one batched scene, each acting on its own slice of envs.

Why: on a GPU a Genesis step costs about the same at 64 or 600 envs, so an evaluation is bound by
its number of batch steps. A agents one after the other take A times the steps of one scene of
A x n envs in which agent a acts on envs ``a * n .. a * n + n - 1`` (the n envs it would have alone).
On the CPU the step cost grows with the envs, so the gain there is smaller.

* **Same numbers as alone.** Env ``a * n + i`` runs exactly what env i runs in an n-env scene: the
  caller tiles the per-env layout (tasks, trial keys) A times and keys env ``a * n + i``'s random
  streams by ``i`` (``env_keys``, :attr:`WalkSimulation.env_index`, :mod:`go2bench.envs.streams`).
  Each agent is reset and called with n envs, as alone, on fresh tensors of its rows (not views at
  an offset: a CPU matmul rounded an offset view differently); envs do not interact in the physics. So
  each agent's episodes equal those of its own evaluation with the same arguments up to the simulation's
  batch-size rounding (Genesis is exact per env only at the same batch size: bitwise on Go2, float32-level
  on the other robots, docs/evaluation.md), as long as the agent draws no random numbers from a
  generator it shares with another (e.g. torch's global one).
* **Records.** :func:`run_side_by_side` splits the run's episode records per agent, env numbers
  back to 0..n-1, and gives each agent the batch steps its own run would have taken (its envs run
  back to back: the largest sum of one env's episode lengths).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from go2bench.agents.protocol import as_batched_agent
from go2bench.envs import robot_for_env
from go2bench.envs import spaces as S
from go2bench.envs.robots import get_robot
from go2bench.eval.episodes import agent_code, check_obs_dim, run_episodes

__all__ = ["SideBySideAgent", "run_side_by_side"]


class SideBySideAgent:
    """A batched agent of A agents over A x n envs: agent a gets rows ``a * n .. a * n + n - 1`` of every input."""

    def __init__(self, agents: Sequence[Any], envs_per_agent: int, obs_dims: Sequence[int | None] | None = None) -> None:
        if not agents or envs_per_agent < 1:
            raise ValueError("side by side needs at least one agent and one env per agent")
        self.agents = [as_batched_agent(a) for a in agents]
        self.n = int(envs_per_agent)
        # per agent: the leading observation columns it reads (None: all); a plain agent in a privileged
        # scene reads the observation without the theta block appended at its end
        self.obs_dims = list(obs_dims) if obs_dims is not None else [None] * len(self.agents)
        if len(self.obs_dims) != len(self.agents):
            raise ValueError(f"{len(self.obs_dims)} obs_dims for {len(self.agents)} agents")
        self.name = "side-by-side(" + ", ".join(getattr(a, "name", type(a).__name__) for a in self.agents) + ")"
        self._action_shape: tuple[int, int] | None = None

    def reset(self, num_envs: int, env_id: str, seed: int | None = None) -> None:
        if num_envs != len(self.agents) * self.n:
            raise ValueError(f"{len(self.agents)} agents x {self.n} envs side by side need {len(self.agents) * self.n}"
                             f" envs, got {num_envs}")
        self._action_shape = (self.n, get_robot(robot_for_env(env_id)).num_joints)
        for agent in self.agents:
            with agent_code(agent, "reset"):
                agent.reset(self.n, env_id, seed)

    def act(self, obs, prev_reward, episode_start) -> torch.Tensor:
        if self._action_shape is None:
            raise RuntimeError("call reset(num_envs, env_id) before act()")
        out = []
        for a, agent in enumerate(self.agents):
            rows = slice(a * self.n, (a + 1) * self.n)
            # fresh tensors, not views at an offset: CPU matmul kernels may round differently on unaligned input
            cols = self.obs_dims[a]
            mine = [(obs[rows] if cols is None else obs[rows, :cols]).clone(),
                    prev_reward[rows].clone(), episode_start[rows].clone()]
            with agent_code(agent, "act"):
                actions = agent.act(*mine)
                out.append(S.to_action_tensor(actions, self._action_shape, obs.device))
        return torch.cat(out)


def run_side_by_side(agents: Sequence[Any], env_id: str, sim, episodes: int, seed: int, progress=None,
                     trial_keys: Sequence[int] | None = None, frames: list | None = None,
                     max_frames: int = 0, obs_dims: Sequence[int | None] | None = None,
                     warmup_steps: int = 0) -> list[dict[str, Any]]:
    """:func:`~go2bench.eval.episodes.run_episodes` of every agent on its slice of ``sim`` (A x n envs, the
    per-env layout already tiled A times): one run dict per agent, as if it had run alone on n envs.

    ``trial_keys``: those of the n-env layout (tiled here). One agent runs alone on the whole scene.
    ``frames``/``max_frames``: env 0's frames (one agent only: a side-by-side scene is not filmed).
    ``obs_dims``: per agent, the leading observation columns it reads (None: all of them).
    ``warmup_steps``: unscored steps of experience per env before its counted episodes (``run_episodes``).
    """
    A = len(agents)
    if A == 0 or sim.num_envs % A:
        raise ValueError(f"{sim.num_envs} envs cannot be shared equally by {A} agents")
    n = sim.num_envs // A
    dims = list(obs_dims) if obs_dims is not None else [None] * A
    if A == 1 and dims[0] is None:
        return [run_episodes(agents[0], env_id, sim, np.full(n, episodes), seed, progress=progress,
                             trial_keys=trial_keys, frames=frames, max_frames=max_frames, warmup_steps=warmup_steps)]
    if frames is not None:
        raise ValueError("frames are recorded for one agent only, not for agents side by side")
    for agent, dim in zip(agents, dims):
        if dim is None:
            check_obs_dim(as_batched_agent(agent), sim)
        elif getattr(agent, "obs_dim", None) not in (None, dim):
            raise ValueError(f"the agent expects {agent.obs_dim}-dim observations; it is given the first {dim} "
                             f"columns of the scene's {sim.obs_dim}")
    run = run_episodes(SideBySideAgent(agents, n, dims), env_id, sim, np.full(A * n, episodes), seed, progress=progress,
                       trial_keys=None if trial_keys is None else list(trial_keys) * A, env_keys=list(range(n)) * A,
                       warmup_steps=warmup_steps)
    return [_slice(run, a, n) for a in range(A)]


def _slice(run: dict[str, Any], a: int, n: int) -> dict[str, Any]:
    """Agent a's part of a side-by-side run: its records with env numbers 0..n-1 and the steps its run took."""
    records = [r._replace(env=r.env - a * n) for r in run["records"] if a * n <= r.env < (a + 1) * n]
    per_env = run["warmup_steps_taken"][a * n:(a + 1) * n].copy()
    for r in records:
        per_env[r.env] += r.length
    return {"records": records, "reward_term_names": run["reward_term_names"], "steps": int(per_env.max()),
            "wall_s": run["wall_s"], "warmup_episodes": run["warmup_episodes"][a * n:(a + 1) * n],
            "warmup_steps_taken": run["warmup_steps_taken"][a * n:(a + 1) * n]}
