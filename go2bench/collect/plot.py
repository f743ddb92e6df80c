"""The learning curves a dataset encodes: episode return against step, one line per history.

Read from the per-history JSON files (``episode_returns``, ``episode_lengths``), so a dataset's
curves can be drawn without its HDF5 data. Used by the collector (``learning_curves.png`` in each
dataset folder) and by the leaderboard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from go2bench.histories.names import HISTORY_JSON_FILES, history_paths

__all__ = ["load_dataset_curves", "plot_learning_curves", "plot_dataset"]


def load_dataset_curves(folder: str | Path) -> dict[str, Any]:
    """Per history of a dataset folder: cumulative steps and episode returns.

    Returns ``{"name", "histories": [{"file", "steps" (cumulative step at each episode's end),
    "returns"}]}``; :class:`ValueError` names the file and field when one is unusable.
    """
    d = Path(folder)
    files = history_paths(d, ".json")
    if not files:
        raise ValueError(f"{d}: no {HISTORY_JSON_FILES} files; expected a collected dataset folder")
    histories, env_id = [], None
    for f in files:
        try:
            meta = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{f}: not a readable JSON file ({e})") from None
        for key in ("episode_returns", "episode_lengths"):
            if not isinstance(meta, dict) or key not in meta:
                raise ValueError(f"{f}: missing field {key!r}")
            if not isinstance(meta[key], list):
                raise ValueError(f"{f}: field {key!r} must be a list")
        env_id = env_id or meta.get("env_id")
        rets, lens = meta["episode_returns"], meta["episode_lengths"]
        if len(rets) != len(lens):
            raise ValueError(
                f"{f}: fields 'episode_returns' ({len(rets)}) and 'episode_lengths' ({len(lens)}) differ in length"
            )
        steps, total = [], 0
        for n in lens:
            total += int(n)
            steps.append(total)
        histories.append({"file": f.name, "steps": steps, "returns": [float(r) for r in rets]})
    return {"name": d.name, "env_id": env_id, "histories": histories}


def plot_learning_curves(datasets: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Episode return against cumulative step, a panel per dataset, a line per history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for h in ds["histories"]:
            ax.plot(h["steps"], h["returns"], lw=0.8, alpha=0.7)
        env = f"{ds['env_id']}, " if ds.get("env_id") else ""
        ax.set_title(f"{ds['name']} ({env}{len(ds['histories'])} histories)")
        ax.set_xlabel("env step in history")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
    fig.suptitle("Learning histories of the datasets")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_dataset(dataset_dir: str | Path, out_png: str | Path) -> Path:
    """``learning_curves.png`` of one dataset folder."""
    return plot_learning_curves([load_dataset_curves(dataset_dir)], out_png)
