"""Segmented histories (``collect.segments``): several envs step one history at once and the rows are joined.

Expectations from outside the implementation: (1) where every episode of the sequential history ends at a
join, the segmented history is the sequential one bit for bit, per-history JSON included (same batch size,
so Genesis' batched solver gives the same floats); (2) where a join cuts an episode, every row's executed
action is still the blend of its clean action with the noise of its row *in the history*, recomputed here
from the public noise functions, and the next segment starts from a fresh reset; (3) a join cut short is
redone by a resume, giving the same bytes.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from go2bench.collect.collector import collect
from go2bench.collect.config import CollectConfig
from go2bench.collect.noise import history_seed, uniform_noise
from go2bench.collect.schedule import NoiseSchedule
from go2bench.core.config import ConfigError
from go2bench.envs.robots import get_robot
from go2bench.histories.reader import read_history

# a 0.1 noise floor after a pure-noise first row: the teacher never falls within its 20-step episodes, so every
# episode of the sequential history ends at a multiple of 20 and the join at row 40 cuts none
ALIGNED = CollectConfig(env="Go2Walk-v0", num_histories=4, steps_per_history=80, max_episode_steps=20, group_size=30,
                        chunk_steps=16, seed=3, p=0.1, max_perf=0.9)
KEYS = ("proprio_observation", "action", "reward", "step_num", "demonstrator_action")


def _h5(folder, i):
    return read_history(folder / f"trajectories_env_{i:04d}.h5")


def _json(folder, i):
    return json.loads((folder / f"trajectories_env_{i:04d}.json").read_text())


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    root = tmp_path_factory.mktemp("segments")
    collect(root / "sequential", ALIGNED, progress=False, plot=False)  # 4 envs: the same batch size as below
    segmented = dataclasses.replace(ALIGNED, num_histories=2, segments=2)
    summary = collect(root / "segmented", segmented, progress=False, plot=False)
    return root, segmented, summary


def test_segmented_history_is_the_sequential_one_where_episodes_end_at_the_joins(aligned):
    root, cfg, summary = aligned
    assert summary["status"] == "complete" and summary["total_transitions"] == 160
    for i in range(2):
        seq, seg = _h5(root / "sequential", i), _h5(root / "segmented", i)
        assert np.array_equal(seq["step_num"], np.tile(np.arange(20), 4))  # the premise: no falls
        for k in KEYS:
            assert np.array_equal(seq[k], seg[k]), (i, k)
        # the second segment's noise is its history's rows 40-79, not rows 0-39 again
        assert not np.array_equal(seg["action"][40:60], seg["action"][0:20])
        a, b = _json(root / "sequential", i), _json(root / "segmented", i)
        assert a == b
    meta = json.loads((root / "segmented" / "segmented.json").read_text())
    assert meta["collection"]["segments"] == 2 and meta["status"] == "complete"
    assert not (root / "segmented" / "_segments").exists()  # joined and removed


def test_a_join_cuts_the_episode_in_progress_and_keeps_every_row_on_its_history_noise(tmp_path):
    cfg = CollectConfig(env="Go2Walk-v0", num_histories=1, steps_per_history=100, max_episode_steps=30, group_size=40,
                        chunk_steps=16, seed=5, segments=2)
    collect(tmp_path / "cut", cfg, progress=False, plot=False)
    d = _h5(tmp_path / "cut", 0)
    n = len(d["step_num"])
    assert n >= 100 and (d["step_num"][100:] > 0).all()  # the last segment ends the episode in progress
    s = d["step_num"]
    assert s[50] == 0 and s[0] == 0  # the second segment starts from a reset ...
    np.testing.assert_array_equal(d["proprio_observation"][50], d["proprio_observation"][0])  # ... the same one
    # inside a segment step_num counts up by one or restarts at 0 (an episode ended); row 49 -> 50 is a join
    steps = np.diff(s.astype(np.int64))
    assert ((steps == 1) | (s[1:] == 0)).all()
    # every row: action = clamp(lerp(clean, noise of (history 0, row), eps(row)), bounds) with rows counted in the
    # 100-row history, recomputed from the public functions
    low, high = (torch.tensor(b, dtype=torch.float32) for b in get_robot("go2").action_bounds())
    rows = torch.arange(n, dtype=torch.int64)
    u = uniform_noise(history_seed(5, torch.tensor(0)), rows, 12)
    eps = NoiseSchedule(cfg.p, cfg.f, cfg.max_perf, 100).eps(rows).to(torch.float32)[:, None]
    want = torch.lerp(torch.from_numpy(d["demonstrator_action"]), low + (high - low) * u, eps).clamp(low, high)
    np.testing.assert_allclose(d["action"], want.numpy(), rtol=0, atol=1e-6)
    rec = _json(tmp_path / "cut", 0)
    assert rec["total_transitions"] == n and rec["num_episodes"] == int((s == 0).sum())


def test_a_join_cut_short_is_redone_by_a_resume(aligned, tmp_path, monkeypatch):
    import go2bench.collect.collector as collector
    from go2bench.collect.segments import join_history

    root, cfg, _ = aligned

    def fail_on_history_1(spec, plan, i, task):
        if i == 1:
            (tmp_path / "data" / "trajectories_env_0001.h5").write_bytes(b"half a join")
            raise OSError("disk full (simulated)")
        join_history(spec, plan, i, task)

    monkeypatch.setattr(collector, "join_history", fail_on_history_1)
    with pytest.raises(OSError, match="simulated"):
        collect(tmp_path / "data", cfg, progress=False, plot=False)
    assert (tmp_path / "data" / "trajectories_env_0000.json").exists()
    assert not (tmp_path / "data" / "trajectories_env_0001.json").exists()
    assert len(list((tmp_path / "data" / "_segments").glob("*.json"))) == 2  # history 1's segments, complete
    from go2bench.histories.check import dataset_report

    problems, warnings = dataset_report(tmp_path / "data")  # `go2bench data check` says what to do
    assert any("_segments: 2 segment files" in w and "--resume" in w for w in warnings), warnings
    monkeypatch.undo()
    summary = collect(tmp_path / "data", cfg, resume=True, progress=False, plot=False)
    assert summary["status"] == "complete" and summary["rows_written"] == 0  # nothing stepped again: only joined
    for i in range(2):
        a, b = _h5(root / "segmented", i), _h5(tmp_path / "data", i)
        for k in KEYS:
            assert np.array_equal(a[k], b[k]), (i, k)
        assert _json(root / "segmented", i) == _json(tmp_path / "data", i)


@pytest.mark.parametrize("fields, words", [
    ({"steps_per_history": 100, "segments": 3}, "equal segments"),
    ({"steps_per_history": 1000, "max_episode_steps": 300, "segments": 4}, "at least max_episode_steps"),
    ({"segments": 0}, "segments must be an integer >= 1"),
])
def test_segments_that_do_not_split_the_history_are_refused_in_one_line(fields, words):
    with pytest.raises((ConfigError, ValueError), match=words) as err:
        CollectConfig(**fields)
    assert "\n" not in str(err.value)


def test_unjoined_segments_are_not_continued_without_resume(aligned, tmp_path, monkeypatch):
    import go2bench.collect.collector as collector

    _, cfg, _ = aligned
    one = dataclasses.replace(cfg, num_histories=1)

    def no_join(spec, plan, i, task):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(collector, "join_history", no_join)
    with pytest.raises(OSError):
        collect(tmp_path / "d", one, progress=False, plot=False)
    assert not list((tmp_path / "d").glob("trajectories_env_*.h5"))  # only the segments are on disk
    with pytest.raises(FileExistsError, match=r"already holds _segments/trajectories_env_0000\.h5; pass --resume"):
        collect(tmp_path / "d", one, progress=False, plot=False)

