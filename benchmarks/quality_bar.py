"""Issue 17's quality bar, checked against every committed family and held-out-robot GPU result.

The bar, per (robot, family) on the family's test thetas: Vintix's final-episode IQM >= 0.8, a rise of >= 0.3 from
episode 1, at least 0.2 above the blind teacher and above the no-context baseline (``vintix-episodic``); per held-out
robot (``robots-v0``), a final IQM >= 0.5. Each cell is read from the results files (``go2bench eval`` output,
validated by ``load_result``), never typed; a criterion without its reference (no blind teacher for a robot) is
``n/a``, not a pass. The pooled row takes every GPU training of the Mini Cheetah ``velocity`` recipe
(``go2bench.eval.pooled``), since one training run is one draw of a large training-seed spread.

    python benchmarks/quality_bar.py     # prints the table, writes benchmarks/results/quality_bar.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FAMILY_RUNS = sorted(RESULTS.glob("gpu_family_*/family/results/*"))  # one folder per (run, family)
HELD_OUT = RESULTS / "gpu_robots_split" / "folds"
BAR = {"final": 0.8, "rise": 0.3, "above_blind": 0.2, "held_out_final": 0.5}


def _check(value: float | None, threshold: float, strict: bool = False) -> str:
    if value is None:
        return "n/a"
    return "yes" if (value > threshold if strict else value >= threshold) else "no"


def family_rows(folders: list[Path], pooled: dict[tuple[str, str], list[Path]] | None = None) -> list[dict[str, Any]]:
    """One row per (env, family) with a Vintix result in ``folders``; ``pooled``: (env, family) -> the results files
    of several trainings of its recipe, added as a second row (the IQM of their trials pooled)."""
    from go2bench.eval.leaderboard import load_result
    from go2bench.eval.pooled import pool_runs

    rows = []
    for folder in folders:
        by_env: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.json")):
            res = load_result(path)
            by_env.setdefault(res["env"], {})[res["agent"]] = (path, res)
        for env_id, agents in sorted(by_env.items()):
            if "vintix" not in agents:
                continue
            path, res = agents["vintix"]
            family = res["family"]["name"]
            ref = {a: agents[a][1]["family"]["final"]["iqm"] for a in ("teacher-blind", "vintix-episodic") if a in agents}
            runs = [(folder.parents[2].name, res["family"])]  # the run's folder under benchmarks/results
            if pooled and (env_id, family) in pooled:
                p = pool_runs([load_result(f) for f in pooled[(env_id, family)]], "vintix")
                runs.append((f"{len(pooled[(env_id, family)])} runs pooled", p))
            for source, m in runs:
                final, zero = m["final"]["iqm"], m["zero_shot"]["iqm"]
                blind, episodic = ref.get("teacher-blind"), ref.get("vintix-episodic")
                rows.append({
                    "env": env_id, "family": family, "source": source, "final": final, "zero_shot": zero,
                    "rise": final - zero, "teacher_blind": blind, "vintix_episodic": episodic,
                    "final >= 0.8": _check(final, BAR["final"]),
                    "rise >= 0.3": _check(final - zero, BAR["rise"]),
                    "blind + 0.2": _check(None if blind is None else final - blind, BAR["above_blind"]),
                    "above no-context": _check(None if episodic is None else final - episodic, 0.0, strict=True)})
    return rows


def held_out_results(folds: Path = HELD_OUT) -> list[dict[str, dict[str, Any]]]:
    """Per leave-one-robot-out fold (``eval_heldout_<robot>``), its Vintix agents' results on the held-out robot,
    by agent name."""
    from go2bench.eval.leaderboard import load_result

    return [{r["agent"]: r for r in map(load_result, sorted(fold.glob("vintix*.json")))}
            for fold in sorted(folds.glob("eval_heldout_*"))]


def held_out_rows(folds: Path = HELD_OUT) -> list[dict[str, Any]]:
    """The leave-one-robot-out folds: each fold's Vintix on its held-out robot."""
    rows = []
    for res in held_out_results(folds):
        split = res["vintix"]["robot_split"]
        rows.append({"env": res["vintix"]["env"], "final": split["final"]["iqm"], "zero_shot": split["zero_shot"]["iqm"],
                     "final >= 0.5": _check(split["final"]["iqm"], BAR["held_out_final"])})
    return rows


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


def markdown(fam: list[dict[str, Any]], held: list[dict[str, Any]]) -> str:
    keys = ["env", "family", "source", "zero_shot", "final", "rise", "teacher_blind", "vintix_episodic",
            "final >= 0.8", "rise >= 0.3", "blind + 0.2", "above no-context"]
    lines = ["| " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in fam]
    met = sum(all(r[k] == "yes" for k in keys[-4:]) for r in fam)
    lines += ["", f"Family rows meeting every criterion: {met} of {len(fam)}.", "",
              "| held-out robot | episode 1 | final | final >= 0.5 |", "|---|---:|---:|---|"]
    lines += [f"| {r['env']} | {r['zero_shot']:.2f} | {r['final']:.2f} | {r['final >= 0.5']} |" for r in held]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(RESULTS / "quality_bar.json"))
    args = ap.parse_args(argv)
    from go2bench.core.provenance import versions, write_json_atomic

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from readme_leaderboard import FAMILY_GPU_POOLED  # the committed list of the recipe's GPU trainings

    fam, held = family_rows(FAMILY_RUNS, FAMILY_GPU_POOLED), held_out_rows()
    print(markdown(fam, held))
    write_json_atomic(args.out, {"source": "folders under benchmarks/results", "bar": BAR, "family": fam,
                                 "held_out": held, "versions": versions(), "command": "python benchmarks/quality_bar.py"})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
