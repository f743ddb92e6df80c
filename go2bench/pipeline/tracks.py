"""The family stage beside the default stages, on its own GPUs (``family_beside``).

Why: the default stages (collect, train, eval) and the family stage share nothing but the run
folder, and each is a chain of latency-bound simulations (a history or an evaluation is thousands
of batch steps whatever the batch) and small trainings, so on a machine with two or more GPUs
running them one after the other leaves half the GPUs idle. With ``family_beside`` (the default)
and ``gpus >= 2`` on the GPU backend, the pipeline starts the family stage as a child process on
the second half of the visible GPUs (``python -m go2bench.pipeline.track_main``), runs the default
stages on the first half, and, when it reaches the ``family`` stage, waits for the child and takes
its leaderboard rows and stage seconds from ``family/track.json``. The family stage resumes like
any other: a failed or killed child is simply run again by the next pipeline run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from go2bench.core.config import to_dict
from go2bench.core.provenance import write_json_atomic
from go2bench.pipeline.config import PipelineConfig
from go2bench.pipeline.family import FAMILY_DIR
from go2bench.pipeline.stages import log, start_process

__all__ = ["TRACK_FILE", "beside_split", "visible_gpus", "FamilyTrack"]

TRACK_FILE = "track.json"  # in <run>/family/: the child's result (seconds, rows) or its error
DEFAULT_STAGES = ("collect", "train", "eval")


def visible_gpus(count: int) -> list[int]:
    """The first ``count`` GPUs this process may use, as the ids its children's ``CUDA_VISIBLE_DEVICES`` takes."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [int(x) for x in text.split(",") if x.strip()] if text else list(range(count))
    return ids[:count]


def beside_split(config: PipelineConfig, stages: Sequence[str]) -> tuple[list[int], list[int]] | None:
    """(GPUs of the default stages, GPUs of the family stage) when the family stage runs beside them, else None."""
    if not (config.family_beside and config.backend == "gpu" and config.gpus >= 2 and config.family.families):
        return None
    if "family" not in stages or not any(s in stages for s in DEFAULT_STAGES):
        return None
    half = config.gpus // 2
    if config.train_gpus > half:
        log(f"family stage after the others: train_gpus {config.train_gpus} needs more than half of the "
            f"{config.gpus} GPUs")
        return None
    gpus = visible_gpus(config.gpus)
    if len(gpus) < 2:
        return None
    return gpus[:half], gpus[half:]


class FamilyTrack:
    """The family stage as a child process on ``gpus``; :meth:`join` waits and returns its result."""

    def __init__(self, config: PipelineConfig, out: Path, gpus: list[int]) -> None:
        self.root = out / FAMILY_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / TRACK_FILE).unlink(missing_ok=True)
        config_path = self.root / "track_config.json"
        write_json_atomic(config_path, to_dict(replace(config, gpus=len(gpus))))
        log(f"family stage beside the others on GPU(s) {','.join(map(str, gpus))} (log: {self.root / 'track.log'})")
        self.proc = start_process([sys.executable, "-m", "go2bench.pipeline.track_main", str(out), str(config_path)],
                                  self.root / "track.log", devices=gpus)
        self.t0 = time.perf_counter()

    def join(self) -> dict[str, Any]:
        """Wait for the child; its ``family_stage`` result, plus ``wall_s``. RuntimeError (one line) if it failed."""
        code = self.proc.wait()
        wall = time.perf_counter() - self.t0
        path = self.root / TRACK_FILE
        result = json.loads(path.read_text()) if path.is_file() else {"error": f"no {path} written"}
        if code != 0 or "error" in result:
            raise RuntimeError(f"the family stage beside the others failed (exit {code}): {result.get('error')}; "
                               f"see {self.root / 'track.log'}; run the pipeline again to resume it")
        return {**result, "wall_s": round(wall, 1)}

    def stop(self) -> None:
        """End the child (the run stopped early); what it completed is resumed by the next run."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
