"""Leaderboard of task-family results (format ``go2bench.eval/2``): tables per family, curves per family.

For each (env, family), one Markdown table with a row per agent and, for the train and the test
split, zero-shot (episode 1), final (last 3 episodes) and AUC (mean over the K episodes): the
IQM over trials of per-theta normalised scores with its 95% bootstrap interval (``CI_KEY``: the
stratified one, strata = thetas). Agents carry their role (:data:`ROLES`): the references that
score 0 and 1 by definition, the baselines, and diagnostics that are not baselines. CSV
(``leaderboard_families.csv``): one row per (env, family, agent, split) with both intervals.
Plots (``curves_<family>.png``): the IQM against the episode index with its interval band, a
panel per env and split, a line per agent.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any, Sequence

from go2bench.eval.family_results import METRICS
from go2bench.eval.leaderboard import LeaderboardError, _pyplot, agent_label, markdown_cell

__all__ = ["ROLES", "CI_KEY", "agent_role", "family_rows", "family_markdown", "write_family_csv",
           "plot_family_curves", "is_family_result"]

# The interval shown in tables and bands: thetas and seeds resampled ("ci95": seeds within each theta
# only). A deterministic agent on a family without random resets (velocity) repeats its episode for
# every seed of a theta, so the seeds-only interval has zero width and hides the spread over tasks.
CI_KEY = "ci95_thetas"
SPLITS = ("train", "test")
METRIC_HEADERS = {"zero_shot": "zero-shot", "final": "final", "auc": "AUC"}

# registry name -> (role, order in the table among equal scores); unknown names are agents
ROLES: dict[str, str] = {
    "random": "reference: random (0 by definition)",
    "teacher-privileged": "reference: privileged teacher, observes theta (1 by definition)",
    "teacher-blind": "baseline: blind teacher (same recipe, no theta)",
    "teacher": "baseline: default-task teacher",
    "vintix": "in-context agent: Vintix",
    "vintix-episodic": "baseline: no-context Vintix (context limited to the current episode)",
    "vintix-nocontext": "diagnostic: Vintix with its context wiped at episode starts (not a baseline)",
}


def agent_role(name: str) -> str:
    return ROLES.get(name, "agent")


def is_family_result(res: dict[str, Any]) -> bool:
    return "family" in res


def family_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (env, family, agent) with a cell dict per split; a duplicate split is an error."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for res in results:
        fam = res["family"]
        key = (res["env"], fam["name"], agent_label(res))
        row = rows.setdefault(key, {"env": key[0], "family": key[1], "agent": key[2], "name": res["agent"],
                                    "role": agent_role(res["agent"]), "splits": {}})
        split = fam["split"]
        if split in row["splits"]:
            raise LeaderboardError(f"{res['_path']}: agent {key[2]!r} on {key[0]} {key[1]}/{split} is already in "
                                   f"{row['splits'][split]['source']}; give one result per agent, family and split")
        row["splits"][split] = {
            **{m: fam[m] for m in METRICS}, "trials": len(fam["trials"]), "thetas": fam["trials_per_seed"],
            "seeds": fam["seeds"], "episodes": fam["episodes"], "max_episode_steps": res["max_episode_steps"],
            "suite": fam["suite"], "per_episode": fam["per_episode"], "source": res["_path"],
        }

    def rank(row):
        score = next((row["splits"][s]["final"]["iqm"] for s in ("test", "train") if s in row["splits"]), -math.inf)
        return (row["env"], row["family"], row["role"].startswith("diagnostic"), -score, row["agent"])

    return sorted(rows.values(), key=rank)


def _cell(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "-"
    lo, hi = metric[CI_KEY]
    return f"{metric['iqm']:.3f} [{lo:.3f}, {hi:.3f}]"


def family_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: a section and table per (env, family), and a note on what the numbers are."""
    head = ["agent", "role"] + [f"{split} {METRIC_HEADERS[m]}" for split in SPLITS for m in METRICS] + [
        "trials (train / test)", "episodes/trial", "steps/episode"]
    out = []
    for env, family in sorted({(r["env"], r["family"]) for r in rows}):
        out += [f"## {markdown_cell(family)} family, {markdown_cell(env)}", "",
                "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
        for r in (r for r in rows if (r["env"], r["family"]) == (env, family)):
            sp = r["splits"]
            cells = [r["agent"], r["role"]] + [_cell(sp[s][m]) if s in sp else "-" for s in SPLITS for m in METRICS]
            trials = " / ".join(f"{sp[s]['thetas']} x {len(sp[s]['seeds'])}" if s in sp else "-" for s in SPLITS)
            first = next(iter(sp.values()))
            cells += [trials, str(first["episodes"]), str(first["max_episode_steps"])]
            out.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
        out.append("")
    which = ("stratified bootstrap over seeds within each theta (strata = thetas)" if CI_KEY == "ci95" else
             "bootstrap over thetas and seeds")
    out.append(
        "Scores are normalised per theta, (return - random(theta)) / (privileged(theta) - random(theta)), with "
        "reference returns measured on the same theta in episodes of the same length. Each cell: interquartile mean "
        f"over trials (theta x seed) [95% percentile interval, {which}]. Zero-shot: episode 1 of each trial "
        "(cold start); final: mean of its last 3 episodes; AUC: mean of its episodes. Trials: thetas x seeds.")
    return "\n".join(out) + "\n"


def write_family_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    keys = ["env", "family", "agent", "role", "split", "suite"]
    for m in METRICS:
        keys += [f"{m}_iqm", f"{m}_ci95_low", f"{m}_ci95_high", f"{m}_ci95_thetas_low", f"{m}_ci95_thetas_high",
                 f"{m}_mean"]
    keys += ["thetas", "seeds", "episodes", "max_episode_steps", "source"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            for split, c in sorted(r["splits"].items()):
                line = {k: r[k] for k in ("env", "family", "agent", "role")}
                line.update(split=split, suite=c["suite"], thetas=c["thetas"],
                            seeds=",".join(map(str, c["seeds"])), episodes=c["episodes"],
                            max_episode_steps=c["max_episode_steps"], source=c["source"])
                for m in METRICS:
                    line.update({f"{m}_iqm": c[m]["iqm"], f"{m}_mean": c[m]["mean"],
                                 f"{m}_ci95_low": c[m]["ci95"][0], f"{m}_ci95_high": c[m]["ci95"][1],
                                 f"{m}_ci95_thetas_low": c[m]["ci95_thetas"][0],
                                 f"{m}_ci95_thetas_high": c[m]["ci95_thetas"][1]})
                w.writerow(line)


def plot_family_curves(rows: Sequence[dict[str, Any]], out: str | Path) -> list[Path]:
    """``curves_<family>.png`` per family: IQM per episode index with its interval band, per env x split panel."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    files = []
    for family in sorted({r["family"] for r in rows}):
        fam_rows = [r for r in rows if r["family"] == family]
        envs = sorted({r["env"] for r in fam_rows})
        splits = [s for s in SPLITS if any(s in r["splits"] for r in fam_rows)]
        labels = sorted({r["agent"] for r in fam_rows})
        colors = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
        fig, axes = plt.subplots(len(envs), len(splits), figsize=(5.5 * len(splits), 4 * len(envs)), squeeze=False)
        for a, env in enumerate(envs):
            for b, split in enumerate(splits):
                ax = axes[a][b]
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                for r in (r for r in fam_rows if r["env"] == env and split in r["splits"]):
                    pe = r["splits"][split]["per_episode"]
                    x = [k + 1 for k in pe["episode_index"]]
                    ax.plot(x, pe["iqm"], marker="o", ms=3, label=r["agent"], color=colors[r["agent"]])
                    ax.fill_between(x, pe[f"{CI_KEY}_low"], pe[f"{CI_KEY}_high"], color=colors[r["agent"]],
                                    alpha=0.2, linewidth=0)
                ax.axhline(0.0, color="gray", lw=0.6, ls=":")
                ax.axhline(1.0, color="gray", lw=0.6, ls="--")
                ax.set_title(f"{env}, {family} / {split}")
                ax.set_xlabel("episode of the trial")
                ax.set_ylabel("normalised score (IQM)")
                ax.legend(fontsize=8)
                ax.grid(alpha=0.3)
        fig.suptitle(f"{family} family: IQM over trials per episode, 95% bootstrap interval")
        fig.tight_layout()
        path = Path(out) / f"curves_{re.sub(r'[^A-Za-z0-9_.-]', '_', family)}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        files.append(path)
    return files
