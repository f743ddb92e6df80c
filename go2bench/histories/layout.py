"""On-disk layout of learning-history datasets (Vintix HDF5/JSON), independent of Genesis.

A dataset folder ``<name>/`` holds ``<name>.json`` (dataset metadata) and, per history,
``trajectories_env_XXXX.h5`` plus ``trajectories_env_XXXX.json``.  Each .h5 holds consecutive
groups named ``"start-end"`` with an inclusive end ("0-9999" holds 10,000 steps), each with
datasets of equal length T: ``proprio_observation`` (T, obs_dim) float32, ``action``
(T, act_dim) float32, ``reward`` (T,) float32 and ``step_num`` (T,) int32.

Crash safety: :class:`HistoryWriter` writes each group under a temporary name, flushes, then
renames it and flushes again, so after a crash a group is either complete or absent; a
leftover temporary group is deleted when the file is reopened for resuming.  (HDF5 itself is
not journalled: a kill in the middle of a metadata update can still damage the file; the
flushes keep that window small and :func:`check_dataset` detects it.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np

from go2bench.core.provenance import OutputWriteError, write_error, write_json_atomic

__all__ = [
    "DATASET_KEYS",
    "HistoryWriteError",
    "HistoryWriter",
    "read_history",
    "write_json_atomic",
    "check_dataset",
    "dataset_report",
]

DATASET_KEYS = ("proprio_observation", "action", "reward", "step_num")
TMP_PREFIX = "_incomplete_"
_GROUP_RE = re.compile(r"^(\d+)-(\d+)$")
_H5_RE = re.compile(r"^trajectories_env_(\d+)\.h5$")


HistoryWriteError = OutputWriteError  # writing a history file failed; the message names the file
_write_error = write_error


def _parse_group(name: str):
    m = _GROUP_RE.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


# --------------------------------------------------------------------------------------- writer


class HistoryWriter:
    """Appends the steps of one history to ``path_h5`` in full groups of ``group_size`` rows.

    Opening an existing file resumes it: leftover temporary groups are deleted and
    :attr:`steps_written` tells how many complete steps are on disk; the caller continues
    from there.  ``close(final=True)`` (also on a clean ``with`` exit) writes the remaining
    rows as a final, shorter group; ``close(final=False)`` drops them.
    """

    def __init__(self, path_h5, obs_dim: int, act_dim: int, group_size: int = 10_000, compression=None):
        if int(group_size) < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size!r}")
        self.path = Path(path_h5)
        self.obs_dim, self.act_dim, self.group_size = int(obs_dim), int(act_dim), int(group_size)
        self.compression = compression
        self.removed_temporary: list[str] = []
        try:
            self._f = h5py.File(self.path, "a")
        except OSError as exc:
            raise _write_error(self.path, "open for writing (unreadable or truncated HDF5?)", exc) from exc
        try:
            self.steps_written = self._recover()
        except BaseException:
            self._f.close()
            raise
        g = self.group_size
        self._buf = {
            "proprio_observation": np.empty((g, self.obs_dim), np.float32),
            "action": np.empty((g, self.act_dim), np.float32),
            "reward": np.empty((g,), np.float32),
            "step_num": np.empty((g,), np.int32),
        }
        self._n = 0  # rows in the buffer

    def _recover(self) -> int:
        f = self._f
        for name in [k for k in f.keys() if k.startswith(TMP_PREFIX)]:
            del f[name]
            self.removed_temporary.append(name)
        if self.removed_temporary:
            f.flush()
        ranges = []
        for name in f.keys():
            r = _parse_group(name)
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
            for key, shape in shapes.items():
                if key not in grp or grp[key].shape != shape:
                    got = grp[key].shape if key in grp else "missing"
                    raise ValueError(f"{self.path}: cannot resume, {name}/{key} has shape {got}, expected {shape}")
            nxt = end + 1
        return nxt

    def last_episode_start(self) -> int:
        """Row where the last stored episode starts (0 without one): a resumed collection replays
        that episode from its start and writes from :attr:`steps_written` on."""
        for name in sorted(self._f.keys(), key=lambda k: -_parse_group(k)[0]):  # groups valid after _recover
            zeros = np.flatnonzero(self._f[name]["step_num"][()] == 0)
            if len(zeros):
                return _parse_group(name)[0] + int(zeros[-1])
        return 0

    @property
    def steps_appended(self) -> int:
        """Steps written to disk plus those buffered for the group in progress."""
        return self.steps_written + self._n

    def append(self, obs, action, reward, step_num) -> None:
        """Append T rows: obs (T, obs_dim), action (T, act_dim), reward (T,), step_num (T,)."""
        if self._f is None:
            raise ValueError(f"{self.path}: writer is closed")
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
        final, tmp = f"{start}-{end}", f"{TMP_PREFIX}{start}-{end}"
        try:
            if tmp in self._f:
                del self._f[tmp]
            grp = self._f.create_group(tmp)
            for key in DATASET_KEYS:
                grp.create_dataset(key, data=self._buf[key][:n], compression=self.compression)
            self._f.flush()
            self._f.move(tmp, final)
            self._f.flush()
        except OSError as exc:
            raise _write_error(self.path, f"write group {final!r}", exc) from exc
        self.steps_written = end + 1
        self._n = 0

    def close(self, final: bool = True) -> None:
        if self._f is None:
            return
        try:
            if final:
                self._flush_group()
        finally:
            f, self._f = self._f, None
            try:
                f.close()
            except OSError as exc:
                raise _write_error(self.path, "close", exc) from exc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(final=exc_type is None)
        return False


# --------------------------------------------------------------------------------------- reader


def _scan_h5(path, load: bool, obs_dim=None, act_dim=None):
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
            r = _parse_group(name)
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
    problems, warnings, data = _scan_h5(path_h5, load=True)
    if problems:
        raise ValueError("invalid history file:\n" + "\n".join(problems))
    data["warnings"] = warnings
    return data


# --------------------------------------------------------------------------------------- check


def _load_json(path, problems):
    if not path.exists():
        return None
    try:
        with open(path) as fh:
            obj = json.load(fh)
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: unreadable JSON ({exc})")
        return None
    if not isinstance(obj, dict):
        problems.append(f"{path}: expected a JSON object")
        return None
    return obj


def _meta_dims(path, meta, problems):
    """(obs_dim, act_dim) from metadata; problems for missing or malformed fields."""
    obs_dim = act_dim = None
    shape = meta.get("observation_shape")
    if shape is None:
        problems.append(f"{path}: field observation_shape missing")
    elif not (isinstance(shape, dict) and isinstance(shape.get("proprio"), list) and len(shape["proprio"]) == 1
              and isinstance(shape["proprio"][0], int)):
        problems.append(f"{path}: field observation_shape should be {{\"proprio\": [obs_dim]}}, got {shape!r}")
    else:
        obs_dim = shape["proprio"][0]
    a = meta.get("action_dim")
    if a is None:
        problems.append(f"{path}: field action_dim missing")
    elif not isinstance(a, int) or isinstance(a, bool):
        problems.append(f"{path}: field action_dim should be an integer, got {a!r}")
    else:
        act_dim = a
    return obs_dim, act_dim


def check_dataset(dataset_dir) -> list[str]:
    """Validate one dataset folder; returns one line per problem (empty list = valid).

    See :func:`dataset_report`, which also returns the warnings.
    """
    return dataset_report(dataset_dir)[0]


def dataset_report(dataset_dir) -> tuple[list[str], list[str]]:
    """Validate one dataset folder: (problems, warnings), one line each naming file and field.

    Checks: ``<name>/<name>.json`` present and readable with observation_shape/action_dim;
    at least one ``trajectories_env_XXXX.h5``, each with its per-env JSON; group names of the
    form start-end; no overlapping or missing step ranges; equal dataset lengths; obs/action
    widths matching the metadata; no NaN/inf; readable, untruncated .h5 files.  The original
    collector's T+1 observation rows are a warning: readers accept them (dropping the extra
    row of each group), but samples crossing its group boundaries were misaligned at collection.
    """
    d = Path(dataset_dir)
    if not d.is_dir():
        return [f"{d}: not a directory"], []
    problems: list[str] = []
    all_warnings: list[str] = []
    meta_path = d / f"{d.name}.json"
    meta = _load_json(meta_path, problems)
    obs_dim = act_dim = None
    if meta is None and not meta_path.exists():
        problems.append(f"{meta_path}: dataset metadata missing (compute_stats needs <name>/<name>.json)")
    elif meta is not None:
        obs_dim, act_dim = _meta_dims(meta_path, meta, problems)
    h5s = sorted(p for p in d.iterdir() if _H5_RE.match(p.name))
    if not h5s:
        problems.append(f"{d}: no trajectories_env_XXXX.h5 files")
    for h5 in h5s:
        env_json = h5.with_suffix(".json")
        env_meta = _load_json(env_json, problems)
        dims = (obs_dim, act_dim)
        if env_meta is None and not env_json.exists():
            problems.append(f"{env_json}: per-env metadata missing")
        elif env_meta is not None:
            env_dims = _meta_dims(env_json, env_meta, problems)
            for field, mine, theirs in zip(("observation_shape", "action_dim"), env_dims, dims):
                if mine is not None and theirs is not None and mine != theirs:
                    problems.append(f"{env_json}: field {field} = {mine} disagrees with {meta_path.name} ({theirs})")
            dims = tuple(t if t is not None else m for m, t in zip(env_dims, dims))
        file_problems, warnings, _ = _scan_h5(h5, load=False, obs_dim=dims[0], act_dim=dims[1])
        problems += file_problems
        all_warnings += warnings
    return problems, all_warnings
