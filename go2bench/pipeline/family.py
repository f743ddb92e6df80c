"""The ``family`` stage of ``go2bench pipeline``: in-context learning on task families, end to end.

For each family F of ``family.families`` (the run folder's ``family/``):

1. **collect**: per env of ``family.envs``, ``family_collect.num_histories`` histories on F's train
   thetas (history i holds train theta i mod the split's size), written by the env's shipped
   privileged teacher of F; the rows hold the agent's observation without theta
   (``data/<F>/<robot>_<F>``);
2. **train**: on F's datasets, a Vintix on whole histories (``runs/<F>/vintix``) and its twin
   trained with its context limited to one episode (``runs/<F>/vintix-episodic``, ``--context
   episode``, context ``min(family_train.context_len, episode length)``), the no-context baseline;
3. **eval**: every agent of ``family.agents`` under the family protocol (``go2bench eval --family F
   --split family.split``), reference returns measured once into ``references/`` and shared by
   all agents (``results/<F>/<agent>_<env>.json``);
4. **leaderboard**: the family tables and curves of every result (``leaderboard/``).

Every step skips what is complete (a collected dataset, a training run marked done, an existing
results file), so an interrupted stage resumes. The agents of one (family, env) are evaluated side
by side, those of one scene kind at once in one scene (:mod:`go2bench.eval.multi_agent`,
:mod:`go2bench.eval.side_by_side`): in this process, or, when ``eval.jobs > 1`` or Genesis holds
another backend here, as one ``go2bench eval --family --agent ...`` process per (family, env),
``eval.jobs`` at a time spread over the GPUs. The random agent comes first in each: its scene's
evaluation measures the (family, env)'s reference returns, which no other process needs.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from go2bench.envs.registry import task_spec
from go2bench.pipeline.config import PipelineConfig
from go2bench.pipeline.stages import (CLI, Dataset, collect_stage, collect_staged, device_for, genesis_here,
                                      gpu_for, grouped, log, start_process, train_run, train_runs_at_once,
                                      wait_all, write_dataset_config)

__all__ = ["FAMILY_DIR", "family_datasets", "family_checkpoints", "family_trainings", "train_families", "family_jobs",
           "family_stage"]

FAMILY_DIR = "family"  # in the run folder
MODELS = {"vintix": "history", "vintix-episodic": "episode"}  # training run -> its TrainConfig.context


def family_datasets(cfg: PipelineConfig, family: str) -> list[Dataset]:
    """A dataset per env of ``family.envs`` for ``family``; the i-th env's histories are seeded with seed + i."""
    out = []
    for i, env_id in enumerate(cfg.family.envs):
        spec = task_spec(env_id)
        name = f"{spec.dataset.removesuffix('_ad')}_{family}"
        collect = replace(cfg.family_collect, env=spec.env_id, family=family, split="train",
                          seed=cfg.family_collect.seed + i)
        out.append(Dataset(name, f"{family}/{name}", f"{spec.group}_{family}", collect))
    return out


def family_checkpoints(out: Path, family: str) -> dict[str, Path]:
    """``{"vintix": ..., "vintix-episodic": ...}``: the final checkpoints of the family's two training runs."""
    return {name: out / FAMILY_DIR / "runs" / family / name / "final.pt" for name in MODELS}


def family_trainings(cfg: PipelineConfig, out: Path, family: str) -> list[tuple[Any, str]]:
    """(TrainConfig, label) of both models of ``family``, on its datasets' config (written here)."""
    root = out / FAMILY_DIR
    config_path = write_dataset_config(cfg, root / f"dataset_config_{family}.yaml",
                                       items=family_datasets(cfg, family))
    return [(replace(cfg.family_train, data_dir=str(root / "data"), dataset_config_paths=[str(config_path)],
                     name=name, out_dir=str(root / "runs" / family), context=context,
                     context_len=cfg.episodic_context_len if context == "episode" else cfg.family_train.context_len),
             f"family train {family}/{name}")
            for name, context in MODELS.items()]


def train_families(cfg: PipelineConfig, out: Path) -> None:
    """Every family's two models: in this process one after the other, or (``family_train_at_once``, by default
    on the gpu backend) all at once as processes, since these small models leave a GPU mostly idle."""
    trains = [t for family in cfg.family.families for t in family_trainings(cfg, out, family)]
    at_once = cfg.backend == "gpu" if cfg.family_train_at_once is None else cfg.family_train_at_once
    if at_once and len(trains) > 1:
        train_runs_at_once(cfg, trains, section="family_train")
        return
    for train, label in trains:
        train_run(cfg, train, label=label, section="family_train")


# ------------------------------------------------------------------------------------- eval
def family_jobs(cfg: PipelineConfig, out: Path) -> list[dict[str, Any]]:
    """Every (family, env, agent) evaluation: agent name, registry spec, results path; the random agent first."""
    jobs = []
    for family in cfg.family.families:
        ckpts = family_checkpoints(out, family)
        for env_id in cfg.family.envs:
            for agent in sorted(cfg.family.agents, key=lambda a: a != "random"):
                ckpt = ckpts["vintix-episodic" if agent == "vintix-episodic" else "vintix"]
                spec = f"{agent}:{ckpt}" if agent.startswith("vintix") else agent
                jobs.append({"family": family, "env": env_id, "agent": agent, "spec": spec,
                             "path": out / FAMILY_DIR / "results" / family / f"{agent}_{env_id}.json"})
    return jobs


def _family_env(job: dict[str, Any]) -> tuple[str, str]:
    return job["family"], job["env"]


def _eval_here(cfg: PipelineConfig, group: list[dict[str, Any]], references: Path) -> None:
    from go2bench.eval.multi_agent import evaluate_family_agents
    from go2bench.eval.results import save_results

    f, by_spec = cfg.family, {j["spec"]: j for j in group}
    family, env_id = group[0]["family"], group[0]["env"]
    log(f"family eval {family} {env_id}: {', '.join(j['agent'] for j in group)}")

    def save(spec: str, res: dict) -> None:
        job = by_spec[spec]
        save_results(res, job["path"])
        log(f"family eval {family} {job['agent']} {env_id}: {res['process']['eval_s']:.1f} s")

    evaluate_family_agents(list(by_spec), env_id, family, f.split, trials=f.trials, episodes=f.episodes,
                           seeds=f.seeds, backend=cfg.backend, obs_mode=cfg.family_collect.obs_mode,
                           max_episode_steps=cfg.family_collect.max_episode_steps, device=device_for(cfg),
                           reference_cache=references, reference_episodes=f.reference_episodes, progress=False,
                           warmup_steps=f.warmup_steps, on_result=save)


def _staging(group: list[dict[str, Any]]) -> Path:
    """The ``--out`` folder of a process evaluating several agents; its results are moved to the jobs' paths."""
    return group[0]["path"].parent / f".eval-{group[0]['env']}"


def _eval_command(cfg: PipelineConfig, group: list[dict[str, Any]], references: Path) -> list[str]:
    f = cfg.family
    agents = [a for j in group for a in ("--agent", j["spec"])]
    out = group[0]["path"] if len(group) == 1 else _staging(group)
    cmd = [*CLI, "eval", *agents, "--env", group[0]["env"], "--family", group[0]["family"], "--split", f.split,
           "--episodes", str(f.episodes), "--seeds", ",".join(map(str, f.seeds)), "--backend", cfg.backend,
           "--device", device_for(cfg), "--obs-mode", cfg.family_collect.obs_mode, "--max-episode-steps",
           str(cfg.family_collect.max_episode_steps), "--reference-cache", str(references), "--reference-episodes",
           str(f.reference_episodes), "--warmup-steps", str(f.warmup_steps), "--no-progress", "--out", str(out)]
    return cmd + (["--trials", str(f.trials)] if f.trials is not None else [])


def _collect_staged(group: list[dict[str, Any]]) -> None:
    collect_staged(_staging(group), {j["spec"]: j["path"] for j in group})


def _eval(cfg: PipelineConfig, out: Path, jobs: list[dict[str, Any]]) -> None:
    references = out / FAMILY_DIR / "references"
    for group in grouped(jobs, _family_env):  # results an interrupted run completed but did not move yet
        _collect_staged(group)
    todo = [j for j in jobs if not j["path"].exists()]
    for j in todo:
        j["path"].parent.mkdir(parents=True, exist_ok=True)
    groups = grouped(todo, _family_env)
    if cfg.eval.jobs == 1 and genesis_here(cfg.backend):
        for group in groups:
            _eval_here(cfg, group, references)
        return
    n = cfg.eval.jobs  # one process per (family, env): its references are measured by its first agent
    for i in range(0, len(groups), n):
        batch = groups[i: i + n]
        procs = [(f"family eval {g[0]['family']} {g[0]['env']} ({', '.join(j['agent'] for j in g)})",
                  start_process(_eval_command(cfg, g, references), out / FAMILY_DIR / "eval.log", gpu_for(cfg, k)))
                 for k, g in enumerate(batch)]
        try:
            wait_all(procs)
        finally:
            for g in batch:
                _collect_staged(g)


# ------------------------------------------------------------------------------------- the stage
def family_stage(cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    """Collect, train, evaluate and tabulate every family of ``cfg.family``; returns the seconds of each
    step and the leaderboard's family rows (``{}`` without families)."""
    f = cfg.family
    if not f.families:
        log("family: no families configured, skipped")
        return {}
    root = out / FAMILY_DIR
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    items = [d for family in f.families for d in family_datasets(cfg, family)]
    collect_stage(cfg, root, items)
    seconds["collect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_families(cfg, out)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jobs = family_jobs(cfg, out)
    failed = None
    try:
        _eval(cfg, out, jobs)
    except RuntimeError as e:  # e.g. one (family, env) whose teacher cannot normalise a theta: rank the others
        failed = e
    seconds["eval"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    from go2bench.eval.leaderboard import make_leaderboard
    from go2bench.histories.names import history_paths

    dirs = [root / "data" / d.path for d in items]
    done = [j["path"] for j in jobs if Path(j["path"]).is_file()]
    made = make_leaderboard(done, root / "leaderboard", datasets=[d for d in dirs if history_paths(d, ".json")])
    print(made["markdown"])
    seconds["leaderboard"] = time.perf_counter() - t0
    if failed is not None:
        raise RuntimeError(f"{failed} (the family leaderboard holds the other {len(done)} of {len(jobs)} results: "
                           f"{root / 'leaderboard'})") from failed
    rows = [{k: v for k, v in r.items() if k != "splits"} | {"splits": {
        s: {k: v for k, v in c.items() if k != "per_episode"} for s, c in r["splits"].items()}}
        for r in made["family_rows"]]
    return {"seconds": {k: round(v, 1) for k, v in seconds.items()}, "rows": rows}
