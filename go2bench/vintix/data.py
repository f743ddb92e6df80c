"""Multitask window dataset over learning histories (lazy HDF5), and its cached normalisation statistics.

A *sample* is a window of ``context_len`` consecutive steps of one history's *stream*: the
history's episodes with every ``episode_sparsity``-th episode kept (episodes 0, k, 2k, ...),
concatenated back together with their ``step_num``.  Window starts are ``trajectory_sparsity``
apart (0, s, 2s, ... while the window fits).

``context="episode"`` (the no-context baseline, trained to see only the current episode): windows
never cross an episode boundary.  In each kept episode they start at offsets 0, s, 2s, ... while a
full window fits, and always at offset 0; a window that the episode's end cuts short is padded at
its end (``mask`` False there: no loss).  Causal attention keeps padding out of the real steps.

Token inputs at step t: normalised obs_t, normalised a_{t-1} and r_{t-1} * reward_scale, where
a_{t-1} and r_{t-1} are zeros when ``step_num_t == 0`` (episode start) or t is the first row of
the stream; the target is normalised a_t, the action executed (``target="action"``, Algorithm
Distillation), or the teacher's clean action at t (``target="demonstrator_action"``, DPT-style;
every history must have it), normalised with the same action statistics.  Samples are padded with
zeros to the largest obs and action widths among the groups, so that the default collate function
batches mixed groups.

Normalisation divides by :func:`go2bench.histories.stats.normaliser_std`: a slot that is constant
in the data is only centred (divisor 1), so changing it at evaluation stays a small input.

Memory: building the index reads only the ``step_num`` arrays (4 bytes a step, one history at
a time); what stays resident is one (history, start) pair per sample (12 bytes) and one
(start, length) pair per kept episode.  HDF5 files are opened lazily, per process (DataLoader
workers re-open them after the fork), and only the rows of a window are read, as raw bytes where the
datasets are contiguous (:mod:`go2bench.histories.row_reader`: a sparse window's several row ranges
cost about as much as one).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from go2bench.core.provenance import write_json_atomic
from go2bench.histories.dataset_config import DatasetSpec
from go2bench.histories.names import DATASET_KEYS, DEMONSTRATOR_KEY, metadata_path
from go2bench.histories.reader import group_table, has_demonstrator, history_files, read_metadata
from go2bench.histories.row_reader import RowReader
from go2bench.histories.stats import CONSTANT_STD, STD_RULE, compute_stats, normaliser_std

__all__ = [
    "STATS_FILE",
    "STATS_VERSION",
    "CONSTANT_STD",
    "TARGETS",
    "CONTEXTS",
    "HistoryStream",
    "MultiTaskWindows",
    "dataset_fingerprint",
    "load_or_compute_stats",
    "episode_segments",
    "window_starts",
    "episode_windows",
]

STATS_FILE = "vintix_stats.json"
STATS_VERSION = 2  # 2: normalisation divisors by normaliser_std (1: a 0.01 std floor)
TARGETS = ("action", DEMONSTRATOR_KEY)
CONTEXTS = ("history", "episode")  # what a training window may span: the stream, or one episode


# --------------------------------------------------------------------------------------- stats cache


def dataset_fingerprint(dataset_dir: Path) -> str:
    """Hash of the history files' names, sizes and mtimes (and of the metadata file's)."""
    d = Path(dataset_dir)
    h = hashlib.sha256()
    files = history_files(d) + [p for p in [metadata_path(d)] if p.exists()]
    for p in files:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load_or_compute_stats(dataset_dir: Path, use_cache: bool = True) -> tuple[dict[str, Any], bool]:
    """Stats of one dataset from ``<dataset_dir>/vintix_stats.json`` if its hash still matches.

    Returns ``(stats, cache_hit)``.  The cache is (re)written after computing; a read-only
    dataset folder only costs a warning.
    """
    d = Path(dataset_dir)
    fp = dataset_fingerprint(d)
    cache = d / STATS_FILE
    if use_cache and cache.exists():
        try:
            with open(cache) as fh:
                obj = json.load(fh)
            if obj.get("fingerprint") == fp and obj.get("version") == STATS_VERSION:
                return obj["stats"], True
        except (OSError, ValueError, KeyError):
            pass
    stats = compute_stats(d)
    if use_cache:
        try:
            write_json_atomic(cache, {"version": STATS_VERSION, "fingerprint": fp, "stats": stats})
        except OSError as e:
            warnings.warn(f"{cache}: cannot cache normalisation stats ({e})", stacklevel=2)
    return stats, False


# --------------------------------------------------------------------------------------- index


def episode_segments(step_num: np.ndarray, episode_sparsity: int = 1) -> np.ndarray:
    """(K, 2) int64 array of kept episodes as (row_start, length), rows of the history.

    Episodes start at rows where ``step_num == 0`` (and at row 0 in any case); episodes
    0, k, 2k, ... are kept for ``k = episode_sparsity``.
    """
    step_num = np.asarray(step_num)
    n = step_num.shape[0]
    if n == 0:
        return np.zeros((0, 2), np.int64)
    starts = np.flatnonzero(step_num == 0)
    if starts.size == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    ends = np.concatenate([starts[1:], [n]])
    seg = np.stack([starts, ends - starts], 1).astype(np.int64)
    return seg[:: int(episode_sparsity)]


def window_starts(stream_len: int, context_len: int, trajectory_sparsity: int) -> np.ndarray:
    """Stream positions 0, s, 2s, ... of every window of ``context_len`` steps that fits."""
    if stream_len < context_len:
        return np.zeros(0, np.int64)
    return np.arange(0, stream_len - context_len + 1, trajectory_sparsity, dtype=np.int64)


def episode_windows(seg_stream_start: np.ndarray, context_len: int, trajectory_sparsity: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(stream starts, lengths) of windows inside single episodes (``seg_stream_start``: (K+1,) bounds).

    In an episode of n steps: offsets 0, s, 2s, ... while ``offset + context_len <= n``, and offset
    0 in any case, with length ``min(context_len, n - offset)``.
    """
    bounds = np.asarray(seg_stream_start, np.int64)
    n = np.diff(bounds)
    n = n[n > 0]
    first = bounds[:-1][np.diff(bounds) > 0]
    L, s = int(context_len), int(trajectory_sparsity)
    counts = np.maximum(n - L, 0) // s + 1
    ep = np.repeat(np.arange(len(n)), counts)
    offset = (np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)) * s
    return first[ep] + offset, np.minimum(L, n[ep] - offset)


@dataclass
class HistoryStream:
    """One history file's kept stream: where its rows are in the file."""

    path: str
    group_idx: int
    seg_file_start: np.ndarray  # (K,) first file row of each kept episode
    seg_stream_start: np.ndarray  # (K+1,) first stream position of each kept episode, then the length
    has_demonstrator: bool = False  # every group holds demonstrator_action

    @property
    def stream_len(self) -> int:
        return int(self.seg_stream_start[-1])

    @classmethod
    def build(cls, path: Path, group_idx: int, episode_sparsity: int) -> "HistoryStream":
        with h5py.File(path, "r") as f:
            table = group_table(f, path)
            step_num = np.concatenate([f[name]["step_num"][()] for name, _ in table])
            demo = has_demonstrator(f)
        seg = episode_segments(step_num, episode_sparsity)
        return cls(
            path=str(path),
            group_idx=group_idx,
            seg_file_start=seg[:, 0].copy(),
            seg_stream_start=np.concatenate([[0], np.cumsum(seg[:, 1])]).astype(np.int64),
            has_demonstrator=demo,
        )

    def file_ranges(self, a: int, b: int) -> list[tuple[int, int]]:
        """Stream positions [a, b) as contiguous file row ranges [(r0, r1), ...]."""
        out = []
        k = int(np.searchsorted(self.seg_stream_start, a, side="right")) - 1
        pos = a
        while pos < b:
            seg_a, seg_b = self.seg_stream_start[k], self.seg_stream_start[k + 1]
            take = min(b, seg_b) - pos
            r0 = int(self.seg_file_start[k] + (pos - seg_a))
            if out and out[-1][1] == r0:
                out[-1] = (out[-1][0], r0 + take)
            else:
                out.append((r0, r0 + int(take)))
            pos += take
            k += 1
        return out


# --------------------------------------------------------------------------------------- dataset


class MultiTaskWindows(torch.utils.data.Dataset):
    """Windows of ``context_len`` steps over the histories of several datasets (one per group).

    ``groups`` is an ordered dict group name -> info (obs/act dims, env_id, task_name,
    reward_scale, normalisation stats); ``group_names[i]`` is the group of index ``i``.
    """

    def __init__(self, specs: list[DatasetSpec], context_len: int, trajectory_sparsity: int,
                 stats: dict[str, dict] | None = None, use_stats_cache: bool = True, target: str = "action",
                 context: str = "history"):
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
        self.target = target
        self.context = context
        self.context_len = int(context_len)
        self.trajectory_sparsity = int(trajectory_sparsity)
        self.group_names: list[str] = []
        self.groups: dict[str, dict[str, Any]] = {}
        self.stats_cache_hits: dict[str, bool] = {}
        self.histories: list[HistoryStream] = []
        hist_ids, starts, lengths = [], [], []
        for spec in specs:
            gi = len(self.group_names)
            group = spec.entry.group
            meta = read_metadata(spec.dir)
            files = history_files(spec.dir)
            if stats is not None and group in stats:
                st = stats[group]
            else:
                st, hit = load_or_compute_stats(spec.dir, use_cache=use_stats_cache)
                self.stats_cache_hits[group] = hit
            obs_dim, act_dim = len(st["obs_mean"]), len(st["act_mean"])
            meta_obs = (meta.get("observation_shape") or {}).get("proprio", [obs_dim])[0]
            if meta_obs != obs_dim or meta.get("action_dim", act_dim) != act_dim:
                raise ValueError(f"{spec.dir}: metadata dims ({meta_obs}, {meta.get('action_dim')}) disagree "
                                 f"with the data ({obs_dim}, {act_dim})")
            self.group_names.append(group)
            self.groups[group] = {
                "obs_dim": obs_dim,
                "act_dim": act_dim,
                "env_id": meta.get("env_id"),
                "task_name": meta.get("task_name"),
                "robot": meta.get("robot"),
                "dataset": spec.name,
                "reward_scale": float(spec.entry.reward_scale),
                "episode_sparsity": int(spec.entry.episode_sparsity),
                "obs_mean": list(st["obs_mean"]),
                # the divisors (already applied in a checkpoint's groups: the rule is idempotent)
                "obs_std": normaliser_std(st.get("obs_norm_std", st["obs_std"])).tolist(),
                "act_mean": list(st["act_mean"]),
                "act_std": normaliser_std(st.get("act_norm_std", st["act_std"])).tolist(),
                "std_rule": STD_RULE,
                "num_histories": len(files),
            }
            short = []
            for path in files:
                h = HistoryStream.build(path, gi, spec.entry.episode_sparsity)
                if target == DEMONSTRATOR_KEY and not h.has_demonstrator:
                    raise ValueError(f"{path}: no {DEMONSTRATOR_KEY} (collected before it was recorded?); "
                                     "train with target 'action' or collect the dataset again")
                if context == "episode":
                    s, n = episode_windows(h.seg_stream_start, self.context_len, self.trajectory_sparsity)
                else:
                    s = window_starts(h.stream_len, self.context_len, self.trajectory_sparsity)
                    n = np.full(s.shape, self.context_len, np.int64)
                if len(s) == 0:
                    short.append(f"{Path(path).name} ({h.stream_len} steps)")
                hist_ids.append(np.full(s.shape, len(self.histories), np.int32))
                starts.append(s)
                lengths.append(n.astype(np.int32))
                self.histories.append(h)
            if len(short) == len(files):
                raise ValueError(
                    f"{spec.dir}: no history has {self.context_len} steps after episode_sparsity "
                    f"{spec.entry.episode_sparsity} (longest: {max(h.stream_len for h in self.histories[-len(files):])}); "
                    "lower --context_len or collect longer histories"
                )
            if short:
                warnings.warn(f"{spec.dir}: {len(short)} of {len(files)} histories are shorter than context_len "
                              f"{self.context_len} and give no samples: {', '.join(short[:5])}"
                              + (" ..." if len(short) > 5 else ""), stacklevel=2)
        self.sample_history = np.concatenate(hist_ids) if hist_ids else np.zeros(0, np.int32)
        self.sample_start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self.sample_len = np.concatenate(lengths) if lengths else np.zeros(0, np.int32)  # steps before padding
        self.max_obs_dim = max(g["obs_dim"] for g in self.groups.values())
        self.max_act_dim = max(g["act_dim"] for g in self.groups.values())
        self._norm = {
            gi: tuple(np.asarray(self.groups[g][k], np.float32) for k in ("obs_mean", "obs_std", "act_mean", "act_std"))
            for gi, g in enumerate(self.group_names)
        }
        self._files: dict[str, RowReader] = {}
        self._pid = None
        self.direct_reads = True  # False: every read through h5py (the comparison path of tests and benchmarks)

    def __len__(self) -> int:
        return int(self.sample_start.shape[0])

    def samples_per_group(self) -> dict[str, int]:
        gidx = np.array([h.group_idx for h in self.histories], np.int64)[self.sample_history]
        return {g: int((gidx == i).sum()) for i, g in enumerate(self.group_names)}

    # ------------------------------------------------------------------ lazy file handles
    def _file(self, path: str) -> RowReader:
        if self._pid != os.getpid():  # fresh process (DataLoader worker): never reuse inherited handles
            self._files = {}
            self._pid = os.getpid()
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = RowReader(path, self.direct_reads)
        return f

    def close(self) -> None:
        if self._pid == os.getpid():
            for f in self._files.values():
                try:
                    f.close()
                except Exception:  # noqa: BLE001
                    pass
        self._files = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = {}
        state["_pid"] = None
        return state

    # ------------------------------------------------------------------ reading
    def raw_window(self, i: int) -> dict[str, np.ndarray]:
        """Raw rows of sample ``i`` (and the row before it, for the previous action/reward);
        ``demonstrator_action`` too when the history has it.  ``sample_len[i]`` rows (no padding)."""
        h = self.histories[int(self.sample_history[i])]
        s = int(self.sample_start[i])
        L = int(self.sample_len[i])
        f = self._file(h.path)
        lo = s - 1 if s > 0 else s
        ranges = h.file_ranges(lo, s + L)  # every key from the row before (its action and reward), one read
        keys = list(DATASET_KEYS) + [DEMONSTRATOR_KEY] * h.has_demonstrator
        full = f.read(keys, ranges)
        out = {k: v[s - lo:] for k, v in full.items()}
        act, rew = full["action"], full["reward"]
        prev_act = np.zeros_like(out["action"])
        prev_rew = np.zeros_like(out["reward"])
        if s > 0:
            prev_act[:] = act[:-1]
            prev_rew[:] = rew[:-1]
        else:
            prev_act[1:] = act[:-1]
            prev_rew[1:] = rew[:-1]
        out["prev_action"], out["prev_reward"] = prev_act, prev_rew
        out["first_row_of_stream"] = np.array(s == 0)
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        raw = self.raw_window(i)
        h = self.histories[int(self.sample_history[i])]
        gi = h.group_idx
        info = self.groups[self.group_names[gi]]
        om, osd, am, asd = self._norm[gi]
        L, n = self.context_len, int(self.sample_len[i])
        start = raw["step_num"] == 0
        if raw["first_row_of_stream"]:
            start = start.copy()
            start[0] = True
        obs = np.zeros((L, self.max_obs_dim), np.float32)
        obs[:n, : info["obs_dim"]] = (raw["proprio_observation"] - om) / osd
        tgt = np.zeros((L, self.max_act_dim), np.float32)
        tgt[:n, : info["act_dim"]] = (raw[self.target] - am) / asd
        prev = np.zeros((L, self.max_act_dim), np.float32)
        prev[:n, : info["act_dim"]] = (raw["prev_action"] - am) / asd
        prev[:n][start] = 0.0
        prew = np.zeros(L, np.float32)
        prew[:n] = raw["prev_reward"] * info["reward_scale"]
        prew[:n][start] = 0.0
        mask = np.zeros(L, bool)
        mask[:n] = True
        return {
            "obs": torch.from_numpy(obs),
            "prev_action": torch.from_numpy(prev),
            "prev_reward": torch.from_numpy(prew),
            "target": torch.from_numpy(tgt),
            "mask": torch.from_numpy(mask),
            "group": torch.tensor(gi, dtype=torch.long),
        }
