"""Training windows read by raw bytes (RowReader) equal, bit for bit, windows built from the definitions.

The reference reads each whole history with ``read_history`` (a different reader), keeps episodes
0, k, 2k, ... (an episode starts where ``step_num == 0``), concatenates them and slices the window;
the previous action/reward of row t is the stream's row t - 1 (zeros at the stream start and where
``step_num == 0``).  Groups of 7 rows and irregular episodes make windows cross both boundaries.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from go2bench.histories.dataset_config import load_dataset_configs
from go2bench.histories.reader import read_history
from go2bench.histories.row_reader import RowReader
from go2bench.histories.writer import HistoryWriter
from go2bench.vintix.data import MultiTaskWindows

LENS = [5, 9, 4, 11, 6, 3, 8]  # episode lengths, cycled; the last episode of a history is cut
OBS, ACT, STEPS, SCALE = 3, 2, 101, 3.0


def _write(root, name, compression=None, n_hist=2):
    d = root / name
    d.mkdir()
    rng = np.random.default_rng(len(name))
    for h in range(n_hist):
        step_num = np.concatenate([np.arange(LENS[k % len(LENS)]) for k in range(h, h + 40)])[:STEPS]
        obs = rng.normal(size=(STEPS, OBS)).astype(np.float32)
        act = rng.normal(size=(STEPS, ACT)).astype(np.float32)
        demo = rng.normal(size=(STEPS, ACT)).astype(np.float32)
        rew = rng.normal(size=STEPS).astype(np.float32)
        with HistoryWriter(d / f"trajectories_env_{h:04d}.h5", OBS, ACT, group_size=7, compression=compression,
                           demonstrator=True) as w:
            w.append(obs, act, rew, step_num.astype(np.int32), demo)
    return d


def _windows(root, name, k, context="history", L=12, s=3):
    cfg = root / f"{name}_{k}.yaml"
    cfg.write_text(yaml.safe_dump({name: {"path": name, "group": name, "reward_scale": SCALE,
                                          "episode_sparsity": k}}))
    return MultiTaskWindows(load_dataset_configs([cfg], root), L, s, context=context, target="demonstrator_action")


def _stream(path, k):
    """The kept stream of one history from the definitions, read with read_history."""
    full = read_history(path)
    starts = np.flatnonzero(full["step_num"] == 0)
    ends = np.append(starts[1:], len(full["step_num"]))
    rows = np.concatenate([np.arange(a, b) for a, b in list(zip(starts, ends))[::k]])
    return {key: full[key][rows] for key in ("proprio_observation", "action", "reward", "step_num",
                                             "demonstrator_action")}


def _expected_raw(st, s, n):
    out = {key: v[s:s + n] for key, v in st.items()}
    for key, src in (("prev_action", "action"), ("prev_reward", "reward")):
        prev = np.zeros_like(st[src][:n])
        prev[1:] = st[src][s:s + n - 1]
        if s > 0:
            prev[0] = st[src][s - 1]
        out[key] = prev
    return out


def _expected_item(ds, st, s, n, L):
    g = ds.groups[ds.group_names[0]]
    om, osd, am, asd = (np.asarray(g[k], np.float32) for k in ("obs_mean", "obs_std", "act_mean", "act_std"))
    raw = _expected_raw(st, s, n)
    start = raw["step_num"] == 0
    start[0] |= s == 0
    obs, tgt, prev = np.zeros((L, OBS), np.float32), np.zeros((L, ACT), np.float32), np.zeros((L, ACT), np.float32)
    obs[:n] = (raw["proprio_observation"] - om) / osd
    tgt[:n] = (raw["demonstrator_action"] - am) / asd
    prev[:n] = np.where(start[:, None], 0.0, (raw["prev_action"] - am) / asd)
    prew = np.zeros(L, np.float32)
    prew[:n] = np.where(start, 0.0, raw["prev_reward"] * SCALE)
    return {"obs": obs, "target": tgt, "prev_action": prev, "prev_reward": prew, "mask": np.arange(L) < n}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("window_reads")
    _write(r, "raw")
    _write(r, "gzip", compression="gzip")  # chunked: no byte offset, read through h5py
    return r


@pytest.mark.parametrize("name,k,context", [("raw", 1, "history"), ("raw", 2, "history"), ("raw", 3, "history"),
                                            ("raw", 2, "episode"), ("gzip", 2, "history")])  # gzip: read by h5py
def test_windows_equal_the_definition_bit_for_bit(root, name, k, context):
    ds = _windows(root, name, k, context)
    slow = _windows(root, name, k, context)
    slow.direct_reads = False
    streams = [_stream(h.path, k) for h in ds.histories]
    for direct in (True, False):
        reader = RowReader(ds.histories[0].path, direct)
        assert reader.raw_bytes == (direct and name == "raw")  # gzip: chunks, which only h5py reads
        reader.close()
    assert len(ds) >= 10
    if context == "episode":
        assert ds.sample_len.min() < ds.context_len  # windows cut by their episode's end: padded
    crossing = 0
    for i in range(len(ds)):
        st = streams[int(ds.sample_history[i])]
        s, n = int(ds.sample_start[i]), int(ds.sample_len[i])
        want = _expected_raw(st, s, n)
        crossing += np.any(np.diff(want["step_num"]) != 1)
        for got in (ds.raw_window(i), slow.raw_window(i)):
            for key, v in want.items():
                assert got[key].dtype == v.dtype and got[key].shape == v.shape, (i, key)
                assert got[key].tobytes() == v.tobytes(), (i, key)
        item, ref = ds[i], _expected_item(ds, st, s, n, ds.context_len)
        for key, v in ref.items():
            assert torch.equal(item[key], torch.from_numpy(v)), (i, key)
            assert torch.equal(slow[i][key], item[key]), (i, key)
    assert crossing > 0 or context == "episode"  # some windows join kept episodes


def test_short_reads_are_completed(root, monkeypatch):
    """A preadv that returns only part of a range (a signal, a huge range) is read on."""
    import go2bench.histories.row_reader as rr

    real = rr.os.preadv
    calls = []

    def dribble(fd, buffers, offset):
        calls.append(offset)
        buf = memoryview(buffers[0]).cast("B")
        return real(fd, [buf[:min(len(buf), 5)]], offset)

    path = root / "raw" / "trajectories_env_0000.h5"
    want = read_history(path)
    reader = RowReader(path)
    monkeypatch.setattr(rr.os, "preadv", dribble)
    got = reader.read(["proprio_observation", "step_num"], [(3, 20), (40, 41), (60, 75)])
    reader.close()
    rows = np.r_[3:20, 40, 60:75]
    assert got["proprio_observation"].tobytes() == want["proprio_observation"][rows].tobytes()
    assert got["step_num"].tobytes() == want["step_num"][rows].tobytes()
    assert len(calls) > 50  # the rows came 5 bytes at a time, from the file's raw bytes


def test_t_plus_one_observation_rows_are_skipped(tmp_path):
    """The original collector's extra observation row at the end of each group is never read."""
    from go2bench.testing import write_original_layout_history

    rng = np.random.default_rng(3)
    obs = rng.normal(size=(30, 4)).astype(np.float32)
    act = rng.normal(size=(30, 2)).astype(np.float32)
    step_num = np.concatenate([np.arange(n) for n in (4, 9, 3, 8, 6)]).astype(np.int32)
    write_original_layout_history(tmp_path / "orig" / "trajectories_env_0000.h5", obs, act,
                                  np.arange(30, dtype=np.float32), step_num, [(0, 7), (7, 19), (19, 30)],
                                  np.full((3, 4), 1e6, np.float32))
    ds = _windows_plain(tmp_path, k=2)
    kept = np.concatenate([np.arange(0, 4), np.arange(13, 16), np.arange(24, 30)])  # episodes 0, 2, 4
    assert ds.sample_start.tolist() == [0, 1, 2, 3] and len(kept) == 13
    for i, s in enumerate(ds.sample_start):
        raw = ds.raw_window(i)
        assert raw["proprio_observation"].tobytes() == obs[kept[s:s + 10]].tobytes()
        assert raw["reward"].tolist() == kept[s:s + 10].tolist()


def _windows_plain(root, k):
    cfg = root / "orig.yaml"
    cfg.write_text(yaml.safe_dump({"orig": {"path": "orig", "group": "orig", "episode_sparsity": k}}))
    return MultiTaskWindows(load_dataset_configs([cfg], root), 10, 1)
