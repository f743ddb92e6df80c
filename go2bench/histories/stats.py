"""Statistics of learning histories: one implementation of mean/std, streamed over HDF5.

Observations, actions and rewards are summarised as :class:`Moments` (count, mean and the sum of
squared deviations, in float64) and merged with Chan et al.'s pairwise update: chunks
of a group, groups of a history, histories of a dataset.  Mean/std never go through the sum of
squares, which loses the std of a dimension whose mean is large next to its spread.

Three on-disk records are made from them: the per-history JSON (:func:`history_stats`), the
pooled fields of the dataset JSON (:func:`pooled_stats`, from the per-history records alone)
and the normalisation statistics of training (:func:`compute_stats`), whose divisors come from
:func:`normaliser_std`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from go2bench.histories.reader import group_table, history_files

__all__ = ["Moments", "StepMoments", "read_moments", "history_stats", "stats_record", "pooled_stats",
           "compute_stats", "CONSTANT_STD", "STD_RULE", "normaliser_std"]

CHUNK = 65536  # rows read at a time
CONSTANT_STD = 1e-2  # a slot whose std is below this is constant for normalisation
STD_RULE = "std<0.01->1"  # names the rule in stats files and checkpoints


def normaliser_std(std) -> np.ndarray:
    """The divisor of each slot's normalisation: its std, or 1 where the std is below :data:`CONSTANT_STD`.

    Why not a floor: a slot that is (nearly) constant in the data, such as the command slots
    (fixed, or zero in the velocity family) or the z of projected gravity, carries no
    information, but with a floor of 0.01 any change of it at evaluation (a command of 0.8
    instead of 0.5 m/s is +0.6 after the env's x2 command scale) became a +-60 sigma input.
    With a divisor of 1 the slot is only centred: its deviation reaches the model in the
    observation's own units, which the env's ``obs_scales`` keep of order 1, so a shift of 0.5
    is an input of 0.5.  Slots that do vary (std >= 0.01, i.e. 1% of that unit) keep their std
    exactly as before, so informative inputs are not squashed the way a large floor would
    squash them.  The rule is idempotent (a divisor of 1 or >= 0.01 maps to itself), so stats
    already floored at 0.01 in old checkpoints are kept as they were trained.
    """
    s = np.asarray(std, dtype=np.float64)
    return np.where(np.isfinite(s) & (s >= CONSTANT_STD), s, 1.0)


class Moments:
    """Count, mean and sum of squared deviations of vectors of size ``dim`` (float64)."""

    def __init__(self, dim: int):
        self.n = 0
        self.mean = np.zeros(dim, np.float64)
        self.m2 = np.zeros(dim, np.float64)

    @classmethod
    def from_mean_std(cls, n: int, mean, std) -> "Moments":
        """The moments of ``n`` rows with this mean and (population) std, e.g. from a JSON record."""
        mean = np.atleast_1d(np.asarray(mean, np.float64))
        m = cls(mean.shape[0])
        m.n, m.mean = int(n), mean
        m.m2 = np.atleast_1d(np.asarray(std, np.float64)) ** 2 * int(n)
        return m

    def update(self, x: np.ndarray) -> None:
        """Add rows ``x`` of shape (rows, dim)."""
        x = np.asarray(x, np.float64)
        if x.shape[0] == 0:
            return
        batch = Moments(x.shape[1])
        batch.n = x.shape[0]
        batch.mean = x.mean(0)
        batch.m2 = ((x - batch.mean) ** 2).sum(0)
        self.merge(batch)

    def merge(self, other: "Moments") -> None:
        """Add the rows summarised by ``other`` (Chan et al.)."""
        nb = other.n
        if nb == 0:
            return
        n = self.n + nb
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.n * nb / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (numpy's default ``ddof=0``)."""
        return np.sqrt(self.m2 / max(self.n, 1))


class StepMoments:
    """Moments of the observations, actions and rewards of a set of steps."""

    def __init__(self, obs_dim: int, act_dim: int):
        self.obs, self.act, self.reward = Moments(obs_dim), Moments(act_dim), Moments(1)

    @property
    def steps(self) -> int:
        return self.obs.n

    def add_group(self, obs, act, reward, n: int, chunk: int = CHUNK) -> list[np.ndarray]:
        """Add the ``n`` rows of one group, ``chunk`` at a time (h5py datasets or arrays); returns the
        reward chunks.  One order of updates for a file read back and a writer's groups, so that both
        give the same bits."""
        rewards = []
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            r = reward[a:b]
            self.obs.update(obs[a:b])
            self.act.update(act[a:b])
            self.reward.update(r[:, None])
            rewards.append(r)
        return rewards


def read_moments(path_h5, into: StepMoments | None = None, chunk: int = CHUNK):
    """Stream one history file into ``into`` (a new :class:`StepMoments` if None).

    Returns ``(moments, reward, step_num)`` with the history's whole reward and step_num columns
    (4 bytes a step each), which the per-history record needs for its episodes.
    """
    rewards, step_nums = [], []
    with h5py.File(path_h5, "r") as f:
        for name, n in group_table(f, path_h5):
            g = f[name]
            if into is None:
                into = StepMoments(g["proprio_observation"].shape[1], g["action"].shape[1])
            rewards += into.add_group(g["proprio_observation"], g["action"], g["reward"], n, chunk)
            step_nums.append(g["step_num"][:n])
    return into, np.concatenate(rewards), np.concatenate(step_nums)


def history_stats(path_h5: Path) -> dict[str, Any]:
    """The statistics fields of a per-history JSON, read back from the history file."""
    return stats_record(*read_moments(path_h5), path_h5)


def stats_record(m: StepMoments, reward: np.ndarray, step_num: np.ndarray, where) -> dict[str, Any]:
    """:func:`history_stats` of a history's moments and its reward and step_num columns (``where``: for errors)."""
    r = reward.astype(np.float64)
    starts = np.flatnonzero(step_num == 0)
    if len(starts) == 0 or starts[0] != 0:
        raise ValueError(f"{where}: history does not start with an episode start (step_num 0)")
    returns = np.add.reduceat(r, starts)
    lengths = np.diff(np.append(starts, len(step_num)))
    return {
        "obs_mean": m.obs.mean.tolist(), "obs_std": m.obs.std.tolist(),
        "acs_mean": m.act.mean.tolist(), "acs_std": m.act.std.tolist(),
        "reward_mean": float(m.reward.mean[0]), "reward_std": float(m.reward.std[0]),
        "reward_min": float(r.min()), "reward_max": float(r.max()),
        "total_transitions": int(m.steps),
        "num_episodes": int(len(starts)),
        "episode_returns": [round(float(x), 6) for x in returns],
        "episode_lengths": [int(x) for x in lengths],
    }


def pooled_stats(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The dataset JSON's statistics fields, pooled from per-history records (:func:`history_stats`)."""
    records = list(records)
    out: dict[str, Any] = {}
    for mkey, skey in (("obs_mean", "obs_std"), ("acs_mean", "acs_std"), ("reward_mean", "reward_std")):
        pooled = Moments(np.atleast_1d(records[0][mkey]).shape[0])
        for r in records:
            pooled.merge(Moments.from_mean_std(r["total_transitions"], r[mkey], r[skey]))
        scalar = np.ndim(records[0][mkey]) == 0
        out[mkey] = float(pooled.mean[0]) if scalar else pooled.mean.tolist()
        out[skey] = float(pooled.std[0]) if scalar else pooled.std.tolist()
    out["reward_min"] = min(r["reward_min"] for r in records)
    out["reward_max"] = max(r["reward_max"] for r in records)
    out["total_transitions"] = int(sum(r["total_transitions"] for r in records))
    return out


def compute_stats(dataset_dir: Path, chunk: int = CHUNK) -> dict[str, Any]:
    """Normalisation statistics of training: mean/std over every step of every history.

    ``obs_std``/``act_std`` are the data's; ``obs_norm_std``/``act_norm_std`` the divisors that
    training uses (:func:`normaliser_std`, rule named by ``std_rule``).  The actions' are those of
    ``action``; ``demonstrator_action`` targets share them, so both live in one output space.
    """
    m = None
    for path in history_files(dataset_dir):
        m, _, _ = read_moments(path, m, chunk)
    return {
        "steps": int(m.steps),
        "obs_mean": m.obs.mean.tolist(),
        "obs_std": m.obs.std.tolist(),
        "act_mean": m.act.mean.tolist(),
        "act_std": m.act.std.tolist(),
        "reward_mean": float(m.reward.mean[0]),
        "reward_std": float(m.reward.std[0]),
        "std_rule": STD_RULE,
        "obs_norm_std": normaliser_std(m.obs.std).tolist(),
        "act_norm_std": normaliser_std(m.act.std).tolist(),
    }
