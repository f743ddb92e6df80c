"""Reading learning histories: validated whole-file reads and the group table for lazy readers.

Readers accept any group size (the original workflow's 50,000-step groups too) and the original
collector's T+1 observation rows (one extra observation at the end of each group, never read).
The optional ``demonstrator_action`` is checked like ``action`` (rows, width, finite values) and
must be in every group of a history or in none; histories without it (format 1) stay valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from go2bench.histories.names import (
    DATASET_KEYS,
    DEMONSTRATOR_KEY,
    OPTIONAL_KEYS,
    HISTORY_H5_FILES,
    TMP_PREFIX,
    history_paths,
    metadata_path,
    parse_group,
)

__all__ = ["read_history", "scan_history", "group_table", "history_files", "read_metadata", "has_demonstrator"]

CHUNK = 65536  # rows read at a time when scanning


def scan_history(path, load: bool, obs_dim=None, act_dim=None, chunk: int = CHUNK):
    """Validate one history file; returns (problems, warnings, data or None).

    Problems and warnings are lines naming the file (and group/field). With ``load`` the
    concatenated arrays are returned (the original collector's T+1 observation rows are
    trimmed, with a warning). Every value is read, ``chunk`` rows at a time, so NaN/inf, a
    broken step counter and truncation are detected without holding a whole file in memory.
    The data holds ``demonstrator_action`` when every group has it.
    """
    path = Path(path)
    problems: list[str] = []
    warnings: list[str] = []
    parts = {k: [] for k in DATASET_KEYS + OPTIONAL_KEYS} if load else None
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [f"{path}: unreadable or truncated HDF5 file ({exc})"], warnings, None
    try:
        ranges = []
        for name in f.keys():
            if name.startswith(TMP_PREFIX):
                problems.append(f"{path}: group {name}: leftover temporary group from an interrupted write")
                continue
            r = parse_group(name)
            if r is None or r[1] < r[0]:
                problems.append(f"{path}: group {name!r}: name is not of the form 'start-end' (inclusive end)")
                continue
            ranges.append((r[0], r[1], name))
        ranges.sort()
        if not ranges:
            problems.append(f"{path}: no 'start-end' groups (empty history)")
        scan = _GroupScan(path, obs_dim, act_dim, chunk, warnings, parts)
        nxt = 0
        for start, end, name in ranges:
            if start < nxt:
                problems.append(f"{path}: group {name}: step range overlaps the previous group (ends at {nxt - 1})")
            elif start > nxt:
                problems.append(f"{path}: group {name}: missing steps {nxt}-{start - 1} before it")
            if start != nxt:
                scan.prev_step = None  # the counter cannot be followed across a gap or an overlap
            nxt = max(nxt, end + 1)
            problems += scan.group(f.get(name), name, end - start + 1)
        for key, have in scan.optional.items():
            if 0 < len(have) < len(ranges):
                missing = [n for _, _, n in ranges if n not in have]
                problems.append(f"{path}: {key}: in {len(have)} of {len(ranges)} groups (missing in "
                                f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}); a history has "
                                "it in every group or in none")
    except (OSError, KeyError, RuntimeError) as exc:
        problems.append(f"{path}: unreadable or truncated HDF5 file ({exc})")
    finally:
        f.close()
    if not load or problems:
        return problems, warnings, None
    data = {k: np.concatenate(v) for k, v in parts.items() if v}
    return problems, warnings, data


_WIDTH_FIELD = {"proprio_observation": "observation_shape", "action": "action_dim", DEMONSTRATOR_KEY: "action_dim"}


class _GroupScan:
    """Checks the groups of one file in step order; carries what spans groups (widths, step counter)."""

    def __init__(self, path, obs_dim, act_dim, chunk, warnings, parts):
        self.path, self.chunk, self.warnings, self.parts = path, int(chunk), warnings, parts
        self.meta_width = {"proprio_observation": obs_dim, "action": act_dim, DEMONSTRATOR_KEY: act_dim}
        self.optional: dict[str, set[str]] = {k: set() for k in OPTIONAL_KEYS}  # key -> groups that have it
        self.first_width: dict[str, tuple[str, int]] = {}  # key -> (group, width) of the file's first group
        self.prev_step = -1  # step_num before the next row; -1: the history's first row must be 0; None: unknown
        self.t_plus_1 = False  # the current group has the original collector's extra observation row

    def group(self, grp, name, length) -> list[str]:
        path = self.path
        if not isinstance(grp, h5py.Group):
            self.prev_step = None
            return [f"{path}: {name}: is not a group"]
        problems: list[str] = []
        dsets = {}
        self.t_plus_1 = False
        for key in DATASET_KEYS + OPTIONAL_KEYS:
            d = grp.get(key)
            if d is None and key in OPTIONAL_KEYS:
                continue
            if key in OPTIONAL_KEYS:
                self.optional[key].add(name)
            if d is None:
                problems.append(f"{path}: {name}/{key}: dataset missing")
            elif not isinstance(d, h5py.Dataset):
                problems.append(f"{path}: {name}/{key}: is not a dataset")
            else:
                p = self._shape_problem(d, name, key, length)
                if p:
                    problems.append(p)
                else:
                    dsets[key] = d
        keep = {k: [] for k in dsets} if self.parts is not None else None
        for key, d in dsets.items():
            try:
                p = self._values_problem(d, name, key, length, keep)
            except (OSError, RuntimeError, ValueError) as exc:
                p = f"{path}: {name}/{key}: unreadable ({exc})"
                if key == "step_num":
                    self.prev_step = None
            if p:
                problems.append(p)
        if "step_num" not in dsets or self.t_plus_1:
            self.prev_step = None  # the original's T+1 groups need not continue the counter of the next group
        if keep is not None and not problems:
            for key in keep:
                self.parts[key].append(np.concatenate(keep[key]))
        return problems

    def _shape_problem(self, d, name, key, length) -> str | None:
        """Dtype, rank, rows and width from the dataset's header, without reading values."""
        path = self.path
        want_kinds = "iu" if key == "step_num" else "fiu"
        if d.dtype.kind not in want_kinds:
            what = "integers (the step within the episode)" if key == "step_num" else "numbers"
            return f"{path}: {name}/{key}: dtype {d.dtype}, expected {what}"
        want_ndim = 2 if key in _WIDTH_FIELD else 1
        if d.ndim != want_ndim:
            return f"{path}: {name}/{key}: expected {want_ndim}-D, got shape {d.shape}"
        rows = d.shape[0]
        if key == "proprio_observation" and rows == length + 1:
            self.t_plus_1 = True
            self.warnings.append(
                f"{path}: {name}/proprio_observation: {rows} rows for {length} steps "
                "(original collector's T+1 layout); the extra last row is dropped"
            )
        elif rows != length:
            return f"{path}: {name}/{key}: {rows} rows, but the group name says {length} steps"
        if key in _WIDTH_FIELD:
            width, want = d.shape[1], self.meta_width[key]
            if want is not None and width != want:
                return f"{path}: {name}/{key}: width {width} disagrees with metadata {_WIDTH_FIELD[key]} = {want}"
            first = self.first_width.setdefault(key, (name, width))
            if width != first[1]:
                return f"{path}: {name}/{key}: width {width} differs from group {first[0]}'s {first[1]}"
            act = _action_width(d.parent)
            if key == DEMONSTRATOR_KEY and act not in (None, width):
                return f"{path}: {name}/{key}: width {width} differs from the group's action width {act}"
        return None

    def _values_problem(self, d, name, key, length, keep) -> str | None:
        """One chunked read of the values: NaN/inf, and for step_num the episode counter."""
        bad_rows, first_bad = 0, None
        for a in range(0, length, self.chunk):
            x = d[a:min(length, a + self.chunk)]
            if keep is not None:
                keep[key].append(x)
            if key == "step_num":
                n, first = self._counter_breaks(x.astype(np.int64, copy=False))
                bad_rows += n
                if first is not None and first_bad is None:
                    first_bad = (a + first[0], *first[1:])
            elif x.dtype.kind == "f" and not np.isfinite(x).all():
                return f"{self.path}: {name}/{key}: contains NaN or inf values"
        if bad_rows:
            row, value, prev = first_bad
            after = "the history's first row must be 0" if prev == -1 else f"after {prev}"
            return (f"{self.path}: {name}/step_num: {bad_rows} row(s) break the episode step counter (row {row}: "
                    f"{value}, {after}); each row must be 0 (episode start) or the previous row + 1")
        return None

    def _counter_breaks(self, s: np.ndarray):
        """(rows breaking the counter, (row, value, previous value) of the first one) of a step_num chunk."""
        if s.size == 0:
            return 0, None
        prev = np.empty_like(s)
        prev[1:] = s[:-1]
        prev[0] = self.prev_step if self.prev_step is not None else s[0] - 1
        bad = ((s != 0) & (s != prev + 1)) | (s < 0)
        self.prev_step = int(s[-1])
        n = int(bad.sum())
        if not n:
            return 0, None
        i = int(np.argmax(bad))
        return n, (i, int(s[i]), int(prev[i]))


def _action_width(grp) -> int | None:
    d = grp.get("action")
    return int(d.shape[1]) if isinstance(d, h5py.Dataset) and d.ndim == 2 else None


def has_demonstrator(f: h5py.File) -> bool:
    """Whether every 'start-end' group of an open history file has ``demonstrator_action``."""
    groups = [n for n in f.keys() if parse_group(n) is not None]
    return bool(groups) and all(DEMONSTRATOR_KEY in f[n] for n in groups)


def read_history(path_h5) -> dict:
    """Read one history file into concatenated arrays plus a ``warnings`` list.

    Keys: ``proprio_observation``, ``action``, ``reward``, ``step_num`` and, when the file has it,
    ``demonstrator_action``.

    Accepts any group size (the original's 50,000-step groups too) and the original
    collector's T+1 observation rows. Raises ValueError listing every problem (overlapping or
    missing ranges, unequal lengths, bad group names, NaN/inf, unreadable file).
    """
    problems, warnings, data = scan_history(path_h5, load=True)
    if problems:
        raise ValueError("invalid history file:\n" + "\n".join(problems))
    data["warnings"] = warnings
    return data


def group_table(f: h5py.File, path) -> list[tuple[str, int]]:
    """Sorted (group name, steps) of an open history file; leftover temporary groups are skipped.

    Only ``step_num`` lengths are checked (cheap); the T+1 observation rows of the original
    collector are not an error here, readers simply never read the extra row.
    """
    rows = []
    for name in f.keys():
        r = parse_group(name)
        if r is not None:
            rows.append((r[0], r[1], name))
    if not rows:
        raise ValueError(f"{path}: no 'start-end' groups")
    rows.sort()
    out = []
    for start, end, name in rows:
        n = end - start + 1
        t = f[name]["step_num"].shape[0]
        if t != n:
            raise ValueError(f"{path}: group {name}: step_num has {t} rows, the name says {n}")
        out.append((name, n))
    return out


def history_files(dataset_dir) -> list[Path]:
    """The .h5 history files of a dataset folder in index order; FileNotFoundError if there are none."""
    d = Path(dataset_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: dataset folder not found")
    files = history_paths(d)
    if not files:
        raise FileNotFoundError(f"{d}: no {HISTORY_H5_FILES} files")
    return files


def read_metadata(dataset_dir) -> dict[str, Any]:
    """The dataset metadata ``<name>/<name>.json``; {} when it is missing or not an object."""
    p = metadata_path(dataset_dir)
    if not p.exists():
        return {}
    with open(p) as fh:
        meta = json.load(fh)
    return meta if isinstance(meta, dict) else {}
