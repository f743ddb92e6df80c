"""Validating datasets: every problem of a folder or of a multitask config, one line each.

:func:`dataset_report` checks one dataset folder (ours or the original workflow's);
:func:`check_config` checks every dataset of (multitask) configs plus what only shows across
datasets: two datasets that carry the same ``task_name`` (the original collector wrote
``go2_walking_ad`` for Mini Cheetah too) and groups reused for different data.  Each line names
the file and the field, so a user can fix them all in one pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from go2bench.core.config import ConfigError
from go2bench.histories.dataset_config import load_dataset_config
import h5py

from go2bench.histories.names import DEMONSTRATOR_KEY, HISTORY_H5_FILES, SEGMENTS_DIR, history_paths, metadata_path
from go2bench.histories.reader import has_demonstrator, scan_history

__all__ = ["check_dataset", "dataset_report", "check_config", "DataProblems"]

# fields a per-history JSON repeats from the dataset JSON; they must agree where both have them
_SHARED_FIELDS = ("task_name", "group_name", "env_id", "robot", "action_type", "reward_scale")


class DataProblems(ValueError):
    """Datasets that must not be used: ``problems`` (and ``warnings``) hold one line each."""

    def __init__(self, problems, warnings=()):
        self.problems, self.warnings = list(problems), list(warnings)
        super().__init__(f"{len(self.problems)} problem(s) in the data:\n" + "\n".join(self.problems))


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
    at least one history .h5 file, each with its per-history JSON agreeing with the dataset
    JSON (dims, task_name, env_id, ...); group names of the form start-end; no overlapping or
    missing step ranges; equal dataset lengths; obs/action widths matching the metadata;
    numeric data without NaN/inf; an integer step_num counting each episode's steps from 0;
    readable, untruncated .h5 files; ``demonstrator_action`` (optional) like ``action``, in every
    group of a history or none, and in every history when the dataset JSON's ``dataset_keys`` lists it.  One pass over the data, a chunk at a time.  The original
    collector's T+1 observation rows are a warning: readers accept them (dropping the extra
    row of each group), but samples crossing its group boundaries were misaligned at collection.
    """
    d = Path(dataset_dir)
    if not d.is_dir():
        return [f"{d}: not a directory"], []
    problems: list[str] = []
    all_warnings: list[str] = []
    meta_path = metadata_path(d)
    meta = _load_json(meta_path, problems)
    obs_dim = act_dim = None
    if meta is None and not meta_path.exists():
        problems.append(f"{meta_path}: dataset metadata missing (compute_stats needs <name>/<name>.json)")
    elif meta is not None:
        obs_dim, act_dim = _meta_dims(meta_path, meta, problems)
    h5s = history_paths(d)
    with_demo: dict[Path, bool] = {}  # readable history -> has demonstrator_action
    if not h5s:
        problems.append(f"{d}: no {HISTORY_H5_FILES} files")
    expected = meta.get("num_histories") if meta is not None else None
    if h5s and isinstance(expected, int) and expected != len(h5s):
        all_warnings.append(f"{meta_path}: field num_histories = {expected}, but the folder has {len(h5s)} "
                            f"{HISTORY_H5_FILES} files (collection unfinished?)")
    segments = sorted((d / SEGMENTS_DIR).glob("*.h5")) if (d / SEGMENTS_DIR).is_dir() else []
    if segments:
        all_warnings.append(f"{d / SEGMENTS_DIR}: {len(segments)} segment files of histories not joined yet "
                            "(collection unfinished; resume it with `go2bench collect --resume`)")
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
            for field in _SHARED_FIELDS if meta is not None else ():
                if field in env_meta and field in meta and env_meta[field] != meta[field]:
                    problems.append(f"{env_json}: field {field} = {env_meta[field]!r} disagrees with "
                                    f"{meta_path.name} ({meta[field]!r})")
        file_problems, warnings, _ = scan_history(h5, load=False, obs_dim=dims[0], act_dim=dims[1])
        problems += file_problems
        all_warnings += warnings
        if not file_problems:
            with_demo[h5] = _has_demonstrator(h5)
    keys = meta.get("dataset_keys") if meta is not None else None
    declared = isinstance(keys, list) and DEMONSTRATOR_KEY in keys
    lacking = [p.name for p, has in with_demo.items() if not has]
    if declared and lacking:
        problems.append(f"{meta_path}: dataset_keys lists {DEMONSTRATOR_KEY}, but {len(lacking)} history file(s) "
                        f"lack it: {', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''}")
    elif lacking and len(lacking) < len(with_demo):
        all_warnings.append(f"{d}: {DEMONSTRATOR_KEY} in {len(with_demo) - len(lacking)} of {len(with_demo)} "
                            f"histories; training on demonstrator targets needs it in all")
    return problems, all_warnings


def _has_demonstrator(path) -> bool:
    with h5py.File(path, "r") as f:
        return has_demonstrator(f)


def _task_names(d: Path) -> set[str]:
    names = set()
    for p in [metadata_path(d), *history_paths(d, ".json")]:
        try:
            name = json.loads(p.read_text()).get("task_name")
        except (OSError, ValueError, AttributeError):
            continue
        if name:
            names.add(name)
    return names


def check_config(config_paths, data_dir) -> tuple[list[str], list[str]]:
    """Check every dataset of (multitask) configs under ``data_dir`` plus cross-dataset conflicts."""
    try:
        entries = load_dataset_config(*config_paths)
    except ConfigError as e:
        return [str(e)], []
    problems, warnings = [], []
    owners: dict[str, str] = {}
    for name, entry in entries.items():
        d = Path(data_dir) / entry.path
        p, w = dataset_report(d)
        problems += p
        warnings += w
        for task in _task_names(d) if d.is_dir() else ():
            if task in owners and owners[task] != name:
                problems.append(
                    f"{d}: task_name {task!r} is also the task_name of dataset {owners[task]!r}: datasets keyed by "
                    f"task name collide; fix with `go2bench data fix {d} --task-name <robot>`"
                )
            owners.setdefault(task, name)
    return problems, warnings

