"""benchmarks/build_probe.py: its case grammar, its cache accounting and a process killed by the timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def probe():
    return load_benchmark("build_probe")


def test_case_grammar(probe):
    assert probe.parse_case("Go2Walk-v0:4096") == ("Go2Walk-v0", 4096, None, set())
    assert probe.parse_case("Go2Walk-v0:64:dynamics@full@cold-cuda") == ("Go2Walk-v0", 64, "dynamics",
                                                                         {"full", "cold-cuda"})
    for bad in ("Go2Walk-v0", "Go2Walk-v0:many", "Go2Walk-v0:64@warm"):
        with pytest.raises(ValueError, match="expected ENV:NUM_ENVS"):
            probe.parse_case(bad)


def test_cache_delta_counts_new_and_rewritten_files_per_cache(probe, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CUDA_CACHE_PATH", str(tmp_path / "nv"))
    qd = tmp_path / ".cache" / "quadrants"
    qd.mkdir(parents=True)
    (qd / "a.qdc").write_bytes(b"x" * 2**20)
    (qd / "b.qdc").write_bytes(b"y" * 10)
    before = probe.snapshot()
    (qd / "b.qdc").write_bytes(b"y" * 20)  # rewritten
    (tmp_path / "nv").mkdir()
    (tmp_path / "nv" / "sass").write_bytes(b"z" * 2**20)  # added
    delta = probe.cache_delta(before, probe.snapshot())
    assert delta["cache_files_before"] == 2 and delta["cache_mb_before_by_dir"] == {"quadrants": 1.0, "genesis": 0.0,
                                                                                     "cuda": 0.0}
    assert delta["added_files"] == 2 and delta["added_mb"] == 1.0
    assert sorted(delta["added_examples"]) == [".cache/quadrants/b.qdc", "nv/sass"]


def test_a_killed_process_is_reported_with_the_phases_it_finished(probe):
    row = probe.run_process("Go2Walk-v0:1", "cpu", timeout=0.5)  # killed during `import genesis`
    assert row["case"] == "Go2Walk-v0:1" and row["error"] == "killed after the 0 s timeout"
    assert "build_s" not in row
