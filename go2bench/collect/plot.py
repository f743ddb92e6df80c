"""The learning curve a dataset encodes: episode return against step, one line per history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

__all__ = ["plot_learning_curves", "learning_curves"]


def learning_curves(dataset_dir: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """history index -> (cumulative step at each episode's end, episode return), from per-env JSONs."""
    out = {}
    for p in sorted(Path(dataset_dir).glob("trajectories_env_*.json")):
        m = re.match(r"trajectories_env_(\d+)\.json$", p.name)
        rec = json.loads(p.read_text())
        if not m or "episode_returns" not in rec or "episode_lengths" not in rec:
            continue
        out[int(m.group(1))] = (np.cumsum(rec["episode_lengths"]), np.asarray(rec["episode_returns"], float))
    return out


def plot_learning_curves(dataset_dir: str | Path, out_png: str | Path, title: str | None = None) -> Path:
    """Write a PNG of episode return vs step for every complete history of a dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = learning_curves(dataset_dir)
    if not curves:
        raise ValueError(f"{dataset_dir}: no per-history JSON with episode_returns/episode_lengths to plot")
    fig, ax = plt.subplots(figsize=(7, 4))
    for idx, (steps, returns) in curves.items():
        ax.plot(steps, returns, lw=1, alpha=0.8, label=f"history {idx}" if len(curves) <= 10 else None)
    ax.set_xlabel("step within the history")
    ax.set_ylabel("episode return")
    ax.set_title(title or f"learning histories of {Path(dataset_dir).name}")
    ax.grid(alpha=0.3)
    if len(curves) <= 10:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
