"""The writing side of a collection: the HistoryWriters of a set of histories, fed chunk by chunk.

A collection's histories are written by one shard (the collector's writer thread, all histories) or
by one shard per writer process (:mod:`go2bench.collect.writer_procs`, each its share of them).  A
shard opens its histories' writers (resuming their files), appends each chunk's recorded rows of its
columns, and finishes the histories the stepping loop reports done: last group, statistics and the
per-history JSON.  Needs numpy and h5py only, never torch: a writer process imports it and starts fast.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from go2bench.core.provenance import write_json_atomic
from go2bench.histories.names import history_h5, history_json
from go2bench.histories.writer import HistoryWriter

__all__ = ["ShardSpec", "HistoryShard", "Opened", "history_record", "record_meta", "serve", "shm_views"]

# the dataset metadata's fields that every per-history record repeats, in the record's order
_META_HEAD = ("task_name", "group_name", "env_id", "robot")
_META_MID = ("observation_shape", "action_dim")
_META_REST = ("reward_scale", "noise", "dataset_keys", "go2bench_version")


def record_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The fields of the dataset metadata that a shard needs (what its per-history records repeat)."""
    return {k: meta[k] for k in _META_HEAD + _META_MID + _META_REST}


@dataclass(frozen=True)
class ShardSpec:
    """What a shard writes: histories ``ids`` (dataset indices), column ``cols[k]`` of a chunk holding
    history ``ids[k]``, whose record key is ``keys[k]`` (:func:`~go2bench.collect.noise.history_seed`)."""

    out: str
    ids: tuple[int, ...]
    cols: tuple[int, ...]
    keys: tuple[int, ...]
    obs_dim: int
    act_dim: int
    group_size: int
    compression: str | None
    demonstrator: bool
    meta: dict[str, Any]  # :func:`record_meta` of the dataset metadata
    seed: int
    family: str | None
    split: str


@dataclass(frozen=True)
class Opened:
    """A history's file as its writer found it: steps on disk, the row where its last episode starts,
    whether a kill had damaged it (rebuilt from its complete groups)."""

    steps_written: int
    last_episode_start: int
    rebuilt: bool


class HistoryShard:
    """Opens the writers of ``spec``'s histories; :meth:`write` appends one chunk and finishes histories."""

    def __init__(self, spec: ShardSpec):
        self.spec = spec
        self.writers: dict[int, HistoryWriter] = {}
        self.opened: dict[int, Opened] = {}
        out = Path(spec.out)
        for i in spec.ids:
            w = HistoryWriter(history_h5(out, i), spec.obs_dim, spec.act_dim, spec.group_size,
                              compression=spec.compression, demonstrator=spec.demonstrator, stats=True)
            self.writers[i] = w
            self.opened[i] = Opened(w.steps_written, w.last_episode_start(), w.rebuilt)
        self._col = dict(zip(spec.ids, spec.cols))
        self._key = dict(zip(spec.ids, spec.keys))

    def write(self, host: dict[str, np.ndarray], finished: list[tuple[int, dict[str, Any]]]) -> int:
        """Append this shard's recorded rows of one chunk (``host``: arrays (C, H, ...), ``rec`` marks the rows
        to write), then finish the ``finished`` histories it holds ((index, task) pairs); returns rows written."""
        n = self._append(host)
        for i, task in finished:
            if i in self.writers:
                self._finish(i, task)
        return n

    def _append(self, host: dict[str, np.ndarray]) -> int:
        ids = [i for i in self.writers]
        if not ids:
            return 0
        cols = np.array([self._col[i] for i in ids])
        rec = host["rec"][:, cols]
        count = rec.sum(0)  # per history, for all at once: how many rows, from which one
        if not count.any():
            return 0
        first = rec.argmax(0)
        data = [host[k] for k in ("obs", "action", "reward", "step_num")] + [host.get("demo")]
        n = 0
        for k in np.flatnonzero(count):
            j, a, b = cols[k], int(first[k]), int(first[k] + count[k])
            assert rec[a:b, k].all(), "recorded rows of a history are contiguous"
            self.writers[ids[k]].append(*(None if x is None else x[a:b, j] for x in data))
            n += b - a
        return n

    def _finish(self, i: int, task: dict[str, Any]) -> None:
        writer = self.writers.pop(i)
        writer.close(final=True)
        record = history_record(self.spec, i, self._key[i], task, writer.stats())
        write_json_atomic(history_json(Path(self.spec.out), i), record, fsync=False)  # its HDF5 groups are not either

    def abort(self) -> None:
        """Close the unfinished histories keeping their complete groups only (as after a kill)."""
        for w in self.writers.values():
            try:
                w.close(final=False)
            except OSError:
                pass
        self.writers.clear()


def history_record(spec: ShardSpec, i: int, key: int, task: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """The per-history JSON of history ``i`` (record key ``key``): the dataset's fields, its theta in a family
    (``task``), and ``stats`` (:meth:`HistoryWriter.stats`: the same bits as reading the file back)."""
    meta = spec.meta
    return {
        **{k: meta[k] for k in _META_HEAD},
        "history_index": i,
        "seed": spec.seed,
        "history_key": key,
        **{k: meta[k] for k in _META_MID},
        "action_type": "continuous",
        "reward_scale": meta["reward_scale"],
        "noise": meta["noise"],
        "dataset_keys": meta["dataset_keys"],
        **({"family": spec.family, "split": spec.split, **task} if spec.family is not None else {}),
        **stats,
        "go2bench_version": meta["go2bench_version"],
    }


def shm_views(shm: SharedMemory, layout: dict) -> dict[str, np.ndarray]:
    """Numpy arrays over a shared-memory block: ``layout`` = {name: (shape, dtype str, byte offset)}."""
    return {k: np.ndarray(shape, np.dtype(dt), buffer=shm.buf, offset=off) for k, (shape, dt, off) in layout.items()}


def serve(conn, spec: ShardSpec, layouts: list, parent_pid: int) -> None:
    """A writer process: open the shard's histories, then write each chunk it is sent until "stop"."""
    _die_with_parent(parent_pid)
    shard, shms = None, []
    try:
        shms = [SharedMemory(name=name) for name, _ in layouts]
        views = [shm_views(shm, layout) for shm, (_, layout) in zip(shms, layouts)]
        shard = HistoryShard(spec)
        conn.send(("opened", shard.opened))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                break
            _, slot, finished = msg
            conn.send(("done", slot, shard.write(views[slot], finished)))
    except EOFError:  # the parent is gone
        pass
    except BaseException as exc:  # noqa: BLE001 - reported to the stepping process as one line
        try:
            conn.send(("error", str(exc) or type(exc).__name__))
        except OSError:
            pass
    finally:
        if shard is not None:
            shard.abort()
        views = None
        for shm in shms:
            try:
                shm.close()
            except BufferError:
                pass
        conn.close()


def _die_with_parent(parent_pid: int) -> None:
    """On Linux, have the kernel kill this process when its parent dies (a kill -9 of the collection).  Ctrl-C
    reaches the whole process group: the parent handles it (its writers write what was handed over, as the
    writer thread does), so the writer ignores it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before that took effect
        os._exit(1)
