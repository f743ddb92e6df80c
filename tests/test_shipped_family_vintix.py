"""Family-trained Vintix models shipped in the zoo (issue 17): what `vintix` / `vintix-episodic` load in a family,
checked against the files themselves (hashlib, torch's weights-only reader) and the committed results (scipy)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import trim_mean

from go2bench.agents.registry import make_agent
from go2bench.agents.vintix_agent import DEFAULT_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "go2bench" / "zoo"
SHIPPED = sorted(ZOO.glob("*/*/vintix*/vintix.pt"))
ids = [f"{p.parts[-4]}-{p.parts[-3]}-{p.parts[-2]}" for p in SHIPPED]


def test_the_best_family_models_are_shipped():
    assert {(p.parts[-4], p.parts[-3], p.parts[-2]) for p in SHIPPED} >= {
        ("MiniCheetahWalk-v0", "velocity", "vintix"), ("MiniCheetahWalk-v0", "velocity", "vintix-episodic"),
        ("Go2Walk-v0", "dynamics", "vintix"), ("Go2Walk-v0", "dynamics", "vintix-episodic")}


@pytest.mark.parametrize("path", SHIPPED, ids=ids)
def test_card_matches_the_file_and_its_results(path):
    env, family, kind = path.parts[-4], path.parts[-3], path.parts[-2]
    card = json.loads((path.parent / "model_card.json").read_text())
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (card["env_id"], card["family"]) == (env, family)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["context"] == ("history" if kind == "vintix" else "episode")
    assert [g["env_id"] for g in ckpt["groups"].values()] == [env]
    for r in card["results"] + card["compared_in_the_same_run"]:  # every number read back from its results file
        res = json.loads((ROOT / r["results_file"]).read_text())
        assert res["env"] == env and res["family"]["name"] == family
        trials = np.array([t["normalized"] for t in res["family"]["trials"]])
        assert r["final"]["iqm"] == pytest.approx(trim_mean(trials[:, -3:].mean(1), 0.25), abs=1e-9)
        assert r["zero_shot"]["iqm"] == pytest.approx(trim_mean(trials[:, 0], 0.25), abs=1e-9)
        assert len(r["iqm_by_episode"]) == trials.shape[1]
    for r in card["results"]:
        assert json.loads((ROOT / r["results_file"]).read_text())["checkpoint_sha256"] in (
            card["sha256"], ckpt["exported_from"]["sha256"])


@pytest.mark.parametrize("path", SHIPPED, ids=ids)
def test_agents_load_the_family_model_only_in_its_family(path):
    env, family, kind = path.parts[-4], path.parts[-3], path.parts[-2]
    assert Path(make_agent(kind, env, family=family).checkpoint) == path
    if kind == "vintix":  # outside the family: the default-task model, as before
        assert Path(make_agent("vintix", env).checkpoint) == DEFAULT_CHECKPOINT
    other = {"velocity": "dynamics", "dynamics": "velocity"}[family]
    if not (path.parents[2] / other / kind / "vintix.pt").exists():
        if kind == "vintix":
            assert Path(make_agent("vintix", env, family=other).checkpoint) == DEFAULT_CHECKPOINT
        else:
            with pytest.raises(ValueError, match=f"none is shipped for {env}'s {other} family"):
                make_agent(kind, env, family=other)


def test_a_checkpoint_given_wins_over_the_shipped_family_model():
    path = ZOO / "Go2Walk-v0" / "dynamics" / "vintix" / "vintix.pt"
    agent = make_agent(f"vintix:{DEFAULT_CHECKPOINT}", "Go2Walk-v0", family="dynamics")
    assert Path(agent.checkpoint) == DEFAULT_CHECKPOINT != path
