"""Reading learning histories: validated whole-file reads and the group table for lazy readers.

Readers accept any group size (the original workflow's 50,000-step groups too) and the original
collector's T+1 observation rows (one extra observation at the end of each group, never read).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from go2bench.histories.names import (
    DATASET_KEYS,
    HISTORY_H5_FILES,
    TMP_PREFIX,
    history_paths,
    metadata_path,
    parse_group,
)

__all__ = ["read_history", "scan_history", "group_table", "history_files", "read_metadata"]


def scan_history(path, load: bool, obs_dim=None, act_dim=None):
    """Validate one history file; returns (problems, warnings, data or None).

    Problems and warnings are lines naming the file (and group/field). With ``load`` the
    concatenated arrays are returned (the original collector's T+1 observation rows are
    trimmed, with a warning). Every dataset is read, so NaN/inf and truncation are detected.
    """
    path = Path(path)
    problems: list[str] = []
    warnings: list[str] = []
    parts = {k: [] for k in DATASET_KEYS}
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
        nxt = 0
        for start, end, name in ranges:
            if start < nxt:
                problems.append(f"{path}: group {name}: step range overlaps the previous group (ends at {nxt - 1})")
            elif start > nxt:
                problems.append(f"{path}: group {name}: missing steps {nxt}-{start - 1} before it")
            nxt = max(nxt, end + 1)
            problems += _check_group(path, f[name], name, end - start + 1, obs_dim, act_dim, warnings, parts)
    except OSError as exc:
        problems.append(f"{path}: unreadable or truncated HDF5 file ({exc})")
    finally:
        f.close()
    if not load or problems:
        return problems, warnings, None
    data = {k: np.concatenate(v) for k, v in parts.items()}
    return problems, warnings, data


def _check_group(path, grp, name, length, obs_dim, act_dim, warnings, parts):
    problems = []
    if not isinstance(grp, h5py.Group):
        return [f"{path}: {name}: is not a group"]
    arrays = {}
    for key in DATASET_KEYS:
        if key not in grp:
            problems.append(f"{path}: {name}/{key}: dataset missing")
            continue
        try:
            arrays[key] = grp[key][()]
        except (OSError, RuntimeError) as exc:
            problems.append(f"{path}: {name}/{key}: unreadable ({exc})")
    for key, arr in arrays.items():
        want_ndim = 2 if key in ("proprio_observation", "action") else 1
        if arr.ndim != want_ndim:
            problems.append(f"{path}: {name}/{key}: expected {want_ndim}-D, got shape {arr.shape}")
            continue
        rows = arr.shape[0]
        if key == "proprio_observation" and rows == length + 1:
            warnings.append(
                f"{path}: {name}/proprio_observation: {rows} rows for {length} steps "
                "(original collector's T+1 layout); the extra last row is dropped"
            )
            arrays[key] = arr = arr[:length]
        elif rows != length:
            problems.append(f"{path}: {name}/{key}: {rows} rows, but the group name says {length} steps")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            problems.append(f"{path}: {name}/{key}: contains NaN or inf values")
    dims = {"proprio_observation": obs_dim, "action": act_dim}
    for key, want in dims.items():
        arr = arrays.get(key)
        if want is not None and arr is not None and arr.ndim == 2 and arr.shape[1] != want:
            field = "observation_shape" if key == "proprio_observation" else "action_dim"
            problems.append(f"{path}: {name}/{key}: width {arr.shape[1]} disagrees with metadata {field} = {want}")
    if not problems:
        for key in DATASET_KEYS:
            parts[key].append(arrays[key])
    return problems


def read_history(path_h5) -> dict:
    """Read one history file into concatenated arrays plus a ``warnings`` list.

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
