"""Batched evaluation of agents on a Walk env, including in-context evaluation (``go2bench eval``).

Protocol of :func:`evaluate_in_context` (what ``go2bench eval`` runs):

* for each seed, one batched simulation of N envs is reseeded (``sim.seed(seed)`` before the reset,
  so commands, randomisation and pushes are the same for every agent) and the agent is cold-started
  (``agent.reset(N, env_id, seed)``);
* each env runs K consecutive episodes; an in-context agent keeps its context across the episodes
  of an env (nothing is reset between episodes except the simulation of that env);
* the batch steps together: envs that finished their K episodes keep stepping but are not counted;
  the run stops when every env has K episodes;
* agents see ``act(obs, prev_reward, episode_start)`` (see :mod:`go2bench.agents.protocol`).

Statistics (the unit of the confidence intervals):

* ``mean_return``: mean over all counted episodes (envs x seeds x K);
* ``ci95``: a two-sided 95% Student-t interval of the mean, whose sampling unit is one env of one
  seed: the per-env mean return over its K episodes (n = N x number of seeds units, n - 1 degrees
  of freedom). Episodes of one env are not independent for an in-context agent, so they are not
  the unit;
* ``normalized_score = (mean_return - random_score) / (expert_score - random_score)`` with the
  shipped teacher's model card scores (``go2bench/zoo/<env>/model_card.json``), and its interval
  (the same affine map of ``ci95``);
* ``per_episode``: for each episode index k (the in-context curve), the mean return over the
  N x seeds envs of their k-th episode, its t-interval over those envs, and both normalised.

The reference scores are full 1000-step episode returns: with a shorter ``max_episode_steps`` the
normalised score is not comparable to the full task's (the results record ``max_episode_steps``).

:func:`evaluate` is the older entry point (a total number of episodes split into fixed per-env
quotas, one seed), kept for the PPO trainer's model card and existing callers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from go2bench.agents.protocol import as_batched_agent
from go2bench.core.provenance import file_sha256, versions
from go2bench.envs import robot_for_env
from go2bench.envs import spaces as S
from go2bench.envs.genesis_runtime import torch_threads_beside_simulation
from go2bench.envs.walk_sim import WalkSimulation, make_walk_sim

RESULTS_FORMAT = "go2bench.eval/1"
CI_UNIT = (
    "two-sided 95% Student-t interval of the mean; unit: one env of one seed (its mean return over "
    "its episodes), n = num_envs x seeds, n-1 degrees of freedom"
)
PER_EPISODE_CI_UNIT = (
    "two-sided 95% Student-t interval over envs x seeds of the return of the k-th episode of each env"
)

__all__ = [
    "evaluate",
    "evaluate_in_context",
    "run_episodes",
    "normalized_score",
    "mean_ci",
    "t_quantile",
    "summarize",
    "save_results",
    "RESULTS_FORMAT",
]


# ------------------------------------------------------------------------------------- arithmetic
def normalized_score(mean_return: float, random_score: float | None, expert_score: float | None) -> float | None:
    """(mean_return - random_score) / (expert_score - random_score); None without reference scores."""
    if random_score is None or expert_score is None or mean_return is None:
        return None
    if expert_score == random_score:
        raise ValueError(f"expert_score and random_score are equal ({expert_score}); no scale to normalise with")
    return (mean_return - random_score) / (expert_score - random_score)


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom (scipy when installed)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    try:
        from scipy import stats

        return float(stats.t.ppf(p, df))
    except ImportError:  # pragma: no cover - scipy is normally present
        pass
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) * math.sqrt(2.0 / (4 * p * (1 - p)))
    # Cornish-Fisher expansion around the normal quantile (error < 1e-3 for df >= 3).
    from statistics import NormalDist

    z, v = NormalDist().inv_cdf(p), float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of a Student-t interval of the mean of ``values``; no interval for n < 2."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("no values")
    m = float(x.mean())
    if x.size < 2:
        return m, None, None
    half = t_quantile(0.5 + level / 2, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return m, m - half, m + half


def _normalize_interval(low, high, rs, es) -> tuple[float | None, float | None]:
    if low is None or high is None or rs is None or es is None:
        return None, None
    a, b = normalized_score(low, rs, es), normalized_score(high, rs, es)
    return min(a, b), max(a, b)




def _shipped_reference_scores(env_id: str) -> tuple[float | None, float | None, str | None]:
    from go2bench.agents.teacher import CARD_FILE, read_model_card, zoo_path

    card = read_model_card(zoo_path(env_id)) or {}
    source = str(Path("go2bench/zoo") / zoo_path(env_id).name / CARD_FILE) if card else None
    return card.get("random_score"), card.get("expert_score"), source


# ------------------------------------------------------------------------------------- core loop
def run_episodes(
    agent,
    env_id: str,
    sim: WalkSimulation,
    quota: np.ndarray | Sequence[int],
    seed: int,
    progress=None,
    frames: list | None = None,
    max_frames: int = 0,
) -> dict[str, Any]:
    """Run the batch until env i has counted ``quota[i]`` episodes; the agent is cold-started first.

    Returns ``records`` (env, episode index, return, length, fell, diverged, tracking-error sum)
    sorted by env then episode, ``steps`` (batch steps) and ``wall_s``. ``progress``: a tqdm-like
    object updated once per counted episode. ``frames``: a list to append env 0's rendered frames
    to (at most ``max_frames``; the simulation must have a camera). Torch gets one thread while a
    CPU simulation steps beside it (see ``torch_threads_beside_simulation``).
    """
    with torch_threads_beside_simulation(sim.device):
        return _run_episodes(agent, env_id, sim, quota, seed, progress, frames, max_frames)


def _run_episodes(agent, env_id, sim, quota, seed, progress, frames, max_frames) -> dict[str, Any]:
    agent = as_batched_agent(agent)
    n, dev = sim.num_envs, sim.device
    quota = np.asarray(quota, dtype=np.int64)
    if quota.shape != (n,):
        raise ValueError(f"quota must have one entry per env ({n}); got shape {quota.shape}")
    agent_dim = getattr(agent, "obs_dim", None)
    if agent_dim is not None and agent_dim != sim.obs_dim:
        raise ValueError(
            f"the agent expects {agent_dim}-dim observations but the env gives {sim.obs_dim} "
            f"(obs_mode {sim.config.obs_mode!r}); pass the obs_mode it was trained with"
        )
    counted = np.zeros(n, dtype=np.int64)
    records: list[tuple[int, int, float, int, bool, bool, float]] = []

    agent.reset(n, env_id, seed)
    sim.seed(seed)
    obs = sim.reset()
    prev_reward = torch.zeros(n, dtype=torch.float32, device=dev)
    episode_start = torch.ones(n, dtype=torch.bool, device=dev)
    ep_ret = torch.zeros(n, dtype=torch.float64, device=dev)
    ep_len = torch.zeros(n, dtype=torch.int64, device=dev)
    ep_err = torch.zeros(n, dtype=torch.float64, device=dev)
    if frames is not None and len(frames) < max_frames:
        frames.append(sim.render())
    t0 = time.perf_counter()
    steps = 0
    max_steps = int(quota.max()) * sim.max_episode_steps + 1  # every episode ends by its time limit
    while (counted < quota).any():
        if steps >= max_steps:
            raise RuntimeError("evaluation did not finish within the time limit of every episode")
        actions = S.to_action_tensor(agent.act(obs, prev_reward, episode_start), (n, S.ACTION_DIM), dev)
        command_x = sim.commands[:, 0].clone()  # the command the agent acted on
        r = sim.step(actions)
        steps += 1
        ep_ret += r.reward
        ep_len += 1
        ep_err += (sim.base_lin_vel[:, 0] - command_x).abs()
        done = r.terminated | r.truncated
        prev_reward = r.reward
        episode_start = done
        if bool(done.any()):
            idx = done.nonzero().flatten()
            rows = torch.stack(
                (ep_ret[idx], ep_len[idx].double(), ep_err[idx], r.terminated[idx].double(), r.diverged[idx].double()),
                dim=1,
            ).cpu().numpy()
            for i, (ret, length, err, fell, div) in zip(idx.tolist(), rows):
                if counted[i] < quota[i]:
                    records.append((i, int(counted[i]), float(ret), int(length), bool(fell), bool(div), float(err)))
                    counted[i] += 1
                    if progress is not None:
                        progress.update(1)
            ep_ret[idx] = 0.0
            ep_len[idx] = 0
            ep_err[idx] = 0.0
            obs = sim.reset(done)
        else:
            obs = r.obs
        if frames is not None and len(frames) < max_frames and counted[0] < quota[0]:
            frames.append(sim.render())
    records.sort()  # by env, then episode: independent of completion order
    return {"records": records, "steps": steps, "wall_s": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------- in-context
def summarize(
    returns: np.ndarray, random_score: float | None, expert_score: float | None
) -> dict[str, Any]:
    """Statistics of returns shaped (seeds, envs, episodes): mean, 95% CI, normalised, per episode."""
    R = np.asarray(returns, dtype=np.float64)
    if R.ndim != 3 or R.size == 0:
        raise ValueError(f"returns must be (seeds, envs, episodes); got shape {R.shape}")
    units = R.mean(axis=2).reshape(-1)
    m, lo, hi = mean_ci(units)
    nlo, nhi = _normalize_interval(lo, hi, random_score, expert_score)
    per_mean, per_lo, per_hi, per_n, per_nlo, per_nhi = [], [], [], [], [], []
    for k in range(R.shape[2]):
        km, klo, khi = mean_ci(R[:, :, k].reshape(-1))
        a, b = _normalize_interval(klo, khi, random_score, expert_score)
        per_mean.append(km)
        per_lo.append(klo)
        per_hi.append(khi)
        per_n.append(normalized_score(km, random_score, expert_score))
        per_nlo.append(a)
        per_nhi.append(b)
    return {
        "mean_return": float(R.mean()),
        "std_return": float(R.std()),
        "ci95": [lo, hi],
        "ci95_halfwidth": None if lo is None else (hi - lo) / 2,
        "ci_unit": CI_UNIT,
        "ci_units": int(units.size),
        "normalized_score": normalized_score(m, random_score, expert_score),
        "normalized_score_ci95": [nlo, nhi],
        "per_episode": {
            "episode_index": list(range(R.shape[2])),
            "mean_return": per_mean,
            "return_ci95_low": per_lo,
            "return_ci95_high": per_hi,
            "normalized_score": per_n,
            "normalized_ci95_low": per_nlo,
            "normalized_ci95_high": per_nhi,
            "ci_unit": PER_EPISODE_CI_UNIT,
        },
    }


def evaluate_in_context(
    agent,
    env_id: str = "Go2Walk-v0",
    episodes: int = 10,
    num_envs: int = 10,
    seeds: Sequence[int] = (0,),
    backend: str = "cpu",
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    sim: WalkSimulation | None = None,
    random_score: float | None = None,
    expert_score: float | None = None,
    agent_spec: str | None = None,
    device: str | None = None,
    progress: bool = True,
    video: str | Path | None = None,
    video_max_frames: int = 500,
) -> dict[str, Any]:
    """The ``go2bench eval`` protocol (see the module docstring): K episodes per env, per seed.

    ``agent``: a :class:`~go2bench.agents.protocol.BatchedAgent` (or an ``act(obs)`` agent).
    ``sim``: an existing simulation (reseeded and reset; ``num_envs``/``backend``/``obs_mode``/
    ``config``/``max_episode_steps`` are then its own). Reference scores: the arguments, else the
    shipped teacher's model card of ``env_id``. ``video``: an mp4 path for env 0 of the first seed
    (at most ``video_max_frames`` frames, 50 fps; needs imageio with ffmpeg and EGL rendering).
    Returns the results dict written by ``go2bench eval``.
    """
    if episodes < 1:
        raise ValueError("episodes must be at least 1")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("at least one seed is needed")
    agent = as_batched_agent(agent)
    writer = _video_writer(video) if video else None
    own_sim = sim is None
    if sim is None:
        card = getattr(agent, "model_card", None) or {}
        sim = make_walk_sim(env_id, num_envs, backend, config, obs_mode or card.get("obs_mode"), max_episode_steps,
                            render=writer is not None)
    elif sim.robot_description.name != robot_for_env(env_id):
        raise ValueError(f"sim holds robot {sim.robot_description.name!r}, not the robot of {env_id}")
    try:
        from tqdm.auto import tqdm

        n = sim.num_envs
        quota = np.full(n, episodes, dtype=np.int64)
        bar = tqdm(total=n * episodes * len(seeds), desc=f"eval {agent_spec or agent.name} {env_id}",
                   unit="ep", disable=not progress, leave=False)
        per_seed, frames = [], ([] if writer is not None else None)
        t0 = time.perf_counter()
        for i, seed in enumerate(seeds):
            run = run_episodes(agent, env_id, sim, quota, seed, progress=bar,
                               frames=frames if i == 0 else None, max_frames=video_max_frames)
            rec = run["records"]
            shape = (n, episodes)
            per_seed.append({
                "seed": seed,
                "returns": np.array([r[2] for r in rec]).reshape(shape).tolist(),
                "lengths": np.array([r[3] for r in rec]).reshape(shape).tolist(),
                "falls": np.array([r[4] for r in rec]).reshape(shape).tolist(),
                "tracking_errors": np.array([r[6] / r[3] for r in rec]).reshape(shape).tolist(),
                "diverged": int(sum(r[5] for r in rec)),
                "env_steps": run["steps"] * n,
                "wall_s": round(run["wall_s"], 3),
            })
        bar.close()
        wall = time.perf_counter() - t0
        if writer is not None:
            writer(frames)
        return _results(agent, env_id, sim, episodes, seeds, per_seed, random_score, expert_score, agent_spec,
                        device, wall, str(video) if video else None)
    finally:
        if own_sim:
            sim.close()


def _results(agent, env_id, sim, episodes, seeds, per_seed, random_score, expert_score, agent_spec, device, wall,
             video) -> dict[str, Any]:

    rs, es, source = _shipped_reference_scores(env_id)
    if random_score is not None or expert_score is not None:
        source = "arguments" if random_score is not None and expert_score is not None else f"arguments + {source}"
    rs = random_score if random_score is not None else rs
    es = expert_score if expert_score is not None else es
    R = np.array([s["returns"] for s in per_seed], dtype=np.float64)
    L = np.array([s["lengths"] for s in per_seed], dtype=np.float64)
    F = np.array([s["falls"] for s in per_seed], dtype=np.float64)
    E = np.array([s["tracking_errors"] for s in per_seed], dtype=np.float64)
    name = getattr(agent, "name", type(agent).__name__)
    checkpoint = getattr(agent, "checkpoint", None)
    ckpt_path = Path(checkpoint) if checkpoint else None
    sha = file_sha256(ckpt_path) if ckpt_path is not None and ckpt_path.is_file() else None
    if agent_spec is None:
        agent_spec = name if checkpoint is None else f"{name}:{checkpoint}"
    summary = summarize(R, rs, es)
    return {
        "format": RESULTS_FORMAT,
        "agent": _registered_name(agent_spec, name),
        "agent_spec": agent_spec,
        "env": env_id,
        "config": {
            "agent": agent_spec,
            "env": env_id,
            "episodes": episodes,
            "num_envs": sim.num_envs,
            "seeds": list(seeds),
            "backend": sim.backend,
            "device": device,
            "max_episode_steps": sim.max_episode_steps,
            "obs_mode": sim.config.obs_mode,
            "walk_config": sim.config.to_dict(),
        },
        "versions": versions(),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_sha256": sha,
        # flat summaries and per-episode lists (order: seed, env, episode)
        "episodes": int(R.size),
        "num_envs": sim.num_envs,
        "seeds": list(seeds),
        "max_episode_steps": sim.max_episode_steps,
        "obs_mode": sim.config.obs_mode,
        **summary,
        "mean_length": float(L.mean()),
        "fall_rate": float(F.mean()),
        "mean_tracking_error": float((E * L).sum() / L.sum()),
        "random_score": rs,
        "expert_score": es,
        "reference_scores_source": source,
        "reference_scores_note": ("expert_score/random_score are mean returns of full 1000-step episodes"
                                  if source and "zoo" in source else "expert_score/random_score given by the caller"),
        "returns": R.reshape(-1).tolist(),
        "lengths": L.reshape(-1).astype(int).tolist(),
        "per_seed": per_seed,
        "diverged": int(sum(s["diverged"] for s in per_seed)),
        "env_steps": int(sum(s["env_steps"] for s in per_seed)),
        "wall_s": round(wall, 3),
        "video": video,
    }


def renormalize_results(res: dict[str, Any], random_score: float, expert_score: float) -> dict[str, Any]:
    """Recompute a results dict's normalised scores (and CIs) with other reference scores, in place.

    The pipeline's short-episode presets normalise with the random and teacher returns measured
    in the same run; their own results are then renormalised with those scores.
    """
    R = np.array([s["returns"] for s in res["per_seed"]], dtype=np.float64)
    res.update(summarize(R, random_score, expert_score))
    res["random_score"], res["expert_score"] = random_score, expert_score
    res["reference_scores_source"] = "arguments"
    res["reference_scores_note"] = "expert_score/random_score are mean returns measured in the same protocol"
    return res


def _registered_name(spec: str, fallback: str) -> str:
    """The registry name of an agent spec (``teacher`` for a bare checkpoint path)."""
    try:
        from go2bench.agents.registry import parse_spec

        return parse_spec(spec)[0]
    except Exception:  # noqa: BLE001 - a label only
        return fallback


def _video_writer(path: str | Path):
    """A function writing frames to ``path`` (mp4, 50 fps); a clear error now if imageio can't."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (mp4 needs the ffmpeg plug-in)
    except ImportError as e:
        raise RuntimeError(f"--video needs imageio and imageio-ffmpeg (pip install imageio imageio-ffmpeg): {e}") from e

    def write(frames: list) -> None:
        if not frames:
            raise RuntimeError("no frames were rendered for the video")
        imageio.mimwrite(str(path), frames, fps=50, macro_block_size=1)

    return write


# ------------------------------------------------------------------------------------- legacy
def _reference_scores(agent, env_id: str, random_score, expert_score) -> tuple[float | None, float | None]:
    if random_score is not None and expert_score is not None:
        return random_score, expert_score
    card = getattr(agent, "model_card", None) or {}
    if card.get("random_score") is None or card.get("expert_score") is None:
        from go2bench.agents.teacher import read_model_card, zoo_path

        card = read_model_card(zoo_path(env_id)) or {}
    rs = random_score if random_score is not None else card.get("random_score")
    es = expert_score if expert_score is not None else card.get("expert_score")
    return rs, es


def evaluate(
    agent,
    env_id: str = "Go2Walk-v0",
    episodes: int = 64,
    num_envs: int = 64,
    seed: int = 0,
    backend: str = "cpu",
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    sim: WalkSimulation | None = None,
    random_score: float | None = None,
    expert_score: float | None = None,
) -> dict[str, Any]:
    """Run ``agent`` until ``episodes`` episodes in all are done (one seed); per-episode and summary numbers.

    ``episodes`` are split into fixed per-env quotas before the run (env i counts its first
    ``episodes // num_envs`` episodes, plus one for the first ``episodes % num_envs`` envs), so
    short (fallen) episodes are not over-represented. ``agent``: the batched agent protocol or an
    ``act(obs)`` agent. ``sim``: an existing simulation to use (it is reseeded and reset;
    ``num_envs``/``backend``/``obs_mode``/``config`` are then ignored). ``obs_mode`` None takes
    the agent's model card's, else the config's. Reference scores for ``normalized_score`` come
    from the arguments, else the agent's model card, else the shipped teacher's card of ``env_id``.
    For the in-context protocol of ``go2bench eval`` see :func:`evaluate_in_context`.
    """
    if episodes < 1:
        raise ValueError("episodes must be at least 1")
    card = getattr(agent, "model_card", None) or {}
    if sim is not None:
        if sim.robot_description.name != robot_for_env(env_id):
            raise ValueError(f"sim holds robot {sim.robot_description.name!r}, not the robot of {env_id}")
        return _evaluate(agent, env_id, episodes, seed, sim, random_score, expert_score)
    sim = make_walk_sim(env_id, num_envs, backend, config, obs_mode or card.get("obs_mode"), max_episode_steps)
    try:
        return _evaluate(agent, env_id, episodes, seed, sim, random_score, expert_score)
    finally:
        sim.close()


def _evaluate(agent, env_id, episodes, seed, sim, random_score, expert_score) -> dict[str, Any]:
    n = sim.num_envs
    quota = np.full(n, episodes // n, dtype=np.int64)
    quota[: episodes % n] += 1
    run = run_episodes(agent, env_id, sim, quota, seed)
    records, steps = run["records"], run["steps"]
    returns = [r[2] for r in records]
    lengths = [r[3] for r in records]
    mean_return = float(np.mean(returns))
    rs, es = _reference_scores(agent, env_id, random_score, expert_score)
    return {
        "agent": getattr(agent, "name", type(agent).__name__),
        "env": env_id,
        "episodes": len(records),
        "num_envs": n,
        "seed": seed,
        "backend": sim.backend,
        "obs_mode": sim.config.obs_mode,
        "max_episode_steps": sim.max_episode_steps,
        "returns": returns,
        "lengths": lengths,
        "falls": [r[4] for r in records],
        "tracking_errors": [r[6] / r[3] for r in records],
        "env_index": [r[0] for r in records],
        "diverged": int(sum(r[5] for r in records)),
        "mean_return": mean_return,
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "fall_rate": float(np.mean([r[4] for r in records])),
        "mean_tracking_error": float(sum(r[6] for r in records) / max(1, sum(lengths))),
        "random_score": rs,
        "expert_score": es,
        "normalized_score": normalized_score(mean_return, rs, es),
        "env_steps": steps * n,
        "wall_s": round(run["wall_s"], 3),
    }


def save_results(results: dict[str, Any], path: str | Path) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2))
