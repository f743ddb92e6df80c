"""benchmarks/collect_throughput.py under a cap: --max-seconds refuses a phase that would not fit, interrupts
one that runs past it, and the JSON it leaves says so (issue 16: three GPU runs were cut without a line)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("collect_throughput")


def test_a_phase_is_refused_when_its_estimate_ends_past_the_budget(bench):
    b = bench.Budget(100.0, start=time.time() - 50)  # 50 s spent; 100 - 5 (margin) - 50 = 45 s left
    b.check("the first build", "build")  # nothing measured yet: it is started
    b.record("collect", 20.0, 1000)  # 0.02 s per env-step
    b.check("a 2,000-step round", "collect", 2000)  # 40 s fits in 45
    with pytest.raises(bench.BudgetExceeded, match=r"a 3,000-step round \(estimated 60 s\) does not fit in the 45 s"):
        b.check("a 3,000-step round", "collect", 3000)
    bench.Budget(None).check("anything", "collect", 1e12)  # no --max-seconds: no limit


def test_the_alarm_interrupts_a_running_phase_after_writing_the_reason(bench):
    b = bench.Budget(bench.MARGIN_S / 2 + 0.3, start=time.time())  # fires 0.3 s from now
    seen = []
    b.arm(seen.append)
    try:
        b.current = "N=4096 round 1/2: collect"  # as check() sets it (which would refuse it this close to the end)
        with pytest.raises(bench.BudgetExceeded, match="reached during N=4096 round 1/2: collect"):
            time.sleep(5)
    finally:
        b.disarm()
    assert seen == [f"--max-seconds {b.max_seconds:g} reached during N=4096 round 1/2: collect"]


def test_a_stopped_run_keeps_its_cut_n_apart_from_the_table(bench, tmp_path):
    out = tmp_path / "r.json"
    row = {"num_envs": 1024, "collect_sps": 1.0}
    part = {"num_envs": 4096, "raw_sps_rounds": [2.0e6], "collect_sps_rounds": []}
    bench.write_result(out, {"benchmark": "collect_throughput"}, [row], part, None, False)
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and doc["stopped"] is None and doc["in_progress"]["num_envs"] == 4096
    bench.write_result(out, {"benchmark": "collect_throughput"}, [row], part, "out of time", False)
    doc = json.loads(out.read_text())
    assert doc["rows"] == [row] and doc["stopped"] == "out of time" and "in_progress" not in doc
    assert doc["cut_short"]["raw_sps_rounds"] == [2.0e6] and "not a result" in doc["cut_short"]["note"]
    bench.write_result(out, {"benchmark": "collect_throughput"}, [row], None, None, True)
    assert json.loads(out.read_text())["complete"] is True
