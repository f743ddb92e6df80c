"""The optional ``demonstrator_action`` dataset: writer, reader and `data check` (no Genesis needed)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from go2bench.core.provenance import write_json_atomic
from go2bench.histories.check import dataset_report
from go2bench.histories.reader import read_history
from go2bench.histories.writer import HistoryWriter
OBS, ACT = 33, 12
KEYS = ["proprio_observation", "action", "reward", "step_num", "demonstrator_action"]


def _rows(start, n):
    """Deterministic rows for steps start..start+n-1 (episodes of 7 steps)."""
    idx = np.arange(start, start + n)
    obs = (idx[:, None] * 0.001 + np.arange(OBS)[None, :]).astype(np.float32)
    act = np.sin(idx[:, None] + np.arange(ACT)[None, :]).astype(np.float32)
    return obs, act, (idx * 0.01).astype(np.float32), (idx % 7).astype(np.int32)


def _meta(**extra):
    return {"task_name": "go2_walking_ad", "group_name": "go2", "observation_shape": {"proprio": [OBS]},
            "action_dim": ACT, "action_type": "continuous", **extra}


def _write(d, demonstrator: bool):
    """Two histories of 25 steps in groups of 10, with or without demonstrator_action."""
    d.mkdir(exist_ok=True)
    write_json_atomic(d / f"{d.name}.json", _meta(**({"dataset_keys": KEYS} if demonstrator else {})))
    for i in range(2):
        with HistoryWriter(d / f"trajectories_env_{i:04d}.h5", OBS, ACT, group_size=10, demonstrator=demonstrator) as w:
            w.append(*_rows(0, 25), _demo(0, 25) if demonstrator else None)
        write_json_atomic(d / f"trajectories_env_{i:04d}.json", _meta())
    return d


def _one_problem(d, *needles):
    problems = dataset_report(d)[0]
    text = "\n".join(problems)
    assert problems and all(n in text for n in needles), text
    return problems


def _demo(start, n):
    """Clean actions of steps start..: the rows' actions shifted, so the two columns differ."""
    return (_rows(start, n)[1] * 0.5 + 0.1).astype(np.float32)


@pytest.fixture
def demo_dataset(tmp_path):
    """The new layout: demonstrator_action in every group, declared in the dataset JSON's dataset_keys."""
    return _write(tmp_path / "data_tiny", demonstrator=True)


def test_writer_demonstrator_round_trip_and_resume(tmp_path):
    path = tmp_path / "h.h5"
    w = HistoryWriter(path, OBS, ACT, group_size=10, demonstrator=True)
    with pytest.raises(ValueError, match="demonstrator_action must be given"):
        w.append(*_rows(0, 5))
    with pytest.raises(ValueError, match="demonstrator_action has shape"):
        w.append(*_rows(0, 5), _demo(0, 4))
    w.append(*_rows(0, 13), _demo(0, 13))
    w.close(final=False)  # killed: the 3 buffered rows are lost
    w = HistoryWriter(path, OBS, ACT, group_size=10, demonstrator=True)
    assert w.steps_written == 10
    w.append(*_rows(10, 15), _demo(10, 15))
    w.close()
    back = read_history(path)
    np.testing.assert_array_equal(back["demonstrator_action"], _demo(0, 25))
    np.testing.assert_array_equal(back["action"], _rows(0, 25)[1])
    with pytest.raises(ValueError, match="demonstrator_action"):  # a file never mixes the layouts
        HistoryWriter(path, OBS, ACT, group_size=10)
    old = tmp_path / "old.h5"
    with HistoryWriter(old, OBS, ACT, group_size=10) as w:
        w.append(*_rows(0, 10))
        with pytest.raises(ValueError, match="only to"):
            w.append(*_rows(10, 2), _demo(10, 2))
    with pytest.raises(ValueError, match="cannot resume.*demonstrator_action"):
        HistoryWriter(old, OBS, ACT, group_size=10, demonstrator=True)
    assert "demonstrator_action" not in read_history(old)


def test_check_old_layout_without_demonstrator_passes(tmp_path):
    """Format 1 datasets (no demonstrator_action, no dataset_keys) stay valid and readable."""
    old = _write(tmp_path / "old", demonstrator=False)
    assert dataset_report(old) == ([], [])
    assert "demonstrator_action" not in read_history(old / "trajectories_env_0000.h5")


def test_check_demonstrator_dataset_passes(demo_dataset):
    assert dataset_report(demo_dataset) == ([], [])


@pytest.mark.parametrize("case", ["nan", "width", "rows", "one group lacks it", "dtype", "declared but absent"])
def test_check_flags_bad_demonstrator_action(demo_dataset, case):
    path = demo_dataset / "trajectories_env_0001.h5"
    with h5py.File(path, "a") as f:
        g = f["10-19"]
        if case == "nan":
            g["demonstrator_action"][2, 3] = np.inf
        elif case == "width":
            del g["demonstrator_action"]
            g["demonstrator_action"] = np.zeros((10, ACT - 1), np.float32)
        elif case == "rows":
            del g["demonstrator_action"]
            g["demonstrator_action"] = np.zeros((9, ACT), np.float32)
        elif case == "one group lacks it":
            del g["demonstrator_action"]
        elif case == "dtype":
            del g["demonstrator_action"]
            g["demonstrator_action"] = np.array([b"x"] * 10)
        else:
            for name in list(f):
                del f[name]["demonstrator_action"]
    needles = {
        "nan": ["10-19/demonstrator_action", "NaN or inf"],
        "width": ["10-19/demonstrator_action", "width 11 disagrees with metadata action_dim = 12"],
        "rows": ["10-19/demonstrator_action", "9 rows"],
        "one group lacks it": ["demonstrator_action: in 2 of 3 groups", "missing in 10-19"],
        "dtype": ["10-19/demonstrator_action", "dtype"],
        "declared but absent": ["data_tiny.json", "dataset_keys lists demonstrator_action",
                                "trajectories_env_0001.h5"],
    }[case]
    p = _one_problem(demo_dataset, *needles)
    assert len(p) == 1, p
