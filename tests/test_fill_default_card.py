"""benchmarks/fill_default_card.py: a model card filled from the committed evaluations of its checkpoint.

Expectations from the results files themselves (read here with json): the card's results are the files' own
normalised scores and curves, keyed by agent and env; agents of another checkpoint go to the comparison; a card
whose checkpoint has no results, or results of two protocols, is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "benchmarks/results/seed_layout/eval"
fill_card = load_benchmark("fill_default_card")


def _skeleton(sha: str) -> dict:
    return {"model": "m", "evaluation": "TO FILL", "results": "TO FILL", "sha256": sha, "source": "run"}


def test_the_card_takes_each_results_files_numbers():
    files = sorted(EVAL.glob("*/vintix*.json"))
    loaded = [(f, json.loads(f.read_text())) for f in files]
    sha = next(r["checkpoint_sha256"] for f, r in loaded if "seed_layout" in r["agent_spec"])
    card = fill_card.fill(_skeleton(sha), loaded, "benchmarks/results/seed_layout")
    for f, r in loaded:
        mine = r["checkpoint_sha256"] == sha
        table = card["results"] if mine else card["compared_in_the_same_run"]
        (entry,) = [v for v in table.values() if v["results_file"] == str(f)]
        assert entry["normalized_score"] == r["normalized_score"] and entry["mean_return"] == r["mean_return"]
        assert entry["normalized_score_by_episode"] == [round(x, 3) for x in r["per_episode"]["normalized_score"]]
    assert set(card["results"]) == {f"{a}/{e}" for a in ("vintix", "vintix-nocontext")
                                    for e in ("Go2Walk-v0", "MiniCheetahWalk-v0")}
    assert card["evaluation"].startswith("default protocol: 10 envs x 10 consecutive episodes of 1000 steps, 1 seed")
    assert card["source"] == "benchmarks/results/seed_layout" and card["model"] == "m"


def test_a_card_without_its_results_or_with_two_protocols_is_refused(tmp_path):
    f = EVAL / "Go2Walk-v0" / "vintix.json"
    res = json.loads(f.read_text())
    with pytest.raises(ValueError, match="no results file is of this card's checkpoint"):
        fill_card.fill(_skeleton("0" * 64), [(f, res)], "s")
    other = {**res, "max_episode_steps": 500}
    with pytest.raises(ValueError, match="different protocols"):
        fill_card.fill(_skeleton(res["checkpoint_sha256"]), [(f, res), (tmp_path / "o.json", other)], "s")


def test_the_command_writes_the_filled_card_in_place(tmp_path):
    f = EVAL / "Go2Walk-v0" / "vintix.json"
    res = json.loads(f.read_text())
    card = tmp_path / "card.json"
    card.write_text(json.dumps(_skeleton(res["checkpoint_sha256"])))
    assert fill_card.main([str(card), "--results", str(f), "--source", "here"]) == 0
    written = json.loads(card.read_text())
    assert written["results"]["vintix/Go2Walk-v0"]["normalized_score"] == res["normalized_score"]
    assert written["source"] == "here" and written["compared_in_the_same_run"] == {}
