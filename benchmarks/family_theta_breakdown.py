"""Where a family agent's runs differ: each run's scores split by a theta component (e.g. target speed).

Why: eight trainings of one Vintix recipe on Mini Cheetah `velocity` ended at finals of about 0.3 or about 0.8
(benchmarks/RESULTS.md, the sixth session). Pooling says how much; this says where: per run, the IQM of the
final (mean of the last 3 episodes per trial) and of episode 1 over the thetas below and at or above a
threshold of one theta component, the mean curve over the thetas above it, and the run's training seed.

    python benchmarks/family_theta_breakdown.py                      # the README's pooled baseline runs
    python benchmarks/family_theta_breakdown.py --runs A.json B.json --reference blind.json --component lin_vel_x --at 0.5

Prints a table and writes JSON (config, versions, per-run rows) to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
OUT = ROOT / "benchmarks" / "results" / "family_theta_breakdown_mc_velocity.json"


def _training_seed(results_file: Path, res: dict) -> int | None:
    """The seed of the training run behind a results file: its run folder's config.json (``train_config.seed``),
    found beside the results in the committed study or pipeline folder."""
    name = Path(res.get("agent_spec", "").split(":", 1)[-1]).parent.name  # .../<run>/final.pt
    for parent in list(Path(results_file).resolve().parents)[:5]:
        for cfg in sorted(parent.glob(f"**/runs/**/{name}/config.json")):
            return int(json.loads(cfg.read_text())["train_config"]["seed"])
    return None


def breakdown(res: dict, component: str, at: float) -> dict:
    from go2bench.eval.iqm import iqm
    from go2bench.eval.pooled import trial_scores

    N = np.asarray(trial_scores(res)["normalized"])  # eval seeds, thetas, episodes
    theta = np.array([t["theta"][component] for t in res["family"]["tasks"]])
    hi = theta >= at
    final, first = N[..., -3:].mean(-1), N[..., 0]
    return {"source": res.get("agent_spec") or res["agent"], "thetas_below": int((~hi).sum()),
            "thetas_at_or_above": int(hi.sum()),
            "final_below": iqm(final[:, ~hi]), "final_at_or_above": iqm(final[:, hi]),
            "zero_shot_below": iqm(first[:, ~hi]), "zero_shot_at_or_above": iqm(first[:, hi]),
            "curve_at_or_above": [float(x) for x in N[:, hi].mean((0, 1))], "final_all": iqm(final)}


def _rel(path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if ROOT in path.parents else str(path)


def main(argv=None) -> int:
    import readme_leaderboard as board
    from go2bench.core.provenance import versions, write_json_atomic
    from go2bench.eval.leaderboard import load_result

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", type=Path, default=None,
                   help="family results files of one agent (default: the README's pooled Mini Cheetah velocity runs)")
    p.add_argument("--reference", type=Path, default=None, help="a reference agent's results (default: blind teacher)")
    p.add_argument("--component", default="lin_vel_x", help="the theta component to split on")
    p.add_argument("--at", type=float, default=0.5, help="the threshold: below vs at or above")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    runs = args.runs or board.FAMILY_GPU_POOLED[("MiniCheetahWalk-v0", "velocity")]
    ref = args.reference or board.RECIPES_POOLED["teacher-blind (reference)"][0]
    rows = []
    for path in runs:
        res = load_result(path)
        rows.append({**breakdown(res, args.component, args.at), "file": _rel(path),
                     "training_seed": _training_seed(Path(path), res)})
    reference = {**breakdown(load_result(ref), args.component, args.at), "file": _rel(ref)}
    head = (f"{'run':>3}  {'seed':>4}  {'final':>5}  {f'<{args.at:g}':>6}  {f'>={args.at:g}':>6}  "
            f"{'ep1 <':>6}  {'ep1 >=':>6}  mean curve over thetas with {args.component} >= {args.at:g}")
    print(head)
    for i, r in enumerate(rows + [reference]):
        label = str(i) if i < len(rows) else "ref"
        seed = "-" if r.get("training_seed") is None else str(r["training_seed"])
        print(f"{label:>3}  {seed:>4}  {r['final_all']:5.2f}  {r['final_below']:6.2f}  {r['final_at_or_above']:6.2f}  "
              f"{r['zero_shot_below']:6.2f}  {r['zero_shot_at_or_above']:6.2f}  "
              + " ".join(f"{x:.2f}" for x in r["curve_at_or_above"]))
    write_json_atomic(args.out, {"benchmark": "family_theta_breakdown", "component": args.component, "at": args.at,
                                 "runs": rows, "reference": reference, "versions": versions(),
                                 "command": " ".join(["python", "benchmarks/family_theta_breakdown.py", *(argv or sys.argv[1:])])})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
