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
results file), so an interrupted stage resumes. Evaluations run in this process, sharing one scene
per (env, family, privileged), unless ``eval.jobs > 1`` or Genesis holds another backend here: then
as ``go2bench eval --family`` processes, the random agent first (it measures the reference returns,
so that parallel jobs never race on them).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from go2bench.envs.registry import task_spec
from go2bench.pipeline.config import PipelineConfig
from go2bench.pipeline.stages import (CLI, Dataset, collect_stage, genesis_here, gpu_for, log, start_process,
                                      train_run, wait_all, write_dataset_config)

__all__ = ["FAMILY_DIR", "family_datasets", "family_checkpoints", "train_family", "family_jobs", "family_stage"]

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


def train_family(cfg: PipelineConfig, out: Path, family: str) -> dict[str, Path]:
    """Both models of ``family`` on its datasets (collected first); returns their checkpoints."""
    root = out / FAMILY_DIR
    config_path = write_dataset_config(cfg, root / f"dataset_config_{family}.yaml",
                                       items=family_datasets(cfg, family))
    for name, context in MODELS.items():
        train = replace(cfg.family_train, data_dir=str(root / "data"), dataset_config_paths=[str(config_path)],
                        name=name, out_dir=str(root / "runs" / family), context=context,
                        context_len=cfg.episodic_context_len if context == "episode" else cfg.family_train.context_len)
        train_run(cfg, train, label=f"family train {family}/{name}", section="family_train")
    return family_checkpoints(out, family)


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


class _Scenes:
    """One batched scene per (env, family, privileged), one env per trial, shared by the agents evaluated here."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self._sims: dict[tuple, Any] = {}

    def get(self, env_id: str, family: str, privileged: bool):
        key = (env_id, family, privileged)
        if key not in self._sims:
            from go2bench.envs.registry import robot_for_env
            from go2bench.envs.suites import load_suite
            from go2bench.envs.walk_sim import make_walk_sim
            from go2bench.eval.family_protocol import trial_layout

            f = self.cfg.family
            tasks = list(load_suite(family, robot_for_env(env_id)).split(f.split))[: f.trials]
            theta_pos, _ = trial_layout(len(tasks), f.seeds)
            self._sims[key] = make_walk_sim(
                env_id, len(theta_pos), self.cfg.backend, obs_mode=self.cfg.family_collect.obs_mode,
                max_episode_steps=self.cfg.family_collect.max_episode_steps, family=family,
                tasks=[(f.split, tasks[j].index) for j in theta_pos], privileged=privileged)
        return self._sims[key]

    def close(self) -> None:
        for sim in self._sims.values():
            sim.close()
        self._sims.clear()


def _device(cfg: PipelineConfig) -> str:
    return "cuda" if cfg.backend == "gpu" else "cpu"


def _eval_here(cfg: PipelineConfig, job: dict[str, Any], scenes: _Scenes, references: Path) -> None:
    from go2bench.eval.family_protocol import evaluate_family, make_family_agent, wants_privileged
    from go2bench.eval.results import save_results

    f = cfg.family
    log(f"family eval {job['family']} {job['agent']} {job['env']}")
    agent = make_family_agent(job["spec"], job["env"], job["family"], device=_device(cfg), seed=f.seeds[0])
    sim = scenes.get(job["env"], job["family"],
                     wants_privileged(agent, job["env"], job["family"], cfg.family_collect.obs_mode))
    res = evaluate_family(agent, job["env"], job["family"], f.split, trials=f.trials, episodes=f.episodes,
                          seeds=f.seeds, sim=sim, reference_cache=references, reference_episodes=f.reference_episodes,
                          agent_spec=job["spec"], device=_device(cfg), progress=False)
    save_results(res, job["path"])


def _eval_command(cfg: PipelineConfig, job: dict[str, Any], references: Path) -> list[str]:
    f = cfg.family
    cmd = [*CLI, "eval", "--agent", job["spec"], "--env", job["env"], "--family", job["family"], "--split", f.split,
           "--episodes", str(f.episodes), "--seeds", ",".join(map(str, f.seeds)), "--backend", cfg.backend,
           "--device", _device(cfg), "--obs-mode", cfg.family_collect.obs_mode, "--max-episode-steps",
           str(cfg.family_collect.max_episode_steps), "--reference-cache", str(references), "--reference-episodes",
           str(f.reference_episodes), "--no-progress", "--out", str(job["path"])]
    return cmd + (["--trials", str(f.trials)] if f.trials is not None else [])


def _eval(cfg: PipelineConfig, out: Path, jobs: list[dict[str, Any]]) -> None:
    references = out / FAMILY_DIR / "references"
    todo = [j for j in jobs if not j["path"].exists()]
    for j in todo:
        j["path"].parent.mkdir(parents=True, exist_ok=True)
    if cfg.eval.jobs == 1 and genesis_here(cfg.backend):
        scenes = _Scenes(cfg)
        try:
            for job in todo:
                _eval_here(cfg, job, scenes, references)
        finally:
            scenes.close()
        return
    n = cfg.eval.jobs
    first = [j for j in todo if j["agent"] == "random"]  # one per (family, env): measures its references
    for batch in (first, [j for j in todo if j["agent"] != "random"]):
        for i in range(0, len(batch), n):
            wait_all([(f"family eval {j['family']} {j['agent']} {j['env']}",
                    start_process(_eval_command(cfg, j, references), out / FAMILY_DIR / "eval.log", gpu_for(cfg, k)))
                   for k, j in enumerate(batch[i: i + n])])


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
    for family in f.families:
        train_family(cfg, out, family)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jobs = family_jobs(cfg, out)
    _eval(cfg, out, jobs)
    seconds["eval"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    from go2bench.eval.leaderboard import make_leaderboard
    from go2bench.histories.names import history_paths

    dirs = [root / "data" / d.path for d in items]
    made = make_leaderboard([j["path"] for j in jobs], root / "leaderboard",
                            datasets=[d for d in dirs if history_paths(d, ".json")])
    print(made["markdown"])
    seconds["leaderboard"] = time.perf_counter() - t0
    rows = [{k: v for k, v in r.items() if k != "splits"} | {"splits": {
        s: {k: v for k, v in c.items() if k != "per_episode"} for s, c in r["splits"].items()}}
        for r in made["family_rows"]]
    return {"seconds": {k: round(v, 1) for k, v in seconds.items()}, "rows": rows}
