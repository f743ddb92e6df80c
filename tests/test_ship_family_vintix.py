"""benchmarks/ship_family_vintix.py: a family-trained Vintix and its card filled from its committed results.

Expectations from the results files themselves (read here with json): every card entry holds its file's own
zero-shot / final IQM and curve; results of another checkpoint, or a several-robot model without ``--out``, are
refused in one line; a one-robot model lands in the zoo layout, a several-robot one in ``--out``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/gpu_family_new_robots/family/results/dynamics"
ship = load_benchmark("ship_family_vintix")


def _model(tmp_path: Path, groups: dict[str, str], exported_from: str) -> tuple[Path, Path]:
    """A weights-only checkpoint (what `go2bench export` writes: tensors and plain metadata) and its skeleton card."""
    ckpt = tmp_path / "m.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "train_config": {"context": "history"},
                "exported_from": {"sha256": exported_from}}, ckpt)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"model": "m", "groups": groups, "evaluation": "TO FILL", "results": "TO FILL",
                                "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest()}))
    return ckpt, card


def _trained_sha() -> str:
    return json.loads((RESULTS / "vintix_A1Walk-v0.json").read_text())["checkpoint_sha256"]


THREE = {"a1_walking_dynamics": "A1Walk-v0", "go1_walking_dynamics": "Go1Walk-v0",
         "anymalc_walking_dynamics": "AnymalCWalk-v0"}


def test_a_several_robot_model_gets_each_robots_numbers_in_out(tmp_path):
    ckpt, card = _model(tmp_path, THREE, _trained_sha())
    files = [RESULTS / f"vintix_{e}.json" for e in ("A1Walk-v0", "AnymalCWalk-v0")]
    compare = RESULTS / "vintix-episodic_A1Walk-v0.json"
    out = ship.main(["--checkpoint", str(ckpt), "--card", str(card), *sum([["--results", str(f)] for f in files], []),
                     "--compare", str(compare), "--source", "here", "--out", str(tmp_path / "model")])
    assert out == tmp_path / "model" and (out / "vintix.pt").read_bytes() == ckpt.read_bytes()
    filled = json.loads((out / "model_card.json").read_text())
    assert filled["env_id"] == list(THREE.values()) and filled["family"] == "dynamics"
    for entry, f in zip(filled["results"], files):
        fam = json.loads(f.read_text())["family"]
        assert entry["env"] == f.name.removeprefix("vintix_").removesuffix(".json")
        assert entry["final"]["iqm"] == fam["final"]["iqm"] and entry["zero_shot"]["iqm"] == fam["zero_shot"]["iqm"]
        assert entry["iqm_by_episode"] == [round(x, 4) for x in fam["per_episode"]["iqm"]]
    assert filled["compared_in_the_same_run"][0]["final"]["iqm"] == json.loads(compare.read_text())["family"]["final"]["iqm"]
    assert filled["evaluation"][0].startswith("family protocol: dynamics-v1 test split, 32 thetas x seeds [0, 1]")


def test_refusals_name_what_to_do(tmp_path):
    ckpt, card = _model(tmp_path, THREE, _trained_sha())
    args = ["--checkpoint", str(ckpt), "--card", str(card), "--results", str(RESULTS / "vintix_A1Walk-v0.json"),
            "--source", "here"]
    with pytest.raises(ValueError, match="has no single zoo place; give --out DIR"):
        ship.main(args + ["--zoo", str(tmp_path / "zoo")])
    (tmp_path / "o").mkdir()
    other, other_card = _model(tmp_path / "o", {"g": "A1Walk-v0"}, "0" * 64)
    with pytest.raises(ValueError, match="results of another checkpoint"):
        ship.main(["--checkpoint", str(other), "--card", str(other_card), "--results",
                   str(RESULTS / "vintix_A1Walk-v0.json"), "--source", "here", "--zoo", str(tmp_path / "zoo")])
    one, one_card = _model(tmp_path, {"g": "Go2Walk-v0"}, _trained_sha())
    with pytest.raises(ValueError, match="results of another family/env than dynamics/Go2Walk-v0"):
        ship.main(["--checkpoint", str(one), "--card", str(one_card), "--results",
                   str(RESULTS / "vintix_A1Walk-v0.json"), "--source", "here", "--zoo", str(tmp_path / "zoo")])


def test_a_one_robot_model_lands_in_the_zoo_layout(tmp_path):
    ckpt, card = _model(tmp_path, {"a1_walking_dynamics": "A1Walk-v0"}, _trained_sha())
    out = ship.main(["--checkpoint", str(ckpt), "--card", str(card), "--results", str(RESULTS / "vintix_A1Walk-v0.json"),
                     "--source", "here", "--zoo", str(tmp_path / "zoo")])
    assert out == tmp_path / "zoo" / "A1Walk-v0" / "dynamics" / "vintix"
    filled = json.loads((out / "model_card.json").read_text())
    assert filled["env_id"] == "A1Walk-v0" and filled["agent"].startswith("vintix (default checkpoint in the dynamics")
