"""The main command end to end at a micro scale: every stage runs, the leaderboard adds up, and a
second invocation resumes (skips) completed stages instead of redoing them."""

from __future__ import annotations

import json

import pytest

from go2bench.pipeline import ENVS, PipelinePreset, run_pipeline

MICRO = PipelinePreset(
    name="micro", num_histories=2, steps_per_history=300, max_episode_steps=50, model="tiny", context_len=64,
    batch_size=4, trajectory_sparsity=32, epochs=1, max_steps=20, max_minutes=1.0, num_workers=0,
    train_device="cpu", eval_envs=2, eval_episodes=2, agents=("random", "teacher", "vintix", "vintix-nocontext"),
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    return out, run_pipeline(MICRO, out)


def test_every_stage_produced_its_outputs(run):
    out, record = run
    assert set(record["stage_seconds"]) == {"collect", "train", "eval", "leaderboard"}
    for d in ("go2_trajectories/go2_ad", "minicheetah_trajectories/minicheetah_ad"):
        meta = json.loads((out / "data" / d / f"{d.split('/')[1]}.json").read_text())
        assert meta["status"] == "complete" and meta["num_histories"] == 2
    assert (out / "runs" / "vintix" / "final.pt").exists()
    for name in ("leaderboard.md", "leaderboard.csv", "in_context.png", "learning_curves.png"):
        assert (out / "leaderboard" / name).stat().st_size > 100


def test_leaderboard_numbers_come_from_the_results(run):
    out, record = run
    rows = record["leaderboard"]
    assert len(rows) == 4 * len(ENVS)
    for env in ENVS:
        res = {a: json.loads((out / "results" / f"{a}_{env}.json").read_text())
               for a in ("random", "teacher", "vintix", "vintix-nocontext")}
        # measured reference scores: random and teacher define 0 and 1 of this run
        assert res["random"]["normalized_score"] == pytest.approx(0.0, abs=1e-12)
        assert res["teacher"]["normalized_score"] == pytest.approx(1.0, abs=1e-12)
        rs, es = res["random"]["mean_return"], res["teacher"]["mean_return"]
        v = res["vintix"]
        assert v["random_score"] == rs and v["expert_score"] == es
        assert v["normalized_score"] == pytest.approx((v["mean_return"] - rs) / (es - rs))
        assert v["checkpoint_sha256"] and len(v["returns"]) == 2 * 2
        assert res["vintix-nocontext"]["checkpoint_sha256"] == v["checkpoint_sha256"]


def test_second_run_resumes_instead_of_redoing(run):
    out, _ = run
    stamp = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    ckpt = (out / "runs" / "vintix" / "final.pt").stat().st_mtime_ns
    record = run_pipeline(MICRO, out, stages=("collect", "train", "eval"))
    assert record["stage_seconds"]["collect"] < 5 and record["stage_seconds"]["train"] < 5
    assert (out / "runs" / "vintix" / "final.pt").stat().st_mtime_ns == ckpt
    assert {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")} == stamp


def test_other_settings_in_the_same_folder_are_refused(run):
    out, _ = run
    import dataclasses

    with pytest.raises(ValueError, match="steps_per_history"):
        run_pipeline(dataclasses.replace(MICRO, steps_per_history=400), out, stages=("collect",))
