"""Segmented histories: one long learning history stepped by several envs at once, then joined in order.

Why: a history is N consecutive steps whose noise fades with the row, so stepped one step after the other
the seed's layout (10 histories x 1,000,000 steps) takes a million latency-bound batch steps: about an hour
on a GPU or on 2 CPU cores, whatever the batch (benchmarks/RESULTS.md).  But the default task's env is
deterministic and the noise is a pure function of (seed, history, row) (:mod:`go2bench.collect.noise`), so
what a history writes from a row on depends only on the state at that row.  With ``collect.segments`` S,
env j of history i starts a fresh episode at row j N/S and steps N/S rows with history i's noise and
schedule: it writes exactly what the sequential history writes from there whenever one of that history's
episodes starts at row j N/S.  The layout then takes N/S batch steps of (histories x S) envs.

What differs from stepping sequentially: at each of the S - 1 joins the episode in progress is cut (it
ends without a fall or the time limit and the next row starts a new episode from a reset), so a history
has up to S - 1 more, shorter episodes.  Where an episode of the sequential history ends exactly at every
join, the two are the same bit for bit (tests/test_collect_segments.py).

On disk while collecting: segment j of history i is an ordinary history file, index i S + j, in
``<out>/_segments/``; once a history's S segments are complete they are joined into
``<out>/trajectories_env_i`` (.h5, then .json: the history is complete) and removed.  An interrupted run
resumes each segment as the collector resumes a history, and a join cut short is redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from go2bench.collect.noise import history_seed
from go2bench.collect.shard import ShardSpec, history_record
from go2bench.core.provenance import write_json_atomic
from go2bench.histories.names import DATASET_KEYS, DEMONSTRATOR_KEY, SEGMENTS_DIR, history_h5, history_json
from go2bench.histories.reader import group_table
from go2bench.histories.writer import HistoryWriter

__all__ = ["SEGMENTS_DIR", "EnvPlan", "env_plan", "join_history"]


@dataclass(frozen=True)
class EnvPlan:
    """What each env of the collection's scene steps: env e writes file ``files[e]`` in ``write_dir``, rows of
    history ``parents[e]`` from row ``offsets[e]`` on, ``rows`` of them (a segment other than its history's last
    is cut there; the last, like an unsegmented history, ends the episode in progress)."""

    files: tuple[int, ...]
    parents: tuple[int, ...]
    offsets: tuple[int, ...]
    rows: int
    segments: int
    write_dir: Path

    def cut(self) -> list[bool]:
        """Per env: whether it stops at its last row instead of at the end of the episode in progress."""
        return [f % self.segments != self.segments - 1 for f in self.files]  # one segment: never (f % 1 == 0)

    def segment_files(self, i: int) -> list[int]:
        """The segment files of history ``i``, in order."""
        return segment_files(i, self.segments)


def env_plan(out: Path, ids: list[int], steps_per_history: int, segments: int) -> EnvPlan:
    """The scene's envs for histories ``ids``: one per history, or ``segments`` per history, history-major."""
    if segments == 1:
        return EnvPlan(tuple(ids), tuple(ids), (0,) * len(ids), steps_per_history, 1, Path(out))
    rows = steps_per_history // segments
    files = tuple(f for i in ids for f in segment_files(i, segments))
    return EnvPlan(files, tuple(f // segments for f in files), tuple(f % segments * rows for f in files), rows,
                   segments, Path(out) / SEGMENTS_DIR)


def segment_files(i: int, segments: int) -> list[int]:
    """The file indices of history ``i``'s segments, in order (segment j of history i is file i S + j)."""
    return [i * segments + j for j in range(segments)]


def join_history(spec: ShardSpec, plan: EnvPlan, i: int, task: dict[str, Any]) -> None:
    """Join history ``i``'s complete segment files into ``<spec.out>/trajectories_env_i`` and remove them.

    ``spec``: the dataset's writing spec (its folder, widths, group size, record fields); ``task``: the history's
    theta record in a family ({} otherwise).  The history's .json is written last, so a join cut short leaves the
    history incomplete and the next run redoes it.
    """
    out = Path(spec.out)
    target = history_h5(out, i)
    target.unlink(missing_ok=True)  # a join cut short: start it again
    keys = DATASET_KEYS + ((DEMONSTRATOR_KEY,) if spec.demonstrator else ())
    writer = HistoryWriter(target, spec.obs_dim, spec.act_dim, spec.group_size, compression=spec.compression,
                           demonstrator=spec.demonstrator, stats=True)
    try:
        for f in plan.segment_files(i):
            path = history_h5(plan.write_dir, f)
            with h5py.File(path, "r") as h5:
                for name, n in group_table(h5, path):
                    writer.append(*(h5[name][k][:n] for k in keys))
    except BaseException:
        writer.close(final=False)
        raise
    writer.close(final=True)
    key = int(history_seed(spec.seed, i))
    write_json_atomic(history_json(out, i), history_record(spec, i, key, task, writer.stats()))
    for f in plan.segment_files(i):
        history_h5(plan.write_dir, f).unlink()
        history_json(plan.write_dir, f).unlink()
    try:
        plan.write_dir.rmdir()  # the last history joined
    except OSError:
        pass
