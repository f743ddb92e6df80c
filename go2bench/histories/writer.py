"""Writing one learning history: :class:`HistoryWriter`, crash-safe group by group.

Crash safety: each group is written under a temporary name, flushed, then renamed and flushed
again, so after a crash a group is either complete or absent; a leftover temporary group is
deleted when the file is reopened for resuming.  HDF5 itself is not journalled: a kill in the
middle of a metadata update can leave the file unreadable.  So after every complete group the
writer records where its bytes lie (:mod:`go2bench.histories.salvage`), and reopening a file that
disagrees with that record rebuilds it from the recorded groups first (:attr:`rebuilt`).

The file is open only while a group is written (or recovered), never in between: a collection holds
one writer per history, and HDF5 closes and opens files in time proportional to the number of
files the process has open (it walks all its open objects), so thousands of files held open made
every open and close slower as the batch grew (issue 16, 2-core CPU: 2.8 ms to create and 2.1 ms to
close each of 4096 open files against 1.0 and 0.24 ms each of 256).  A kill between groups, most of a collection's
time, also finds every history file closed and consistent.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from go2bench.core.provenance import write_error
from go2bench.histories import salvage
from go2bench.histories.names import (DATASET_KEYS, DEMONSTRATOR_KEY, TMP_PREFIX, format_group, history_layout,
                                      parse_group)
from go2bench.histories.stats import StepMoments, read_moments, stats_record

__all__ = ["HistoryWriter"]


class HistoryWriter:
    """Appends the steps of one history to ``path_h5`` in full groups of ``group_size`` rows.

    Opening an existing file resumes it: leftover temporary groups are deleted and
    :attr:`steps_written` tells how many complete steps are on disk; the caller continues
    from there.  ``close(final=True)`` (also on a clean ``with`` exit) writes the remaining
    rows as a final, shorter group; ``close(final=False)`` drops them.

    ``demonstrator=True`` adds the ``demonstrator_action`` dataset to every group (then
    :meth:`append` needs it); a resumed file must agree, so that no history mixes the layouts.

    ``stats=True``: :meth:`stats` gives the history's per-history statistics, the same bits as
    :func:`~go2bench.histories.stats.history_stats` reading the file back, from the groups as they are
    written (a resumed file's groups are read once, when it is opened); it keeps the reward and
    step_num columns, 8 bytes a step.
    """

    def __init__(self, path_h5, obs_dim: int, act_dim: int, group_size: int = 10_000, compression=None,
                 demonstrator: bool = False, stats: bool = False):
        if int(group_size) < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size!r}")
        self.path = Path(path_h5)
        self.obs_dim, self.act_dim, self.group_size = int(obs_dim), int(act_dim), int(group_size)
        self.compression = compression
        self.demonstrator = bool(demonstrator)
        self.keys = DATASET_KEYS + ((DEMONSTRATOR_KEY,) if self.demonstrator else ())
        self.removed_temporary: list[str] = []
        self.rebuilt = False  # whether a damaged file was rebuilt from its recorded groups
        fresh = not self.path.exists()
        try:
            if fresh:
                _create_empty(self.path)
            else:
                recorded = salvage.read_layout(self.path)
                if recorded is not None and not salvage.file_agrees(self.path, recorded):
                    self.removed_temporary = salvage.temporary_groups(self.path)  # dropped by the rebuild
                    salvage.rebuild(self.path, recorded)
                    self.rebuilt = True
                f = h5py.File(self.path, "a")
        except OSError as exc:
            raise write_error(self.path, "open for writing (unreadable or truncated HDF5?)", exc) from exc
        if fresh:
            self.steps_written, layout, self._last_start = 0, {}, 0
        else:
            with f:  # closed again: see the module's docstring
                self.steps_written = self._recover(f)
                layout = {name: salvage.group_layout(f[name]) for name in f}
                self._last_start = _last_episode_start(f)
        salvage.write_layout(self.path, layout)
        self._stats = None  # (moments, reward chunks, step_num chunks) of the groups written
        if stats:
            if self.steps_written:
                m, r, s = read_moments(self.path)
                self._stats = (m, [r], [s])
            else:
                self._stats = (StepMoments(self.obs_dim, self.act_dim), [], [])
        g = self.group_size
        self._buf = {
            "proprio_observation": np.empty((g, self.obs_dim), np.float32),
            "action": np.empty((g, self.act_dim), np.float32),
            "reward": np.empty((g,), np.float32),
            "step_num": np.empty((g,), np.int32),
        }
        if self.demonstrator:
            self._buf[DEMONSTRATOR_KEY] = np.empty((g, self.act_dim), np.float32)
        self._n = 0  # rows in the buffer
        self._closed = False

    def _recover(self, f: h5py.File) -> int:
        for name in [k for k in f.keys() if k.startswith(TMP_PREFIX)]:
            del f[name]
            self.removed_temporary.append(name)
        if self.removed_temporary:
            f.flush()
        ranges = []
        for name in f.keys():
            r = parse_group(name)
            if r is None:
                raise ValueError(f"{self.path}: cannot resume, unexpected group {name!r} (not 'start-end')")
            ranges.append((r[0], r[1], name))
        ranges.sort()
        nxt = 0
        for start, end, name in ranges:
            if start != nxt or end < start:
                raise ValueError(f"{self.path}: cannot resume, group {name!r} does not continue at step {nxt}")
            grp = f[name]
            shapes = {
                "proprio_observation": (end - start + 1, self.obs_dim),
                "action": (end - start + 1, self.act_dim),
                "reward": (end - start + 1,),
                "step_num": (end - start + 1,),
            }
            if self.demonstrator:
                shapes[DEMONSTRATOR_KEY] = (end - start + 1, self.act_dim)
            elif DEMONSTRATOR_KEY in grp:
                raise ValueError(f"{self.path}: cannot resume, {name} has {DEMONSTRATOR_KEY} but this writer "
                                 "writes none (the dataset's layout says so)")
            for key, shape in shapes.items():
                if key not in grp or grp[key].shape != shape:
                    got = grp[key].shape if key in grp else "missing"
                    raise ValueError(f"{self.path}: cannot resume, {name}/{key} has shape {got}, expected {shape}")
            nxt = end + 1
        return nxt

    def last_episode_start(self) -> int:
        """Row where the last stored episode starts (0 without one): a resumed collection replays
        that episode from its start and writes from :attr:`steps_written` on."""
        return self._last_start

    def stats(self) -> dict:
        """The per-history statistics of the groups written so far (needs ``stats=True``)."""
        if self._stats is None:
            raise ValueError(f"{self.path}: a writer made with stats=False keeps no statistics")
        m, r, s = self._stats
        return stats_record(m, np.concatenate(r), np.concatenate(s), self.path)

    @property
    def steps_appended(self) -> int:
        """Steps written to disk plus those buffered for the group in progress."""
        return self.steps_written + self._n

    def append(self, obs, action, reward, step_num, demonstrator_action=None) -> None:
        """Append T rows: obs (T, obs_dim), action (T, act_dim), reward (T,), step_num (T,) and, for a
        ``demonstrator`` writer (only then), demonstrator_action (T, act_dim)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        if (demonstrator_action is None) == self.demonstrator:
            raise ValueError(f"{self.path}: demonstrator_action must be given "
                             f"{'to' if self.demonstrator else 'only to'} a writer made with demonstrator=True")
        obs = np.asarray(obs, dtype=np.float32)
        action = np.asarray(action, dtype=np.float32)
        reward = np.asarray(reward, dtype=np.float32).reshape(-1)
        step_num = np.asarray(step_num)
        if step_num.dtype.kind not in "iu":
            raise ValueError(f"{self.path}: step_num must be integers, got {step_num.dtype}")
        step_num = step_num.astype(np.int32).reshape(-1)
        t = obs.shape[0] if obs.ndim == 2 else -1
        if obs.shape != (t, self.obs_dim) or action.shape != (t, self.act_dim) or reward.shape != (t,) or step_num.shape != (t,):
            raise ValueError(
                f"{self.path}: append expects obs (T,{self.obs_dim}), action (T,{self.act_dim}), reward (T,), "
                f"step_num (T,); got {obs.shape}, {action.shape}, {reward.shape}, {step_num.shape}"
            )
        rows = {"proprio_observation": obs, "action": action, "reward": reward, "step_num": step_num}
        if self.demonstrator:
            demo = np.asarray(demonstrator_action, dtype=np.float32)
            if demo.shape != action.shape:
                raise ValueError(f"{self.path}: demonstrator_action has shape {demo.shape}, action {action.shape}")
            rows[DEMONSTRATOR_KEY] = demo
        i = 0
        while i < t:
            k = min(self.group_size - self._n, t - i)
            for key, arr in rows.items():
                self._buf[key][self._n : self._n + k] = arr[i : i + k]
            self._n += k
            i += k
            if self._n == self.group_size:
                self._flush_group()

    def _flush_group(self) -> None:
        n = self._n
        if n == 0:
            return
        start, end = self.steps_written, self.steps_written + n - 1
        final = format_group(start, end)
        tmp = TMP_PREFIX + final
        try:
            with h5py.File(self.path, "r+") as f:  # must exist (made at open); closing flushes the move
                if tmp in f:
                    del f[tmp]
                grp = f.create_group(tmp)
                layout = {}
                for key in self.keys:
                    data = self._buf[key][:n]
                    d = grp.create_dataset(key, data=data, compression=self.compression)
                    layout[key] = salvage.dataset_layout(d, data.dtype, data.shape)
                f.flush()
                f.move(tmp, final)  # moving a link moves no data: the layout stays valid
            salvage.append_layout(self.path, final, layout)
        except OSError as exc:
            raise write_error(self.path, f"write group {final!r}", exc) from exc
        if self._stats is not None:  # the buffers are reused: keep copies of the columns
            m, rewards, steps = self._stats
            b = self._buf
            rewards += m.add_group(b["proprio_observation"][:n], b["action"][:n], b["reward"][:n].copy(), n)
            steps.append(b["step_num"][:n].copy())
        zeros = np.flatnonzero(self._buf["step_num"][:n] == 0)
        if len(zeros):  # what _last_episode_start would read back from the file now
            self._last_start = start + int(zeros[-1])
        self.steps_written = end + 1
        self._n = 0

    def close(self, final: bool = True) -> None:
        """``final``: write the buffered rows as a last, shorter group; otherwise drop them (the file holds
        its complete groups, as after a kill)."""
        if self._closed:
            return
        self._closed = True
        if final:
            self._flush_group()
            history_layout(self.path).unlink(missing_ok=True)  # complete: no record to rebuild from is needed

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(final=exc_type is None)
        return False


def _last_episode_start(f: h5py.File) -> int:
    """See :meth:`HistoryWriter.last_episode_start`; read once, while the writer recovers the file."""
    for name in sorted(f.keys(), key=lambda k: -parse_group(k)[0]):  # groups valid after _recover
        zeros = np.flatnonzero(f[name]["step_num"][()] == 0)
        if len(zeros):
            return parse_group(name)[0] + int(zeros[-1])
    return 0


def _create_empty(path: Path) -> None:
    """Create an empty HDF5 file atomically: a kill while HDF5 writes its first superblock leaves only
    a hidden ``.<name>.creating`` file (overwritten next time), never a truncated history file."""
    tmp = path.with_name(f".{path.name}.creating")
    with h5py.File(tmp, "w"):
        pass
    os.replace(tmp, path)
