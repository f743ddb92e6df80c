"""The training set of a leave-one-robot-out fold: the training robots' histories as one task group.

Given a fold of a robot split (:mod:`go2bench.envs.robot_split`) and the dataset configs that list
the per-robot datasets (e.g. the ``dataset_config.yaml`` of a pipeline run over every robot),
:func:`fold_training_set` picks one dataset per training robot (a dataset's robot is its metadata's
``env_id``/``robot``, else its ``collect.env``) and leaves out every dataset of the held-out robot;
:func:`write_fold_config` pools them (:mod:`go2bench.histories.pooled`) into
``<data_dir>/<split>/<fold dataset>/`` and writes a Vintix dataset config with that one dataset in
the split's shared group, ready for ``go2bench train --dataset_config_paths``. Normalisation
statistics are then those of the pooled histories, so the held-out robot is normalised with
statistics of robots the model has seen (see the pooled module for the weighting).

``train_robots`` may name a subset of the fold's training robots (a smaller run, or the CPU tests);
the pooled metadata records which robots it holds, and the held-out robot is refused in any case.

Task-family histories (datasets collected with ``--family F``, e.g. the ``family/dataset_config_<F>.yaml`` of a
pipeline run) make the fold a family fold (:meth:`go2bench.envs.robot_split.Fold.for_family`): pooled as
``<split>_heldout_<robot>_<F>`` in group ``<split group>_<F>``. The pooled datasets must then be one kind and one
family: all family histories or all default-task ones, of one family and one suite version, and of its *train*
thetas only (a test-split dataset would put the thetas the fold is evaluated on into its training set). The
pooled metadata records ``family``, ``family_suite`` and ``family_split``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from go2bench.core.config import ConfigError
from go2bench.envs.registry import task_spec
from go2bench.envs.robot_split import Fold
from go2bench.histories.dataset_config import DatasetSpec, load_dataset_configs
from go2bench.histories.pooled import PoolSource, write_pooled_dataset
from go2bench.histories.reader import read_metadata

__all__ = ["FoldTrainingSet", "FamilyOfDataset", "dataset_robot", "dataset_family", "fold_training_set",
           "write_fold_config"]


@dataclass(frozen=True)
class FamilyOfDataset:
    """The task family of a dataset's histories (None: the default task), its suite version and theta split."""

    family: str | None
    suite: str | None = None
    split: str | None = None


@dataclass
class FoldTrainingSet:
    """What one fold trains on: a dataset per training robot, and what was left out."""

    fold: Fold
    data_dir: Path
    sources: list[tuple[str, DatasetSpec]]  # (robot, dataset), in the fold's training order
    excluded: list[tuple[str | None, DatasetSpec]] = field(default_factory=list)  # held-out or unused robots
    reward_scale: float = 1.0
    episode_sparsity: int = 1
    family: FamilyOfDataset = FamilyOfDataset(None)  # of the pooled histories (fold.family: its name)

    @property
    def robots(self) -> list[str]:
        return [r for r, _ in self.sources]

    @property
    def partial(self) -> bool:
        return self.robots != list(self.fold.train)

    @property
    def pooled_path(self) -> str:
        """The pooled folder, relative to the data dir."""
        return f"{self.fold.split}/{self.fold.dataset}"


def dataset_robot(spec: DatasetSpec) -> tuple[str | None, str | None]:
    """(robot, env_id) of a dataset: from its metadata, else from its ``collect.env``; Nones if unknown."""
    meta = read_metadata(spec.dir) if spec.dir.is_dir() else {}
    env_id = meta.get("env_id") or (spec.entry.collect or {}).get("env")
    robot = meta.get("robot")
    if env_id is not None:
        try:
            from_env = task_spec(env_id).robot
        except ValueError:
            raise ConfigError(f"dataset {spec.name!r} ({spec.source}): unknown env {env_id!r}") from None
        if robot is not None and robot != from_env:
            raise ConfigError(f"dataset {spec.name!r}: its metadata says robot {robot!r} but env {env_id!r}")
        robot = from_env
    return robot, env_id


def dataset_family(spec: DatasetSpec) -> FamilyOfDataset:
    """What the collector recorded (``family``, ``task_layout.suite``/``split``), else the entry's ``collect``."""
    meta = read_metadata(spec.dir) if spec.dir.is_dir() else {}
    collect = spec.entry.collect or {}
    layout = meta.get("task_layout") or {}
    family = meta.get("family") if meta else collect.get("family")
    if family is None:
        return FamilyOfDataset(None)
    split = layout.get("split") or (meta.get("collection") or {}).get("split") or collect.get("split")
    return FamilyOfDataset(str(family), layout.get("suite"), split)


def _one_family(fold: Fold, sources: list[tuple[str, DatasetSpec]]) -> tuple[Fold, FamilyOfDataset]:
    """The fold for the sources' family (the fold itself for default-task histories); one ConfigError line when
    they mix kinds, families or suites, hold test thetas, or are not of the family ``fold`` is already for."""
    kinds = {spec.name: dataset_family(spec) for _, spec in sources}
    fams = {n: k for n, k in kinds.items() if k.family is not None}
    if fams and len(fams) != len(kinds):
        raise ConfigError(f"the training datasets mix task-family histories ({', '.join(fams)}) and default-task ones "
                          f"({', '.join(n for n in kinds if n not in fams)}); a fold pools one kind: give a config "
                          "of one kind (e.g. a pipeline run's family/dataset_config_<family>.yaml)")
    if not fams:
        if fold.family is not None:
            raise ConfigError(f"the {fold.family} fold needs {fold.family} histories; the training datasets "
                              f"({', '.join(kinds)}) are default-task ones")
        return fold, FamilyOfDataset(None)
    seen = {(k.family, k.suite) for k in fams.values()}
    if len(seen) != 1:
        raise ConfigError("the training datasets are of different task families or suites ("
                          + ", ".join(f"{n}: {k.family}/{k.suite}" for n, k in fams.items())
                          + "); a fold pools one family of one suite version")
    test = {n: k.split for n, k in fams.items() if k.split != "train"}
    if test:
        raise ConfigError(f"dataset(s) {', '.join(f'{n} (split {s!r})' for n, s in test.items())} do not hold the train "
                          "thetas only: pooling them would train on thetas the fold is evaluated on; collect with "
                          "--split train (the pipeline's family datasets are)")
    first = next(iter(fams.values()))
    if fold.family not in (None, first.family):
        raise ConfigError(f"the {fold.family} fold needs {fold.family} histories; the training datasets are "
                          f"{first.family} ones")
    return fold.for_family(first.family), first


def fold_training_set(fold: Fold, configs: str | Path | Iterable[str | Path], data_dir: str | Path,
                      train_robots: Sequence[str] | None = None) -> FoldTrainingSet:
    """One dataset per training robot of ``fold`` from the datasets of ``configs`` (see the module docstring).

    ConfigError (one line) for a held-out robot among ``train_robots``, a robot that is not a
    training robot of the fold, a training robot without a dataset or with several, and source
    datasets whose ``reward_scale`` or ``episode_sparsity`` differ, and family datasets that are not one family
    of one suite, train thetas only (see the module docstring). Family histories make the set's ``fold``
    ``fold.for_family(F)``; a ``fold`` already for a family needs that family's histories.
    """
    wanted = list(fold.train) if train_robots is None else list(train_robots)
    if fold.held_out in wanted:
        raise ConfigError(f"{fold.held_out} is the held-out robot of this {fold.split} fold; it cannot be a "
                          "training robot")
    strangers = [r for r in wanted if r not in fold.train]
    if strangers or not wanted or len(set(wanted)) != len(wanted):
        raise ConfigError(f"training robots {wanted}: expected distinct robots among the fold's {list(fold.train)}")
    found: dict[str, list[DatasetSpec]] = {}
    excluded: list[tuple[str | None, DatasetSpec]] = []
    for spec in load_dataset_configs(configs, data_dir):
        robot, _ = dataset_robot(spec)
        if robot in wanted:
            found.setdefault(robot, []).append(spec)
        else:
            excluded.append((robot, spec))
    missing = [r for r in wanted if r not in found]
    if missing:
        raise ConfigError(f"no dataset of training robot(s) {missing} in the dataset config(s); collect them (one "
                          f"dataset per robot) or pass --train-robots to use fewer")
    several = {r: [s.name for s in specs] for r, specs in found.items() if len(specs) > 1}
    if several:
        raise ConfigError(f"several datasets of one training robot: {several}; list one dataset per robot")
    sources = [(r, found[r][0]) for r in wanted]
    scales = {s.entry.reward_scale for _, s in sources}
    sparsity = {s.entry.episode_sparsity for _, s in sources}
    if len(scales) != 1 or len(sparsity) != 1:
        raise ConfigError(f"the training datasets differ in reward_scale {sorted(scales)} or episode_sparsity "
                          f"{sorted(sparsity)}; one task group has one of each")
    fold, fam = _one_family(fold, sources)
    return FoldTrainingSet(fold, Path(data_dir), sources, excluded, scales.pop(), sparsity.pop(), fam)


def write_fold_config(ts: FoldTrainingSet, out: str | Path | None = None) -> Path:
    """Pool ``ts``'s datasets under the data dir and write its dataset config (default beside the pool); its path."""
    fold = ts.fold
    pooled = ts.data_dir / ts.pooled_path
    sources = [PoolSource(spec.name, spec.dir, robot, dataset_robot(spec)[1]) for robot, spec in ts.sources]
    extra = {"split": fold.split, "held_out": fold.held_out, "group": fold.group, "partial": ts.partial}
    if fold.family is not None:
        extra.update(family=fold.family, family_suite=ts.family.suite, family_split=ts.family.split)
    write_pooled_dataset(pooled, sources, extra)
    out = Path(out) if out is not None else ts.data_dir / fold.split / f"{fold.dataset}.yaml"
    entry = {"type": "default", "path": ts.pooled_path, "group": fold.group, "reward_scale": ts.reward_scale,
             "episode_sparsity": ts.episode_sparsity}
    what = f"{fold.family} ({ts.family.suite}, train thetas) histories" if fold.family else "histories"
    header = [f"# {fold.split} fold holding out {fold.held_out} ({fold.env_id}): Vintix training set, one group over "
              f"the {what} of {', '.join(ts.robots)}.",
              "# Written by `go2bench data robot-split`; paths are relative to --data_dir "
              f"({ts.data_dir}). Sources: " + ", ".join(f"{r}={s.name}" for r, s in ts.sources) + "."]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(header) + "\n" + yaml.safe_dump({fold.dataset: entry}, sort_keys=False))
    tmp.replace(out)
    return out
