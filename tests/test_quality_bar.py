"""benchmarks/quality_bar.py: issue 17's bar checked against the committed GPU results.

Expectations read independently (json) from the results files: each row's final / zero-shot are the file's own
IQMs, the criteria follow from those numbers by hand, a missing reference is n/a (never a pass), and the pooled row
is go2bench.eval.pooled's pooled IQM of the listed runs."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
NEW = ROOT / "benchmarks/results/gpu_family_new_robots/family/results/dynamics"
MC = ROOT / "benchmarks/results/gpu_family_mc_velocity/family/results/velocity"
bar = load_benchmark("quality_bar")


def _final(path: Path, key: str = "final") -> float:
    return json.loads(path.read_text())["family"][key]["iqm"]


def test_rows_take_the_files_numbers_and_a_missing_reference_is_not_a_pass():
    rows = {r["env"]: r for r in bar.family_rows([NEW])}
    assert set(rows) == {"A1Walk-v0", "Go1Walk-v0", "AnymalCWalk-v0"}
    a1 = rows["A1Walk-v0"]
    final, zero = _final(NEW / "vintix_A1Walk-v0.json"), _final(NEW / "vintix_A1Walk-v0.json", "zero_shot")
    episodic = _final(NEW / "vintix-episodic_A1Walk-v0.json")
    assert (a1["final"], a1["zero_shot"], a1["vintix_episodic"]) == (final, zero, episodic)
    assert a1["final >= 0.8"] == ("yes" if final >= 0.8 else "no")
    assert a1["rise >= 0.3"] == ("yes" if final - zero >= 0.3 else "no")
    assert a1["above no-context"] == ("yes" if final > episodic else "no")
    assert a1["teacher_blind"] is None and a1["blind + 0.2"] == "n/a"  # no blind teacher for A1 yet


def test_the_pooled_row_is_the_pooled_iqm_of_its_runs():
    from go2bench.eval.leaderboard import load_result
    from go2bench.eval.pooled import pool_runs

    runs = [MC / "vintix_MiniCheetahWalk-v0.json", ROOT / "benchmarks/results/family_study_s6/mini_cheetah_velocity/run/"
            "results/all/vintix_runs_family_study_minicheetah_velocity_runs_baseline_s1_final.pt.json"]
    single, pooled = bar.family_rows([MC], {("MiniCheetahWalk-v0", "velocity"): runs})
    assert single["final"] == _final(runs[0]) and pooled["source"] == "2 runs pooled"
    assert pooled["final"] == pool_runs([load_result(r) for r in runs], "vintix")["final"]["iqm"]
    assert min(map(_final, runs)) < pooled["final"] < max(map(_final, runs))
    blind = _final(MC / "teacher-blind_MiniCheetahWalk-v0.json")
    assert single["blind + 0.2"] == ("yes" if single["final"] - blind >= 0.2 else "no")


def test_held_out_rows_read_each_fold():
    rows = bar.held_out_rows()
    assert len(rows) == 5 and all(r["final >= 0.5"] == ("yes" if r["final"] >= 0.5 else "no") for r in rows)
