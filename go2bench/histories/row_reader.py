"""Reads of file row ranges of one history, across its HDF5 groups: raw bytes where h5py is not needed.

A training window of a sparse stream (``episode_sparsity`` > 1) is several row ranges, often in
several groups; through h5py each (range, key) costs a group lookup and a dataset read, ~0.1 ms of
Python and HDF5 overhead, more than copying the rows.  The writer stores every dataset unchunked and
uncompressed, so its rows are raw bytes at a fixed file offset (``H5Dget_offset``); those are read
with ``os.preadv`` straight into the output array, one system call per range and key.  Datasets
without such an offset (chunked, compressed, external, compact) go through h5py.  Either way the
result equals h5py's slice byte for byte; ``direct=False`` reads everything through h5py.

The original collector's T+1 observation rows are never read: rows are addressed per group.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from go2bench.histories.reader import group_table

__all__ = ["RowReader"]

_HAVE_PREADV = hasattr(os, "preadv")


class RowReader:
    """An open history file whose rows are read as ``read(keys, [(r0, r1), ...])`` (file rows)."""

    def __init__(self, path, direct: bool = True):
        self.path = str(path)
        self._fd = None
        self._f = h5py.File(self.path, "r")
        table = group_table(self._f, self.path)
        self.group_names = [name for name, _ in table]
        rows = np.array([n for _, n in table], np.int64)
        self.group_row_start = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        self.group_rows = rows
        self._datasets = {}  # (group, key) -> h5py.Dataset, for the groups read through h5py
        direct = bool(direct) and _HAVE_PREADV and self._f.userblock_size == 0
        self._keys = {}  # key -> (dtype, row shape, row bytes, [byte offset or None per group])
        groups = [self._f[g] for g in self.group_names]
        for key in [k for k in groups[0] if all(k in g for g in groups)]:
            first = groups[0][key]
            dtype, shape = first.dtype, first.shape[1:]
            offsets = []
            for g in groups:
                ds = g[key]
                same = ds.dtype == dtype and ds.shape[1:] == shape  # else through h5py, in the first group's type
                offsets.append(ds.id.get_offset() if direct and same else None)
            self._keys[key] = (dtype, shape, dtype.itemsize * int(np.prod(shape)), offsets)
        if any(o is not None for *_, offsets in self._keys.values() for o in offsets):
            self._fd = os.open(self.path, os.O_RDONLY)
        if all(o is not None for *_, offsets in self._keys.values() for o in offsets):
            self._f.close()  # one open file per history, as before: h5py is no longer needed
            self._f = None

    @property
    def raw_bytes(self) -> bool:
        """Whether every dataset of every group is read as raw bytes (no h5py reads)."""
        return self._f is None

    def read(self, keys, ranges: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        """Rows ``r0:r1`` of each dataset in ``keys`` for each range, concatenated (ranges may cross groups)."""
        pieces = []  # (group, first row in the group, rows), the same for every key
        for r0, r1 in ranges:
            g = int(np.searchsorted(self.group_row_start, r0, side="right")) - 1
            while r0 < r1:
                g0 = int(self.group_row_start[g])
                hi = min(r1, g0 + int(self.group_rows[g]))
                pieces.append((g, r0 - g0, hi - r0))
                r0 = hi
                g += 1
        n = sum(p[2] for p in pieces)
        out = {}
        for key in keys:
            dtype, shape, row_bytes, offsets = self._keys[key]
            arr = out[key] = np.empty((n,) + shape, dtype)
            pos = 0
            for g, lo, rows in pieces:
                dst = arr[pos:pos + rows]
                if offsets[g] is None:
                    self._dataset(g, key).read_direct(dst, np.s_[lo:lo + rows])
                elif os.preadv(self._fd, [dst], offsets[g] + lo * row_bytes) != dst.nbytes:
                    self._read_rest(dst, offsets[g] + lo * row_bytes)
                pos += rows
        return out

    def _dataset(self, g: int, key: str) -> h5py.Dataset:
        ds = self._datasets.get((g, key))
        if ds is None:
            ds = self._datasets[(g, key)] = self._f[self.group_names[g]][key]
        return ds

    def _read_rest(self, dst: np.ndarray, offset: int) -> None:
        """A short read (a signal, a huge range, or a truncated file): read on until done or the file ends."""
        buf = memoryview(dst.reshape(-1)).cast("B")
        done = 0
        while done < len(buf):
            n = os.preadv(self._fd, [buf[done:]], offset + done)
            if n <= 0:
                raise OSError(f"{self.path}: file ends inside a dataset (truncated?); check it with "
                              "`go2bench data check`")
            done += n

    def close(self) -> None:
        """Close the file (and h5py's handle, if still open)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._datasets = {}
        if self._f is not None:
            self._f.close()
            self._f = None

