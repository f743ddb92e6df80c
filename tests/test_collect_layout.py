"""Noise schedule, action blending and the Vintix HDF5/JSON layout (no Genesis needed)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch

from go2bench.collect.schedule import NoiseSchedule, blend_actions
from go2bench.core.provenance import write_json_atomic
from go2bench.histories.check import check_dataset, dataset_report
from go2bench.histories.names import TMP_PREFIX
from go2bench.histories.reader import read_history
from go2bench.histories.writer import HistoryWriter

OBS, ACT = 33, 12


# ------------------------------------------------------------------------------------ schedule


def test_schedule_hand_computed_values():
    s = NoiseSchedule(p=0.6, f=0.05, max_perf=1.0, steps_per_history=1000)
    assert float(s.eps(0)) == 1.0
    assert float(s.eps(950)) == 0.0  # (1 - f) N
    assert float(s.eps(951)) == 0.0 and float(s.eps(1000)) == 0.0
    # n = 475 is half of (1 - f) N = 950: (1 - 0.5**0.6) ** (1/0.6)
    assert float(s.eps(475)) == pytest.approx((1 - 0.5 ** 0.6) ** (1 / 0.6), rel=1e-12)
    assert float(s.eps(475)) == pytest.approx(0.16583, abs=1e-5)  # 0.5**0.6 = 0.65975; 0.34025**(5/3)
    # p = 1 is linear: eps = 1 - n / ((1 - f) N)
    lin = NoiseSchedule(p=1.0, f=0.0, max_perf=1.0, steps_per_history=100)
    np.testing.assert_allclose(lin.eps(np.array([0, 25, 50, 100])), [1.0, 0.75, 0.5, 0.0])


def test_schedule_monotone_floor_and_backends_agree():
    s = NoiseSchedule(p=0.6, f=0.05, max_perf=1.0, steps_per_history=1000)
    n = np.arange(0, 1200)
    e = s.eps(n)
    assert e.shape == n.shape and np.all(np.diff(e) <= 0) and e[0] == 1 and e[-1] == 0
    assert np.all((e >= 0) & (e <= 1))
    # smaller p drops faster
    assert NoiseSchedule(p=0.3, f=0.05, steps_per_history=1000).eps(100) < s.eps(100)

    floored = NoiseSchedule(p=0.6, f=0.05, max_perf=0.8, steps_per_history=1000)
    ef = floored.eps(n)
    np.testing.assert_allclose(ef, np.maximum(e, 0.2))
    assert ef.min() == pytest.approx(0.2) and ef[0] == 1.0

    t = s.eps(torch.arange(0, 1200))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), e, rtol=1e-6, atol=1e-7)
    t64 = floored.eps(torch.arange(0, 1200, dtype=torch.float64))
    assert t64.dtype == torch.float64
    np.testing.assert_allclose(t64.numpy(), ef, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(p=0.0), "p"),
        (dict(p=-1.0), "p"),
        (dict(f=1.0), "f"),
        (dict(f=-0.1), "f"),
        (dict(max_perf=0.0), "max_perf"),
        (dict(max_perf=1.5), "max_perf"),
        (dict(p=float("nan")), "p"),
        (dict(steps_per_history=0), "steps_per_history"),
        (dict(steps_per_history=10.5), "steps_per_history"),
    ],
)
def test_schedule_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NoiseSchedule(**kwargs)


def test_schedule_is_frozen():
    s = NoiseSchedule()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.p = 1.0  # type: ignore[misc]


def test_blend_actions_eps_0_1_and_clipping():
    torch.manual_seed(0)
    low = torch.full((ACT,), -1.0)
    high = torch.linspace(0.5, 2.0, ACT)
    a = torch.rand(4, ACT) * 0.4 - 0.2
    noise = torch.rand(4, ACT)
    u = low + (high - low) * noise
    out = blend_actions(torch.tensor([0.0, 1.0, 0.5, 0.25]), a, noise, low, high)
    assert out.shape == (4, ACT) and out.dtype == a.dtype
    torch.testing.assert_close(out[0], a[0])
    torch.testing.assert_close(out[1], u[1])
    torch.testing.assert_close(out[2], 0.5 * u[2] + 0.5 * a[2])
    torch.testing.assert_close(out[3], 0.25 * u[3] + 0.75 * a[3])
    # teacher actions outside the bounds are clipped per joint
    big = torch.full((2, ACT), 5.0)
    out = blend_actions(torch.zeros(2), big, torch.rand(2, ACT), low, high)
    torch.testing.assert_close(out, high.expand(2, ACT))
    out = blend_actions(torch.zeros(2), -big, torch.rand(2, ACT), low, high)
    torch.testing.assert_close(out, low.expand(2, ACT))
    # noise at 0 and 1 hits the bounds exactly
    out = blend_actions(torch.ones(2), a[:2], torch.stack([torch.zeros(ACT), torch.ones(ACT)]), low, high)
    torch.testing.assert_close(out[0], low)
    torch.testing.assert_close(out[1], high)
    with pytest.raises(ValueError, match="eps"):
        blend_actions(torch.zeros(3), a, noise, low, high)


# ------------------------------------------------------------------------------------ writer


def _rows(start, n, obs_dim=OBS, act_dim=ACT):
    """Deterministic rows for steps start..start+n-1 (episodes of 7 steps)."""
    idx = np.arange(start, start + n)
    obs = (idx[:, None] * 0.001 + np.arange(obs_dim)[None, :]).astype(np.float32)
    act = (np.sin(idx[:, None] + np.arange(act_dim)[None, :])).astype(np.float32)
    rew = (idx * 0.01).astype(np.float32)
    step = (idx % 7).astype(np.int32)
    return obs, act, rew, step


def _independent_read(path):
    """Plain h5py reader: groups sorted by start, concatenated."""
    out = {k: [] for k in ("proprio_observation", "action", "reward", "step_num")}
    with h5py.File(path, "r") as f:
        names = sorted(f.keys(), key=lambda s: int(s.split("-")[0]))
        for name in names:
            for k in out:
                out[k].append(f[name][k][()])
    return names, {k: np.concatenate(v) for k, v in out.items()}


def test_writer_round_trip_independent_reader(tmp_path):
    path = tmp_path / "trajectories_env_0000.h5"
    with HistoryWriter(path, OBS, ACT, group_size=10) as w:
        assert w.steps_written == 0
        for start, n in [(0, 3), (3, 14), (17, 8)]:  # uneven appends crossing group boundaries
            w.append(*_rows(start, n))
        assert w.steps_written == 20 and w.steps_appended == 25
    names, data = _independent_read(path)
    assert names == ["0-9", "10-19", "20-24"]
    obs, act, rew, step = _rows(0, 25)
    np.testing.assert_array_equal(data["proprio_observation"], obs)
    np.testing.assert_array_equal(data["action"], act)
    np.testing.assert_array_equal(data["reward"], rew)
    np.testing.assert_array_equal(data["step_num"], step)
    with h5py.File(path, "r") as f:
        g = f["0-9"]
        assert g["proprio_observation"].dtype == np.float32 and g["proprio_observation"].shape == (10, OBS)
        assert g["action"].dtype == np.float32 and g["action"].shape == (10, ACT)
        assert g["reward"].dtype == np.float32 and g["reward"].shape == (10,)
        assert g["step_num"].dtype == np.int32 and g["step_num"].shape == (10,)
    back = read_history(path)
    assert back["warnings"] == []
    np.testing.assert_array_equal(back["proprio_observation"], obs)


def test_writer_default_group_name_style(tmp_path):
    path = tmp_path / "h.h5"
    with HistoryWriter(path, OBS, ACT) as w:
        w.append(*_rows(0, 10_000))
        w.append(*_rows(10_000, 5))
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["0-9999", "10000-10004"]


def test_writer_rejects_bad_shapes(tmp_path):
    with HistoryWriter(tmp_path / "h.h5", OBS, ACT, group_size=10) as w:
        obs, act, rew, step = _rows(0, 5)
        with pytest.raises(ValueError, match="append expects"):
            w.append(obs[:, :30], act, rew, step)
        with pytest.raises(ValueError, match="append expects"):
            w.append(obs, act, rew[:4], step)


def test_writer_killed_mid_group_then_resumed_gives_identical_data(tmp_path):
    ref = tmp_path / "ref.h5"
    with HistoryWriter(ref, OBS, ACT, group_size=10) as w:
        w.append(*_rows(0, 47))

    crashed = tmp_path / "crashed.h5"
    # A subprocess writes 2 full groups and part of a third, leaves a temporary group as an
    # interrupted group write would, and is SIGKILLed without closing the file.
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from go2bench.histories.names import TMP_PREFIX
        from go2bench.histories.writer import HistoryWriter
        from test_collect_layout import _rows as rows
        import h5py
        w = HistoryWriter({str(crashed)!r}, {OBS}, {ACT}, group_size=10)
        w.append(*rows(0, 26))
        f = h5py.File({str(crashed)!r}, "a")  # what the writer's next group write does first
        g = f.create_group(TMP_PREFIX + "20-29")
        g.create_dataset("reward", data=[1.0, 2.0])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr

    w = HistoryWriter(crashed, OBS, ACT, group_size=10)
    assert w.steps_written == 20 and w.removed_temporary == [TMP_PREFIX + "20-29"]
    w.append(*_rows(w.steps_written, 47 - w.steps_written))
    w.close()

    names_a, a = _independent_read(ref)
    names_b, b = _independent_read(crashed)
    assert names_a == names_b == ["0-9", "10-19", "20-29", "30-39", "40-46"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_writer_not_closed_resumes_from_complete_groups(tmp_path):
    path = tmp_path / "h.h5"
    w = HistoryWriter(path, OBS, ACT, group_size=10)
    w.append(*_rows(0, 15))
    w.close(final=False)  # the 5 buffered rows are dropped, as after a crash
    w2 = HistoryWriter(path, OBS, ACT, group_size=10)
    assert w2.steps_written == 10 and w2.removed_temporary == []
    w2.close()
    with pytest.raises(ValueError, match="cannot resume"):
        HistoryWriter(path, OBS + 1, ACT, group_size=10)


def test_writer_write_error_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "h.h5"
    w = HistoryWriter(path, OBS, ACT, group_size=10)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5py.File, "flush", boom)
    with pytest.raises(OSError, match=r"h\.h5.*disk full"):
        w.append(*_rows(0, 10))
    monkeypatch.undo()
    w.close(final=False)


# ------------------------------------------------------------------------------------ reader


def _write_groups(path, groups, obs_extra=0):
    """Write (start, end) groups from _rows; ``obs_extra`` extra observation rows per group."""
    with h5py.File(path, "w") as f:
        for start, end in groups:
            obs, act, rew, step = _rows(start, end - start + 1 + obs_extra)
            g = f.create_group(f"{start}-{end}")
            g["proprio_observation"] = obs
            n = end - start + 1
            g["action"], g["reward"], g["step_num"] = act[:n], rew[:n], step[:n]


def test_read_history_accepts_50k_groups(tmp_path):
    path = tmp_path / "orig.h5"
    _write_groups(path, [(0, 49_999), (50_000, 99_999), (100_000, 100_009)])
    data = read_history(path)
    assert data["warnings"] == [] and data["reward"].shape == (100_010,)
    np.testing.assert_array_equal(data["step_num"], _rows(0, 100_010)[3])


def test_read_history_accepts_original_t_plus_1_observations(tmp_path):
    path = tmp_path / "orig.h5"
    _write_groups(path, [(0, 9), (10, 19)], obs_extra=1)
    data = read_history(path)
    assert data["proprio_observation"].shape == (20, OBS)
    assert len(data["warnings"]) == 2 and "T+1" in data["warnings"][0]
    # group 0-9 stored rows 0..10; the extra row 10 is dropped, so rows stay aligned
    np.testing.assert_array_equal(data["proprio_observation"], _rows(0, 20)[0])


def test_read_history_rejects_gaps_and_overlaps(tmp_path):
    gap = tmp_path / "gap.h5"
    _write_groups(gap, [(0, 9), (20, 29)])
    with pytest.raises(ValueError, match="missing steps 10-19"):
        read_history(gap)
    overlap = tmp_path / "overlap.h5"
    _write_groups(overlap, [(0, 9), (5, 14)])
    with pytest.raises(ValueError, match="overlaps"):
        read_history(overlap)


def test_write_json_atomic(tmp_path):
    p = tmp_path / "m.json"
    write_json_atomic(p, {"a": 1})
    write_json_atomic(p, {"a": 2, "b": [1, 2]})
    assert json.loads(p.read_text()) == {"a": 2, "b": [1, 2]}
    assert [x.name for x in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(ValueError):
        write_json_atomic(p, {"x": math.nan})
    assert json.loads(p.read_text()) == {"a": 2, "b": [1, 2]}
    assert [x.name for x in tmp_path.iterdir()] == ["m.json"]


# ------------------------------------------------------------------------------------ check


def _meta(obs_dim=OBS, act_dim=ACT, task="go2_walking_ad"):
    return {"task_name": task, "group_name": "go2", "observation_shape": {"proprio": [obs_dim]},
            "action_dim": act_dim, "action_type": "continuous"}


@pytest.fixture
def good_dataset(tmp_path):
    d = tmp_path / "data_tiny"
    d.mkdir()
    write_json_atomic(d / "data_tiny.json", _meta())
    for i in range(2):
        with HistoryWriter(d / f"trajectories_env_{i:04d}.h5", OBS, ACT, group_size=10) as w:
            w.append(*_rows(0, 25))
        write_json_atomic(d / f"trajectories_env_{i:04d}.json", _meta())
    return d


def _one_problem(d, *needles):
    problems = check_dataset(d)
    assert len(problems) >= 1, problems
    text = "\n".join(problems)
    for n in needles:
        assert n in text, text
    return problems


def test_check_good_dataset(good_dataset):
    assert check_dataset(good_dataset) == []


def test_check_missing_dataset_json(good_dataset):
    (good_dataset / "data_tiny.json").unlink()
    p = _one_problem(good_dataset, "data_tiny.json", "dataset metadata missing")
    assert len(p) == 1


def test_check_missing_env_json(good_dataset):
    (good_dataset / "trajectories_env_0001.json").unlink()
    assert len(_one_problem(good_dataset, "trajectories_env_0001.json", "per-env metadata missing")) == 1


def test_check_missing_metadata_field(good_dataset):
    meta = _meta()
    del meta["action_dim"]
    write_json_atomic(good_dataset / "data_tiny.json", meta)
    _one_problem(good_dataset, "data_tiny.json", "action_dim missing")


def test_check_bad_group_name(good_dataset):
    with h5py.File(good_dataset / "trajectories_env_0000.h5", "a") as f:
        f.move("20-24", "chunk_2")
    _one_problem(good_dataset, "trajectories_env_0000.h5", "'chunk_2'", "start-end")


def test_check_overlapping_ranges(good_dataset):
    with h5py.File(good_dataset / "trajectories_env_0000.h5", "a") as f:
        f.copy("10-19", "5-14")
    _one_problem(good_dataset, "trajectories_env_0000.h5", "group 5-14", "overlaps")


def test_check_missing_range(good_dataset):
    with h5py.File(good_dataset / "trajectories_env_0001.h5", "a") as f:
        del f["10-19"]
    _one_problem(good_dataset, "trajectories_env_0001.h5", "20-24", "missing steps 10-19")


def test_check_unequal_lengths(good_dataset):
    with h5py.File(good_dataset / "trajectories_env_0000.h5", "a") as f:
        del f["0-9/reward"]
        f["0-9/reward"] = np.zeros(9, np.float32)
    _one_problem(good_dataset, "trajectories_env_0000.h5", "0-9/reward", "9 rows")


def test_check_original_t_plus_1_is_a_warning(good_dataset):
    """Readers accept the original layout, so check passes it, with one warning per group."""
    _write_groups(good_dataset / "trajectories_env_0000.h5", [(0, 9), (10, 19)], obs_extra=1)
    problems, warnings = dataset_report(good_dataset)
    assert problems == []
    assert len(warnings) == 2 and all("T+1" in w and "trajectories_env_0000.h5" in w for w in warnings)


def test_check_obs_dim_disagrees_with_metadata(good_dataset):
    write_json_atomic(good_dataset / "data_tiny.json", _meta(obs_dim=45))
    p = _one_problem(good_dataset, "proprio_observation", "observation_shape = 45")
    assert any("trajectories_env_0000.json" in x and "disagrees" in x for x in p)


def test_check_action_dim_disagrees_with_metadata(good_dataset):
    for name in ("data_tiny.json", "trajectories_env_0000.json", "trajectories_env_0001.json"):
        write_json_atomic(good_dataset / name, _meta(act_dim=8))
    _one_problem(good_dataset, "trajectories_env_0000.h5", "action", "action_dim = 8")


def test_check_nan_and_inf(good_dataset):
    with h5py.File(good_dataset / "trajectories_env_0000.h5", "a") as f:
        f["10-19/proprio_observation"][3, 4] = np.nan
    with h5py.File(good_dataset / "trajectories_env_0001.h5", "a") as f:
        f["20-24/reward"][0] = np.inf
    p = _one_problem(good_dataset, "10-19/proprio_observation", "20-24/reward", "NaN or inf")
    assert len(p) == 2


def test_check_truncated_h5(good_dataset):
    path = good_dataset / "trajectories_env_0001.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _one_problem(good_dataset, "trajectories_env_0001.h5", "unreadable or truncated")


def test_check_garbage_h5(good_dataset):
    (good_dataset / "trajectories_env_0001.h5").write_bytes(b"not an hdf5 file")
    _one_problem(good_dataset, "trajectories_env_0001.h5", "unreadable or truncated")


def test_check_leftover_temporary_group(good_dataset):
    with h5py.File(good_dataset / "trajectories_env_0000.h5", "a") as f:
        f.create_group(TMP_PREFIX + "25-34")
    _one_problem(good_dataset, "trajectories_env_0000.h5", "leftover temporary group")


def test_check_no_histories(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    write_json_atomic(d / "empty.json", _meta())
    _one_problem(d, "no trajectories_env_XXXX.h5")


def test_names_round_trip(tmp_path):
    from go2bench.histories.names import format_group, history_h5, history_index, history_paths, parse_group

    assert parse_group(format_group(10, 19)) == (10, 19) and parse_group(TMP_PREFIX + "0-9") is None
    for i in (10000, 2, 999):
        history_h5(tmp_path, i).touch()
    assert [history_index(p) for p in history_paths(tmp_path)] == [2, 999, 10000]
    assert history_paths(tmp_path, ".json") == [] and history_paths(tmp_path / "missing") == []


def test_a_kill_while_a_history_file_is_created_leaves_no_truncated_file(tmp_path, monkeypatch):
    """The file appears only once HDF5 has written it whole: a kill before that leaves a hidden temp file."""
    import os

    import go2bench.histories.writer as writer_module

    path = tmp_path / "trajectories_env_0001.h5"

    class Killed(BaseException):
        """The process dies between writing the file and renaming it."""

    def killed(src, dst):
        raise Killed

    real_replace = os.replace
    monkeypatch.setattr(writer_module.os, "replace", killed)
    with pytest.raises(Killed):
        HistoryWriter(path, 3, 2, group_size=4)
    assert not path.exists() and (tmp_path / ".trajectories_env_0001.h5.creating").exists()
    monkeypatch.setattr(writer_module.os, "replace", real_replace)
    w = HistoryWriter(path, 3, 2, group_size=4)  # resume: a fresh, valid file
    assert w.steps_written == 0
    w.close()
    assert not (tmp_path / ".trajectories_env_0001.h5.creating").exists()
