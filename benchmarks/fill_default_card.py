"""Fill an exported Vintix's model card from its default-protocol evaluations (never typed by hand).

`go2bench export --card` writes a card whose ``evaluation`` and ``results`` say TO FILL. This reads the
`go2bench eval` results files of that checkpoint (default protocol: N envs x K consecutive episodes per seed;
the checkpoint's sha256 must be the card's) and of agents evaluated beside it, and fills the card as the zoo's
``go2bench/zoo/vintix/model_card.json`` is laid out: per "agent/env" the normalised score, the mean return and
the normalised score by episode index.

    python benchmarks/fill_default_card.py benchmarks/results/seed_layout/model/model_card.json \\
        --results benchmarks/results/seed_layout/eval/*/vintix*.json --source benchmarks/results/seed_layout
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _key(res: dict[str, Any], mine: bool) -> str:
    """``agent/env``; another agent's checkpoint named after it (the zoo's from ``zoo/`` on)."""
    ckpt = res.get("checkpoint")
    if mine or not ckpt:
        return f"{res['agent']}/{res['env']}"
    where = ckpt[ckpt.index("zoo/"):] if "zoo/" in ckpt else Path(ckpt).name
    return f"{res['agent']} ({where})/{res['env']}"


def fill(card: dict[str, Any], results: list[tuple[Path, dict[str, Any]]], source: str) -> dict[str, Any]:
    """``card`` with evaluation, results (this checkpoint's) and compared_in_the_same_run (other agents) filled."""
    sha = card.get("sha256")
    mine, others = {}, {}
    protocols = set()
    for path, res in results:
        if "per_episode" not in res or "normalized_score" not in res or "family" in res:
            raise ValueError(f"{path}: not a default-protocol results file (no normalized_score / per_episode)")
        is_mine = res.get("checkpoint_sha256") == sha
        (mine if is_mine else others)[_key(res, is_mine)] = {
            "normalized_score": res["normalized_score"], "mean_return": res["mean_return"],
            "normalized_score_by_episode": [round(x, 3) for x in res["per_episode"]["normalized_score"]],
            "results_file": str(path)}
        seeds = len(res["seeds"])
        protocols.add((res["num_envs"], seeds, res["episodes"] // (res["num_envs"] * seeds), res["max_episode_steps"],
                       (res.get("config") or {}).get("backend", "?")))
    if not mine:
        raise ValueError(f"no results file is of this card's checkpoint (sha256 {sha})")
    if len(protocols) != 1:
        raise ValueError(f"the results files were evaluated under different protocols: {sorted(protocols)}")
    (envs, seeds, per_env, steps, backend), = protocols
    return {**card,
            "evaluation": f"default protocol: {envs} envs x {per_env} consecutive episodes of {steps} steps, "
                          f"{seeds} seed(s), {backend} backend; normalised with the shipped teachers' expert/random "
                          "scores",
            "results": mine, "compared_in_the_same_run": others, "trained_in": card.get("source"), "source": source}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("card", type=Path, help="the card `go2bench export --card` wrote beside the checkpoint")
    p.add_argument("--results", nargs="+", type=Path, required=True,
                   help="`go2bench eval` results of the checkpoint (and of agents evaluated beside it)")
    p.add_argument("--source", required=True, help="where the run's files are committed (recorded in the card)")
    args = p.parse_args(argv)
    card = json.loads(args.card.read_text())
    filled = fill(card, [(r, json.loads(r.read_text())) for r in args.results], args.source)
    args.card.write_text(json.dumps(filled, indent=2) + "\n")
    print(f"{args.card}: " + ", ".join(f"{k} {v['normalized_score']:.3f}" for k, v in filled["results"].items()))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"error: {' '.join(str(e).split())}")
