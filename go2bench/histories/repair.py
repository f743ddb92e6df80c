"""`go2bench data fix`: repair the metadata of a dataset (ours or the original workflow's).

Repairs (:func:`fix_dataset`) touch JSON metadata only: the missing dataset JSON (built from the
per-history files), missing per-history JSON (statistics recomputed from the .h5), and
``task_name`` when asked (:func:`resolve_task_name`: the original
collector wrote ``go2_walking_ad`` for Mini Cheetah too).  Every change is returned as a line;
HDF5 data is never modified or deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

from go2bench.core.provenance import write_json_atomic
from go2bench.envs.registry import TASKS
from go2bench.histories.names import metadata_path
from go2bench.histories.reader import history_files, read_history
from go2bench.histories.stats import history_stats

__all__ = ["fix_dataset", "resolve_task_name"]


def resolve_task_name(value: str) -> str:
    """A robot name ('go2', 'mini_cheetah') or env id gives that robot's task name; else the value."""
    for spec in TASKS.values():
        if value in (spec.robot, spec.env_id):
            return spec.task_name
    return value


def fix_dataset(dataset_dir, task_name: str | None = None, dry_run: bool = False) -> list[str]:
    """Repair the metadata of one dataset folder; returns one line per change (made unless dry_run)."""
    d = Path(dataset_dir)
    h5s = history_files(d)  # FileNotFoundError naming the folder when there is nothing to repair
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
    meta_path = metadata_path(d)
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
