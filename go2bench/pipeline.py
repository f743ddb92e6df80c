"""`go2bench pipeline`: teachers -> noisy learning histories -> Vintix -> in-context evaluation -> leaderboard.

One command runs the whole benchmark at a preset scale, each stage resumable: collection resumes
its datasets, training resumes its run folder, an evaluation whose results JSON exists is not run
again, and the leaderboard is rebuilt from whatever results exist.  Evaluations run as separate
``go2bench eval`` processes (``jobs`` at a time), since every one is a sequence of K x episode-length
steps that a bigger batch cannot shorten.

Presets (all numbers are fields of :class:`PipelinePreset`, overridable from YAML or the CLI):

* ``cpu``: a small demonstration on a 2-core machine, under 15 minutes with shipped teachers:
  16 histories x 4,000 steps per robot with 200-step episodes, a ``tiny`` Vintix, 10 envs x 10
  episodes of 200 steps per agent.  Normalised scores use the random and teacher returns measured
  in the same run (the shipped reference scores are for 1,000-step episodes).
* ``gpu``: the seed's budget on one GPU in one 10-minute call: 10M steps per robot as 1,024
  parallel histories of 10,000 steps (1,000-step episodes), the ``seed`` model with context
  2,048, batch 8, trajectory sparsity 128 for a time budget, and 10 envs x 10 episodes of 1,000
  steps per agent, normalised with the shipped teachers' reference scores.
* ``seed``: the original's exact layout (10 histories x 1M steps per robot, sequential: about an
  hour of collection on a GPU), otherwise as ``gpu``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PipelinePreset", "PRESETS", "run_pipeline"]

ENVS = ("Go2Walk-v0", "MiniCheetahWalk-v0")
ZOO_VINTIX = Path(__file__).resolve().parent / "zoo" / "vintix" / "vintix.pt"


@dataclass(frozen=True)
class PipelinePreset:
    """The scale of one end-to-end run."""

    name: str = "cpu"
    backend: str = "cpu"
    # collection (per robot)
    num_histories: int = 16
    steps_per_history: int = 4000
    max_episode_steps: int = 200
    group_size: int = 10_000
    p: float = 0.6
    f: float = 0.05
    max_perf: float = 1.0
    # training
    model: str = "tiny"
    context_len: int = 512
    batch_size: int = 8
    trajectory_sparsity: int = 64
    epochs: int = 3
    max_steps: int | None = 700
    max_minutes: float | None = 4.0
    lr: float = 1e-3
    num_workers: int = 1
    train_device: str = "auto"
    reward_scale: float = 50.0
    # evaluation
    eval_envs: int = 10
    eval_episodes: int = 10
    eval_seeds: tuple[int, ...] = (0,)
    # "vintix-zoo": the Vintix checkpoint shipped in go2bench/zoo/vintix (trained by the gpu preset)
    agents: tuple[str, ...] = ("random", "teacher", "vintix", "vintix-nocontext", "vintix-zoo")
    measured_reference_scores: bool = True  # normalise with this run's random/teacher returns
    jobs: int = 1  # evaluation processes at a time
    gpus: int = 1  # GPUs to spread collections and evaluations over
    train_gpus: int = 1  # >1: DDP through torchrun (at the seed model's size one GPU is faster, RESULTS.md)
    seed: int = 0


PRESETS: dict[str, PipelinePreset] = {
    "cpu": PipelinePreset(),
    "gpu": PipelinePreset(
        name="gpu", backend="gpu", num_histories=1024, steps_per_history=10_000, max_episode_steps=1000,
        model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=1, max_steps=None,
        max_minutes=3.0, lr=3e-4, num_workers=6, train_device="cuda", eval_envs=10, eval_episodes=10,
        agents=("random", "teacher", "vintix", "vintix-nocontext"), measured_reference_scores=False, jobs=8,
    ),
    "seed": PipelinePreset(
        name="seed", backend="gpu", num_histories=10, steps_per_history=1_000_000, max_episode_steps=1000,
        model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=100, max_steps=None,
        max_minutes=None, lr=3e-4, num_workers=6, train_device="cuda",
        agents=("random", "teacher", "vintix", "vintix-nocontext"), measured_reference_scores=False, jobs=8,
    ),
}


def _log(msg: str) -> None:
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _dataset_config(preset: PipelinePreset, out: Path) -> Path:
    """The multitask dataset config of this run (the seed's format, with collect sections)."""
    import yaml

    entries = {}
    for env_id, name, path, group, seed in (
        ("Go2Walk-v0", "go2", "go2_trajectories/go2_ad", "go2_walking", preset.seed),
        ("MiniCheetahWalk-v0", "minicheetah", "minicheetah_trajectories/minicheetah_ad", "minicheetah_walking",
         preset.seed + 1),
    ):
        entries[name] = {
            "type": "default", "path": path, "group": group, "reward_scale": preset.reward_scale,
            "episode_sparsity": 1,
            "collect": {"env": env_id, "num_histories": preset.num_histories,
                        "steps_per_history": preset.steps_per_history, "p": preset.p, "f": preset.f,
                        "max_perf": preset.max_perf, "seed": seed, "group_size": preset.group_size,
                        "max_episode_steps": preset.max_episode_steps},
        }
    path = out / "dataset_config.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


def _run(cmd: list[str], log: Path | None = None, gpu: int | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    _log(("" if gpu is None else f"[GPU {gpu}] ") + "$ " + shlex.join(cmd))
    out = open(log, "a") if log else None
    return subprocess.Popen(cmd, stdout=out or None, stderr=subprocess.STDOUT if out else None, env=env)


def _gpu(preset: PipelinePreset, i: int) -> int | None:
    return i % preset.gpus if preset.backend == "gpu" and preset.gpus > 1 else None


def _wait(procs: list[tuple[str, subprocess.Popen]]) -> None:
    failed = []
    for what, p in procs:
        if p.wait() != 0:
            failed.append(f"{what} (exit {p.returncode})")
    if failed:
        raise RuntimeError("pipeline stage failed: " + ", ".join(failed) + "; see the logs in the run folder")


def collect_stage(preset: PipelinePreset, out: Path, config: Path) -> list[Path]:
    """Both robots' datasets; on the GPU both collections run at once (two processes)."""
    from go2bench.histories.dataset_config import load_dataset_config

    data_dir = out / "data"
    entries = load_dataset_config(config)
    todo, dirs = [], []
    for name, e in entries.items():
        d = data_dir / e.path
        dirs.append(d)
        meta = d / f"{d.name}.json"
        if meta.exists() and json.loads(meta.read_text()).get("status") == "complete":
            _log(f"collect {name}: complete, skipped")
            continue
        todo.append(name)
    if not todo:
        return dirs
    cmds = []
    for name in todo:
        one = out / f"dataset_config_{name}.yaml"
        import yaml

        one.write_text(yaml.safe_dump({name: yaml.safe_load(config.read_text())[name]}, sort_keys=False))
        cmds.append((name, [sys.executable, "-m", "go2bench.cli", "collect", "--config", str(one), "--data-dir",
                            str(data_dir), "--backend", preset.backend, "--resume"]))
    if preset.backend == "gpu":
        _wait([(f"collect {n}", _run(c, out / f"collect_{n}.log", _gpu(preset, i))) for i, (n, c) in enumerate(cmds)])
    else:
        for n, c in cmds:
            _wait([(f"collect {n}", _run(c))])
    return dirs


def train_stage(preset: PipelinePreset, out: Path, config: Path) -> Path:
    run_dir = out / "runs" / "vintix"
    if (run_dir / "final.pt").exists() and (run_dir / "done").exists():
        _log("train: complete, skipped")
        return run_dir / "final.pt"
    ddp = preset.backend == "gpu" and preset.train_gpus > 1
    launcher = [sys.executable, "-m", "go2bench.cli", "train"]
    if ddp:  # batch_size is per GPU: divide it so that the global batch stays the preset's
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={preset.train_gpus}", "-m", "go2bench.cli.train_main"]
    per_gpu = max(1, preset.batch_size // preset.train_gpus) if ddp else preset.batch_size
    cmd = [*launcher, "--data_dir", str(out / "data"),
           "--dataset_config_paths", str(config), "--context_len", str(preset.context_len),
           "--batch_size", str(per_gpu), "--trajectory_sparsity", str(preset.trajectory_sparsity),
           "--epochs", str(preset.epochs), "--save_every", str(max(1, preset.epochs)), "--name", "vintix",
           "--out_dir", str(out / "runs"), "--model", preset.model, "--lr", str(preset.lr),
           "--num_workers", str(preset.num_workers), "--device", preset.train_device, "--seed", str(preset.seed)]
    if preset.max_steps is not None:
        cmd += ["--max_steps", str(preset.max_steps)]
    if preset.max_minutes is not None:
        cmd += ["--max_minutes", str(preset.max_minutes)]
    if (run_dir / "latest.json").exists():
        cmd.append("--resume")
    _wait([("train", _run(cmd))])
    (run_dir / "done").write_text("")
    return run_dir / "final.pt"


def eval_stage(preset: PipelinePreset, out: Path, checkpoint: Path | None) -> list[Path]:
    """Every agent on both robots: random and teacher first (their returns may normalise the rest)."""
    res_dir = out / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    eval_device = "cuda" if preset.backend == "gpu" else "cpu"

    def cmd(agent: str, env_id: str, path: Path, refs: tuple[float, float] | None) -> list[str]:
        if agent == "vintix-zoo":
            spec = f"vintix:{ZOO_VINTIX}"
        elif agent.startswith("vintix") and checkpoint:
            spec = f"{agent}:{checkpoint}"
        else:
            spec = agent
        c = [sys.executable, "-m", "go2bench.cli", "eval", "--agent", spec, "--env", env_id,
             "--episodes", str(preset.eval_episodes), "--num-envs", str(preset.eval_envs),
             "--seeds", ",".join(map(str, preset.eval_seeds)), "--backend", preset.backend,
             "--device", eval_device, "--max-episode-steps", str(preset.max_episode_steps), "--out", str(path),
             "--no-progress"]
        if refs is not None:
            c += ["--random-score", repr(refs[0]), "--expert-score", repr(refs[1])]
        return c

    def run_batch(jobs: list[tuple[str, list[str]]]) -> None:
        for i in range(0, len(jobs), max(1, preset.jobs)):
            batch = jobs[i : i + max(1, preset.jobs)]
            if len(batch) == 1:  # one at a time: its progress bar and summary go to the terminal
                w, c = batch[0]
                _wait([(w, _run([x for x in c if x != "--no-progress"], None, _gpu(preset, 0)))])
            else:  # several at once: each to the log, without progress bars
                _wait([(w, _run(c, out / "eval.log", _gpu(preset, j))) for j, (w, c) in enumerate(batch)])

    agents = [a for a in preset.agents if a != "vintix-zoo" or ZOO_VINTIX.exists()]
    if checkpoint is None:
        agents = [a for a in agents if a not in ("vintix", "vintix-nocontext")]
    paths = {(a, e): res_dir / f"{a}_{e}.json" for a in agents for e in ENVS}
    first = [k for k in paths if k[0] in ("random", "teacher")]
    rest = [k for k in paths if k not in first]
    if preset.measured_reference_scores:
        run_batch([(f"eval {a} {e}", cmd(a, e, paths[(a, e)], None)) for a, e in first if not paths[(a, e)].exists()])
        refs = {}
        for e in ENVS:
            r = json.loads(paths[("random", e)].read_text())["mean_return"]
            t = json.loads(paths[("teacher", e)].read_text())["mean_return"]
            refs[e] = (r, t)
        for a, e in first:  # renormalise the references themselves with the measured scores
            _renormalise(paths[(a, e)], *refs[e])
        run_batch([(f"eval {a} {e}", cmd(a, e, paths[(a, e)], refs[e])) for a, e in rest if not paths[(a, e)].exists()])
    else:
        run_batch([(f"eval {a} {e}", cmd(a, e, p, None)) for (a, e), p in paths.items() if not p.exists()])
    return list(paths.values())


def _renormalise(path: Path, random_score: float, expert_score: float) -> None:
    from go2bench.eval.protocol import normalized_score

    res = json.loads(path.read_text())
    if res.get("random_score") == random_score and res.get("expert_score") == expert_score:
        return
    # re-run the summary arithmetic with the measured references via the CLI's own code path
    from go2bench.eval.protocol import renormalize_results

    renormalize_results(res, random_score, expert_score)
    assert res["normalized_score"] == normalized_score(res["mean_return"], random_score, expert_score)
    path.write_text(json.dumps(res, indent=2))


def run_pipeline(preset: PipelinePreset, out: str | Path, stages: tuple[str, ...] = ("collect", "train", "eval",
                                                                                     "leaderboard")) -> dict[str, Any]:
    """Run (or resume) the stages of ``preset`` in ``out``; returns the leaderboard rows and timings."""
    from go2bench.core.provenance import hardware, versions, write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "pipeline.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    old = record.get("preset")
    new = dataclasses.asdict(preset)
    new["eval_seeds"], new["agents"] = list(new["eval_seeds"]), list(new["agents"])
    diff = sorted(k for k in new if old and k in old and old[k] != new[k])  # fields added later: not a change
    if diff:
        raise ValueError(f"{record_path}: this folder holds a run with other settings ({diff}); use another --out")
    record.update({"preset": new, "versions": versions(),
                   "hardware": hardware(backend=preset.backend), "command": shlex.join(sys.argv)})
    record.setdefault("stage_seconds", {})
    config = _dataset_config(preset, out)
    checkpoint = out / "runs" / "vintix" / "final.pt"
    result_paths: list[Path] = []
    dataset_dirs: list[Path] = []
    for stage in stages:
        t0 = time.perf_counter()
        _log(f"stage {stage}")
        if stage == "collect":
            dataset_dirs = collect_stage(preset, out, config)
        elif stage == "train":
            checkpoint = train_stage(preset, out, config)
        elif stage == "eval":
            result_paths = eval_stage(preset, out, checkpoint if checkpoint.exists() else None)
        elif stage == "leaderboard":
            from go2bench.eval.leaderboard import make_leaderboard

            result_paths = sorted((out / "results").glob("*.json"))
            from go2bench.histories.dataset_config import load_dataset_config

            dataset_dirs = [out / "data" / e.path for e in load_dataset_config(config).values()]
            made = make_leaderboard(result_paths, out / "leaderboard",
                                    datasets=[d for d in dataset_dirs if any(d.glob("trajectories_env_*.json"))])
            print(made["markdown"])
            record["leaderboard"] = made["rows"]
        else:
            raise ValueError(f"unknown stage {stage!r}; stages: collect, train, eval, leaderboard")
        record["stage_seconds"][stage] = round(time.perf_counter() - t0, 1)
        write_json_atomic(record_path, record)
    _log(f"done: {out} (stage seconds {record['stage_seconds']})")
    return record
