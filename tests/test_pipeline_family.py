"""The task-family part of the pipeline without a simulation: its config sections and their checks, the
datasets and evaluation jobs it plans, and its training step on synthetic family histories (both
models, each with its context mode, skipped once done). The stage end to end, simulation included,
is in test_pipeline.py (slow)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.core.config import ConfigError
from go2bench.envs.families import FAMILIES
from go2bench.pipeline import pipeline_config
from go2bench.pipeline.family import family_checkpoints, family_datasets, family_jobs, train_families
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.inference import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_presets_hold_one_family_on_cpu_and_every_family_on_gpu():
    cpu = pipeline_config("cpu")
    assert cpu.family.families == ("velocity",) and cpu.family.envs == ("Go2Walk-v0",)
    assert {"random", "teacher-blind", "teacher-privileged", "vintix", "vintix-episodic"} == set(cpu.family.agents)
    assert cpu.family_collect.max_episode_steps == 100 and cpu.episodic_context_len == 100
    assert cpu.family_train.context_len == 200 and cpu.family_train.model == "tiny"
    gpu = pipeline_config("gpu")
    assert set(gpu.family.families) == {"velocity", "dynamics"}
    assert set(gpu.family.envs) == {"Go2Walk-v0", "MiniCheetahWalk-v0"} and "vintix-nocontext" in gpu.family.agents
    assert gpu.episodic_context_len == 500  # one 500-step episode, not the history model's 2048


def test_family_overrides_reach_their_sections():
    cfg = pipeline_config("cpu", ["family.trials=3", "family.seeds=[4, 5]", "family.families=[dynamics]",
                                  "family_collect.num_histories=4", "family_train.max_steps=9",
                                  "family_collect.max_episode_steps=50"])
    assert (cfg.family.trials, cfg.family.seeds, cfg.family.families) == (3, (4, 5), ("dynamics",))
    assert cfg.family_collect.num_histories == 4 and cfg.family_train.max_steps == 9
    assert cfg.episodic_context_len == 50
    assert cfg.collect.num_histories == 16 and cfg.train.max_steps == 700  # the default-task part is untouched


@pytest.mark.parametrize("item, message", [
    ("family.families=[speed]", r"family.families: unknown \['speed'\]; known: "
     + ", ".join(sorted(FAMILIES))),  # every registered family, named
    ("family.envs=[Foo-v0]", r"family.envs: unknown \['Foo-v0'\]"),
    ("family.envs=[A1Walk-v0]", r"A1Walk-v0 has no shipped blind teacher of the velocity family .*; set family.envs "
     r"to robots that have one, or leave teacher-blind out of family.agents$"),
    ("family.families=[faults]", r"Go2Walk-v0 has no shipped privileged teacher of the faults family .*have one$"),
    ("family.agents=[teacher]", r"family.agents: unknown \['teacher'\]"),
    ("family.trial=3", r"unknown key; family keys: families, envs, agents, split, trials"),
    ("family.split=val", r"family.split: 'val' is not one of \['train', 'test'\]"),
    ("family.seeds=[1, 1]", r"family.seeds: distinct seeds"),
    ("family.episodes=0", r"family.episodes must be >= 1"),
    ("family_collect.teacher=x.zip", r"set by the pipeline \(each env's shipped privileged teacher"),
    ("family_collect.split=test", r"set by the pipeline \(histories take the train thetas"),
    ("family_train.context=episode", r"set by the pipeline \(both are trained"),
    ("family_train.out_dir=x", r"set by the pipeline"),
    ("family_train.max_step=3", r"unknown key; family_train keys: model, "),
    ("family_collect.max_episode_steps=1", r"the episode-context Vintix needs episodes of at least 2 steps"),
])
def test_bad_family_settings_are_one_line_errors(item, message):
    with pytest.raises(ConfigError, match=message) as e:
        pipeline_config("cpu", [item])
    assert "\n" not in str(e.value)


def test_cli_prints_and_refuses_family_settings():
    runner = CliRunner()
    shown = runner.invoke(main, ["pipeline", "--set", "family.trials=4", "--print-config"])
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "family:\n  families:\n  - velocity" in text and "trials: 4" in text and "family_train:" in text
    assert "context: history" not in text.split("family_train:")[1]  # set by the pipeline: not shown
    bad = runner.invoke(main, ["pipeline", "--set", "family.families=[speed]"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert bad.output.strip().splitlines()[-1].startswith("Error: pipeline.family: family.families: unknown")


def test_datasets_and_jobs_of_the_family_part(tmp_path):
    cfg = pipeline_config("gpu")
    ds = family_datasets(cfg, "dynamics")
    assert [(d.name, d.path, d.group) for d in ds] == [
        ("go2_dynamics", "dynamics/go2_dynamics", "go2_walking_dynamics"),
        ("minicheetah_dynamics", "dynamics/minicheetah_dynamics", "minicheetah_walking_dynamics")]
    assert [(d.collect.env, d.collect.family, d.collect.split, d.collect.seed) for d in ds] == [
        ("Go2Walk-v0", "dynamics", "train", 0), ("MiniCheetahWalk-v0", "dynamics", "train", 1)]
    jobs = family_jobs(cfg, tmp_path)
    assert len(jobs) == 2 * 2 * 6
    first = jobs[0]
    assert (first["family"], first["env"], first["agent"]) == ("velocity", "Go2Walk-v0", "random")
    ckpt = family_checkpoints(tmp_path, "velocity")
    specs = {j["agent"]: j["spec"] for j in jobs if (j["family"], j["env"]) == ("velocity", "MiniCheetahWalk-v0")}
    assert specs["vintix-episodic"] == f"vintix-episodic:{ckpt['vintix-episodic']}"
    assert specs["vintix"] == f"vintix:{ckpt['vintix']}"
    assert specs["vintix-nocontext"] == f"vintix-nocontext:{ckpt['vintix']}"
    assert specs["teacher-blind"] == "teacher-blind" and specs["random"] == "random"
    assert len({str(j["path"]) for j in jobs}) == len(jobs)


@pytest.mark.parametrize("at_once", [False, True])  # in this process one after the other; processes at once
def test_both_models_train_on_the_family_datasets_and_are_skipped_once_done(tmp_path, capsys, at_once):
    cfg = pipeline_config("cpu", ["family_collect.max_episode_steps=30", "family_train.context_len=64",
                                  "family_train.trajectory_sparsity=8", "family_train.max_steps=3",
                                  "family_train.batch_size=4", "family_train.device=cpu",
                                  "family_train.progress_bar=false", f"family_train_at_once={str(at_once).lower()}"])
    (d,) = family_datasets(cfg, "velocity")
    data = tmp_path / "family" / "data"
    write_synthetic_dataset(data / "velocity", "go2_velocity", n_histories=2, steps=300, episode_len=[30, 12],
                            env_id="Go2Walk-v0")
    train_families(cfg, tmp_path)
    ckpts = family_checkpoints(tmp_path, "velocity")
    for name, context, context_len in (("vintix", "history", 64), ("vintix-episodic", "episode", 30)):
        ckpt = load_checkpoint(ckpts[name])
        assert (ckpt["context"], ckpt["context_len"], ckpt["step"]) == (context, context_len, 3)
        assert list(ckpt["groups"]) == [d.group] and (ckpts[name].parent / "done").exists()
        assert (ckpts[name].parent / "train.log").exists() == at_once  # a process logs to its run folder
    stamp = {n: p.stat().st_mtime_ns for n, p in ckpts.items()}
    capsys.readouterr()
    train_families(cfg, tmp_path)
    assert {n: p.stat().st_mtime_ns for n, p in ckpts.items()} == stamp
    assert capsys.readouterr().out.count("complete, skipped") == 2


def test_evaluation_processes_get_the_family_settings_through_go2bench_eval(tmp_path):
    """With eval.jobs > 1 the evaluations are `go2bench eval --family` processes, one per (family, env) holding
    its agents (random first): the same settings."""
    from go2bench.cli.eval import eval_command
    from go2bench.pipeline.family import _eval_command, _family_env, _staging
    from go2bench.pipeline.stages import grouped

    cfg = pipeline_config("cpu", ["family.trials=3", "family.seeds=[2, 5]", "family.episodes=4",
                                  "family.reference_episodes=2", "family.envs=[Go2Walk-v0, MiniCheetahWalk-v0]",
                                  "family.warmup_steps=700"])
    jobs = family_jobs(cfg, tmp_path)
    groups = grouped(jobs, _family_env)
    assert [(g[0]["family"], g[0]["env"]) for g in groups] == [("velocity", "Go2Walk-v0"),
                                                                ("velocity", "MiniCheetahWalk-v0")]
    group = groups[0]
    assert len(group) == len(cfg.family.agents) and group[0]["agent"] == "random"
    cmd = _eval_command(cfg, group, tmp_path / "refs")
    params = eval_command.make_context("eval", cmd[cmd.index("eval") + 1:]).params
    assert list(params["agent_specs"]) == [j["spec"] for j in group]
    assert params["out"] == str(_staging(group)) and _staging(group).parent == group[0]["path"].parent
    one = _eval_command(cfg, group[1:2], tmp_path / "refs")  # a single agent left: --out is its file
    assert one[one.index("--out") + 1] == str(group[1]["path"])
    assert (params["env_id"], params["family"], params["split"], params["trials"]) == ("Go2Walk-v0", "velocity",
                                                                                      "test", 3)
    assert (params["episodes"], params["seeds"], params["max_episode_steps"]) == (4, [2, 5], 100)
    assert (params["reference_cache"], params["reference_episodes"]) == (str(tmp_path / "refs"), 2)
    assert params["warmup_steps"] == 700
    with pytest.raises(ValueError, match="family.warmup_steps must be >= 0"):
        pipeline_config("cpu", ["family.warmup_steps=-1"])
    assert (params["backend"], params["device"], params["obs_mode"], params["no_progress"]) == ("cpu", "cpu",
                                                                                              "noleak", True)


def test_results_of_a_several_agent_process_move_to_the_job_paths(tmp_path):
    """What the index of a process's --out folder lists is moved to the jobs' paths, even after a failure."""
    import json

    from go2bench.eval.agent_outputs import INDEX_FORMAT, INDEX_NAME
    from go2bench.pipeline.family import _collect_staged, _family_env, _staging
    from go2bench.pipeline.stages import grouped

    cfg = pipeline_config("cpu", [])
    group = grouped(family_jobs(cfg, tmp_path), _family_env)[0]
    staging = _staging(group)
    staging.mkdir(parents=True)
    done = group[:2]  # the process stopped after two agents
    for i, j in enumerate(done):
        (staging / f"f{i}.json").write_text(json.dumps({"n": i}))
    (staging / "unlisted.json").write_text("{}")
    (staging / INDEX_NAME).write_text(json.dumps({"format": INDEX_FORMAT, "agents": [
        {"spec": j["spec"], "file": f"f{i}.json"} for i, j in enumerate(done)]}))
    _collect_staged(group)
    assert [json.loads(j["path"].read_text()) for j in done] == [{"n": 0}, {"n": 1}]
    assert not any(j["path"].exists() for j in group[2:]) and not staging.exists()


def test_gpu_collection_of_a_family_first_run_writes_each_dataset_config_it_starts(tmp_path, monkeypatch):
    """`--stages family` on a new run folder: the family folder does not exist yet when the one-process-per-
    dataset collection writes each dataset's config (the seventh session's first device call stopped there)."""
    import yaml

    from go2bench.pipeline import stages
    from go2bench.pipeline.family import FAMILY_DIR

    started = []
    monkeypatch.setattr(stages, "start_process", lambda cmd, *a, **k: started.append(cmd) or None)
    monkeypatch.setattr(stages, "wait_all", lambda procs: None)
    cfg = pipeline_config("gpu")
    items = family_datasets(cfg, "velocity")
    root = tmp_path / "run" / FAMILY_DIR
    assert not root.exists()
    stages.collect_stage(cfg, root, items)
    assert len(started) == len(items) == 2
    for cmd, d in zip(started, items):
        written = yaml.safe_load(open(cmd[cmd.index("--config") + 1]))  # read back by another reader
        assert list(written) == [d.name] and written[d.name]["path"] == d.path
        assert written[d.name]["collect"]["env"] == d.collect.env and written[d.name]["collect"]["family"] == "velocity"


def test_a_failed_evaluation_still_ranks_the_results_that_were_written(tmp_path, monkeypatch):
    """One (family, env) evaluation fails (the seventh session: a teacher below random on a theta): the stage
    still writes the family leaderboard of the results the others wrote, then fails in one line saying so."""
    import shutil

    import numpy as np

    from go2bench.pipeline import family as fam_mod
    from test_pooled_leaderboard import family_file

    cfg = pipeline_config("cpu")
    monkeypatch.setattr(fam_mod, "collect_stage", lambda *a, **k: [])
    monkeypatch.setattr(fam_mod, "train_families", lambda *a, **k: None)

    def half_done(cfg, out, jobs):
        written = family_file(tmp_path / "synthetic", "vintix:runs/a/final.pt", np.full((2, 2, 3), 0.25))
        jobs[0]["path"].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(written, jobs[0]["path"])
        raise RuntimeError("pipeline stage failed: family eval velocity Go2Walk-v0 (exit 1)")

    monkeypatch.setattr(fam_mod, "_eval", half_done)
    with pytest.raises(RuntimeError) as e:
        fam_mod.family_stage(cfg, tmp_path / "run")
    jobs = family_jobs(cfg, tmp_path / "run")
    assert str(e.value).startswith("pipeline stage failed: family eval velocity Go2Walk-v0 (exit 1) (the family "
                                   f"leaderboard holds the other 1 of {len(jobs)} results")
    csv = (tmp_path / "run" / "family" / "leaderboard" / "leaderboard_families.csv").read_text()
    assert "vintix:runs/a/final.pt" in csv and "0.25" in csv  # the written result, ranked
