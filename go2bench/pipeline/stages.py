"""The stages of ``go2bench pipeline``: collect, train, eval, leaderboard.

Each stage runs in this process when it can and skips what is already complete. A stage runs as
separate processes only where a backend or a GPU requires it:

* Genesis is initialised once per process with one backend (:mod:`go2bench.envs.genesis_runtime`):
  a collection or an evaluation on another backend than this process's runs as a
  ``go2bench collect`` / ``go2bench eval`` process;
* the GPU backend: each dataset is collected by its own process, round robin over ``gpus`` GPUs (several
  on one GPU still overlap their scene builds, which are CPU work);
* ``train_gpus > 1``: training runs under ``torchrun -m go2bench.cli.train_main`` (DDP);
* ``eval.jobs > 1``: that many ``go2bench eval`` processes at a time, since every evaluation is a
  sequence of K x episode-length steps that a bigger batch cannot shorten; each process evaluates
  all agents of one env (of one family and env in the family stage).

Either way the agents of one env (and scene kind) run side by side in one scene, each on its own
envs (:mod:`go2bench.eval.side_by_side`): a GPU step costs about the same at 10 or 40 envs, so four
agents take the batch steps of one.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Hashable, Sequence, TypeVar

import yaml

from go2bench.collect.config import CollectConfig
from go2bench.core.config import to_dict
from go2bench.envs.registry import ZOO_DIR, task_spec
from go2bench.pipeline.config import PipelineConfig

__all__ = ["Dataset", "datasets", "write_dataset_config", "collect_stage", "train_stage", "train_run",
           "train_runs_at_once", "eval_stage",
           "leaderboard_stage", "train_arguments", "collect_staged", "grouped", "device_for"]

ZOO_VINTIX = ZOO_DIR / "vintix" / "vintix.pt"
T = TypeVar("T")
CLI = [sys.executable, "-m", "go2bench.cli"]


def log(msg: str) -> None:
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------- processes
def start_process(cmd: list[str], log_file: Path | None = None, gpu: int | None = None,
                  devices: Sequence[int] | None = None) -> subprocess.Popen:
    """``cmd`` as a child process. ``gpu``: an index into this process's GPUs, mapped through its own
    CUDA_VISIBLE_DEVICES; ``devices``: the child's CUDA_VISIBLE_DEVICES ids as they are."""
    env = dict(os.environ)
    if gpu is not None:
        mine = [x.strip() for x in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
        env["CUDA_VISIBLE_DEVICES"] = mine[gpu] if gpu < len(mine) else str(gpu)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
    log(("" if gpu is None else f"[GPU {gpu}] ") + "$ " + shlex.join(cmd))
    if log_file is None:
        return subprocess.Popen(cmd, env=env)
    with open(log_file, "a") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_all(procs: list[tuple[str, subprocess.Popen]]) -> None:
    failed = [f"{what} (exit {p.returncode})" for what, p in procs if p.wait() != 0]
    if failed:
        raise RuntimeError("pipeline stage failed: " + ", ".join(failed) + "; see its output or the logs in the "
                           "run folder")


def collect_staged(staging: Path, paths: dict[str, Path]) -> None:
    """Move the results a several-agent ``go2bench eval`` process listed in its ``--out`` folder's index to
    ``paths[spec]``, then drop the folder (what it did not complete is evaluated again on the next run)."""
    import shutil

    from go2bench.eval.agent_outputs import read_index

    if not staging.is_dir():
        return
    for spec, path in read_index(staging).items():
        if spec in paths and path.is_file():
            path.replace(paths[spec])
    shutil.rmtree(staging)


def gpu_for(cfg: PipelineConfig, i: int) -> int | None:
    return i % cfg.gpus if cfg.backend == "gpu" and cfg.gpus > 1 else None


def genesis_here(backend: str) -> bool:
    """Whether this process can run Genesis on ``backend`` (it has no other backend already)."""
    from go2bench.envs.genesis_runtime import backend_in_use

    return backend_in_use() in (None, backend)


# ------------------------------------------------------------------------------------- collect
@dataclass(frozen=True)
class Dataset:
    """One env's dataset in the run: its name and folder in the dataset config, and how it is collected."""

    name: str  # e.g. "go2"
    path: str  # relative to the run's data/, e.g. "go2_trajectories/go2_ad"
    group: str
    collect: CollectConfig


def datasets(cfg: PipelineConfig) -> list[Dataset]:
    """A dataset per env; the i-th env's histories are seeded with ``collect.seed + i``."""
    out = []
    for i, env_id in enumerate(cfg.envs):
        spec = task_spec(env_id)
        name = spec.dataset.removesuffix("_ad")
        out.append(Dataset(name, f"{name}_trajectories/{spec.dataset}", spec.group,
                           replace(cfg.collect, env=spec.env_id, seed=cfg.collect.seed + i)))
    return out


def write_dataset_config(cfg: PipelineConfig, path: Path, only: Dataset | None = None,
                         items: list[Dataset] | None = None) -> Path:
    """The run's multitask dataset config (the seed's format, with collect sections), or one dataset's.

    ``items``: these datasets instead of the run's default-task ones (:func:`datasets`)."""
    entries = {
        d.name: {"type": "default", "path": d.path, "group": d.group, "reward_scale": cfg.reward_scale,
                 "episode_sparsity": 1, "collect": to_dict(d.collect)}
        for d in (datasets(cfg) if items is None else items) if only is None or d == only
    }
    path.parent.mkdir(parents=True, exist_ok=True)  # e.g. family/ of a run whose first stage is `family`
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


def collect_stage(cfg: PipelineConfig, out: Path, items: list[Dataset] | None = None) -> list[Path]:
    """Every env's dataset (or those of ``items``) under ``out/data``; returns the dataset folders."""
    from go2bench.histories.reader import read_metadata

    data_dir = out / "data"
    items = datasets(cfg) if items is None else items
    todo = []
    for d in items:
        if read_metadata(data_dir / d.path).get("status") == "complete":
            log(f"collect {d.name}: complete, skipped")
        else:
            todo.append(d)
            if d.collect.segments == 1 and d.collect.steps_per_history >= 100_000:  # the seed preset's layout
                log(f"collect {d.name}: {d.collect.steps_per_history:,} steps per history, one after another (about "
                    "an hour per robot for 1M); --set collect.segments=100 steps each history as 100 segments at "
                    "once (docs/data.md)")
    # on the GPU, one process per dataset even on one GPU: their scene builds (CPU work) overlap
    if cfg.backend == "gpu" and (cfg.gpus > 1 or len(items) > 1) or not genesis_here(cfg.backend):
        procs = []
        for i, d in enumerate(todo):
            one = write_dataset_config(cfg, out / f"dataset_config_{d.name}.yaml", only=d, items=items)
            cmd = [*CLI, "collect", "--config", str(one), "--data-dir", str(data_dir), "--backend", cfg.backend,
                   "--resume"]
            if cfg.backend == "gpu":  # at once (round robin over the GPUs), output to a log per dataset
                procs.append((f"collect {d.name}", start_process([*cmd, "--no-progress-bar"],
                                                                 out / f"collect_{d.name}.log", gpu_for(cfg, i))))
            else:
                wait_all([(f"collect {d.name}", start_process(cmd))])
        wait_all(procs)
    else:
        from go2bench.collect.collector import collect

        for d in todo:
            c = d.collect
            log(f"collect {d.name}: {c.num_histories} histories x {c.steps_per_history:,} steps")
            collect(data_dir / d.path, c, backend=cfg.backend, resume=True, group_name=d.group,
                    reward_scale=cfg.reward_scale)
    return [data_dir / d.path for d in items]


# ------------------------------------------------------------------------------------- train
def train_arguments(train) -> list[str]:
    """``go2bench train`` arguments for a TrainConfig (its options are spelled like its fields)."""
    args: list[str] = []
    for name, value in to_dict(train).items():
        if name == "model_overrides":
            args += [a for k, v in value.items() for a in ("--model_override", f"{k}={json.dumps(v)}")]
        elif name == "compile":  # auto / true / false: false must be said, or train would take its default (auto)
            args += ["--compile", str(value).lower()]
        elif name == "progress_bar":
            args += [] if value else ["--no_progress_bar"]
        elif isinstance(value, bool):
            args += [f"--{name}"] if value else []
        elif isinstance(value, list):
            args += [a for v in value for a in (f"--{name}", str(v))]
        elif value is not None:
            args += [f"--{name}", repr(value) if isinstance(value, float) else str(value)]
    return args


def train_stage(cfg: PipelineConfig, out: Path, config_path: Path) -> Path:
    """One Vintix on every dataset of the run: ``out/runs/vintix/final.pt``."""
    return train_run(cfg, replace(cfg.train, data_dir=str(out / "data"), dataset_config_paths=[str(config_path)],
                                  name="vintix", out_dir=str(out / "runs")))


def train_run(cfg: PipelineConfig, train, label: str = "train", section: str = "train") -> Path:
    """Train (or resume, or skip when done) the run ``train.out_dir/train.name`` of config ``section``;
    returns its ``final.pt``."""
    run_dir = Path(train.out_dir) / train.name
    if _train_done(run_dir, label):
        return run_dir / "final.pt"
    train = replace(train, resume=(run_dir / "latest.json").exists())
    if cfg.train_gpus > 1:  # batch_size is per process: split the global batch over the GPUs
        train = replace(train, batch_size=max(1, train.batch_size // cfg.train_gpus))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.train_gpus}",
               "-m", "go2bench.cli.train_main", *train_arguments(train)]
        wait_all([(label, start_process(cmd))])
    else:
        from go2bench.vintix.train import train as run_training

        log(f"{label}: {train.model} model, context {train.context_len} ({train.context}), batch {train.batch_size}, "
            f"device {train.device}")
        summary = run_training(train)
        log(f"{label}: step {summary['step']}, loss {summary['final_loss'] or float('nan'):.4f}, "
            f"{summary['wall_s']:.1f} s")
    return _train_finish(run_dir, label, section)


def train_runs_at_once(cfg: PipelineConfig, trains: list[tuple[object, str]], section: str) -> list[Path]:
    """Several trainings ``(TrainConfig, label)`` at once, each a ``go2bench train`` process (round robin over the
    GPUs; log ``train.log`` in its run folder): small models are bound by kernel launches, so several share a
    GPU. Each is resumed or skipped like :func:`train_run`; returns their ``final.pt``."""
    procs, dirs = [], []
    for i, (train, label) in enumerate(trains):
        run_dir = Path(train.out_dir) / train.name
        dirs.append((run_dir, label))
        if _train_done(run_dir, label):
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        train = replace(train, resume=(run_dir / "latest.json").exists(), progress_bar=False)
        log(f"{label}: {train.model} model, context {train.context_len} ({train.context}), batch {train.batch_size}, "
            f"device {train.device}, beside {len(trains) - 1} other training(s)")
        procs.append((label, start_process([*CLI, "train", *train_arguments(train)], run_dir / "train.log",
                                           gpu_for(cfg, i))))
    wait_all(procs)
    return [_train_finish(run_dir, label, section) for run_dir, label in dirs]


def _train_done(run_dir: Path, label: str) -> bool:
    if (run_dir / "final.pt").exists() and (run_dir / "done").exists():
        log(f"{label}: complete, skipped")
        return True
    return False


def _train_finish(run_dir: Path, label: str, section: str) -> Path:
    """Mark a finished training done; a run cut short by its config is an error (one line), not a result."""
    from go2bench.vintix.train import SUMMARY_FILE

    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    if summary.get("cut_short_by"):
        raise RuntimeError(
            f"{label} stage CUT SHORT by {section}.{summary['cut_short_by']} at step {summary['step']} of "
            f"{summary['planned_steps']}; the stage is not marked done. Run the same command again to continue "
            f"training, or raise {section}.{summary['cut_short_by']}"
        )
    (run_dir / "done").write_text("")
    return run_dir / "final.pt"


# ------------------------------------------------------------------------------------- eval
@dataclass(frozen=True)
class _Job:
    agent: str  # the name in eval.agents
    spec: str  # the agent spec given to the registry
    env: str
    path: Path


class _Evaluator:
    """Runs evaluation jobs, the agents of an env side by side (:mod:`go2bench.eval.side_by_side`): here, or as
    one ``go2bench eval`` process per env."""

    def __init__(self, cfg: PipelineConfig, out: Path) -> None:
        self.cfg, self.out = cfg, out
        self.device = device_for(cfg)

    def run(self, jobs: list[_Job]) -> None:
        groups = grouped(jobs, lambda j: j.env)
        if self.cfg.eval.jobs > 1 or not genesis_here(self.cfg.backend):
            self._processes(groups)
        else:
            for group in groups:
                self._here(group)

    def _here(self, group: list[_Job]) -> None:
        """The agents of one env in this process, those of one observation mode at once in one scene."""
        from go2bench.eval.multi_agent import evaluate_in_context_agents
        from go2bench.eval.results import save_results

        e, env_id = self.cfg.eval, group[0].env
        by_spec = {j.spec: j for j in group}
        log(f"eval {env_id}: {', '.join(j.agent for j in group)}")

        def save(spec: str, res: dict) -> None:
            save_results(res, by_spec[spec].path)
            log(f"eval {by_spec[spec].agent} {env_id}: {res['process']['eval_s']:.1f} s")

        evaluate_in_context_agents(list(by_spec), env_id, num_envs=e.num_envs, seeds=e.seeds,
                                   backend=self.cfg.backend, max_episode_steps=self.cfg.eval_max_episode_steps,
                                   device=self.device, episodes=e.episodes, on_result=save)

    def _command(self, jobs: list[_Job]) -> list[str]:
        e, job = self.cfg.eval, jobs[0]
        out = job.path if len(jobs) == 1 else self._staging(job.env)
        return [*CLI, "eval", *[a for j in jobs for a in ("--agent", j.spec)], "--env", job.env, "--episodes",
                str(e.episodes), "--num-envs", str(e.num_envs), "--seeds", ",".join(map(str, e.seeds)), "--backend",
                self.cfg.backend, "--device", self.device, "--max-episode-steps", str(self.cfg.eval_max_episode_steps),
                "--out", str(out)]

    def _staging(self, env_id: str) -> Path:
        return self.out / "results" / f".eval-{env_id}"

    def _processes(self, groups: list[list[_Job]]) -> None:
        """One process per env holding its agents (side by side), ``eval.jobs`` at a time."""
        n = self.cfg.eval.jobs
        for i in range(0, len(groups), n):
            batch = groups[i: i + n]
            # each process to the log: the pipeline prints one summary per result once its scores are final
            procs = [(f"eval {', '.join(j.agent for j in g)} {g[0].env}",
                      start_process([*self._command(g), "--no-progress"], self.out / "eval.log", gpu_for(self.cfg, k)))
                     for k, g in enumerate(batch)]
            try:
                wait_all(procs)
            finally:
                for g in batch:
                    collect_staged(self._staging(g[0].env), {j.spec: j.path for j in g})


def grouped(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """``items`` by ``key``, groups and items in order of first appearance: the evaluation jobs of one env (or
    one family and env), which one scene or one process evaluates together."""
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def device_for(cfg: PipelineConfig) -> str:
    """The torch device of the run's agents and trainings run here: cuda on the gpu backend."""
    return "cuda" if cfg.backend == "gpu" else "cpu"


def _agent_spec(agent: str, checkpoint: Path | None) -> str:
    if agent == "vintix-zoo":
        return f"vintix:{ZOO_VINTIX}"
    if agent in ("vintix", "vintix-nocontext"):
        return f"{agent}:{checkpoint}"
    return agent


def eval_stage(cfg: PipelineConfig, out: Path, checkpoint: Path | None) -> list[Path]:
    """Every agent on every env into ``out/results/<agent>_<env>.json``; an existing file is kept.

    The agents of an env run side by side in one scene (per observation mode). With measured reference
    scores, the mean returns of random and teacher then normalise every result of the env, theirs
    included (so they score exactly 0 and 1): normalising is arithmetic on the stored returns.
    """
    from go2bench.eval.results import load_results, renormalize_results, save_results

    res_dir = out / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    agents = [a for a in cfg.eval.agents if a != "vintix-zoo" or ZOO_VINTIX.exists()]
    if checkpoint is None:
        agents = [a for a in agents if a not in ("vintix", "vintix-nocontext")]
    jobs = [_Job(a, _agent_spec(a, checkpoint), env, res_dir / f"{a}_{env}.json") for a in agents for env in cfg.envs]
    evaluator = _Evaluator(cfg, out)
    for env in cfg.envs:  # results an interrupted run completed but did not move yet
        collect_staged(evaluator._staging(env), {j.spec: j.path for j in jobs if j.env == env})
    evaluator.run([j for j in jobs if not j.path.exists()])
    results = {j: load_results(j.path) for j in jobs}
    if cfg.eval.measured_reference_scores:
        by = {(j.agent, j.env): res for j, res in results.items()}
        refs = {env: (by[("random", env)]["mean_return"], by[("teacher", env)]["mean_return"]) for env in cfg.envs}
        for j, res in results.items():
            if (res["random_score"], res["expert_score"]) != refs[j.env]:
                save_results(renormalize_results(res, *refs[j.env]), j.path)
    for j, res in results.items():  # with the normalisation of the final table
        per = res["per_episode"]["normalized_score"]
        curve = f", by episode {per[0]:.2f} -> {per[-1]:.2f}" if len(per) > 1 and per[0] is not None else ""
        score = "n/a" if res["normalized_score"] is None else f"{res['normalized_score']:.3f}"
        log(f"eval {j.agent} {j.env}: normalized score {score}{curve}, mean return {res['mean_return']:.3f}, "
            f"falls {res['fall_rate']:.0%}")
    return [j.path for j in jobs]


# ------------------------------------------------------------------------------------- leaderboard
def leaderboard_stage(cfg: PipelineConfig, out: Path) -> dict:
    """Tables and plots of every result in ``out/results``, with the datasets' learning curves."""
    from go2bench.eval.leaderboard import make_leaderboard
    from go2bench.histories.names import history_paths

    dirs = [out / "data" / d.path for d in datasets(cfg)]
    made = make_leaderboard(sorted((out / "results").glob("*.json")), out / "leaderboard",
                            datasets=[d for d in dirs if history_paths(d, ".json")])
    print(made["markdown"])
    return made
