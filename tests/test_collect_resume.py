"""Crash safety of the history files, without Genesis: kill -9 at many points, then resume equals the whole run.

A small writer process appends deterministic rows to one history file in small groups (so that most
of its time goes to HDF5 metadata updates, where a kill can leave the file unreadable) and is killed
at several moments; every time, reopening the file with :class:`HistoryWriter` (which rebuilds a
damaged file from its recorded groups) gives a prefix of the rows, and appending the rest gives the
same data as an uninterrupted writer.  The collector end to end (kill -9 of ``go2bench collect``):
tests/test_collect.py.  Also the collector's sync-free teacher action against SB3's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import go2bench
from go2bench.histories.names import TMP_PREFIX, history_layout
from go2bench.histories.writer import HistoryWriter

ROWS, GROUP, OBS, ACT = 3000, 40, 33, 12
ROOT = Path(go2bench.__file__).resolve().parent.parent

WRITER = f"""
import sys
import numpy as np
sys.path.insert(0, {str(ROOT)!r})
from go2bench.histories.writer import HistoryWriter
rng = np.random.default_rng(5)
rows = rng.random(({ROWS}, {OBS + 2 * ACT + 2}), dtype=np.float32)
w = HistoryWriter(sys.argv[1], {OBS}, {ACT}, group_size={GROUP}, compression=sys.argv[2] or None, demonstrator=True)
print("open", flush=True)
for i in range(w.steps_written, {ROWS}, 7):
    r = rows[i:i + 7]
    w.append(r[:, :{OBS}], r[:, {OBS}:{OBS + ACT}], r[:, -2], (np.arange(i, i + len(r)) % 100).astype(np.int32),
             r[:, {OBS + ACT}:{OBS + 2 * ACT}])
w.close()
print("done", flush=True)
"""


def _rows():
    rows = np.random.default_rng(5).random((ROWS, OBS + 2 * ACT + 2), dtype=np.float32)
    return {"proprio_observation": rows[:, :OBS], "action": rows[:, OBS:OBS + ACT], "reward": rows[:, -2],
            "step_num": (np.arange(ROWS) % 100).astype(np.int32), "demonstrator_action": rows[:, OBS + ACT:OBS + 2 * ACT]}


def _read(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        names = sorted(f, key=lambda k: int(k.split("-")[0]))
        return {k: np.concatenate([f[n][k][()] for n in names]) for k in f[names[0]]}


def _finish(path, compression) -> int:
    """Resume like the collector: reopen, check the stored prefix, append the rest; returns the prefix length."""
    want = _rows()
    w = HistoryWriter(path, OBS, ACT, group_size=GROUP, compression=compression, demonstrator=True)
    n = w.steps_written
    assert n % GROUP == 0
    if n:
        got = _read(path)
        for k, v in want.items():
            np.testing.assert_array_equal(got[k], v[:n])
    w.append(*(want[k][n:] for k in ("proprio_observation", "action", "reward", "step_num", "demonstrator_action")))
    w.close()
    return n


@pytest.mark.slow  # a dozen short writer processes
@pytest.mark.parametrize("compression", ["", "gzip"])
def test_kill_9_at_many_points_then_resume_equals_uninterrupted(tmp_path, compression):
    want = _rows()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prefixes, unreadable = [], 0
    for k, delay in enumerate((0.05, 0.15, 0.3, 0.5)):
        path = tmp_path / f"trajectories_env_{k:04d}.h5"
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), compression], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "open", proc.stderr.read()
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        try:
            h5py.File(path, "r").close()
        except OSError:
            unreadable += 1  # what the layout record is for
        prefixes.append(_finish(path, compression or None))
        got = _read(path)
        for key, v in want.items():
            np.testing.assert_array_equal(got[key], v)
        assert not history_layout(path).exists()  # complete: no record left behind
    assert max(prefixes) > 0 and len(set(prefixes)) > 1, prefixes  # killed at different points, after some groups
    print(f"prefixes {prefixes}, unreadable after kill: {unreadable}")


def test_damaged_file_is_rebuilt_from_its_recorded_groups(tmp_path):
    """Metadata destroyed (signature and superblock overwritten): HDF5 cannot open it; the writer rebuilds it."""
    path = tmp_path / "trajectories_env_0000.h5"
    want = _rows()
    w = HistoryWriter(path, OBS, ACT, group_size=GROUP, demonstrator=True)
    w.append(*(want[k][:130] for k in ("proprio_observation", "action", "reward", "step_num", "demonstrator_action")))
    del w  # a kill after three complete groups (the file is closed between them): 10 rows never written
    with open(path, "r+b") as fh:
        fh.write(b"\0" * 64)
    with pytest.raises(OSError):
        h5py.File(path, "r")
    w = HistoryWriter(path, OBS, ACT, group_size=GROUP, demonstrator=True)
    assert w.rebuilt and w.steps_written == 120
    w.close(final=False)
    got = _read(path)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v[:120])
    # an intact file with the same record is kept as it is
    w = HistoryWriter(path, OBS, ACT, group_size=GROUP, demonstrator=True)
    assert not w.rebuilt and w.steps_written == 120
    w.close(final=False)


def test_a_leftover_temporary_group_is_dropped_by_a_rebuild_not_deleted_in_place(tmp_path):
    """A kill during a group write leaves a temporary group; deleting it edits the root's link heap, which the
    kill may have damaged (seen in CI: "Couldn't delete link (bad local heap signature)"), so a file with any
    group its record does not hold is rebuilt from the record instead."""
    path = tmp_path / "trajectories_env_0000.h5"
    want = _rows()
    w = HistoryWriter(path, OBS, ACT, group_size=GROUP, demonstrator=True)
    w.append(*(want[k][:130] for k in ("proprio_observation", "action", "reward", "step_num", "demonstrator_action")))
    del w  # killed with three complete groups on disk
    with h5py.File(path, "a") as f:
        f.create_group(TMP_PREFIX + "120-159").create_dataset("reward", data=np.ones(10, np.float32))
    w = HistoryWriter(path, OBS, ACT, group_size=GROUP, demonstrator=True)
    assert w.rebuilt and w.removed_temporary == [TMP_PREFIX + "120-159"] and w.steps_written == 120
    w.close(final=False)
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["0-39", "40-79", "80-119"]
    got = _read(path)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v[:120])


def test_deterministic_actor_equals_sb3_predict_bitwise():
    """The collector's sync-free teacher action is SB3's deterministic action, to the last bit."""
    import torch

    from go2bench.agents.teacher import load_teacher
    from go2bench.agents.sb3_actor import deterministic_actor

    teacher = load_teacher("Go2Walk-v0")
    obs = torch.randn(64, teacher.obs_dim, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        want = teacher.policy._predict(obs, deterministic=True)
        got = deterministic_actor(teacher.policy)(obs)
    assert got.shape == (64, 12) and torch.equal(got, want)
    assert not torch.equal(got[0], got[1])  # a real policy output, not a constant
