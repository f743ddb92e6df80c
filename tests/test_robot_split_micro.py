"""robots-v0 at micro scale on CPU (issue 15): tiny synthetic histories of two training robots (Go2, Mini Cheetah)
pooled into the fold's one task group, a tiny Vintix trained for a few steps, then a cold start on the held-out
A1 (2 envs x 2 seeds x 2 short episodes) through `go2bench eval --robots-split`. Builds an A1 scene: slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.eval.reference import shipped_reference_scores
from go2bench.eval.results import load_results
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.config import TrainConfig
from go2bench.vintix.inference import load_checkpoint
from go2bench.vintix.train import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def test_train_on_two_robots_and_evaluate_a_third_from_a_cold_start(tmp_path):
    data = tmp_path / "data"
    entries = {}
    for i, (name, env) in enumerate([("go2_ad", "Go2Walk-v0"), ("mc_ad", "MiniCheetahWalk-v0"), ("a1_ad", "A1Walk-v0")]):
        write_synthetic_dataset(data, name, n_histories=1, steps=400, env_id=env, episode_len=40, seed=i)
        entries[name] = {"type": "default", "path": name, "group": f"{name}_group", "reward_scale": 50.0}
    (data / "all.yaml").write_text(yaml.safe_dump(entries))
    runner = CliRunner()
    r = runner.invoke(main, ["data", "robot-split", "--held-out", "a1", "--config", str(data / "all.yaml"),
                             "--data-dir", str(data), "--train-robots", "go2,mini_cheetah"])
    assert r.exit_code == 0, r.output
    assert "left out: a1_ad (a1: the held-out robot)" in r.output
    config = data / "robots-v0" / "robots-v0_heldout_a1.yaml"
    summary = train(TrainConfig(data_dir=str(data), dataset_config_paths=[str(config)], out_dir=str(tmp_path / "runs"),
                                name="a1", model="tiny", context_len=32, batch_size=4, trajectory_sparsity=16,
                                epochs=1, max_steps=5, num_workers=0, progress_bar=False, device="cpu"))
    assert summary["step"] == 5
    ckpt = tmp_path / "runs" / "a1" / "final.pt"
    assert list(load_checkpoint(ckpt)["groups"]) == ["quadruped_walking"]

    out = tmp_path / "eval.json"
    r = runner.invoke(main, ["eval", "--agent", f"vintix:{ckpt}", "--robots-split", "robots-v0", "--held-out", "a1",
                             "--episodes", "2", "--num-envs", "2", "--seeds", "0,1", "--max-episode-steps", "20",
                             "--no-progress", "--bootstrap-reps", "200", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "robots-v0 held out a1 (A1Walk-v0)" in r.output and "(not the split protocol)" in r.output
    res = load_results(out)  # the schema, with the robot_split block and its scores recomputed
    block = res["robot_split"]
    assert (res["env"], res["config"]["held_out"], res["config"]["robots_split"]) == ("A1Walk-v0", "a1", "robots-v0")
    assert block["protocol"] == {"episodes": 2, "num_envs": 2, "seeds": [0, 1], "max_episode_steps": 20,
                                 "as_split": False}
    assert block["agent_group"]["dataset"] == "robots-v0_heldout_a1" and block["agent_group"]["num_histories"] == 2
    refs = shipped_reference_scores("A1Walk-v0")  # A1's own teacher and random returns from its model card
    returns = np.array([s["returns"] for s in json.loads(out.read_text())["per_seed"]])
    assert returns.shape == (2, 2, 2)
    expected = (returns - refs.random_score) / (refs.expert_score - refs.random_score)
    assert np.allclose(block["normalized"], expected)
    assert block["zero_shot"]["mean"] == pytest.approx(expected[:, :, 0].mean())
    assert len(block["per_episode"]["iqm"]) == 2
