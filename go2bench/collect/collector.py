"""The collector: a teacher plus a fading-noise schedule write Vintix learning histories.

All histories of a run step together in one batched scene (one env per history) with batched
teacher inference.  The loop is chunked: for a chunk of ``chunk_steps`` steps the noise and the
schedule's eps are computed up front for every (step, history) in one call, the step loop
(:func:`~go2bench.collect.chunk_loop.step_chunk`, few ops per step) only runs the teacher, the blend
and the simulation, and records into per-chunk buffers; at the end of a chunk
:class:`~go2bench.collect.sink.ChunkSink` copies them to the host once (non-blocking, pinned, on
CUDA) and a writer thread appends each history's rows to its
:class:`~go2bench.histories.writer.HistoryWriter` and finishes the histories that are done, while
the loop steps on; with ``cfg.writer_processes`` the histories are sharded over writer processes
instead (:mod:`go2bench.collect.writer_procs`), off the stepping process's GIL, writing the same bytes.  Host syncs of the loop: one per step (whether any env is done, as the raw loop
has), one per chunk (which histories are still active).

Reproducibility and resume: the env of the default task has no randomness of its own (fixed
command, deterministic resets), and the noise is a pure function of (seed, history, step)
(:mod:`go2bench.collect.noise`), so a history's rows do not depend on which other histories
share the batch or on interruptions.  ``resume`` reopens every history file, keeps its complete
groups, replays the episode that was in progress from its start (nothing is written until the
replay passes the last stored row) and continues: the result equals an uninterrupted run.
A history whose per-env JSON exists is complete and is skipped.

With ``cfg.segments`` S > 1 each history is stepped by S envs at once, each from its own row of the history
(:mod:`go2bench.collect.segments`), and joined when its segments are complete.  The dataset's metadata and the
resume identity checks are :mod:`go2bench.collect.dataset_meta`'s.

Each row also stores the teacher's clean action as ``demonstrator_action`` (datasets collected
before it existed are resumed without it).  In a task family (``cfg.family``,
:mod:`go2bench.collect.family`) every history holds one theta for its whole length, the
simulation gives the privileged teacher its observation with the theta block, and the rows keep
the agent's observation: the first ``obs_dim`` columns (the theta block is last).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from go2bench.collect import family as F
from go2bench.collect.config import CollectConfig, parse_env_ids
from go2bench.collect.dataset_meta import check_resume_identity, dataset_meta, finish_dataset, observation_layout_record
from go2bench.collect.noise import history_seed, uniform_noise
from go2bench.collect.chunk_loop import step_chunk
from go2bench.collect.segments import EnvPlan, env_plan, join_history
from go2bench.collect.teacher_mlp import teacher_mlp
from go2bench.collect.shard import ShardSpec, record_meta
from go2bench.collect.sink import ThreadWriters
from go2bench.collect.writer_procs import (SLOT_DEPTH, ProcessWriters, shard_columns, shared_memory_shortfall,
                                          slot_layout, writer_process_count)
from go2bench.core.provenance import write_json_atomic
from go2bench.envs.registry import task_spec
from go2bench.envs.robots import RobotDescription, get_robot
from go2bench.envs.spaces import observation_dim
from go2bench.histories.names import DATASET_KEYS, DEMONSTRATOR_KEY, history_h5, history_json, metadata_path

__all__ = ["collect"]


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
    trust_checkpoint: bool = False,
    teacher=None,
) -> dict[str, Any]:
    """Collect ``cfg.num_histories`` learning histories (or the subset ``env_ids``) into ``out_dir``.

    Writes ``<out>/<name>.json`` first (the dataset metadata; ``status`` becomes "complete" once
    every history is), then per history its .h5 file group by group and, when it is complete, its
    .json (:mod:`go2bench.histories.names`); finally ``learning_curves.png``.  Returns a summary.
    ``sim``: an existing :class:`~go2bench.envs.walk_sim.WalkSimulation` of ``cfg.env`` with one env
    per collected history (it is reset, not closed); default: a new one on ``backend``.
    ``trust_checkpoint``: see :func:`go2bench.agents.teacher.load_teacher`.  ``teacher``: the one
    :func:`~go2bench.collect.family.load_collect_teacher` gives for ``cfg`` on the simulation's device,
    loaded once by a caller that collects several times (default: loaded here).
    """
    from go2bench.envs.walk_sim import make_walk_sim

    from go2bench.core.devices import check_torch_device
    from go2bench.envs.walk_sim import check_memory

    if sim is not None:  # a caller's simulation: refused before anything is written
        _check_deterministic(sim)
    else:  # before anything is allocated per history or loaded onto a device
        check_memory((len(env_ids) if isinstance(env_ids, list) else cfg.num_histories) * cfg.segments, backend)
        if backend == "gpu":
            check_torch_device("cuda", "--backend gpu")
    out = Path(out_dir)
    name = out.name
    env_id = cfg.env_id
    task = task_spec(env_id)
    robot = get_robot(task.robot)
    group_name = group_name or task.task_name
    ids = env_ids if isinstance(env_ids, list) else parse_env_ids(env_ids, cfg.num_histories)
    meta_path = metadata_path(out)
    plan = env_plan(out, ids, cfg.steps_per_history, cfg.segments)
    existing = [p for p in (history_h5(out, i) for i in ids) if p.exists()]
    existing += [p for p in (history_h5(plan.write_dir, f) for f in plan.files) if plan.segments > 1 and p.exists()]
    if existing and not resume:
        raise FileExistsError(f"{out} already holds {existing[0].relative_to(out)}; pass --resume to continue it, "
                              "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    # the simulation's torch device: Genesis' GPU backend is the current CUDA device
    device = str(sim.device) if sim is not None else ("cuda" if backend == "gpu" else "cpu")
    teacher = teacher if teacher is not None else F.load_collect_teacher(cfg, device, trust_checkpoint)
    obs_dim = observation_dim(robot, cfg.obs_mode)  # the agent's: what the rows hold
    teacher_dim = observation_dim(robot, cfg.obs_mode, cfg.family)  # + the theta block in a family
    if teacher.obs_dim != teacher_dim:
        raise ValueError(f"the teacher expects {teacher.obs_dim}-dim observations; collect.obs_mode {cfg.obs_mode!r}"
                         + (f" with the {cfg.family} theta block" if cfg.family else "") + f" gives {teacher_dim}")
    # Identity and writability are settled before the scene is built (a build takes minutes on a GPU).
    meta = dataset_meta(cfg, robot, F.teacher_record(teacher, cfg), task.task_name, group_name, reward_scale,
                         obs_dim, robot.action_bounds())
    if cfg.family is not None:
        meta["task_layout"] = F.layout_record(cfg, robot)
        meta["teacher_observation_layout"] = observation_layout_record(robot, cfg.obs_mode, cfg.family)
        meta["tasks"] = F.planned_tasks(cfg, robot)
    old = check_resume_identity(out, meta_path, meta, resume and bool(existing))
    if old is not None and DEMONSTRATOR_KEY not in (old.get("dataset_keys") or ()):
        meta["dataset_keys"] = list(DATASET_KEYS)  # collected before demonstrator_action: keep its layout
        meta["format"] = old.get("format", meta["format"])
    write_json_atomic(meta_path, meta)

    if sim is None and resume and _finished(out, ids).all():
        # nothing left to collect: no scene build (minutes on a GPU) to find that out
        summary = finish_dataset(out, meta)
        summary.update({"rows_written": 0, "env_steps_simulated": 0, "wall_s": 0.0, "steps_per_s": None,
                        "histories_this_run": ids, "resumed_histories": 0, "rebuilt_histories": []})
        return summary
    specs = F.history_task_specs(cfg, robot, list(plan.parents)) if cfg.family is not None else None
    own_sim = sim is None
    if own_sim:
        sim = make_walk_sim(env_id, len(plan.files), backend, obs_mode=cfg.obs_mode,
                            max_episode_steps=cfg.max_episode_steps, family=cfg.family, tasks=specs,
                            privileged=cfg.family is not None)
    else:
        _use_given_sim(sim, cfg, robot, len(plan.files), specs)
    try:
        if own_sim:  # a caller's simulation was checked before anything was written
            _check_deterministic(sim)
        dev = sim.device
        from go2bench.envs.genesis_runtime import torch_threads_beside_simulation

        with torch_threads_beside_simulation(dev):
            return _run(out, name, cfg, sim, teacher, ids, plan, meta, progress, plot)
    finally:
        if own_sim:
            sim.close()


def _check_deterministic(sim) -> None:
    """Datasets hold the task's default distribution: a fixed command, nothing randomised (initial pose included)."""
    c = sim.config
    if not c.commands.is_fixed or c.randomization.any_enabled:
        raise ValueError("collection needs the task's deterministic default config (fixed command, no randomisation "
                         "or initial joint noise) so that histories are reproducible and resumable")


def _use_given_sim(sim, cfg: CollectConfig, robot: RobotDescription, n_envs: int, specs) -> None:
    """Check that a caller's simulation fits the collection and give its envs the histories' thetas."""
    privileged = cfg.family is not None
    if (sim.num_envs != n_envs or sim.robot_description.name != robot.name
            or sim.max_episode_steps != cfg.max_episode_steps or sim.config.obs_mode != cfg.obs_mode
            or sim.family != cfg.family or sim.privileged != privileged):
        raise ValueError(f"the given sim does not match: need {n_envs} envs of {robot.name}, max_episode_steps "
                         f"{cfg.max_episode_steps}, obs_mode {cfg.obs_mode!r}, family {cfg.family}, privileged "
                         f"{privileged}")
    if specs is not None:
        from go2bench.envs.tasks import resolve

        sim.tasks.assign(resolve(cfg.family, robot, specs, n_envs))


def _run(out, name, cfg, sim, teacher, ids, plan: EnvPlan, meta, progress, plot) -> dict[str, Any]:
    dev, H, A, C = sim.device, len(plan.files), sim.robot_description.num_joints, cfg.chunk_steps
    D = meta["observation_shape"]["proprio"][0]  # the agent's observation: the sim's first D columns
    schedule = cfg.schedule
    demo = DEMONSTRATOR_KEY in meta["dataset_keys"]
    active_np = ~np.repeat(_finished(out, ids), plan.segments)  # a joined history's segments are gone
    if plan.segments > 1:
        active_np &= ~_finished(plan.write_dir, list(plan.files))
    keys = history_seed(cfg.seed, torch.tensor(plan.parents, dtype=torch.int64))
    f32 = torch.float32
    specs = {"obs": ((C, H, D), f32), "action": ((C, H, A), f32), "reward": ((C, H), f32),
             "step_num": ((C, H), torch.int32), "rec": ((C, H), torch.bool)}
    if demo:
        specs["demo"] = ((C, H, A), f32)
    spec = _shard_spec(cfg, meta, D, A, demo)
    plan.write_dir.mkdir(exist_ok=True)
    pool = _open_writers(plan, cfg, active_np, keys.tolist(), spec, specs, dev)
    try:
        return _loop(out, name, cfg, sim, teacher, ids, plan, spec, meta, plot, progress, pool, active_np,
                     keys.to(dev), A, C, schedule)
    except BaseException:
        try:
            pool.close()  # whole chunks already handed over are still written; complete groups only
        except BaseException:  # noqa: BLE001 - the first error is the one to report
            pass
        raise


def _shard_spec(cfg: CollectConfig, meta: dict, D: int, A: int, demo: bool) -> ShardSpec:
    """How the dataset's histories are written, for no history yet (``replace`` gives its folder and histories)."""
    return ShardSpec(out="", ids=(), cols=(), keys=(), obs_dim=D, act_dim=A, group_size=cfg.group_size,
                     compression=cfg.compression, demonstrator=demo, meta=record_meta(meta), seed=cfg.seed,
                     family=cfg.family, split=cfg.split)


def _open_writers(plan: EnvPlan, cfg, active_np, keys, base: ShardSpec, specs, dev):
    """The writers of the files still to collect: on a thread, or sharded over writer processes."""
    cols = [j for j in range(len(plan.files)) if active_np[j]]
    processes = writer_process_count(cfg.writer_processes, torch.device(dev).type == "cuda", len(cols))

    def spec(cs):
        return replace(base, out=str(plan.write_dir), ids=tuple(plan.files[j] for j in cs), cols=tuple(cs),
                       keys=tuple(keys[j] for j in cs))

    if processes and cfg.writer_processes == "auto":  # "auto" takes the thread where the slots do not fit
        why = shared_memory_shortfall(SLOT_DEPTH * slot_layout(specs)[1])
        if why:
            print(f"collect: writer thread instead of {processes} writer processes: {why}", flush=True)
            processes = 0
    if processes == 0:
        return ThreadWriters(spec(cols), specs, dev)
    return ProcessWriters([spec([cols[r] for r in part]) for part in shard_columns(len(cols), processes)], specs, dev)


def _loop(out, name, cfg, sim, teacher, ids, plan, spec, meta, plot, progress, pool, active_np, keys, A, C,
          schedule):
    dev, files, H = sim.device, plan.files, len(plan.files)
    parent = dict(zip(files, plan.parents))
    write_from, start_row = np.zeros(H, np.int64), np.zeros(H, np.int64)
    for j, i in enumerate(files):
        if active_np[j]:
            write_from[j], start_row[j] = pool.opened[i].steps_written, pool.opened[i].last_episode_start
    resumed = int((write_from > 0).sum())
    rebuilt = sorted({parent[i] for i in files if i in pool.opened and pool.opened[i].rebuilt})  # damaged by a kill

    row = torch.as_tensor(start_row, device=dev)  # next row index of each history
    wfrom = torch.as_tensor(write_from, device=dev)
    active = torch.as_tensor(active_np, device=dev)
    low, high = sim.action_low.to(torch.float32), sim.action_high.to(torch.float32)
    if bool((low > high).any()):  # checked once: the step loop blends without checks (no host sync)
        raise ValueError("the simulation's action bounds have low > high")
    actor = teacher_mlp(teacher.policy)
    bounds = (teacher._low, teacher._high, low, high)
    offsets = torch.arange(C, device=dev, dtype=torch.int64)[:, None]
    first_row = torch.as_tensor(plan.offsets, device=dev, dtype=torch.int64)  # of each env's rows in its history
    cut = torch.as_tensor(plan.cut(), device=dev) if plan.segments > 1 else None
    open_ids = set(pool.opened)  # histories still being written
    tasks: dict[int, dict[str, Any]] = {}

    total_target = int(plan.rows * int(active_np.sum()) - int(write_from[active_np].sum()))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(total_target, 0), unit="step", desc=f"collect {name}", dynamic_ncols=True)
    simulated = 0
    t0 = last_log = time.perf_counter()
    obs = sim.reset()  # the family's thetas take effect here, held from now on (no new trial is started)
    tasks.update(_history_tasks(sim, plan.parents, meta))
    try:
        while bool(active.any()):  # one host sync per chunk
            grid = row[None, :] + offsets  # (C, H) row index of every step of the chunk in its file
            at = grid + first_row if cut is not None else grid  # ... and in its history: the noise's coordinates
            eps = schedule.eps(at).to(torch.float32)
            noise = low + (high - low) * uniform_noise(keys[None, :], at, A)
            with torch.no_grad():  # not inference_mode: the sim's state must stay usable afterwards
                obs, active = step_chunk(sim, actor, obs, pool.buffers(), grid, eps, noise, active, wfrom,
                                         plan.rows - 1, bounds, cut)
            row = row + C
            simulated += C * H
            still = active.cpu().numpy()
            finished = [i for j, i in enumerate(files) if i in open_ids and not still[j]]
            open_ids.difference_update(finished)
            pool.submit([(i, tasks.get(parent[i], {})) for i in finished])
            if bar is None and time.perf_counter() - last_log >= 30:  # without a bar, a line every 30 s (logs)
                last_log = time.perf_counter()
                rate = simulated / (last_log - t0)
                print(f"collect {name}: {pool.written:,} rows written (target {total_target:,}, then each history ends "
                      f"its episode), {rate:,.0f} simulated steps/s", file=sys.stderr, flush=True)
            if bar is not None:
                bar.update(min(pool.written - bar.n, bar.total - bar.n))
                e = eps[-1][active].cpu().numpy()
                bar.set_postfix_str(
                    f"eps {' '.join(f'{x:.2f}' for x in e)}" if len(e) <= 6 else
                    f"eps {e.min():.2f}-{e.max():.2f}" if len(e) else "eps -"
                )
        pool.close()  # every chunk written, every finished history closed with its JSON
        if plan.segments > 1:
            _join_complete(out, plan, ids, spec, tasks)
    finally:
        if bar is not None:
            bar.close()
    written = pool.written
    wall = time.perf_counter() - t0
    summary = finish_dataset(out, meta)
    if plot and summary["complete_histories"]:
        from go2bench.collect.plot import plot_dataset

        plot_dataset(out, out / "learning_curves.png")
    summary.update({"rows_written": written, "env_steps_simulated": simulated, "wall_s": round(wall, 2),
                    "steps_per_s": round(written / wall, 1) if wall > 0 else None,
                    "histories_this_run": ids, "resumed_histories": resumed, "rebuilt_histories": rebuilt})
    return summary


def _join_complete(out: Path, plan: EnvPlan, ids: list[int], spec: ShardSpec, tasks: dict) -> None:
    """Join every history of ``ids`` whose segments are all complete (and which is not joined yet)."""
    todo = [i for i, done in zip(ids, _finished(out, ids)) if not done
            and _finished(plan.write_dir, plan.segment_files(i)).all()]
    for i in todo:
        join_history(replace(spec, out=str(out)), plan, i, tasks.get(i, {}))


def _finished(out: Path, ids: list[int]) -> np.ndarray:
    """Which of the histories ``ids`` are complete on disk (their .h5 and, written last, their .json)."""
    return np.array([history_json(out, i).exists() and history_h5(out, i).exists() for i in ids], bool)


def _history_tasks(sim, ids, meta: dict) -> dict[int, dict[str, Any]]:
    """Each history's theta as the simulation holds it (after the first reset), checked against the plan;
    ``ids``: the history of each env."""
    if sim.tasks is None:
        return {}
    out = {}
    for j, i in enumerate(ids):
        rec = {"task": sim.tasks.as_dict(j), "task_id": sim.tasks.ids[j]}
        plan = meta["tasks"][str(i)]
        if rec["task_id"] != plan["task_id"] or any(abs(rec["task"][k] - v) > 1e-9 for k, v in plan["task"].items()):
            raise RuntimeError(f"history {i}: the simulation holds task {rec} instead of the planned {plan}")
        out[i] = rec
    return out
