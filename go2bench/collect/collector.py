"""The collector: a teacher plus a fading-noise schedule write Vintix learning histories.

All histories of a run step together in one batched scene (one env per history) with batched
teacher inference.  The loop is chunked: for a chunk of ``chunk_steps`` steps the noise and the
schedule's eps are computed up front for every (step, history) in one call, the step loop only
runs the teacher, one ``lerp`` + clamp and the simulation, and records into device buffers; at
the end of a chunk the rows are copied to the host once and appended to each history's
:class:`~go2bench.histories.layout.HistoryWriter`.

Reproducibility and resume: the env of the default task has no randomness of its own (fixed
command, deterministic resets), and the noise is a pure function of (seed, history, step)
(:mod:`go2bench.collect.noise`), so a history's rows do not depend on which other histories
share the batch or on interruptions.  ``resume`` reopens every history file, keeps its complete
groups, replays the episode that was in progress from its start (nothing is written until the
replay passes the last stored row) and continues: the result equals an uninterrupted run.
A history whose per-env JSON exists is complete and is skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from go2bench.core.provenance import file_sha256, versions, write_json_atomic
from go2bench.histories.layout import HistoryWriter
from go2bench.collect.noise import history_seed, uniform_noise
from go2bench.collect.schedule import NoiseSchedule
from go2bench.envs import ENV_ROBOTS, robot_for_env, task_spec
from go2bench.envs.robots import get_robot

__all__ = ["CollectConfig", "collect", "parse_env_ids", "history_stats", "OBS_LAYOUT"]

FORMAT = "go2bench-learning-histories/1"
OBS_LAYOUT = [
    ("base_ang_vel", 3), ("projected_gravity", 3), ("commands", 3), ("dof_pos", 12), ("dof_vel", 12),
]
# Fields that define a dataset: a resumed run must match them exactly.
IDENTITY_FIELDS = ("env", "num_histories", "steps_per_history", "p", "f", "max_perf", "seed", "group_size",
                   "max_episode_steps", "obs_mode")


@dataclass(frozen=True)
class CollectConfig:
    """What a dataset is: env, number and length of histories, noise schedule, teacher, seed."""

    env: str = "Go2Walk-v0"
    num_histories: int = 10
    steps_per_history: int = 1_000_000
    p: float = 0.6
    f: float = 0.05
    max_perf: float = 1.0
    teacher: str | None = None  # checkpoint path; None: the shipped teacher of ``env``
    seed: int = 0
    group_size: int = 10_000
    max_episode_steps: int = 1000
    obs_mode: str = "noleak"
    compression: str | None = None  # None, "gzip" or "lzf"
    chunk_steps: int = 1000

    def __post_init__(self) -> None:
        if self.env.split(":", 1)[-1] not in ENV_ROBOTS:
            raise ValueError(f"collect.env: unknown env {self.env!r}; known: {sorted(ENV_ROBOTS)}")
        for name in ("num_histories", "steps_per_history", "group_size", "max_episode_steps", "chunk_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"collect.{name} must be an integer >= 1, got {v!r}")
        if self.compression not in (None, "gzip", "lzf"):
            raise ValueError(f"collect.compression must be null, 'gzip' or 'lzf', got {self.compression!r}")
        if self.obs_mode not in ("noleak", "full"):
            raise ValueError(f"collect.obs_mode must be 'noleak' or 'full', got {self.obs_mode!r}")
        self.schedule  # validates p, f, max_perf

    @property
    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.p, self.f, self.max_perf, self.steps_per_history)


def parse_env_ids(spec: str | None, num_histories: int) -> list[int]:
    """'0-4,7' -> [0, 1, 2, 3, 4, 7]; None -> all histories. Errors name the bad part."""
    if spec is None or spec == "":
        return list(range(num_histories))
    ids: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                ids.update(range(a, b + 1))
            else:
                ids.add(int(part))
        except ValueError:
            raise ValueError(f"--env-ids: cannot parse {part!r}; use e.g. '0-4' or '0,2,5'") from None
    bad = sorted(i for i in ids if not 0 <= i < num_histories)
    if bad:
        raise ValueError(f"--env-ids: histories {bad} outside 0-{num_histories - 1} (--num-histories {num_histories})")
    return sorted(ids)


def history_stats(path_h5: Path) -> dict[str, Any]:
    """Per-history statistics read back from disk in one streaming pass (float64 accumulators)."""
    sums = {"obs": 0.0, "obs2": 0.0, "act": 0.0, "act2": 0.0}
    rewards, step_nums, total = [], [], 0
    with h5py.File(path_h5, "r") as f:
        names = sorted(f.keys(), key=lambda k: int(k.split("-")[0]))
        for name in names:
            g = f[name]
            obs = g["proprio_observation"][()].astype(np.float64)
            act = g["action"][()].astype(np.float64)
            sums["obs"] = sums["obs"] + obs.sum(0)
            sums["obs2"] = sums["obs2"] + (obs * obs).sum(0)
            sums["act"] = sums["act"] + act.sum(0)
            sums["act2"] = sums["act2"] + (act * act).sum(0)
            rewards.append(g["reward"][()])
            step_nums.append(g["step_num"][()])
            total += obs.shape[0]
    r = np.concatenate(rewards).astype(np.float64)
    s = np.concatenate(step_nums)
    starts = np.flatnonzero(s == 0)
    if len(starts) == 0 or starts[0] != 0:
        raise ValueError(f"{path_h5}: history does not start with an episode start (step_num 0)")
    returns = np.add.reduceat(r, starts)
    lengths = np.diff(np.append(starts, len(s)))

    def mean_std(a, a2):
        mean = a / total
        return mean.tolist(), np.sqrt(np.maximum(a2 / total - mean * mean, 0.0)).tolist()

    obs_mean, obs_std = mean_std(sums["obs"], sums["obs2"])
    acs_mean, acs_std = mean_std(sums["act"], sums["act2"])
    return {
        "obs_mean": obs_mean, "obs_std": obs_std, "acs_mean": acs_mean, "acs_std": acs_std,
        "reward_mean": float(r.mean()), "reward_std": float(r.std()),
        "reward_min": float(r.min()), "reward_max": float(r.max()),
        "total_transitions": int(total),
        "num_episodes": int(len(starts)),
        "episode_returns": [round(float(x), 6) for x in returns],
        "episode_lengths": [int(x) for x in lengths],
    }


def _observation_layout(obs_mode: str) -> list[dict[str, Any]]:
    layout = OBS_LAYOUT + ([("last_action", 12)] if obs_mode == "full" else [])
    out, i = [], 0
    for name, size in layout:
        out.append({"name": name, "start": i, "size": size})
        i += size
    return out


def _dataset_meta(cfg: CollectConfig, teacher_info: dict, task_name: str, group_name: str, reward_scale: float,
                  obs_dim: int, bounds) -> dict[str, Any]:

    env_id = cfg.env.split(":", 1)[-1]
    robot = get_robot(robot_for_env(env_id))
    return {
        "format": FORMAT,
        "task_name": task_name,
        "group_name": group_name,
        "env_id": env_id,
        "robot": robot.name,
        "observation_shape": {"proprio": [obs_dim]},
        "action_dim": 12,
        "action_type": "continuous",
        "reward_scale": reward_scale,
        "obs_mode": cfg.obs_mode,
        "observation_layout": _observation_layout(cfg.obs_mode),
        "action_bounds": {"low": [float(x) for x in bounds[0]], "high": [float(x) for x in bounds[1]]},
        "noise": {"p": cfg.p, "f": cfg.f, "max_perf": cfg.max_perf, "steps_per_history": cfg.steps_per_history},
        "num_histories": cfg.num_histories,
        "steps_per_history": cfg.steps_per_history,
        "group_size": cfg.group_size,
        "seed": cfg.seed,
        "teacher": teacher_info,
        "collection": {k: v for k, v in asdict(cfg).items() if k != "teacher"},
        "go2bench_version": versions()["go2bench"],
        "versions": versions(),
        "status": "incomplete",
    }


def _check_same_dataset(meta_path: Path, old: dict, new: dict) -> None:
    for key in IDENTITY_FIELDS:
        a, b = old.get("collection", {}).get(key), new["collection"][key]
        if a != b:
            raise ValueError(
                f"{meta_path}: cannot resume: collection.{key} is {a!r} on disk but {b!r} was requested; "
                "use the same settings or a new --out"
            )
    a, b = old.get("teacher", {}).get("sha256"), new["teacher"]["sha256"]
    if a != b:
        raise ValueError(f"{meta_path}: cannot resume: the teacher differs (sha256 {a} on disk, {b} requested)")


def collect(
    out_dir: str | Path,
    cfg: CollectConfig,
    env_ids: list[int] | str | None = None,
    backend: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    group_name: str | None = None,
    reward_scale: float = 1.0,
    plot: bool = True,
    sim=None,
) -> dict[str, Any]:
    """Collect ``cfg.num_histories`` learning histories (or the subset ``env_ids``) into ``out_dir``.

    Writes ``<out>/<name>.json`` first (the dataset metadata; ``status`` becomes "complete" once
    every history is), then per history ``trajectories_env_XXXX.h5`` group by group and, when it
    is complete, ``trajectories_env_XXXX.json``; finally ``learning_curves.png``.  Returns a summary.
    ``sim``: an existing :class:`~go2bench.envs.walk_sim.WalkSimulation` of ``cfg.env`` with one env
    per collected history (it is reset, not closed); default: a new one on ``backend``.
    """
    from go2bench.agents.teacher import load_teacher, zoo_path
    from go2bench.envs.walk_sim import make_walk_sim

    out = Path(out_dir)
    name = out.name
    env_id = cfg.env.split(":", 1)[-1]
    robot = get_robot(robot_for_env(env_id))
    task_name = task_spec(env_id).task_name
    group_name = group_name or task_name
    ids = env_ids if isinstance(env_ids, list) else parse_env_ids(env_ids, cfg.num_histories)
    meta_path = out / f"{name}.json"
    h5_paths = {i: out / f"trajectories_env_{i:04d}.h5" for i in ids}
    existing = [p for p in h5_paths.values() if p.exists()]
    if existing and not resume:
        raise FileExistsError(
            f"{out} already holds {existing[0].name}; pass --resume to continue it, or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)

    # the simulation's torch device: Genesis' GPU backend is the current CUDA device
    device = str(sim.device) if sim is not None else ("cuda" if backend == "gpu" else "cpu")
    teacher = load_teacher(cfg.teacher or env_id, device=device)
    teacher_file = Path(teacher.source)
    card = teacher.model_card or {}
    if card.get("env_id") not in (None, env_id):
        raise ValueError(f"the teacher {teacher_file} was trained on {card['env_id']}, not {env_id}")
    teacher_info = {
        "source": str(teacher_file.relative_to(zoo_path(env_id).parent.parent)) if not cfg.teacher else str(teacher_file),
        "sha256": file_sha256(teacher_file),
        "expert_score": card.get("expert_score"),
        "random_score": card.get("random_score"),
        "obs_mode": card.get("obs_mode"),
    }
    if teacher.obs_dim != (33 if cfg.obs_mode == "noleak" else 45):
        raise ValueError(f"the teacher expects {teacher.obs_dim}-dim observations; collect.obs_mode is {cfg.obs_mode!r}")

    own_sim = sim is None
    if own_sim:
        sim = make_walk_sim(env_id, len(ids), backend, obs_mode=cfg.obs_mode, max_episode_steps=cfg.max_episode_steps)
    elif (sim.num_envs != len(ids) or sim.robot_description.name != robot.name
          or sim.max_episode_steps != cfg.max_episode_steps or sim.config.obs_mode != cfg.obs_mode):
        raise ValueError(f"the given sim does not match: need {len(ids)} envs of {robot.name}, max_episode_steps "
                         f"{cfg.max_episode_steps}, obs_mode {cfg.obs_mode!r}")
    try:
        c = sim.config
        if not c.commands.is_fixed or c.randomization.any_enabled:
            raise ValueError("collection needs the task's deterministic default config (fixed command, no "
                             "randomisation) so that histories are reproducible and resumable")
        dev = sim.device
        bounds = (sim.action_low.cpu().tolist(), sim.action_high.cpu().tolist())
        meta = _dataset_meta(cfg, teacher_info, task_name, group_name, reward_scale, sim.obs_dim, bounds)
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            _check_same_dataset(meta_path, old, meta)
        write_json_atomic(meta_path, meta)
        from go2bench.envs.genesis_runtime import torch_threads_beside_simulation

        with torch_threads_beside_simulation(dev):
            return _run(out, name, cfg, sim, teacher, ids, h5_paths, meta, resume, progress, plot)
    finally:
        if own_sim:
            sim.close()


def _run(out, name, cfg, sim, teacher, ids, h5_paths, meta, resume, progress, plot) -> dict[str, Any]:
    dev, H, A, C = sim.device, len(ids), 12, cfg.chunk_steps
    N = cfg.steps_per_history
    schedule = cfg.schedule
    done_json = {i: h5_paths[i].with_suffix(".json") for i in ids}
    writers, write_from, start_row = {}, np.zeros(H, np.int64), np.zeros(H, np.int64)
    active_np = np.ones(H, bool)
    for j, i in enumerate(ids):
        if done_json[i].exists() and h5_paths[i].exists():
            active_np[j] = False
            continue
        w = HistoryWriter(h5_paths[i], sim.obs_dim, A, cfg.group_size, compression=cfg.compression)
        writers[i] = w
        write_from[j], start_row[j] = w.steps_written, w.last_episode_start()
    resumed = int((write_from > 0).sum())

    keys = history_seed(cfg.seed, torch.tensor(ids, dtype=torch.int64)).to(dev)
    row = torch.as_tensor(start_row, device=dev)  # next row index of each history
    wfrom = torch.as_tensor(write_from, device=dev)
    active = torch.as_tensor(active_np, device=dev)
    low, high = sim.action_low, sim.action_high
    policy = teacher.policy
    t_low, t_high = teacher._low, teacher._high
    offsets = torch.arange(C, device=dev, dtype=torch.int64)[:, None]
    buf_obs = torch.empty((C, H, sim.obs_dim), device=dev)
    buf_act = torch.empty((C, H, A), device=dev)
    buf_rew = torch.empty((C, H), device=dev)
    buf_step = torch.empty((C, H), device=dev, dtype=torch.int32)
    buf_rec = torch.empty((C, H), device=dev, dtype=torch.bool)

    total_target = int(sum(N for j in range(H) if active_np[j]) - int(write_from[active_np].sum()))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(total_target, 0), unit="step", desc=f"collect {name}", dynamic_ncols=True)
    written = simulated = 0
    t0 = time.perf_counter()
    obs = sim.reset()
    finished_ids: list[int] = []
    try:
        while bool(active.any()):
            grid = row[None, :] + offsets  # (C, H) row index of every step of the chunk
            eps = schedule.eps(grid).to(torch.float32)
            u = low + (high - low) * uniform_noise(keys[None, :], grid, A)
            with torch.inference_mode():
                for t in range(C):
                    a = torch.clamp(policy._predict(obs, deterministic=True), t_low, t_high)
                    act = torch.clamp(torch.lerp(a, u[t], eps[t, :, None]), low, high)
                    buf_obs[t] = obs
                    buf_act[t] = act
                    buf_step[t] = sim.episode_step
                    buf_rec[t] = active & (grid[t] >= wfrom)
                    r = sim.step(act)
                    buf_rew[t] = r.reward
                    done = r.terminated | r.truncated
                    active = active & ~(done & (grid[t] + 1 >= N))
                    obs = sim.reset(done) if bool(done.any()) else r.obs
            row = row + C
            simulated += C * H
            written += _write_chunk(ids, writers, buf_obs, buf_act, buf_rew, buf_step, buf_rec)
            still = active.cpu().numpy()
            finished = [i for j, i in enumerate(ids) if i in writers and not still[j]]
            for i in finished:
                _finish_history(writers.pop(i), h5_paths[i], done_json[i], meta, i, cfg)
                finished_ids.append(i)
            if bar is not None:
                bar.update(min(written - bar.n, bar.total - bar.n))
                e = eps[-1][active].cpu().numpy()
                bar.set_postfix_str(
                    f"eps {' '.join(f'{x:.2f}' for x in e)}" if len(e) <= 6 else
                    f"eps {e.min():.2f}-{e.max():.2f}" if len(e) else "eps -"
                )
    except BaseException:
        for w in writers.values():
            try:
                w.close(final=False)  # keep complete groups only
            except OSError:
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    summary = _finish_dataset(out, name, meta)
    if plot and summary["complete_histories"]:
        from go2bench.collect.plot import plot_dataset

        plot_dataset(out, out / "learning_curves.png")
    summary.update({"rows_written": written, "env_steps_simulated": simulated, "wall_s": round(wall, 2),
                    "steps_per_s": round(written / wall, 1) if wall > 0 else None,
                    "histories_this_run": ids, "resumed_histories": resumed})
    return summary


def _write_chunk(ids, writers, buf_obs, buf_act, buf_rew, buf_step, buf_rec) -> int:
    """Copy a chunk to the host once and append each history's recorded rows; returns rows written."""
    rec = buf_rec.cpu().numpy()
    if not rec.any():
        return 0
    obs, act, rew, step = (b.cpu().numpy() for b in (buf_obs, buf_act, buf_rew, buf_step))
    n = 0
    for j, i in enumerate(ids):
        rows = np.flatnonzero(rec[:, j])
        if len(rows) == 0 or i not in writers:
            continue
        a, b = rows[0], rows[-1] + 1
        assert b - a == len(rows), "recorded rows of a history are contiguous"
        writers[i].append(obs[a:b, j], act[a:b, j], rew[a:b, j], step[a:b, j])
        n += int(b - a)
    return n


def _finish_history(writer: HistoryWriter, path_h5: Path, path_json: Path, meta: dict, index: int,
                    cfg: CollectConfig) -> None:
    writer.close(final=True)
    stats = history_stats(path_h5)
    record = {
        "task_name": meta["task_name"],
        "group_name": meta["group_name"],
        "env_id": meta["env_id"],
        "robot": meta["robot"],
        "history_index": index,
        "seed": cfg.seed,
        "history_key": int(history_seed(cfg.seed, index)),
        "observation_shape": meta["observation_shape"],
        "action_dim": meta["action_dim"],
        "action_type": "continuous",
        "reward_scale": meta["reward_scale"],
        "noise": meta["noise"],
        **stats,
        "go2bench_version": meta["go2bench_version"],
    }
    write_json_atomic(path_json, record)


def _finish_dataset(out: Path, name: str, meta: dict) -> dict[str, Any]:
    """Pool the per-history statistics into the dataset JSON; mark it complete when all are."""
    records = []
    for i in range(meta["num_histories"]):
        p = out / f"trajectories_env_{i:04d}.json"
        if p.exists():
            records.append(json.loads(p.read_text()))
    meta = dict(meta)
    if records:
        w = np.array([r["total_transitions"] for r in records], np.float64)
        total = w.sum()

        def pooled(mkey, skey):
            m = np.array([r[mkey] for r in records], np.float64)
            s = np.array([r[skey] for r in records], np.float64)
            mean = (w[:, None] * m).sum(0) / total if m.ndim == 2 else (w * m).sum() / total
            if m.ndim == 2:
                var = (w[:, None] * (s**2 + m**2)).sum(0) / total - mean**2
            else:
                var = (w * (s**2 + m**2)).sum() / total - mean**2
            return mean.tolist(), np.sqrt(np.maximum(var, 0.0)).tolist()

        meta["obs_mean"], meta["obs_std"] = pooled("obs_mean", "obs_std")
        meta["acs_mean"], meta["acs_std"] = pooled("acs_mean", "acs_std")
        meta["reward_mean"], meta["reward_std"] = pooled("reward_mean", "reward_std")
        meta["reward_min"] = min(r["reward_min"] for r in records)
        meta["reward_max"] = max(r["reward_max"] for r in records)
        meta["total_transitions"] = int(total)
        meta["histories"] = {
            str(r["history_index"]): {
                "total_transitions": r["total_transitions"], "num_episodes": r["num_episodes"],
                "first_return": r["episode_returns"][0], "last_return": r["episode_returns"][-1],
            }
            for r in records
        }
    meta["status"] = "complete" if len(records) == meta["num_histories"] else "incomplete"
    write_json_atomic(out / f"{name}.json", meta)
    return {"dataset": str(out), "status": meta["status"], "complete_histories": len(records),
            "num_histories": meta["num_histories"], "total_transitions": meta.get("total_transitions", 0)}
