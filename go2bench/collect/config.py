"""What a dataset is: :class:`CollectConfig`, and the ``collect`` sections of dataset configs.

A dataset config (:mod:`go2bench.histories.dataset_config`) keeps each entry's ``collect``
section as a plain mapping; :func:`dataset_collect_configs` turns the sections into
:class:`CollectConfig` objects, with errors that name the file, the dataset and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from go2bench.collect.schedule import NoiseSchedule
from go2bench.core.config import ConfigError, from_dict
from go2bench.envs.families import FAMILIES
from go2bench.envs.registry import TASKS
from go2bench.histories.dataset_config import DatasetSpec, load_dataset_configs

__all__ = ["CollectConfig", "IDENTITY_FIELDS", "SPLITS", "parse_env_ids", "dataset_collect_configs"]

# Fields that define a dataset: a resumed run must match them exactly (a field missing from an
# older dataset's metadata counts as its default).  How a dataset is written (chunk_steps, writer_processes,
# compression) is not part of it: a resume may change it.
IDENTITY_FIELDS = ("env", "num_histories", "steps_per_history", "p", "f", "max_perf", "seed", "group_size",
                   "max_episode_steps", "obs_mode", "family", "split", "segments")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class CollectConfig:
    """What a dataset is: env, number and length of histories, noise schedule, teacher, seed.

    ``family`` (None: the env's default task): every history gets one theta of the family's
    ``split`` in its suite, history i the theta of index i mod (tasks in the split), held for the
    whole history; the teacher is then the family's privileged teacher (it observes theta) while
    the rows hold the agent's observation.
    """

    env: str = "Go2Walk-v0"
    num_histories: int = 10
    steps_per_history: int = 1_000_000
    p: float = 0.6
    f: float = 0.05
    max_perf: float = 1.0
    teacher: str | None = None  # checkpoint path; None: the shipped teacher of ``env``
    seed: int = 0
    group_size: int = 10_000
    max_episode_steps: int = 1000
    obs_mode: str = "noleak"
    compression: str | None = None  # None, "gzip" or "lzf"
    chunk_steps: int = 1000
    family: str | None = None  # a task family (velocity, dynamics); None: the default task
    split: str = "train"  # the suite split whose thetas the histories take (with a family)
    # processes writing the HDF5 files, off the stepping process's GIL (go2bench.collect.writer_procs):
    # 0 = a writer thread; "auto" = 0 on the CPU backend, one per 512 histories (at most CPUs - 2) on CUDA.
    # Not recorded in the dataset: the bytes written are the same whatever it is.
    writer_processes: int | str = "auto"
    # envs stepping each history at once (go2bench.collect.segments): env j of a history collects rows
    # [j N/S, (j+1) N/S) of its noise schedule from a fresh reset, and the rows are joined in order
    segments: int = 1

    def __post_init__(self) -> None:
        if self.env.split(":", 1)[-1] not in TASKS:
            raise ValueError(f"collect.env: unknown env {self.env!r}; known: {sorted(TASKS)}")
        for name in ("num_histories", "steps_per_history", "group_size", "max_episode_steps", "chunk_steps",
                     "segments"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"collect.{name} must be an integer >= 1, got {v!r}")
        if self.compression not in (None, "gzip", "lzf"):
            raise ValueError(f"collect.compression must be null, 'gzip' or 'lzf', got {self.compression!r}")
        if self.obs_mode not in ("noleak", "full"):
            raise ValueError(f"collect.obs_mode must be 'noleak' or 'full', got {self.obs_mode!r}")
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(f"collect.family: unknown task family {self.family!r}; known: {sorted(FAMILIES)}")
        if self.split not in SPLITS:
            raise ValueError(f"collect.split must be one of {list(SPLITS)}, got {self.split!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise ValueError(f"collect.seed must be an integer in [0, 2**31), got {self.seed!r}")
        w = self.writer_processes
        if w != "auto" and (not isinstance(w, int) or isinstance(w, bool) or w < 0):
            raise ConfigError(f"collect.writer_processes must be 'auto' or an integer >= 0 (0: a writer thread), "
                              f"got {w!r}")
        self.schedule  # validates p, f, max_perf
        if self.segments > 1:
            rows, rest = divmod(self.steps_per_history, self.segments)
            if rest or rows < self.max_episode_steps:
                most = self.steps_per_history // self.max_episode_steps
                raise ConfigError(f"collect.segments {self.segments}: steps_per_history ({self.steps_per_history:,}) "
                                  f"must split into that many equal segments of at least max_episode_steps "
                                  f"({self.max_episode_steps}) rows each; " + (
                                      f"use a divisor of steps_per_history up to {most}" if most > 1 else
                                      "these histories are too short to segment: use segments 1"))

    @property
    def env_id(self) -> str:
        """The registry's env id (``env`` without a "go2bench:" prefix)."""
        return self.env.split(":", 1)[-1]

    @property
    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.p, self.f, self.max_perf, self.steps_per_history)


def parse_env_ids(spec: str | None, num_histories: int) -> list[int]:
    """'0-4,7' -> [0, 1, 2, 3, 4, 7]; None -> all histories. Errors name the bad part."""
    if spec is None or spec == "":
        return list(range(num_histories))
    ids: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                ids.update(range(a, b + 1))
            else:
                ids.add(int(part))
        except ValueError:
            raise ValueError(f"--env-ids: cannot parse {part!r}; use e.g. '0-4' or '0,2,5'") from None
    bad = sorted(i for i in ids if not 0 <= i < num_histories)
    if bad:
        raise ValueError(f"--env-ids: histories {bad} outside 0-{num_histories - 1} (--num-histories {num_histories})")
    return sorted(ids)


def dataset_collect_configs(config_paths, data_dir: str | Path = ".") -> list[tuple[DatasetSpec, CollectConfig]]:
    """The datasets of dataset configs that have a ``collect`` section, with that section parsed.

    Errors name the file, the dataset and the key (``<file>: <dataset>.collect: unknown key(s) ...``).
    """
    out = []
    for spec in load_dataset_configs(config_paths, data_dir):
        if spec.entry.collect is not None:
            cfg = from_dict(CollectConfig, spec.entry.collect, f"{spec.source}: {spec.name}.collect")
            out.append((spec, cfg))
    return out
