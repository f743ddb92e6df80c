"""`go2bench data check|fix`: validate datasets (ours or the original workflow's) and repair metadata.

Checks beyond one folder (:func:`check_config`): in a multitask config, two datasets that carry
the same ``task_name`` (the original collector wrote ``go2_walking_ad`` for Mini Cheetah too) and
groups reused for different data.  Repairs (:func:`fix_dataset`) touch JSON metadata only: the
missing dataset JSON (built from the per-history files, the guide's workaround done properly),
missing per-history JSON (statistics recomputed from the .h5), and ``task_name`` when asked.
Every change is returned as a line; HDF5 data is never modified or deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

from go2bench.core.provenance import write_json_atomic
from go2bench.histories.layout import _H5_RE, dataset_report, read_history

__all__ = ["check_config", "fix_dataset", "resolve_task_name"]


def resolve_task_name(value: str) -> str:
    """A robot name ('go2', 'mini_cheetah') or env id gives that robot's task name; else the value."""
    from go2bench.envs.registry import TASKS

    for spec in TASKS.values():
        if value in (spec.robot, spec.env_id):
            return spec.task_name
    return value


def _task_names(d: Path) -> set[str]:
    names = set()
    for p in [d / f"{d.name}.json", *sorted(d.glob("trajectories_env_*.json"))]:
        try:
            name = json.loads(p.read_text()).get("task_name")
        except (OSError, ValueError, AttributeError):
            continue
        if name:
            names.add(name)
    return names


def check_config(config_paths, data_dir) -> tuple[list[str], list[str]]:
    """Check every dataset of (multitask) configs under ``data_dir`` plus cross-dataset conflicts."""
    from go2bench.histories.dataset_config import load_dataset_config
    from go2bench.core.config import ConfigError

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


def fix_dataset(dataset_dir, task_name: str | None = None, dry_run: bool = False) -> list[str]:
    """Repair the metadata of one dataset folder; returns one line per change (made unless dry_run)."""
    from go2bench.collect.collector import history_stats

    d = Path(dataset_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a directory")
    h5s = sorted(p for p in d.iterdir() if _H5_RE.match(p.name))
    if not h5s:
        raise ValueError(f"{d}: no trajectories_env_XXXX.h5 files; nothing to repair")
    task = resolve_task_name(task_name) if task_name else None
    changes: list[str] = []

    def write(path: Path, obj: dict, what: str) -> None:
        changes.append(f"{path}: {what}")
        if not dry_run:
            write_json_atomic(path, obj)

    records = {}
    for h5 in h5s:
        env_json = h5.with_suffix(".json")
        if env_json.exists():
            records[h5] = json.loads(env_json.read_text())
            continue
        data = read_history(h5)  # raises with every problem if the file is not readable
        obs_dim, act_dim = data["proprio_observation"].shape[1], data["action"].shape[1]
        rec = {"task_name": task or "unknown", "observation_shape": {"proprio": [obs_dim]}, "action_dim": act_dim,
               "action_type": "continuous", "reward_scale": 1.0, **history_stats(h5)}
        records[h5] = rec
        write(env_json, rec, "wrote missing per-history metadata (statistics recomputed from the .h5)")
    if task:
        for h5, rec in records.items():
            if rec.get("task_name") != task:
                old = rec.get("task_name")
                rec = {**rec, "task_name": task}
                records[h5] = rec
                write(h5.with_suffix(".json"), rec, f"task_name {old!r} -> {task!r}")
    meta_path = d / f"{d.name}.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if task and meta.get("task_name") != task:
            old = meta.get("task_name")
            write(meta_path, {**meta, "task_name": task}, f"task_name {old!r} -> {task!r}")
    else:
        first = records[h5s[0]]
        keys = ("task_name", "group_name", "env_id", "robot", "observation_shape", "action_dim", "action_type",
                "reward_scale")
        meta = {k: first[k] for k in keys if k in first}
        meta["total_transitions"] = sum(int(r.get("total_transitions", 0)) for r in records.values())
        meta["num_histories"] = len(h5s)
        meta["repaired_by"] = "go2bench data fix: built from the per-history metadata"
        write(meta_path, meta, f"wrote missing dataset metadata (from {h5s[0].with_suffix('.json').name})")
    return changes
