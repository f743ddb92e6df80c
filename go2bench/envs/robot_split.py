"""Leave-one-robot-out splits: which robots a model learns from, and the robot it then meets cold.

A split (``go2bench/suites/<name>.yaml``, e.g. ``robots-v0.yaml``) has one *fold* per robot R: the
training robots (every other robot of the split), the name of the pooled training dataset, and the
evaluation protocol on R's default task (K consecutive episodes from an empty context, ``num_envs``
envs per seed, the seeds, the episode length of the reference returns). Like the task suites the
file is generated text: :func:`generate_robot_split` rebuilds it byte for byte (a test compares),
it is read as safe YAML with unknown keys refused, and a changed split is a new version (``-v1``).

Why not a ``robot`` task family (the note in :mod:`go2bench.envs.families`): a family's theta is a
hidden parameter of each env of one robot's scene, drawn per trial from train/test suites, and the
agent stays the same across thetas. Holding out a robot changes the *training data* and the scene
itself, and has N folds instead of a train/test split of thetas; forcing it into ``Family`` would
give every reader of theta layouts a field-less special case. So the split is this small data-only
module beside the suites, and families.py is left as it is.

The shared task group: every fold trains one Vintix task group (``group``, the same name in every
fold) on the pooled histories of its training robots, so one set of encoders and one set of
normalisation statistics serve all of them, and the held-out robot's observations, whose layout is
the same for every 12-joint robot (:mod:`go2bench.envs.spaces`), go through that same group at
evaluation. The statistics are those of the pooled training histories
(:mod:`go2bench.histories.pooled`); nothing of the held-out robot is used before it is met.

File format (YAML, no aliases)::

    split: robots-v0
    kind: leave-one-robot-out
    group: quadruped_walking          # the Vintix task group of every fold's pooled training set
    robots: [go2, mini_cheetah, a1, go1, anymal_c]
    folds:
      go2:                            # the held-out robot
        env: Go2Walk-v0               # its registered env (default task)
        train: [mini_cheetah, a1, go1, anymal_c]
        dataset: robots-v0_heldout_go2
        episodes: 10                  # K >= 10 consecutive episodes per env, one cold start
        num_envs: 10
        seeds: [0, 1, 2]
        max_episode_steps: 1000       # the episode length of the teachers' reference returns

Task families on a fold (:meth:`Fold.for_family`): the same leave-one-robot-out split, but the fold trains on
the training robots' histories of a task family F (one theta per history, train thetas only) and the held-out
robot is then evaluated with F's family protocol (its test thetas). Such a fold's pooled dataset and task group
carry the family's name, ``<split>_heldout_<robot>_<F>`` in group ``<split group>_<F>`` (e.g.
``robots-v0_heldout_go2_velocity`` in ``quadruped_walking_velocity``), so that a default-task fold's checkpoint
or training set is never taken for a family fold's, nor the other way round; :func:`fold_dataset_name` and
:func:`fold_group_name` are the one place these names are made.

Data only: no torch, no Genesis.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

from go2bench.core.config import ConfigError, from_dict, read_yaml, short_repr
from go2bench.envs.families import get_family
from go2bench.envs.registry import MAX_EPISODE_STEPS, TASKS
from go2bench.envs.robots import ROBOTS
from go2bench.envs.suites import SUITES_DIR

__all__ = ["MIN_EPISODES", "RobotSplitSpec", "ROBOT_SPLIT_SPECS", "CURRENT_ROBOT_SPLIT", "Fold", "RobotSplit",
           "env_for_robot", "fold_dataset_name", "fold_group_name", "load_robot_split", "generate_robot_split",
           "write_robot_split"]

MIN_EPISODES = 10  # K of the protocol: enough episodes for an in-context curve to rise


@dataclass(frozen=True)
class RobotSplitSpec:
    """Everything :func:`generate_robot_split` needs for one split."""

    name: str
    robots: tuple[str, ...]  # in file order; each robot is held out once
    group: str
    episodes: int
    num_envs: int
    seeds: tuple[int, ...]
    max_episode_steps: int


ROBOT_SPLIT_SPECS: dict[str, RobotSplitSpec] = {s.name: s for s in (
    RobotSplitSpec("robots-v0", ("go2", "mini_cheetah", "a1", "go1", "anymal_c"), "quadruped_walking",
                   episodes=10, num_envs=10, seeds=(0, 1, 2), max_episode_steps=MAX_EPISODE_STEPS),
)}
CURRENT_ROBOT_SPLIT = "robots-v0"


def env_for_robot(robot: str) -> str:
    """The registered env id of ``robot``'s default task; a clear error for a robot without one."""
    hits = [t.env_id for t in TASKS.values() if t.robot == robot]
    if len(hits) != 1:
        raise ConfigError(f"robot {robot!r} has {len(hits)} registered envs; a split needs exactly one")
    return hits[0]


def fold_dataset_name(split: str, held_out: str, family: str | None = None) -> str:
    """The pooled training dataset of a fold (a folder name and a dataset-config key); a family fold's ends in
    ``_<family>``."""
    return f"{split}_heldout_{held_out}" + (f"_{family}" if family else "")


def fold_group_name(group: str, family: str | None = None) -> str:
    """The Vintix task group of a fold of a split whose group is ``group``; a family fold's ends in ``_<family>``."""
    return group + (f"_{family}" if family else "")


@dataclass(frozen=True)
class Fold:
    """One fold of a split: train on ``train``, evaluate from a cold start on ``held_out``."""

    split: str
    group: str
    held_out: str
    env_id: str
    train: tuple[str, ...]
    dataset: str
    episodes: int
    num_envs: int
    seeds: tuple[int, ...]
    max_episode_steps: int
    family: str | None = None  # a task family's fold (for_family): trains on F's histories, evaluated on F's thetas

    @property
    def train_env_ids(self) -> tuple[str, ...]:
        return tuple(env_for_robot(r) for r in self.train)

    def for_family(self, family: str) -> Fold:
        """This fold for task family ``family``: its pooled dataset and group named after the family (module
        docstring). ``episodes``..``max_episode_steps`` stay the default task's: the family protocol has its own."""
        name = get_family(family).name
        if self.family not in (None, name):
            raise ConfigError(f"the fold holding out {self.held_out} is already the {self.family} family's")
        if self.family == name:
            return self
        return replace(self, family=name, dataset=fold_dataset_name(self.split, self.held_out, name),
                       group=fold_group_name(self.group, name))


@dataclass(frozen=True)
class RobotSplit:
    name: str
    group: str
    robots: tuple[str, ...]
    folds: dict[str, Fold]

    def fold(self, held_out: str) -> Fold:
        """The fold holding out ``held_out`` (a robot name or its env id); one clear line otherwise."""
        key = str(held_out)
        by_env = {f.env_id: f for f in self.folds.values()}
        if key in self.folds:
            return self.folds[key]
        if key.split(":", 1)[-1] in by_env:
            return by_env[key.split(":", 1)[-1]]
        raise ConfigError(f"unknown robot {short_repr(held_out)} to hold out; {self.name} holds out one of: "
                          f"{', '.join(self.robots)}")


# ------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class _FoldFile:
    env: str
    train: list[str]
    dataset: str
    episodes: int
    num_envs: int
    seeds: list[int]
    max_episode_steps: int


@dataclass(frozen=True)
class _SplitFile:
    split: str
    kind: str
    group: str
    robots: list[str]
    folds: dict[str, _FoldFile]


def load_robot_split(name: str | None = None, path: str | Path | None = None) -> RobotSplit:
    """The split ``name`` (default: :data:`CURRENT_ROBOT_SPLIT`) from its shipped file, or the file ``path``.

    Every problem (unknown keys, an unknown robot, a held-out robot among its own training robots,
    a training set that is not every other robot, K < 10, repeated seeds) is one ConfigError that
    names the file and the field.
    """
    if path is None:
        name = name or CURRENT_ROBOT_SPLIT
        path = SUITES_DIR / f"{name}.yaml"
        if name not in ROBOT_SPLIT_SPECS and not path.exists():
            raise ConfigError(f"unknown robot split {short_repr(name)}; known splits: {sorted(ROBOT_SPLIT_SPECS)}")
    return _load(str(path))


@functools.lru_cache(maxsize=8)
def _load(path: str) -> RobotSplit:
    data = from_dict(_SplitFile, read_yaml(path), path)
    if data.kind != "leave-one-robot-out":
        raise ConfigError(f"{path}: kind {data.kind!r}; this reader knows 'leave-one-robot-out'")
    if Path(path).stem != data.split:
        raise ConfigError(f"{path}: the file of split {data.split!r} must be named {data.split}.yaml")
    robots = list(data.robots)
    unknown = [r for r in robots if r not in ROBOTS]
    if unknown or len(set(robots)) != len(robots) or len(robots) < 2:
        raise ConfigError(f"{path}: robots must be at least two distinct robots of {sorted(ROBOTS)}; got {robots}")
    if list(data.folds) != robots:
        raise ConfigError(f"{path}: folds must hold out each robot once, in the order of robots {robots}; "
                          f"got {list(data.folds)}")
    folds = {}
    for robot, f in data.folds.items():
        where = f"{path}: folds.{robot}"
        if robot in f.train:
            raise ConfigError(f"{where}.train: the held-out robot {robot!r} is among its own training robots")
        others = [r for r in robots if r != robot]
        if list(f.train) != others:
            raise ConfigError(f"{where}.train: expected every other robot of the split, {others}; got {f.train}")
        if f.env != env_for_robot(robot):
            raise ConfigError(f"{where}.env: {f.env!r} is not {robot}'s registered env {env_for_robot(robot)!r}")
        if f.dataset != fold_dataset_name(data.split, robot):
            raise ConfigError(f"{where}.dataset: expected {fold_dataset_name(data.split, robot)!r}, got {f.dataset!r}")
        if f.episodes < MIN_EPISODES:
            raise ConfigError(f"{where}.episodes: the protocol needs K >= {MIN_EPISODES} episodes, got {f.episodes}")
        if f.num_envs < 1 or f.max_episode_steps < 1:
            raise ConfigError(f"{where}: num_envs and max_episode_steps must be >= 1")
        if not f.seeds or len(set(f.seeds)) != len(f.seeds) or min(f.seeds) < 0:
            raise ConfigError(f"{where}.seeds: expected distinct seeds >= 0, got {f.seeds}")
        folds[robot] = Fold(data.split, data.group, robot, f.env, tuple(f.train), f.dataset, f.episodes, f.num_envs,
                            tuple(f.seeds), f.max_episode_steps)
    return RobotSplit(data.split, data.group, tuple(robots), folds)


# ------------------------------------------------------------------------------ generation
def generate_robot_split(name: str) -> str:
    """The text of split file ``name``: equals the shipped ``go2bench/suites/<name>.yaml`` byte for byte."""
    if name not in ROBOT_SPLIT_SPECS:
        raise ConfigError(f"unknown robot split {short_repr(name)}; known splits: {sorted(ROBOT_SPLIT_SPECS)}")
    s = ROBOT_SPLIT_SPECS[name]
    lines = [f"# go2bench robot split {name}: leave one robot out, train on the others, evaluate it from a cold start.",
             f"# Generated by go2bench.envs.robot_split.generate_robot_split({name!r}); do not edit by hand",
             "# (the tests regenerate it and compare). A changed split is a new version.",
             f"split: {name}", "kind: leave-one-robot-out", f"group: {s.group}",
             f"robots: [{', '.join(s.robots)}]", "folds:"]
    for robot in s.robots:
        lines += [f"  {robot}:", f"    env: {env_for_robot(robot)}",
                  f"    train: [{', '.join(r for r in s.robots if r != robot)}]",
                  f"    dataset: {fold_dataset_name(name, robot)}", f"    episodes: {s.episodes}",
                  f"    num_envs: {s.num_envs}", f"    seeds: [{', '.join(map(str, s.seeds))}]",
                  f"    max_episode_steps: {s.max_episode_steps}"]
    return "\n".join(lines) + "\n"


def write_robot_split(name: str, path: str | Path | None = None) -> Path:
    """Write :func:`generate_robot_split` to ``path`` (default: the shipped file); returns the path."""
    path = Path(path) if path is not None else SUITES_DIR / f"{name}.yaml"
    path.write_text(generate_robot_split(name))
    _load.cache_clear()
    return path
