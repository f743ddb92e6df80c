"""The child process of :class:`go2bench.pipeline.tracks.FamilyTrack`: the family stage of a run, its result in
``<run>/family/track.json`` (``{"error": ...}`` if it failed). A module of its own so that ``python -m`` does not
run a module the package has already imported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from go2bench.core.config import from_dict
from go2bench.core.provenance import write_json_atomic
from go2bench.pipeline.config import PipelineConfig
from go2bench.pipeline.family import FAMILY_DIR, family_stage
from go2bench.pipeline.tracks import TRACK_FILE


def _main(argv: list[str]) -> int:
    out, config_path = Path(argv[0]), Path(argv[1])
    config = from_dict(PipelineConfig, json.loads(config_path.read_text()), str(config_path))
    path = out / FAMILY_DIR / TRACK_FILE
    try:
        result = family_stage(config, out)
    except Exception as e:  # recorded for the parent, which reports it in one line
        write_json_atomic(path, {"error": f"{type(e).__name__}: {e}"})
        raise
    write_json_atomic(path, result)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
