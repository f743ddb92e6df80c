"""Leaderboard from ``go2bench eval`` result files: Markdown and CSV tables, PNG plots.

``go2bench leaderboard results/*.json --out benchmarks/leaderboard [--datasets DIR ...]`` writes

* ``leaderboard.md`` / ``leaderboard.csv``: one row per (task, agent): normalised score mean and
  95% CI half-width, raw mean return and its CI, fall rate, episodes counted, envs x episodes per
  env, seeds, steps per episode (the CI's unit is one env of one seed; see
  :mod:`go2bench.eval.stats`);
* ``in_context.png``: normalised score against episode index, one panel per task, one line per
  agent with its 95% CI band (the in-context curve);
* ``learning_curves.png`` (with ``--datasets``): per dataset, each history's episode returns
  against the cumulative env step, from its ``trajectories_env_XXXX.json`` files
  (``episode_returns`` and ``episode_lengths``);
* task-family results (format ``go2bench.eval/2``) get their own sections of ``leaderboard.md``,
  ``leaderboard_families.csv`` and ``curves_<family>.png`` (:mod:`go2bench.eval.family_leaderboard`);
  the tables and plot above then hold the default-task results only (and are written only if any);
* with ``pools`` (``--pool NAME=A,B,C``) or ``pool_by="agent"`` (``--pool-by agent``), several training runs of
  one family agent as one row (their trials pooled, :mod:`go2bench.eval.pooled`), and ``leaderboard_pooled.json``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from go2bench.eval.results import ResultsError, load_results
from go2bench.eval.stats import halfwidth

__all__ = [
    "LeaderboardError",
    "load_result",
    "table_rows",
    "markdown_table",
    "write_csv",
    "plot_in_context",
    "load_dataset_curves",
    "plot_learning_curves",
    "make_leaderboard",
    "COLUMNS",
]

# (key in a row, header)
COLUMNS = [
    ("task", "task"),
    ("agent", "agent"),
    ("normalized_score", "normalized score"),
    ("normalized_ci95_halfwidth", "± 95% CI"),
    ("mean_return", "mean return"),
    ("return_ci95_halfwidth", "± 95% CI (return)"),
    ("fall_rate", "falls"),
    ("episodes", "episodes"),
    ("num_envs", "envs"),
    ("episodes_per_env", "episodes/env"),
    ("seeds", "seeds"),
    ("max_episode_steps", "steps/episode"),
]


class LeaderboardError(ValueError):
    """A result or dataset file is unusable; the message names the file and the field."""


# ------------------------------------------------------------------------------------- results
def load_result(path: str | Path) -> dict[str, Any]:
    """One ``go2bench eval`` results file, checked (:func:`go2bench.eval.results.load_results`), with ``_path``."""
    try:
        data = load_results(path)
    except ResultsError as e:
        raise LeaderboardError(str(e)) from None
    data["_path"] = str(Path(path))
    return data


def agent_label(res: dict[str, Any]) -> str:
    """``name``, or ``name:`` and the checkpoint's last path parts, so that two models of one agent
    (the shipped ``zoo/vintix/vintix.pt`` and a run's ``runs/vintix/final.pt``) stay apart; an evaluation of
    a leave-one-robot-out fold's held-out robot (a ``robot_split`` block) says so, e.g. ``[held-out robot, robots-v0]``."""
    name = res["agent"]
    spec = res.get("agent_spec") or res["config"].get("agent") or name
    if spec.startswith(name + ":"):
        parts = Path(spec[len(name) + 1:]).parts
        name = f"{name}:{'/'.join(parts[-3:])}"
    return name + held_out_label(res)


def held_out_label(res: dict[str, Any]) -> str:
    """`` [held-out robot, <split>]`` for an evaluation of a fold's held-out robot, else empty."""
    split = (res.get("robot_split") or {}).get("split")
    return f" [held-out robot, {split}]" if split else ""


def markdown_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks and backticks neutralised."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def table_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per result, sorted by task then normalised score (best first); duplicates are an error."""
    rows, seen = [], {}
    for res in results:
        key = (res["env"], agent_label(res))
        if key in seen:
            raise LeaderboardError(
                f"{res['_path']}: agent {key[1]!r} on {key[0]} is already in {seen[key]}; give one result per "
                f"agent and task"
            )
        seen[key] = res["_path"]
        cfg = res["config"]
        rows.append({
            "task": res["env"],
            "agent": key[1],
            "normalized_score": res["normalized_score"],
            "normalized_ci95_halfwidth": halfwidth(res["normalized_score_ci95"]),
            "mean_return": res["mean_return"],
            "return_ci95_halfwidth": halfwidth(res["ci95"]),
            "fall_rate": res.get("fall_rate"),
            "episodes": res["episodes"],
            "num_envs": cfg["num_envs"],
            "episodes_per_env": cfg["episodes"],
            "seeds": ",".join(str(s) for s in cfg["seeds"]),
            "max_episode_steps": res["max_episode_steps"],
            "random_score": res.get("random_score"),
            "expert_score": res.get("expert_score"),
            "reference_scores_source": res.get("reference_scores_source"),
            "source": res["_path"],
        })
    rows.sort(key=lambda r: (r["task"], -(r["normalized_score"] if r["normalized_score"] is not None else -math.inf)))
    return rows


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The leaderboard as a Markdown table (normalised score as ``mean ± CI``)."""
    head = ["task", "agent", "normalized score (± 95% CI)", "mean return (± 95% CI)", "falls", "episodes",
            "envs x episodes/env", "seeds", "steps/episode"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in rows:
        ns = _fmt(r["normalized_score"])
        if r["normalized_ci95_halfwidth"] is not None:
            ns += f" ± {_fmt(r['normalized_ci95_halfwidth'])}"
        ret = _fmt(r["mean_return"], 2)
        if r["return_ci95_halfwidth"] is not None:
            ret += f" ± {_fmt(r['return_ci95_halfwidth'], 2)}"
        falls = "n/a" if r["fall_rate"] is None else f"{r['fall_rate']:.0%}"
        lines.append("| " + " | ".join(markdown_cell(c) for c in [
            r["task"], r["agent"], ns, ret, falls, str(r["episodes"]),
            f"{r['num_envs']} x {r['episodes_per_env']}", r["seeds"], str(r["max_episode_steps"]),
        ]) + " |")
    refs = sorted({(r["task"], r["random_score"], r["expert_score"]) for r in rows if r["random_score"] is not None})
    used = "; ".join(f"{t}: random {_fmt(a, 3)}, expert {_fmt(b, 3)}" for t, a, b in refs)
    shipped = all(r.get("reference_scores_source") is None or "zoo" in str(r["reference_scores_source"])
                  for r in rows)
    origin = "the shipped teachers' model-card scores, full 1000-step episodes" if shipped else \
        "the reference scores recorded in the result files"
    note = (f"\nNormalised score: (mean return - random_score) / (expert_score - random_score) with {origin}"
            f" ({used}). 95% CI: Student-t over per-env mean returns (one unit per env and seed).\n")
    return "\n".join(lines) + "\n" + note


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    keys = [k for k, _ in COLUMNS] + ["source"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})


# ------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_in_context(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Normalised score against episode index (1-based), a panel per task, a line + CI band per agent."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    tasks = sorted({r["env"] for r in results})
    labels = sorted({agent_label(r) for r in results})
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {label: palette[i % len(palette)] for i, label in enumerate(labels)}  # one colour per agent
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for res in sorted((r for r in results if r["env"] == task), key=agent_label):
            per = res["per_episode"]
            x = [i + 1 for i in per["episode_index"]]
            normalized = all(v is not None for v in per["normalized_score"])
            y = per["normalized_score"] if normalized else per["mean_return"]
            (line,) = ax.plot(x, y, marker="o", ms=3, label=agent_label(res), color=colors[agent_label(res)])
            lo = per["normalized_ci95_low"] if normalized else per.get("return_ci95_low")
            hi = per["normalized_ci95_high"] if normalized else per.get("return_ci95_high")
            if lo and hi and all(v is not None for v in list(lo) + list(hi)):
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.axhline(0.0, color="gray", lw=0.6, ls=":")
        ax.axhline(1.0, color="gray", lw=0.6, ls="--")
        ax.set_title(task)
        ax.set_xlabel("episode index (per env)")
        ax.set_ylabel("normalized score")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("In-context evaluation (mean over envs x seeds, 95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def load_dataset_curves(folder: str | Path) -> dict[str, Any]:
    """:func:`go2bench.collect.plot.load_dataset_curves`, with its errors as :class:`LeaderboardError`."""
    from go2bench.collect import plot

    try:
        return plot.load_dataset_curves(folder)
    except ValueError as e:
        raise LeaderboardError(str(e)) from None


def plot_learning_curves(datasets: Sequence[dict[str, Any]], path: str | Path) -> Path:
    from go2bench.collect.plot import plot_learning_curves as plot

    return plot(datasets, path)


# ------------------------------------------------------------------------------------- all
def _pools(results: list[dict[str, Any]], pools, pool_by: str | None, load) -> list[tuple[str, list[dict]]]:
    """The (name, loaded runs) of ``--pool`` (a run not among the results is added to them) and ``--pool-by``."""
    from go2bench.eval import family_leaderboard as fl

    out, where = [], {}
    for name, paths in pools:
        runs = []
        for p in map(Path, paths):
            if p.resolve() in where:
                raise LeaderboardError(f"{p}: in pool {where[p.resolve()]!r} and pool {name!r}; give each file once")
            where[p.resolve()] = name
            runs.append(load(p))
        results += [r for r in runs if not any(r is x for x in results)]
        out.append((name, runs))
    if pool_by == "agent":
        taken = {id(r) for _, runs in out for r in runs}
        out += fl.pools_by_agent([r for r in results if id(r) not in taken])
    elif pool_by is not None:
        raise LeaderboardError(f"pool_by {pool_by!r}: only 'agent' (pool the results of one agent name)")
    return out


def make_leaderboard(
    result_paths: Iterable[str | Path], out: str | Path, datasets: Iterable[str | Path] = (),
    pools: Sequence[tuple[str, Sequence[str | Path]]] = (), pool_by: str | None = None,
) -> dict[str, Any]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``in_context.png`` (and ``learning_curves.png``);
    with family results also ``leaderboard_families.csv`` and ``curves_<family>.png``, and with pooled
    rows (``pools``: (name, result files) pairs; ``pool_by="agent"``) ``leaderboard_pooled.json``.

    Returns ``{"rows", "family_rows", "markdown", "files"}``.
    """
    from go2bench.eval import family_leaderboard as fl

    paths = [Path(p) for p in result_paths]
    if not paths and not pools:
        raise LeaderboardError("no result files given")
    loaded: dict[Path, dict[str, Any]] = {}

    def load(p: Path) -> dict[str, Any]:
        return loaded[p.resolve()] if p.resolve() in loaded else loaded.setdefault(p.resolve(), load_result(p))

    results = [load(p) for p in paths]
    pooled = _pools(results, pools, pool_by, load)
    curves = [load_dataset_curves(d) for d in datasets]  # check everything before writing anything
    plain = [r for r in results if not fl.is_family_result(r)]
    rows = table_rows(plain)
    fam_rows = fl.family_rows([r for r in results if fl.is_family_result(r)], pooled)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = "# Leaderboard\n\n"
    if rows:
        md += markdown_table(rows)
    if fam_rows:
        md += ("\n" if rows else "") + "# Task families\n\n" + fl.family_markdown(fam_rows)
    files = [out / "leaderboard.md"]
    files[0].write_text(md)
    if rows:
        files += [out / "leaderboard.csv", out / "in_context.png"]
        write_csv(rows, files[-2])
        plot_in_context(plain, files[-1])
    if fam_rows:
        files.append(out / "leaderboard_families.csv")
        fl.write_family_csv(fam_rows, files[-1])
        files += fl.plot_family_curves(fam_rows, out)
    if any(r.get("pooled") for r in fam_rows):
        files.append(fl.write_pooled_json(fam_rows, out / "leaderboard_pooled.json"))
    if curves:
        files.append(plot_learning_curves(curves, out / "learning_curves.png"))
    return {"rows": rows, "family_rows": fam_rows, "markdown": md, "files": [str(f) for f in files]}
