"""A collection's writers at many histories (issue 16): no history file is held open between groups, the
statistics kept while writing are the read-back ones bit for bit, and the layout record is appended to.

HDF5 opens and closes a file in time proportional to the files the process holds open, so a writer per
history that kept its file open made a 4096-history collection quadratic in its open/close work."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from go2bench.histories import salvage
from go2bench.histories.names import history_layout
from go2bench.histories.stats import history_stats
from go2bench.histories.writer import HistoryWriter

OBS, ACT, GROUP = 5, 3, 10


_RNG = np.random.default_rng(0)
_TABLE = (_RNG.normal(3.0, 0.01, (100, OBS)).astype(np.float32), _RNG.random((100, ACT), dtype=np.float32),
          _RNG.random(100, dtype=np.float32), (np.arange(100) % 7).astype(np.int32))  # episodes of 7 steps


def _rows(start: int, n: int):
    """Rows ``start`` .. ``start + n - 1`` of one fixed history: obs, action, reward, step_num."""
    return tuple(x[start:start + n] for x in _TABLE)


def _open_files() -> int:
    return h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)


def test_no_history_file_is_held_open_between_groups(tmp_path):
    before = _open_files()
    writers = [HistoryWriter(tmp_path / f"trajectories_env_{i:04d}.h5", OBS, ACT, GROUP) for i in range(40)]
    for w in writers:
        w.append(*_rows(0, 15))  # one group written, five rows buffered
    assert _open_files() == before  # the old writer held all 40 open
    with h5py.File(writers[3].path, "r") as f:  # a reader sees the complete group meanwhile
        assert list(f) == ["0-9"]
    for w in writers:
        w.append(*_rows(15, 10))
        w.close()
    assert _open_files() == before
    with h5py.File(writers[-1].path, "r") as f:
        assert list(f) == ["0-9", "10-19", "20-24"]
        np.testing.assert_array_equal(f["20-24"]["action"][()], _rows(15, 10)[1][5:])


def test_stats_kept_while_writing_equal_the_read_back_ones(tmp_path):
    path = tmp_path / "trajectories_env_0000.h5"
    with HistoryWriter(path, OBS, ACT, GROUP, stats=True) as w:
        for start, n in [(0, 3), (3, 14), (17, 30)]:  # uneven appends across group boundaries
            w.append(*_rows(start, n))
    got = w.stats()
    assert got == history_stats(path)  # the same bits: the collector writes this record without reading back
    obs, act, rew, _ = _rows(0, 47)
    assert got["total_transitions"] == 47 and got["num_episodes"] == 7 and got["episode_lengths"] == [7] * 6 + [5]
    np.testing.assert_allclose(got["episode_returns"], [rew[i:i + 7].astype(np.float64).sum() for i in range(0, 47, 7)],
                               atol=1e-6)
    np.testing.assert_allclose(got["obs_mean"], obs.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(got["acs_std"], act.astype(np.float64).std(0), rtol=1e-9)
    with pytest.raises(ValueError, match="stats=False"):
        HistoryWriter(tmp_path / "other.h5", OBS, ACT, GROUP).stats()


def test_a_resumed_writer_reads_its_stored_groups_once_and_gives_the_same_stats(tmp_path):
    whole, resumed = tmp_path / "a.h5", tmp_path / "b.h5"
    with HistoryWriter(whole, OBS, ACT, GROUP, stats=True) as w:
        w.append(*_rows(0, 47))
    w = HistoryWriter(resumed, OBS, ACT, GROUP, stats=True)
    w.append(*_rows(0, 25))
    w.close(final=False)  # as a kill: groups 0-9 and 10-19 on disk, five rows lost
    w = HistoryWriter(resumed, OBS, ACT, GROUP, stats=True)
    assert w.steps_written == 20 and w.last_episode_start() == 14
    w.append(*_rows(20, 27))
    w.close()
    assert w.stats() == history_stats(resumed) == history_stats(whole)


def test_layout_record_is_appended_and_a_torn_last_line_drops_only_its_group(tmp_path):
    path = tmp_path / "trajectories_env_0000.h5"
    w = HistoryWriter(path, OBS, ACT, GROUP)
    w.append(*_rows(0, 35))  # three groups recorded, not closed (as killed)
    record = history_layout(path)
    lines = record.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": 2} and [list(json.loads(x)) for x in lines[1:]] == [["0-9"], ["10-19"],
                                                                                                   ["20-29"]]
    groups = salvage.read_layout(path)
    assert list(groups) == ["0-9", "10-19", "20-29"] and salvage.file_agrees(path, groups)
    # a kill while the third group's line was appended: the group is in the file, its record torn
    record.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    assert list(salvage.read_layout(path)) == ["0-9", "10-19"]
    w = HistoryWriter(path, OBS, ACT, GROUP)  # the file disagrees with the record: rebuilt from it
    assert w.rebuilt and w.steps_written == 20
    w.append(*_rows(20, 15))
    w.close()
    assert not record.exists()
    with h5py.File(path, "r") as f:
        assert list(f) == ["0-9", "10-19", "20-29", "30-34"]
        np.testing.assert_array_equal(f["20-29"]["reward"][()], _rows(20, 15)[2][:10])
    # damage inside the record (not a torn end) makes it unusable; the old one-object format is still read
    record.write_text('{"format": 2}\nnot json\n{"0-9": {}}\n')
    assert salvage.read_layout(path) is None
    record.write_text(json.dumps({"format": 1, "groups": {"0-9": {"reward": {}}}}))
    assert salvage.read_layout(path) == {"0-9": {"reward": {}}}


def test_last_episode_start_follows_the_groups_written(tmp_path):
    path = tmp_path / "trajectories_env_0000.h5"
    w = HistoryWriter(path, OBS, ACT, GROUP)
    w.append(*_rows(0, 25))  # two complete groups (rows 0-19) and 5 rows in the buffer
    # episodes of 7 steps start at rows 0, 7, 14: the last stored start is 14, whatever the buffer holds
    assert w.last_episode_start() == 14
    w.close(final=False)  # a kill: the buffered rows are lost
    again = HistoryWriter(path, OBS, ACT, GROUP)  # reads it back from the file
    assert again.last_episode_start() == 14
    again.close(final=False)
