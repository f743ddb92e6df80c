"""Dataset configs in the seed's format: dataset name -> {type, path, group, reward_scale, episode_sparsity}.

The same YAML serves training (which datasets, relative to ``--data_dir``, form which task
group) and collection: an entry may carry a ``collect`` mapping (a
:class:`~go2bench.collect.collector.CollectConfig`) saying how its data is produced, so
``go2bench collect --config go2_dataset_config.yaml`` rebuilds exactly what training reads.
Configs shipped in ``go2bench/configs/`` are usable by bare name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from go2bench.collect.collector import CollectConfig
from go2bench.core.config import ConfigError, from_dict

__all__ = ["DatasetEntry", "load_dataset_config", "resolve_config_path", "shipped_configs"]

CONFIG_DIR = Path(str(resources.files("go2bench") / "configs"))


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of a (multitask) config."""

    path: str  # relative to --data_dir
    group: str  # the task group the model keys on; unique per config
    type: str = "default"
    reward_scale: float = 1.0
    episode_sparsity: int = 1
    collect: CollectConfig | None = None

    def __post_init__(self) -> None:
        if self.type != "default":
            raise ValueError(f"type {self.type!r} is not supported (only 'default')")
        if not self.group:
            raise ValueError("group must be a non-empty name")
        if self.episode_sparsity < 1:
            raise ValueError(f"episode_sparsity must be >= 1, got {self.episode_sparsity}")
        if not self.reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ValueError(f"path {self.path!r} must be relative to --data_dir, without '..'")


def shipped_configs() -> list[str]:
    return sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else a config shipped in go2bench/configs (with or without .yaml)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for cand in (CONFIG_DIR / p.name, CONFIG_DIR / f"{p.name}.yaml"):
        if cand.exists():
            return cand
    raise ConfigError(f"{name_or_path}: no such config file, and not a shipped config ({shipped_configs()})")


def load_dataset_config(*names_or_paths: str | Path) -> dict[str, DatasetEntry]:
    """Entries of one or more dataset configs, keyed by dataset name.

    Errors name the file and key: unknown keys, bad values, a dataset name defined differently
    twice (an identical repeat is kept once), or one group name used for two different dataset
    folders (tasks are keyed by group, never by the task_name stored in files).
    """
    entries: dict[str, DatasetEntry] = {}
    where: dict[str, str] = {}
    for item in names_or_paths:
        path = resolve_config_path(item)
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict) or not data:
            raise ConfigError(f"{path}: expected a mapping of dataset name -> entry (type, path, group, ...)")
        for name, value in data.items():
            entry = from_dict(DatasetEntry, value, f"{path}: {name}")
            if name in entries:
                if entries[name] == entry:
                    continue
                raise ConfigError(f"{path}: dataset {name!r} is already defined differently in {where[name]}")
            entries[name], where[name] = entry, str(path)
    groups: dict[str, str] = {}
    for name, e in entries.items():
        other = groups.get(e.group)
        if other is not None and entries[other].path != e.path:
            raise ConfigError(
                f"{where[name]}: {name}.group {e.group!r} is also the group of {other!r} ({where[other]}) with "
                "different data; group names must differ between tasks"
            )
        groups[e.group] = name
    return entries
