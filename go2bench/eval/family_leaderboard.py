"""Leaderboard of task-family results (format ``go2bench.eval/2``): tables per family, curves per family.

For each (env, family), one Markdown table with a row per agent and, for the train and the test
split, zero-shot (episode 1), final (last 3 episodes) and AUC (mean over the K episodes): the
IQM over trials of per-theta normalised scores with its 95% bootstrap interval (``CI_KEY``: the
stratified one, strata = thetas). Agents carry their role (:data:`ROLES`): the references that
score 0 and 1 by definition, the baselines, and diagnostics that are not baselines. CSV
(``leaderboard_families.csv``): one row per (env, family, agent, split) with both intervals.
Plots (``curves_<family>.png``): the IQM against the episode index with its interval band, a
panel per env and split, a line per agent.

Pooled rows (``pools``, ``go2bench leaderboard --pool``/``--pool-by``): several training runs of one agent as one
row, their trials pooled (:mod:`go2bench.eval.pooled`): the IQM with ``ci95_pooled`` (runs, thetas and seeds
resampled), the number of runs and each run's final IQM; the tables then get ``runs`` and ``final by run``
columns, the CSV their columns, and ``leaderboard_pooled.json`` every pooled number.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any, Sequence

from go2bench.core.provenance import versions, write_json_atomic
from go2bench.eval.family_results import METRICS
from go2bench.eval.iqm import BOOTSTRAP_REPS
from go2bench.eval.leaderboard import LeaderboardError, _pyplot, agent_label, held_out_label, markdown_cell
from go2bench.eval.pooled import POOLED_CI_TEXT, pool_runs

__all__ = ["ROLES", "CI_KEY", "agent_role", "family_rows", "family_markdown", "write_family_csv",
           "plot_family_curves", "is_family_result", "pools_by_agent", "write_pooled_json", "POOLED_FORMAT"]

Pools = Sequence[tuple[str, Sequence[dict[str, Any]]]]  # (row name, the loaded results of its training runs)
POOLED_FORMAT = "go2bench.leaderboard-pooled/1"
POOLED_KEY = "ci95_pooled"

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


def pools_by_agent(results: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``--pool-by agent``: the family results of one agent name (its checkpoint path left out), env, family and
    split, where there are two or more, as one pool named after the agent (held-out robot evaluations of
    leave-one-robot-out folds apart, their name labelled so)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for res in results:
        if is_family_result(res):
            key = (res["agent"] + held_out_label(res), res["env"], res["family"]["name"], res["family"]["split"])
            groups.setdefault(key, []).append(res)
    return [(key[0], runs) for key, runs in groups.items() if len(runs) > 1]


def _pooled_cell(runs: Sequence[dict[str, Any]], name: str, reps: int) -> dict[str, Any]:
    p = pool_runs(runs, name, reps)
    return {**p, "seeds": p["eval_seeds"], "trials": p["runs"] * p["thetas"] * len(p["eval_seeds"]),
            "source": "; ".join(p["sources"]), "interval": POOLED_KEY}


def family_rows(results: Sequence[dict[str, Any]], pools: Pools = (), reps: int = BOOTSTRAP_REPS
                ) -> list[dict[str, Any]]:
    """One row per (env, family, agent) with a cell dict per split; a duplicate split is an error.

    ``pools``: (name, runs) pairs, each one row ``name`` whose cell pools its runs' trials (a run given in
    ``results`` too is shown only pooled); the same name again may pool the other split."""
    pooled = {id(r) for _, runs in pools for r in runs}
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for res in (r for r in results if id(r) not in pooled):
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
    for name, runs in pools:
        cell = _pooled_cell(runs, name, reps)
        key = (cell["env"], cell["family"], name)
        row = rows.setdefault(key, {"env": key[0], "family": key[1], "agent": name, "name": cell["agent"],
                                    "role": f"{agent_role(cell['agent'])}; training runs pooled", "splits": {},
                                    "pooled": True})
        if not row.get("pooled"):
            raise LeaderboardError(f"pool {name}: {next(iter(row['splits'].values()))['source']} is agent {name!r} "
                                   f"on {key[0]} {key[1]} too; name the pool apart from the agents")
        if cell["split"] in row["splits"]:
            raise LeaderboardError(f"pool {name}: {key[0]} {key[1]}/{cell['split']} pooled twice "
                                   f"({row['splits'][cell['split']]['source']} and {cell['source']})")
        row["splits"][cell["split"]] = cell

    def rank(row):
        score = next((row["splits"][s]["final"]["iqm"] for s in ("test", "train") if s in row["splits"]), -math.inf)
        return (row["env"], row["family"], row["role"].startswith("diagnostic"), -score, row["agent"])

    return sorted(rows.values(), key=rank)


def _cell(cell: dict[str, Any] | None, metric: str) -> str:
    if cell is None:
        return "-"
    lo, hi = cell[metric][cell.get("interval", CI_KEY)]
    return f"{cell[metric]['iqm']:.3f} [{lo:.3f}, {hi:.3f}]"


def _any_pooled(rows: Sequence[dict[str, Any]]) -> bool:
    return any(r.get("pooled") for r in rows)


def _runs_cells(sp: dict[str, Any]) -> list[str]:
    """The ``runs (train / test)`` and ``final by run`` cells of a row of a leaderboard with pooled rows."""
    runs = " / ".join(str(sp[s].get("runs", 1)) if s in sp else "-" for s in SPLITS)
    finals = {s: " / ".join(f"{x:.3f}" for x in sp[s]["finals_by_run"])
              for s in SPLITS if "finals_by_run" in sp.get(s, {})}
    by_run = "; ".join(f"{s}: {v}" for s, v in finals.items()) if len(finals) > 1 else next(iter(finals.values()), "-")
    return [runs, by_run]


def family_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: a section and table per (env, family), and a note on what the numbers are."""
    pooled = _any_pooled(rows)
    head = ["agent", "role"] + [f"{split} {METRIC_HEADERS[m]}" for split in SPLITS for m in METRICS] + [
        "trials (train / test)", "episodes/trial", "steps/episode"] + (
        ["runs (train / test)", "final by run"] if pooled else [])
    out = []
    for env, family in sorted({(r["env"], r["family"]) for r in rows}):
        out += [f"## {markdown_cell(family)} family, {markdown_cell(env)}", "",
                "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
        for r in (r for r in rows if (r["env"], r["family"]) == (env, family)):
            sp = r["splits"]
            cells = [r["agent"], r["role"]] + [_cell(sp.get(s), m) for s in SPLITS for m in METRICS]
            trials = " / ".join(f"{sp[s]['thetas']} x {len(sp[s]['seeds'])}" if s in sp else "-" for s in SPLITS)
            first = next(iter(sp.values()))
            cells += [trials, str(first["episodes"]), str(first["max_episode_steps"])]
            cells += _runs_cells(sp) if pooled else []
            out.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
        out.append("")
    which = ("stratified bootstrap over seeds within each theta (strata = thetas)" if CI_KEY == "ci95" else
             "bootstrap over thetas and seeds")
    out.append(
        "Scores are normalised per theta, (return - random(theta)) / (privileged(theta) - random(theta)), with "
        "reference returns measured on the same theta in episodes of the same length. Each cell: interquartile mean "
        f"over trials (theta x seed) [95% percentile interval, {which}]. Zero-shot: episode 1 of each trial "
        "(cold start); final: mean of its last 3 episodes; AUC: mean of its episodes. Trials: thetas x seeds.")
    if pooled:
        out.append(
            "\nPooled rows (runs > 1): the trials of several training runs of one agent, evaluated on the same "
            "thetas and seeds, pooled; each cell the IQM over all their trials [95% percentile interval resampling "
            "the runs, the thetas (one draw shared by all runs) and the seeds within each (run, theta)]. With few "
            "runs that interval understates the spread between runs; final by run: each run's own final IQM.")
    return "\n".join(out) + "\n"


def write_family_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    keys = ["env", "family", "agent", "role", "split", "suite"]
    for m in METRICS:
        keys += [f"{m}_iqm", f"{m}_ci95_low", f"{m}_ci95_high", f"{m}_ci95_thetas_low", f"{m}_ci95_thetas_high",
                 f"{m}_mean"]
    keys += ["thetas", "seeds", "episodes", "max_episode_steps", "source"]
    pooled = _any_pooled(rows)
    if pooled:
        keys += ["runs", "finals_by_run"] + [f"{m}_{POOLED_KEY}_{e}" for m in METRICS for e in ("low", "high")]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            for split, c in sorted(r["splits"].items()):
                line = {k: r[k] for k in ("env", "family", "agent", "role")}
                line.update(split=split, suite=c["suite"], thetas=c["thetas"],
                            seeds=",".join(map(str, c["seeds"])), episodes=c["episodes"],
                            max_episode_steps=c["max_episode_steps"], source=c["source"])
                if pooled:
                    line.update(runs=c.get("runs", 1), finals_by_run=" ".join(map(repr, c.get("finals_by_run", []))))
                for m in METRICS:
                    line.update({f"{m}_iqm": c[m]["iqm"], f"{m}_mean": c[m]["mean"]})
                    for key in ("ci95", "ci95_thetas", POOLED_KEY):
                        if key in c[m]:
                            line.update({f"{m}_{key}_low": c[m][key][0], f"{m}_{key}_high": c[m][key][1]})
                w.writerow(line)


def write_pooled_json(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """``leaderboard_pooled.json``: every pooled cell (one per pooled row and split) with its runs' files."""
    drop = ("interval", "source", "seeds", "env", "family", "agent")  # the leaderboard's view, or given first
    cells = [{"env": r["env"], "family": r["family"], "agent": r["agent"], "agent_name": c["agent"], "role": r["role"],
              **{k: v for k, v in c.items() if k not in drop}}
             for r in rows if r.get("pooled") for _, c in sorted(r["splits"].items())]
    write_json_atomic(path, {"format": POOLED_FORMAT, "ci95_pooled": POOLED_CI_TEXT, "versions": versions(),
                             "rows": cells})
    return Path(path)


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
                    key = r["splits"][split].get("interval", CI_KEY)
                    ax.fill_between(x, pe[f"{key}_low"], pe[f"{key}_high"], color=colors[r["agent"]],
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
