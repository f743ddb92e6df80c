"""The batched episode loop every evaluation protocol runs (:func:`run_episodes`) and its records.

Why a module of its own: the in-context protocol (:mod:`go2bench.eval.protocol`), agents side by
side (:mod:`go2bench.eval.side_by_side`), the family references and the teachers' task evaluation
all step a scene the same way; the loop counts each env's episodes against its quota, keeps an
in-context agent's context across them, and records what every counted episode did.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch

from go2bench.agents.protocol import as_batched_agent
from go2bench.agents.registry import AgentError
from go2bench.envs import spaces as S
from go2bench.envs.genesis_runtime import torch_threads_beside_simulation
from go2bench.envs.walk_sim import WalkSimulation

__all__ = ["EpisodeRecord", "run_episodes", "check_obs_dim", "agent_code"]


class EpisodeRecord(NamedTuple):
    """One counted episode; records sort by env, then episode index."""

    env: int
    episode: int  # index among the env's counted episodes
    ret: float
    length: int
    fell: bool
    diverged: bool
    tracking_error_sum: float  # sum over steps of |forward velocity - commanded forward velocity|
    reward_terms: tuple[float, ...]  # episode sum of each reward term, in ``reward_term_names`` order
    # sum over steps of the step's |target - actual| of vx, vy, yaw rate (StepResult.tracking_error)
    tracking_error_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # (suite id, theta values) the env ran the episode with, when the simulation has a task family
    task: tuple[str | None, tuple[float, ...]] | None = None


@contextlib.contextmanager
def agent_code(agent, method: str) -> Iterator[None]:
    """Failures inside an agent's own code (or actions it returns that are not valid) name the agent; an
    AgentError from inside (an agent of a composite, :mod:`go2bench.eval.side_by_side`) passes unchanged."""
    try:
        yield
    except AgentError:
        raise
    except Exception as e:  # noqa: BLE001 - agent code is arbitrary
        name = getattr(agent, "spec", None) or getattr(agent, "name", type(agent).__name__)
        raise AgentError(f"agent {name!r} failed in {method}(): {type(e).__name__}: {e}") from e


def run_episodes(
    agent,
    env_id: str,
    sim: WalkSimulation,
    quota: np.ndarray | Sequence[int],
    seed: int,
    progress=None,
    frames: list | None = None,
    max_frames: int = 0,
    trial_keys: Sequence[int] | None = None,
    recorder: Callable[[int, int, WalkSimulation], None] | None = None,
    env_keys: Sequence[int] | None = None,
    warmup_steps: int = 0,
) -> dict[str, Any]:
    """Run the batch until env i has counted ``quota[i]`` episodes; the agent is cold-started first.

    ``warmup_steps``: an episode that STARTS before its env has taken that many steps is a warm-up
    episode: played (an in-context agent keeps it in its context) but not counted or recorded; the
    counted episodes follow. Why: an Algorithm-Distillation agent improves with the steps of
    experience in its context, and a cold start that falls at once gathers few steps per episode
    (benchmarks/RESULTS.md, "Held-out robots"). ``warmup_episodes`` and ``warmup_steps_taken`` in the
    result: per env, how many warm-up episodes it played and the steps they took.

    Returns ``records`` (:class:`EpisodeRecord` s sorted by env then episode), ``reward_term_names``
    (the simulation's reward terms, empty if its steps report none), ``steps`` (batch steps) and
    ``wall_s``. ``progress``: a tqdm-like object updated once per counted episode. ``frames``: a
    list to append env 0's rendered frames to (at most ``max_frames``; the simulation must have a
    camera). ``trial_keys``: after seeding, env i's trial counter (a key of its random draws, see
    :mod:`go2bench.envs.streams`) is set to ``trial_keys[i]``: the family protocol keys each env's
    draws by the seed of its trial. ``env_keys``: likewise env i's stream key (``sim.env_index``, default i):
    side by side, env ``a * n + i`` is keyed ``i``. ``recorder(episode, step, sim)`` (instead of ``frames``) is called
    whenever env 0 shows a new state in a counted episode: its episode index and the steps taken in
    it (0: the first observation); it renders what it wants (:mod:`go2bench.eval.video`). Torch gets
    one thread while a CPU simulation steps beside it (see ``torch_threads_beside_simulation``).
    """
    with torch_threads_beside_simulation(sim.device):
        if frames is not None:
            if recorder is not None:
                raise ValueError("give run_episodes frames or a recorder, not both")
            recorder = _first_frames(frames, max_frames)
        return _run_episodes(as_batched_agent(agent), env_id, sim, quota, seed, progress, recorder, trial_keys,
                             env_keys, int(warmup_steps))


def _first_frames(frames: list, max_frames: int) -> Callable[[int, int, WalkSimulation], None]:
    """A recorder appending every frame of env 0 to ``frames`` until it holds ``max_frames``."""
    def record(episode: int, step: int, sim: WalkSimulation) -> None:
        if len(frames) < max_frames:
            frames.append(sim.render())

    return record


def check_obs_dim(agent, sim: WalkSimulation) -> None:
    """A clear error when the agent's ``obs_dim`` (if it has one) is not the simulation's."""
    agent_dim = getattr(agent, "obs_dim", None)
    if agent_dim is not None and agent_dim != sim.obs_dim:
        raise ValueError(
            f"the agent expects {agent_dim}-dim observations but the env gives {sim.obs_dim} "
            f"(obs_mode {sim.config.obs_mode!r}); pass the obs_mode it was trained with"
        )


def _per_env(values: Sequence[int], n: int, name: str, dev) -> torch.Tensor:
    keys = torch.as_tensor(np.asarray(values, dtype=np.int64), device=dev)
    if keys.shape != (n,):
        raise ValueError(f"{name} must have one entry per env ({n}); got shape {tuple(keys.shape)}")
    return keys


def _run_episodes(agent, env_id, sim, quota, seed, progress, recorder, trial_keys, env_keys, warmup_steps
                  ) -> dict[str, Any]:
    n, dev = sim.num_envs, sim.device
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    action_shape = (n, sim.robot_description.num_joints)
    quota = np.asarray(quota, dtype=np.int64)
    if quota.shape != (n,):
        raise ValueError(f"quota must have one entry per env ({n}); got shape {quota.shape}")
    check_obs_dim(agent, sim)
    counted = np.zeros(n, dtype=np.int64)
    warmup = np.zeros(n, dtype=np.int64)  # warm-up episodes per env
    warmup_taken = np.zeros(n, dtype=np.int64)  # and the steps they took
    records: list[EpisodeRecord] = []

    with agent_code(agent, "reset"):
        agent.reset(n, env_id, seed)
    sim.seed(seed)
    if trial_keys is not None:
        sim.trial = _per_env(trial_keys, n, "trial_keys", dev)
    if env_keys is not None:
        sim.env_index = _per_env(env_keys, n, "env_keys", dev)
    tasks = getattr(sim, "tasks", None)
    obs = sim.reset()
    prev_reward = torch.zeros(n, dtype=torch.float32, device=dev)
    episode_start = torch.ones(n, dtype=torch.bool, device=dev)
    ep_ret = torch.zeros(n, dtype=torch.float64, device=dev)
    ep_len = torch.zeros(n, dtype=torch.int64, device=dev)
    ep_err = torch.zeros(n, dtype=torch.float64, device=dev)
    ep_xyz = torch.zeros((n, 3), dtype=torch.float64, device=dev)
    term_names: list[str] = []
    ep_terms = torch.zeros((n, 0), dtype=torch.float64, device=dev)  # (N, terms), sized at the first step
    step0 = 0  # steps env 0 has taken in its running episode
    if recorder is not None and quota[0] > 0 and warmup_steps == 0:
        recorder(0, 0, sim)
    t0 = time.perf_counter()
    steps = 0
    # every episode ends by its time limit; the warm-up ends within an episode after warmup_steps
    max_steps = (int(quota.max()) + 1) * sim.max_episode_steps + warmup_steps + 1
    while (counted < quota).any():
        if steps >= max_steps:
            raise RuntimeError("evaluation did not finish within the time limit of every episode")
        with agent_code(agent, "act"):
            actions = S.to_action_tensor(agent.act(obs, prev_reward, episode_start), action_shape, dev)
        command_x = sim.commands[:, 0].clone()  # the command the agent acted on
        r = sim.step(actions)
        steps += 1
        step0 += 1
        ep_ret += r.reward
        ep_len += 1
        # a diverged step's velocity is not physical: it adds no tracking error (its reward is 0 too)
        err = (sim.base_lin_vel[:, 0] - command_x).abs()
        ep_err += torch.where(r.diverged, torch.zeros_like(err), err)
        xyz = getattr(r, "tracking_error", None)
        if xyz is not None:
            ep_xyz += xyz
        terms = getattr(r, "reward_terms", None)
        if terms:
            if not term_names:
                term_names = list(terms)
                ep_terms = torch.zeros((n, len(term_names)), dtype=torch.float64, device=dev)
            ep_terms += torch.stack([terms[k] for k in term_names], dim=1)
        done = r.terminated | r.truncated
        prev_reward = r.reward
        episode_start = done
        if bool(done.any()):
            idx = done.nonzero().flatten()
            rows = torch.cat((
                torch.stack((ep_ret[idx], ep_len[idx].double(), ep_err[idx], r.terminated[idx].double(),
                             r.diverged[idx].double()), dim=1),
                ep_terms[idx], ep_xyz[idx],
            ), dim=1).cpu().numpy()
            for i, row in zip(idx.tolist(), rows):
                step0 = 0 if i == 0 else step0
                if warmup_taken[i] < warmup_steps:  # the episode started within the warm-up
                    warmup[i] += 1
                    warmup_taken[i] += int(row[1])
                elif counted[i] < quota[i]:
                    task = None if tasks is None else (tasks.ids[i], tuple(float(v) for v in tasks.host[i]))
                    records.append(EpisodeRecord(i, int(counted[i]), float(row[0]), int(row[1]), bool(row[3]),
                                                 bool(row[4]), float(row[2]), tuple(float(x) for x in row[5:-3]),
                                                 tuple(float(x) for x in row[-3:]), task))
                    counted[i] += 1
                    if progress is not None:
                        progress.update(1)
            ep_ret[idx] = 0.0
            ep_len[idx] = 0
            ep_err[idx] = 0.0
            ep_xyz[idx] = 0.0
            ep_terms[idx] = 0.0
            obs = sim.reset(done)
        else:
            obs = r.obs
        if recorder is not None and counted[0] < quota[0] and warmup_taken[0] >= warmup_steps:
            recorder(int(counted[0]), step0, sim)
    records.sort()  # by env, then episode: independent of completion order
    return {"records": records, "reward_term_names": term_names, "steps": steps, "wall_s": time.perf_counter() - t0,
            "warmup_episodes": warmup, "warmup_steps_taken": warmup_taken}
