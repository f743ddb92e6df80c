"""What a collected dataset's metadata records, how a resume checks it is the same dataset, how it is finished.

The dataset JSON (``<out>/<name>.json``) is written before anything is collected (``status`` "incomplete") and
rewritten when histories complete; a resume compares its identity fields (:data:`IDENTITY_FIELDS`) and the
teacher's sha256 with the requested collection, even when the folder was renamed since.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from go2bench.collect.config import IDENTITY_FIELDS, CollectConfig
from go2bench.core.provenance import read_json_object, remove_stale_temp_files, versions, write_json_atomic
from go2bench.envs.robots import RobotDescription
from go2bench.envs.spaces import observation_layout
from go2bench.histories.names import DATASET_FORMAT, DATASET_KEYS, DEMONSTRATOR_KEY, history_index, history_json, \
    metadata_path
from go2bench.histories.stats import pooled_stats

__all__ = ["observation_layout_record", "dataset_meta", "check_resume_identity", "read_meta", "check_same_dataset",
           "finish_dataset"]


def observation_layout_record(robot: RobotDescription, obs_mode: str, family: str | None = None
                              ) -> list[dict[str, Any]]:
    """The env's observation blocks with their offsets, recorded so that readers need not know the env."""
    out, i = [], 0
    for name, size in observation_layout(robot, obs_mode, family):
        out.append({"name": name, "start": i, "size": size})
        i += size
    return out


def dataset_meta(cfg: CollectConfig, robot: RobotDescription, teacher_info: dict, task_name: str,
                  group_name: str, reward_scale: float, obs_dim: int, bounds) -> dict[str, Any]:
    return {
        "format": DATASET_FORMAT,
        "task_name": task_name,
        "group_name": group_name,
        "env_id": cfg.env_id,
        "robot": robot.name,
        "observation_shape": {"proprio": [obs_dim]},
        "action_dim": robot.num_joints,
        "action_type": "continuous",
        "reward_scale": reward_scale,
        "obs_mode": cfg.obs_mode,
        "observation_layout": observation_layout_record(robot, cfg.obs_mode),
        "action_bounds": {"low": [float(x) for x in bounds[0]], "high": [float(x) for x in bounds[1]]},
        "dataset_keys": [*DATASET_KEYS, DEMONSTRATOR_KEY],
        "noise": {"p": cfg.p, "f": cfg.f, "max_perf": cfg.max_perf, "steps_per_history": cfg.steps_per_history},
        "num_histories": cfg.num_histories,
        "steps_per_history": cfg.steps_per_history,
        "group_size": cfg.group_size,
        "seed": cfg.seed,
        "teacher": teacher_info,
        "collection": {k: v for k, v in asdict(cfg).items() if k not in ("teacher", "writer_processes")},
        "go2bench_version": versions()["go2bench"],
        "versions": versions(),
        "status": "incomplete",
        "family": cfg.family,
    }


def check_resume_identity(out: Path, meta_path: Path, meta: dict, resuming: bool) -> dict | None:
    """A resumed dataset must be the one on disk, even if its folder was renamed since; returns its metadata."""
    remove_stale_temp_files(out)
    if meta_path.exists():
        old = read_meta(meta_path)
        check_same_dataset(meta_path, old, meta)
        return old
    others = [p for p in out.glob("*.json") if history_index(p) is None] if out.is_dir() else []
    if resuming and not others:
        raise ValueError(f"{out}: history files but no dataset metadata ({meta_path.name}); cannot check what they "
                         "hold. Restore it or run `go2bench data fix` first")
    for old_path in others:  # the folder was renamed: its metadata still carries the old name
        old = read_meta(old_path)
        check_same_dataset(old_path, old, meta)
        old_path.replace(meta_path)
        return old
    return None


def read_meta(path: Path) -> dict:
    return read_json_object(path, "dataset metadata (restore it or run `go2bench data fix`)")


def check_same_dataset(meta_path: Path, old: dict, new: dict) -> None:
    defaults = asdict(CollectConfig())
    for key in IDENTITY_FIELDS:
        a, b = old.get("collection", {}).get(key, defaults[key]), new["collection"][key]
        if a != b:
            raise ValueError(
                f"{meta_path}: cannot resume: collection.{key} is {a!r} on disk but {b!r} was requested; "
                "use the same settings or a new --out"
            )
    a, b = old.get("teacher", {}).get("sha256"), new["teacher"]["sha256"]
    if a != b:
        raise ValueError(f"{meta_path}: cannot resume: the teacher differs (sha256 {a} on disk, {b} requested)")


def finish_dataset(out: Path, meta: dict) -> dict[str, Any]:
    """Pool the per-history statistics into the dataset JSON; mark it complete when all are."""
    records = []
    for i in range(meta["num_histories"]):
        p = history_json(out, i)
        if p.exists():
            records.append(json.loads(p.read_text()))
    meta = dict(meta)
    if records:
        meta.update(pooled_stats(records))
        meta["histories"] = {
            str(r["history_index"]): {
                "total_transitions": r["total_transitions"], "num_episodes": r["num_episodes"],
                "first_return": r["episode_returns"][0], "last_return": r["episode_returns"][-1],
                **({"task_id": r.get("task_id")} if "task_id" in r else {}),
            }
            for r in records
        }
    meta["status"] = "complete" if len(records) == meta["num_histories"] else "incomplete"
    write_json_atomic(metadata_path(out), meta)
    return {"dataset": str(out), "status": meta["status"], "complete_histories": len(records),
            "num_histories": meta["num_histories"], "total_transitions": meta.get("total_transitions", 0)}
