"""``go2bench pipeline``: teachers -> noisy learning histories -> Vintix -> in-context evaluation -> leaderboard.

One command runs the whole benchmark from one :class:`PipelineConfig` (sections ``collect``,
``train`` and ``eval``, the stages' own config dataclasses; ``family``, ``family_collect`` and
``family_train`` for the task families), each stage resumable: collection resumes its datasets,
training resumes its run folder, an evaluation whose results file exists is not run again, and the
leaderboard is rebuilt from whatever results exist. The run folder's ``pipeline.json`` records the
config, versions, hardware and each stage's seconds; a folder that holds a run with other settings
is refused.

The ``family`` stage (:mod:`go2bench.pipeline.family`) does the same for hidden-parameter task
families, in ``<run>/family/``: histories on the train thetas, a Vintix and its episode-context twin
(the no-context baseline ``vintix-episodic``), the family protocol on held-out thetas, and the family
leaderboard (random, blind and privileged teachers, vintix, vintix-episodic; IQM with bootstrap CIs).

Presets (:data:`PRESETS`; any field can be changed with ``--set section.field=value``):

* ``cpu``: a small demonstration on a 2-core machine, under 15 minutes with shipped teachers:
  16 histories x 4,000 steps per robot with 200-step episodes, a ``tiny`` Vintix, 10 envs x 10
  episodes of 200 steps per agent.  Normalised scores use the random and teacher returns measured
  in the same run (the shipped reference scores are for 1,000-step episodes).  Its family part is
  one family at micro scale: Go2, velocity, 8 histories x 1,500 steps (100-step episodes), two
  ``tiny`` models of 150 steps, 8 test thetas x 2 seeds x 5 episodes per agent.
* ``gpu``: the seed's budget on a GPU machine (on 2 GPUs the family part runs beside the rest: meant to fit
  one 10-minute device call, not yet shown): 10M steps per robot as 1,024
  parallel histories of 10,000 steps (1,000-step episodes), the ``seed`` model with context
  2,048, batch 8, trajectory sparsity 128 for a time budget, and 10 envs x 10 episodes of 1,000
  steps per agent, normalised with the shipped teachers' reference scores.  Its family part covers
  both families on Go2 and Mini Cheetah: 512 histories x 10,000 steps per (robot, family), two
  ``seed`` models per family (3,000 steps), every test theta x 2 seeds x 10 episodes of 500 steps per
  agent (the settings of the README's GPU family rows).
* ``seed``: the original's exact layout (10 histories x 1M steps per robot, sequential: about an
  hour of collection on a GPU), otherwise as ``gpu``.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from go2bench.core.config import to_dict
from go2bench.pipeline.config import (
    PRESETS,
    check_fits,
    EvalConfig,
    PipelineConfig,
    apply_overrides,
    check_zoo,
    flatten,
    override_keys,
    pipeline_config,
)
from go2bench.pipeline.stages import (
    collect_stage,
    eval_stage,
    leaderboard_stage,
    log,
    train_stage,
    write_dataset_config,
)
from go2bench.pipeline.family import family_stage
from go2bench.pipeline.tracks import FamilyTrack, beside_split

__all__ = ["PipelineConfig", "EvalConfig", "PRESETS", "STAGES", "pipeline_config", "apply_overrides",
           "override_keys", "run_pipeline"]

STAGES = ("collect", "train", "eval", "leaderboard", "family")
# Settings that change how a run is executed, not what it computes: a resumed run may differ in them.
EXECUTION_ONLY = ("gpus", "family_beside", "family_train_at_once", "eval.jobs", "train.progress_bar",
                  "family_train.progress_bar")


def _check_same_run(record_path: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    if not old:
        return
    a, b = flatten(old), flatten(new)
    # a key missing from the record was added to the config later: not a change
    diff = sorted(k for k in b if k in a and a[k] != b[k] and k not in EXECUTION_ONLY)
    if diff:
        shown = ", ".join(f"{k}: {a[k]!r} there, {b[k]!r} now" for k in diff)
        raise ValueError(f"{record_path}: this folder holds a run with other settings ({shown}); use another --out")


def run_pipeline(config: PipelineConfig, out: str | Path, stages: Sequence[str] = STAGES) -> dict[str, Any]:
    """Run (or resume) ``stages`` of ``config`` in the folder ``out``; returns the pipeline.json record."""
    from go2bench.core.provenance import hardware, versions, write_json_atomic

    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages: {', '.join(STAGES)}")
    check_zoo(config)
    check_fits(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "pipeline.json"
    old = json.loads(record_path.read_text()) if record_path.exists() else {}
    _check_same_run(record_path, old.get("config"), to_dict(config))
    record = {"config": to_dict(config), "versions": versions(), "hardware": hardware(backend=config.backend),
              "command": shlex.join(sys.argv), "stage_seconds": old.get("stage_seconds", {})}
    for key in ("leaderboard", "family_leaderboard"):
        if key in old:
            record[key] = old[key]
    dataset_config = write_dataset_config(config, out / "dataset_config.yaml")
    checkpoint = out / "runs" / "vintix" / "final.pt"
    split = beside_split(config, stages)
    track = FamilyTrack(config, out, split[1]) if split else None
    run_config = replace(config, gpus=len(split[0])) if split else config  # the default stages' GPUs come first
    try:
        for stage in stages:
            t0 = time.perf_counter()
            log(f"stage {stage}")
            if stage == "collect":
                collect_stage(run_config, out)
            elif stage == "train":
                checkpoint = train_stage(run_config, out, dataset_config)
            elif stage == "eval":
                eval_stage(run_config, out, checkpoint if checkpoint.exists() else None)
            elif stage == "leaderboard":
                record["leaderboard"] = leaderboard_stage(run_config, out)["rows"]
            else:
                done = track.join() if track else family_stage(config, out)
                record["family_leaderboard"] = done.get("rows", [])
                record["stage_seconds"].update({f"family.{k}": v for k, v in done.get("seconds", {}).items()})
                if track:  # its wall time from its start, beside the stages before it
                    record["stage_seconds"]["family.beside_wall"] = done["wall_s"]
                    track = None
            record["stage_seconds"][stage] = round(time.perf_counter() - t0, 1)
            write_json_atomic(record_path, record)
    finally:
        if track:
            track.stop()
    log(f"done: {out} (stage seconds {record['stage_seconds']})")
    return record
