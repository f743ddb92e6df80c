"""Where ``go2bench eval`` writes the results of several agents: a folder, one JSON per agent and an index.

With one agent ``--out`` stays a file. With several, ``--out DIR`` holds ``<label>.json`` per agent
(the label is the agent spec with every run of characters outside ``[A-Za-z0-9._-]`` replaced by
``_``; a long one keeps its end and a hash of the spec) and ``index.json``, rewritten after every agent,
so that an interrupted run still says which results are complete::

    {"format": "go2bench.eval-index/1", "mode": "family", "env": "Go2Walk-v0",
     "agents": [{"spec": "random", "file": "random.json", "scene_build_s": 80.1, "eval_s": 41.3}, ...],
     "versions": {...}}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

from go2bench.core.provenance import versions, write_json_atomic
from go2bench.eval.results import save_results

__all__ = ["INDEX_FORMAT", "INDEX_NAME", "agent_label", "ResultsFolder", "read_index"]

INDEX_FORMAT = "go2bench.eval-index/1"
INDEX_NAME = "index.json"
MAX_LABEL = 80


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")


def agent_label(spec: str) -> str:
    """A file-name-safe label of an agent spec, e.g. ``vintix:runs/a/final.pt`` -> ``vintix_runs_a_final.pt``.

    A label over :data:`MAX_LABEL` characters keeps the agent's name, the end of its argument (the checkpoint's
    file) and a hash of the whole spec, so that two agents of one checkpoint stay told apart by name."""
    label = _safe(spec) or "agent"
    if len(label) <= MAX_LABEL:
        return label
    digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
    name, _, arg = spec.partition(":")
    name = _safe(name)[:MAX_LABEL // 2]
    keep = MAX_LABEL - len(name) - 10  # "_" + "-" + 8 hex digits
    tail = _safe(arg)[-keep:].lstrip("._-") if arg else ""
    return f"{name}_{tail}-{digest}" if name and tail else f"{label[-(MAX_LABEL - 9):].lstrip('._-')}-{digest}"


class ResultsFolder:
    """The ``--out`` folder of several agents: checked before any work, then filled agent by agent."""

    def __init__(self, path: str | Path, specs: Sequence[str], mode: str, env_id: str) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() == ".json":
            raise ValueError(f"--out {self.path}: with {len(specs)} agents --out names a folder (one JSON per agent "
                             f"and {INDEX_NAME}), not a .json file")
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"--out {self.path}: exists and is not a folder; with several agents --out names a folder")
        labels: dict[str, str] = {}
        for spec in specs:
            label = agent_label(spec)
            if label == INDEX_NAME.removesuffix(".json"):
                label = f"{label}-agent"
            if label in labels:
                raise ValueError(f"agents {labels[label]!r} and {spec!r} would both be written to {label}.json; "
                                 "evaluate them in separate calls")
            labels[label] = spec
        self.files = {spec: f"{label}.json" for label, spec in labels.items()}
        # made at the first result (a run that fails before any leaves nothing); checked now that it can be
        ancestor = next(p for p in (self.path, *self.path.parents) if p.exists())
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise OSError(f"--out {self.path}: cannot create the folder ({ancestor} is not a writable folder)")
        self.index: dict[str, Any] = {"format": INDEX_FORMAT, "mode": mode, "env": env_id, "agents": [],
                                      "versions": versions()}

    def write(self, spec: str, results: dict[str, Any]) -> Path:
        """Write one agent's results (checked against the schema) and the updated index; returns the file."""
        path = self.path / self.files[spec]
        self.path.mkdir(parents=True, exist_ok=True)
        save_results(results, path)
        proc = results.get("process", {})
        self.index["agents"].append({"spec": spec, "file": self.files[spec], "scene_build_s": proc.get("scene_build_s"),
                                     "scene_built_for_this_agent": proc.get("scene_built_for_this_agent"),
                                     "eval_s": proc.get("eval_s")})
        write_json_atomic(self.path / INDEX_NAME, self.index)
        return path


def read_index(folder: str | Path) -> dict[str, Path]:
    """``{spec: results file}`` of the agents a results folder's index lists as complete ({} without an index)."""
    path = Path(folder) / INDEX_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable index ({e})") from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("agents"), list):
        raise ValueError(f"{path}: not a go2bench eval index (format {INDEX_FORMAT})")
    return {a["spec"]: Path(folder) / a["file"] for a in data["agents"]}
