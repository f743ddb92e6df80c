"""Dataset configs in the seed's format: dataset name -> {type, path, group, reward_scale, episode_sparsity}.

The same YAML serves training (which datasets, relative to ``--data_dir``, form which task
group) and collection: an entry may carry a ``collect`` mapping saying how its data is produced,
so ``go2bench collect --config go2_dataset_config.yaml`` rebuilds exactly what training reads.
This module is the one parser of these files; the ``collect`` mapping stays raw here and
becomes a ``CollectConfig`` in :mod:`go2bench.collect.config`, so reading a config for training
never loads the collector.  Configs shipped in ``go2bench/configs/`` are usable by bare name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable


from go2bench.core.config import ConfigError, from_dict, read_yaml

__all__ = ["DatasetEntry", "DatasetSpec", "load_dataset_configs", "load_dataset_config", "resolve_config_path",
           "shipped_configs"]

CONFIG_DIR = Path(str(resources.files("go2bench") / "configs"))


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of a (multitask) config."""

    path: str  # relative to --data_dir
    group: str  # the task group the model keys on; unique per config
    type: str = "default"
    reward_scale: float = 1.0
    episode_sparsity: int = 1
    collect: dict[str, Any] | None = None  # CollectConfig fields; checked by go2bench.collect.config

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


@dataclass(frozen=True)
class DatasetSpec:
    """A resolved dataset: its name, entry, absolute folder and the config file it came from."""

    name: str
    entry: DatasetEntry
    dir: Path
    source: Path


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


def _read_entries(path: Path) -> dict[str, DatasetEntry]:
    data = read_yaml(path)  # safe types only, aliases refused
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of dataset name -> entry (type, path, group, ...)")
    return {str(name): from_dict(DatasetEntry, value, f"{path}: {name}") for name, value in data.items()}


def load_dataset_configs(paths: str | Path | Iterable[str | Path], data_dir: str | Path = ".") -> list[DatasetSpec]:
    """The datasets of one or more configs (shipped names or paths), folders resolved under ``data_dir``.

    Errors name the file and key: unknown keys, bad values, a dataset name defined differently
    twice (an identical repeat is kept once), or one group name used for two different dataset
    folders (tasks are keyed by group, never by the task_name stored in files).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    merged: dict[str, DatasetSpec] = {}
    by_group: dict[str, DatasetSpec] = {}
    for item in paths:
        source = resolve_config_path(item)
        for name, entry in _read_entries(source).items():
            spec = DatasetSpec(name, entry, (Path(data_dir) / entry.path).resolve(), source)
            old = merged.get(name)
            if old is not None:
                if old.entry != entry or old.dir != spec.dir:
                    raise ConfigError(f"{source}: dataset {name!r} is already defined differently in {old.source}")
                continue
            other = by_group.get(entry.group)
            if other is not None and other.dir != spec.dir:
                raise ConfigError(
                    f"{source}: {name}.group {entry.group!r} is already used by dataset {other.name!r} ({other.dir}, "
                    f"from {other.source}); group names must differ between tasks"
                )
            merged[name] = spec
            by_group.setdefault(entry.group, spec)
    return list(merged.values())


def load_dataset_config(*names_or_paths: str | Path) -> dict[str, DatasetEntry]:
    """The entries of :func:`load_dataset_configs` by dataset name, for callers that place the folders."""
    return {spec.name: spec.entry for spec in load_dataset_configs(names_or_paths)}
