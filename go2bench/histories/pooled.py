"""Pooled dataset folders: the histories of several datasets as one dataset (one Vintix task group).

Vintix keys its encoders and normalisation statistics on a task group, and a dataset config maps
one folder to one group. To train several robots as *one* group (the leave-one-robot-out split,
:mod:`go2bench.envs.robot_split`), their histories must form one folder: :func:`write_pooled_dataset`
makes that folder from relative symbolic links to the sources' history files (renumbered
``trajectories_env_XXXX`` in source order), so nothing is copied and the usual readers, checks and
the stats cache work on it unchanged. Its statistics (:func:`go2bench.histories.stats.compute_stats`
over the folder) are pooled over every step of every source: equal weight per step, so equal weight
per robot when the sources are equally large.

Its metadata ``<name>/<name>.json`` has ``kind: "pooled"`` and the ``sources`` (dataset, robot,
env_id, path relative to the pooled folder, first history index, histories), but no single
``env_id``/``robot``/``task_name``/``group_name``: those differ between the pooled histories, whose
own per-history JSONs keep them. A pooled folder is only ever replaced by another pooled folder
(built beside it, then swapped in); rewriting it with the same sources keeps it, and its stats cache.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from go2bench.core.config import ConfigError
from go2bench.core.provenance import write_json_atomic
from go2bench.histories.names import DATASET_FORMAT, history_h5, history_json
from go2bench.histories.reader import history_files, read_metadata

__all__ = ["PoolSource", "POOLED_KIND", "write_pooled_dataset", "is_pooled"]

POOLED_KIND = "pooled"
_SAME_IN_ALL = ("obs_mode", "action_type", "reward_scale", "observation_layout")  # copied when every source agrees


@dataclass(frozen=True)
class PoolSource:
    """One dataset folder to pool, and what it is (for the pooled metadata)."""

    name: str  # its dataset name in the source config
    dir: Path
    robot: str | None
    env_id: str | None


def is_pooled(dataset_dir: str | Path) -> bool:
    return read_metadata(dataset_dir).get("kind") == POOLED_KIND


def write_pooled_dataset(dest: str | Path, sources: Sequence[PoolSource], extra: dict[str, Any] | None = None) -> Path:
    """Make ``dest`` a pooled dataset of ``sources`` (see the module docstring); returns ``dest``.

    Refuses (ConfigError) sources without histories, sources whose observation or action sizes
    differ, and a ``dest`` that exists but is not a pooled folder (real data is never deleted).
    """
    dest = Path(dest)
    if not sources:
        raise ConfigError(f"{dest}: nothing to pool (no source datasets)")
    metas = [read_metadata(s.dir) for s in sources]
    dims = {}
    for s, m in zip(sources, metas):
        try:
            history_files(s.dir)
        except FileNotFoundError as e:
            raise ConfigError(f"dataset {s.name!r}: {e}; collect it first") from None
        if m.get("status") not in (None, "complete"):
            raise ConfigError(f"dataset {s.name!r} ({s.dir}): status {m.get('status')!r}; finish collecting it "
                              "(go2bench collect --resume) before pooling")
        dims[s.name] = (json.dumps(m.get("observation_shape")), m.get("action_dim"))
    if len(set(dims.values())) != 1:
        raise ConfigError(f"{dest}: the datasets to pool differ in observation_shape/action_dim: {dims}")
    meta, links = _plan(dest, sources, metas, extra or {})
    if dest.exists():
        if not is_pooled(dest):
            raise ConfigError(f"{dest}: exists and is not a pooled dataset folder; move it away or choose another "
                              "--data-dir")
        if read_metadata(dest).get("sources") == meta["sources"] and _links_match(dest, links):
            return dest  # the same pool: keep it (and its stats cache)
    tmp = dest.parent / f".{dest.name}.tmp"
    old = dest.parent / f".{dest.name}.old"
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir(parents=True)
    for name, target in links.items():
        os.symlink(target, tmp / name)
    write_json_atomic(tmp / f"{dest.name}.json", meta)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    if old.exists():
        shutil.rmtree(old)
    return dest


def _plan(dest: Path, sources: Sequence[PoolSource], metas: list[dict], extra: dict[str, Any]):
    """The pooled metadata and the links {file name in dest: target relative to dest}."""
    links: dict[str, str] = {}
    records, index = [], 0
    for s, m in zip(sources, metas):
        files = history_files(s.dir)
        first = index
        for path in files:
            for src, name in ((path, history_h5(dest, index).name), (path.with_suffix(".json"),
                                                                     history_json(dest, index).name)):
                if src.exists():
                    links[name] = os.path.relpath(src.resolve(), dest.resolve())
            index += 1
        records.append({"dataset": s.name, "robot": s.robot, "env_id": s.env_id,
                        "path": os.path.relpath(Path(s.dir).resolve(), dest.resolve()), "first_history": first,
                        "num_histories": len(files)})
    keys = [m.get("dataset_keys") for m in metas]
    meta: dict[str, Any] = {
        "format": DATASET_FORMAT, "kind": POOLED_KIND, **extra,
        "robots": [s.robot for s in sources], "env_ids": [s.env_id for s in sources], "sources": records,
        "observation_shape": metas[0].get("observation_shape"), "action_dim": metas[0].get("action_dim"),
        "num_histories": index, "status": "complete",
    }
    for field in _SAME_IN_ALL:
        values = [json.dumps(m.get(field), sort_keys=True) for m in metas]
        if field in metas[0] and len(set(values)) == 1:
            meta[field] = metas[0][field]
    if all(isinstance(k, list) for k in keys) and len({tuple(k) for k in keys}) == 1:
        meta["dataset_keys"] = keys[0]
    return meta, links


def _links_match(dest: Path, links: dict[str, str]) -> bool:
    present = {p.name for p in dest.iterdir() if p.is_symlink()}
    return present == set(links) and all(os.readlink(dest / n) == t for n, t in links.items())
