"""Names in a learning-history dataset folder: the one place where files and groups are spelled.

A dataset folder ``<name>/`` holds ``<name>.json`` (dataset metadata) and, per history,
``trajectories_env_XXXX.h5`` plus ``trajectories_env_XXXX.json`` (its metadata and statistics).
Each .h5 holds consecutive groups named ``"start-end"`` with an inclusive end ("0-9999" holds
10,000 steps), each with the datasets :data:`DATASET_KEYS` of equal length T:
``proprio_observation`` (T, obs_dim) float32, ``action`` (T, act_dim) float32, ``reward`` (T,)
float32 and ``step_num`` (T,) int32.  These names are the Vintix format's, read by the original
workflow's tools, so they never change.

Optional datasets (:data:`OPTIONAL_KEYS`), in every group of a history or in none:
``demonstrator_action`` (T, act_dim) float32, the teacher's clean action at that step (the key
dunnolab's Vintix II datasets use), beside ``action``, the noisy action actually executed; it makes
DPT-style training on demonstrator targets possible.  Format 1 datasets do not have it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "DATASET_FORMAT",
    "DATASET_KEYS",
    "DEMONSTRATOR_KEY",
    "OPTIONAL_KEYS",
    "TMP_PREFIX",
    "SEGMENTS_DIR",
    "HISTORY_H5_FILES",
    "HISTORY_JSON_FILES",
    "format_group",
    "parse_group",
    "history_h5",
    "history_json",
    "history_index",
    "history_paths",
    "history_layout",
    "metadata_path",
]

DATASET_FORMAT = "go2bench-learning-histories/2"  # the dataset JSON's "format" field; /1 had no demonstrator_action
DATASET_KEYS = ("proprio_observation", "action", "reward", "step_num")  # required in every group
DEMONSTRATOR_KEY = "demonstrator_action"
OPTIONAL_KEYS = (DEMONSTRATOR_KEY,)  # in every group of a history or in none
TMP_PREFIX = "_incomplete_"  # a group being written; see HistoryWriter
SEGMENTS_DIR = "_segments"  # in a dataset folder while segmented histories are collected (go2bench.collect.segments)

_HISTORY_PREFIX = "trajectories_env_"
HISTORY_H5_FILES = f"{_HISTORY_PREFIX}XXXX.h5"  # how messages name the history files
HISTORY_JSON_FILES = f"{_HISTORY_PREFIX}XXXX.json"
_HISTORY_RE = re.compile(rf"^{_HISTORY_PREFIX}(\d+)(\.h5|\.json)$")
_GROUP_RE = re.compile(r"^(\d+)-(\d+)$")


def format_group(start: int, end: int) -> str:
    """The name of the group holding steps ``start`` to ``end`` (inclusive)."""
    return f"{start}-{end}"


def parse_group(name: str) -> tuple[int, int] | None:
    """(start, end) of a ``"start-end"`` group name; None for any other name."""
    m = _GROUP_RE.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def history_h5(dataset_dir: str | Path, index: int) -> Path:
    return Path(dataset_dir) / f"{_HISTORY_PREFIX}{index:04d}.h5"


def history_json(dataset_dir: str | Path, index: int) -> Path:
    return Path(dataset_dir) / f"{_HISTORY_PREFIX}{index:04d}.json"


def history_layout(path_h5: str | Path) -> Path:
    """``.<history>.h5.layout``: where a history file being written keeps the byte layout of its complete
    groups (:mod:`go2bench.histories.salvage`); hidden, and removed once the history is complete."""
    p = Path(path_h5)
    return p.with_name(f".{p.name}.layout")


def history_index(path: str | Path) -> int | None:
    """The history index in a history file's name; None if it is not one."""
    m = _HISTORY_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def history_paths(dataset_dir: str | Path, suffix: str = ".h5") -> list[Path]:
    """The history files (``.h5`` or ``.json``) of a dataset folder in index order; [] if none or no folder."""
    d = Path(dataset_dir)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _HISTORY_RE.match(p.name)
        if m and m.group(2) == suffix:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def metadata_path(dataset_dir: str | Path) -> Path:
    """``<name>/<name>.json``: the dataset metadata."""
    d = Path(dataset_dir)
    return d / f"{d.name}.json"
