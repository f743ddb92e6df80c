"""The main command end to end at a micro scale, every stage in this process, the task-family stage
included: the leaderboards add up, a second invocation skips completed stages, and another config in
the same folder is refused (slow: about 50 s alone without the family stage, 25-30 s of it Genesis'
import and first scene build that a test session pays once). The config is built with the CLI's
``--set`` syntax, which is tested on its own too."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.core.config import ConfigError
from go2bench.pipeline import STAGES, apply_overrides, pipeline_config, run_pipeline
from go2bench.pipeline.config import FAMILY_AGENTS
from go2bench.pipeline.stages import train_arguments

AGENTS = ("random", "teacher", "vintix", "vintix-nocontext")
MICRO = pipeline_config("cpu", [
    "name=micro", "collect.num_histories=2", "collect.steps_per_history=120", "collect.max_episode_steps=40",
    "collect.chunk_steps=40", "train.context_len=48", "train.batch_size=4", "train.trajectory_sparsity=16",
    "train.epochs=1", "train.save_every=1", "train.max_steps=10", "train.num_workers=0", "train.device=cpu",
    "train.progress_bar=false", "eval.num_envs=2", "eval.episodes=2", f"eval.agents=[{', '.join(AGENTS)}]",
    # the family part: Go2 velocity, 2 histories x 60 steps, 2 test thetas x 1 seed x 2 episodes of 20 steps
    "family.trials=2", "family.seeds=[0]", "family.episodes=2", "family.reference_episodes=1",
    f"family.agents=[{', '.join(FAMILY_AGENTS)}]", "family_collect.num_histories=2",
    "family_collect.steps_per_history=60", "family_collect.max_episode_steps=20", "family_collect.chunk_steps=20",
    "family_train.context_len=40", "family_train.batch_size=4", "family_train.trajectory_sparsity=10",
    "family_train.max_steps=3", "family_train.device=cpu", "family_train.progress_bar=false",
])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    return out, run_pipeline(MICRO, out)


@pytest.mark.slow
def test_every_stage_produced_its_outputs(run):
    out, record = run
    assert set(record["stage_seconds"]) == set(STAGES) | {f"family.{s}" for s in ("collect", "train", "eval",
                                                                                    "leaderboard")}
    assert record["config"]["train"]["max_steps"] == 10 and record["versions"] and record["hardware"]
    for d in ("go2_trajectories/go2_ad", "minicheetah_trajectories/minicheetah_ad"):
        meta = json.loads((out / "data" / d / f"{d.split('/')[1]}.json").read_text())
        assert meta["status"] == "complete" and meta["num_histories"] == 2 and meta["reward_scale"] == 50.0
    assert (out / "runs" / "vintix" / "final.pt").exists()
    for name in ("leaderboard.md", "leaderboard.csv", "in_context.png", "learning_curves.png"):
        assert (out / "leaderboard" / name).stat().st_size > 100


@pytest.mark.slow
def test_leaderboard_numbers_come_from_the_results(run):
    out, record = run
    assert len(record["leaderboard"]) == len(AGENTS) * len(MICRO.envs)
    for env in MICRO.envs:
        res = {a: json.loads((out / "results" / f"{a}_{env}.json").read_text()) for a in AGENTS}
        # measured reference scores: random and teacher define 0 and 1 of this run
        assert res["random"]["normalized_score"] == pytest.approx(0.0, abs=1e-12)
        assert res["teacher"]["normalized_score"] == pytest.approx(1.0, abs=1e-12)
        rs, es = res["random"]["mean_return"], res["teacher"]["mean_return"]
        assert es > rs
        v = res["vintix"]
        assert v["random_score"] == rs and v["expert_score"] == es
        assert len(v["returns"]) == 2 * 2 and v["lengths"] and max(v["lengths"]) <= 40
        assert v["mean_return"] == pytest.approx(sum(v["returns"]) / len(v["returns"]))
        assert v["normalized_score"] == pytest.approx((v["mean_return"] - rs) / (es - rs))
        assert v["checkpoint_sha256"] and res["vintix-nocontext"]["checkpoint_sha256"] == v["checkpoint_sha256"]


@pytest.mark.slow
def test_family_stage_trains_both_models_and_ranks_every_agent(run):
    out, record = run
    fam = out / "family"
    meta = json.loads((fam / "data" / "velocity" / "go2_velocity" / "go2_velocity.json").read_text())
    assert meta["status"] == "complete" and meta["num_histories"] == 2 and meta["family"] == "velocity"
    assert meta["teacher"]["privileged"] and meta["task_layout"]["split"] == "train"
    for name, context, context_len in (("vintix", "history", 40), ("vintix-episodic", "episode", 20)):
        ckpt = torch.load(fam / "runs" / "velocity" / name / "final.pt", weights_only=True)
        assert (ckpt["context"], ckpt["context_len"]) == (context, context_len)
    res = {a: json.loads((fam / "results" / "velocity" / f"{a}_Go2Walk-v0.json").read_text()) for a in FAMILY_AGENTS}
    refs = res["random"]["family"]["references"]["returns"]
    for agent, r in res.items():
        f = r["family"]
        assert r["agent"] == agent
        assert (f["name"], f["split"], f["episodes"], f["seeds"]) == ("velocity", "test", 2, [0])
        assert [t["task_id"] for t in f["trials"]] == ["velocity-v0/test/0", "velocity-v0/test/1"]
        assert f["references"]["returns"] == refs  # measured once, shared through the run's cache
        assert max(r["lengths"]) <= 20
    assert res["vintix-episodic"]["checkpoint"].endswith("vintix-episodic/final.pt")
    assert res["vintix-nocontext"]["checkpoint_sha256"] == res["vintix"]["checkpoint_sha256"]
    roles = {row["name"]: row["role"] for row in record["family_leaderboard"]}
    assert set(roles) == set(FAMILY_AGENTS)
    assert roles["vintix-episodic"].startswith("baseline: no-context") and roles["vintix-nocontext"].startswith(
        "diagnostic")
    for row in record["family_leaderboard"]:
        cell = row["splits"]["test"]["final"]
        assert cell["iqm"] == pytest.approx(res[row["name"]]["family"]["final"]["iqm"])
    table = (fam / "leaderboard" / "leaderboard.md").read_text()
    assert "## velocity family, Go2Walk-v0" in table and table.count("| vintix-episodic:") == 1
    assert (fam / "leaderboard" / "curves_velocity.png").stat().st_size > 1000


@pytest.mark.slow
def test_second_run_skips_completed_stages(run):
    out, _ = run
    stamp = {p: p.stat().st_mtime_ns for p in [*(out / "results").glob("*.json"),
                                               *(out / "family" / "results").rglob("*.json")]}
    ckpt = (out / "runs" / "vintix" / "final.pt").stat().st_mtime_ns
    record = run_pipeline(apply_overrides(MICRO, ["eval.jobs=2"]), out, stages=("collect", "train", "eval", "family"))
    assert record["stage_seconds"]["collect"] < 5 and record["stage_seconds"]["train"] < 5
    assert record["stage_seconds"]["eval"] < 5
    assert record["stage_seconds"]["family.collect"] < 5 and record["stage_seconds"]["family.train"] < 5
    assert record["stage_seconds"]["family.eval"] < 5
    assert (out / "runs" / "vintix" / "final.pt").stat().st_mtime_ns == ckpt
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp


@pytest.mark.slow
def test_other_settings_in_the_same_folder_are_refused(run):
    out, _ = run
    with pytest.raises(ValueError, match=r"collect.steps_per_history: 120 there, 200 now"):
        run_pipeline(apply_overrides(MICRO, ["collect.steps_per_history=200"]), out, stages=("collect",))


# ------------------------------------------------------------------------------------- config and CLI
def test_overrides_parse_yaml_values_into_the_sections():
    cfg = pipeline_config("gpu", ["train.max_steps=200", "eval.episodes=5", "gpus=2", "train.max_minutes=null",
                                  "eval.seeds=[0, 1]", "train.model_overrides={n_layers: 4}"])
    assert (cfg.train.max_steps, cfg.eval.episodes, cfg.gpus, cfg.train.max_minutes) == (200, 5, 2, None)
    assert cfg.eval.seeds == (0, 1) and cfg.train.model_overrides == {"n_layers": 4}
    assert cfg.backend == "gpu" and cfg.collect.num_histories == 1024  # the rest is the preset's


@pytest.mark.parametrize("item, message", [
    ("train.max_step=200", r"unknown key; train keys: model, .*max_steps"),
    ("gpu=2", r"unknown key; keys: name, envs, backend, gpus, .*collect\.\*"),
    ("train.out_dir=x", r"set by the pipeline"),
    ("eval=5", r"a section"),
    ("train.max_steps=many", r"train.max_steps: expected an integer"),
    ("train.max_steps", r"expected KEY=VALUE"),
    ("eval.agents=[vintix]", r"needs the agents random and teacher"),
])
def test_bad_overrides_are_one_line_errors(item, message):
    with pytest.raises(ConfigError, match=message) as e:
        pipeline_config("cpu", [item])
    assert "\n" not in str(e.value)


def test_cli_reports_a_bad_override_in_one_line_and_prints_the_config():
    runner = CliRunner()
    bad = runner.invoke(main, ["pipeline", "--preset", "cpu", "--set", "train.max_step=200"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert bad.output.strip().splitlines()[-1].startswith("Error: --set train.max_step: unknown key")
    shown = runner.invoke(main, ["pipeline", "--preset", "cpu", "--set", "eval.episodes=5", "--print-config"])
    assert shown.exit_code == 0, shown.output
    assert "episodes: 5" in shown.output and "max_steps: 700" in shown.output


def test_ddp_training_gets_the_same_train_config_through_its_command_line():
    """The torchrun path passes the train section as `go2bench train` arguments."""
    from dataclasses import replace

    from go2bench.cli.train import train_command, train_config

    expected = replace(MICRO.train, data_dir="d", dataset_config_paths=["a.yaml", "b.yaml"], out_dir="o",
                       resume=True, model_overrides={"n_layers": 3, "qk_norm": True}, max_minutes=1.5)
    for compile_mode in ("auto", True, False):  # false must survive the trip (it is not train's default)
        case = replace(expected, compile=compile_mode)
        ctx = train_command.make_context("train", train_arguments(case))
        assert train_config(**ctx.params) == case
