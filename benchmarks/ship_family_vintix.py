"""Put a family-trained Vintix into the zoo with its model card filled from its evaluation (issue 17).

Takes what a device call brought back, ``go2bench export``'s weights-only checkpoint and its card skeleton, and
the family-protocol results of that checkpoint (``go2bench eval --family F``: its own results file and those of
the agents it was evaluated beside), and writes ``go2bench/zoo/<env>/<family>/<kind>/{vintix.pt,model_card.json}``
where ``kind`` is ``vintix`` (trained on whole histories) or ``vintix-episodic`` (the no-context baseline). The
agents ``vintix`` and ``vintix-episodic`` load these when evaluated in that family without a checkpoint.
The card's ``results`` are read from the results files (never typed): per-episode IQM with 95% intervals,
zero-shot / final / AUC, and the same numbers of every other agent in the same run.

A model trained on several robots' histories (its card names several groups, e.g. the family stage on A1, Go1
and ANYmal C) has no single zoo place: give ``--out DIR`` and its results on any of its robots; the checkpoint and
the filled card go to DIR (``--out`` also works for a one-robot model kept outside the zoo).

    python benchmarks/ship_family_vintix.py --checkpoint /tmp/out/mc_velocity_baseline.pt \\
        --card /tmp/out/mc_velocity_baseline_card.json --results RUN/results/all/vintix_....json \\
        --compare RUN/results/all/teacher-blind.json --compare RUN/results/all/vintix-episodic_....json \\
        --source benchmarks/results/family_study/mini_cheetah_velocity
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

ZOO = Path(__file__).resolve().parents[1] / "go2bench" / "zoo"


def summary(results: dict[str, Any], path: Path) -> dict[str, Any]:
    """The family protocol's headline numbers of one results file (as the evaluator wrote them)."""
    fam = results.get("family")
    if not isinstance(fam, dict) or "per_episode" not in fam:
        raise ValueError(f"{path}: not a family-protocol results file (no family.per_episode)")
    pe = fam["per_episode"]
    cell = {k: {"iqm": fam[k]["iqm"], "ci95_thetas": fam[k]["ci95_thetas"]} for k in ("zero_shot", "final", "auc")}
    return {"agent": results.get("agent_spec") or results.get("agent"), "env": results.get("env"),
            "results_file": str(path), **cell,
            "iqm_by_episode": [round(x, 4) for x in pe["iqm"]],
            "ci95_thetas_by_episode": [[round(a, 4), round(b, 4)] for a, b in
                                       zip(pe["ci95_thetas_low"], pe["ci95_thetas_high"])]}


def evaluation(results: dict[str, Any]) -> str:
    fam, cfg = results["family"], results.get("config") or {}
    warm = cfg.get("warmup_steps") or 0
    return (f"family protocol: {fam['suite']} {fam['split']} split, {len(fam['tasks'])} thetas x seeds {fam['seeds']}, "
            f"{fam['episodes']} consecutive episodes per trial (context kept), "
            f"{results.get('max_episode_steps', '?')}-step episodes, backend {cfg.get('backend', '?')}"
            + (f", after a warm-up of {warm} unscored steps per trial" if warm else ", cold start")
            + "; normalised per theta with the privileged teacher (1) and random actions (0); IQM, 95% intervals "
              "resampling thetas then seeds")


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="go2bench export's weights-only checkpoint")
    p.add_argument("--card", required=True, help="go2bench export's card skeleton of it")
    p.add_argument("--results", required=True, action="append", help="its family results file (repeat: warm-up runs)")
    p.add_argument("--compare", action="append", default=[], help="results of agents evaluated beside it")
    p.add_argument("--source", required=True, help="where the run's files are committed (recorded in the card)")
    p.add_argument("--note", action="append", default=[], help="a limitation to state in the card (repeat)")
    p.add_argument("--zoo", default=str(ZOO))
    p.add_argument("--out", help="write vintix.pt and model_card.json here instead of the zoo (several robots)")
    args = p.parse_args(argv)
    ckpt, card = Path(args.checkpoint), json.loads(Path(args.card).read_text())
    sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    if card.get("sha256") != sha:
        raise ValueError(f"{args.card}: its sha256 is not that of {ckpt} ({sha}); give the card export wrote with it")
    meta = torch.load(ckpt, map_location="cpu", weights_only=True)
    context = (meta.get("train_config") or {}).get("context", "history")
    envs = list(card["groups"].values())
    if len(envs) != 1 and not args.out:
        raise ValueError(f"{args.card}: a model of {len(envs)} robots ({', '.join(envs)}) has no single zoo place; "
                         "give --out DIR")
    runs = [(Path(r), json.loads(Path(r).read_text())) for r in args.results]
    family = runs[0][1]["family"]["name"]
    for path, res in runs:
        if res["family"]["name"] != family or res.get("env") not in envs:
            raise ValueError(f"{path}: results of another family/env than {family}/{' or '.join(envs)}")
        exported_from = (meta.get("exported_from") or {}).get("sha256")  # the training's final.pt it was made from
        if res.get("checkpoint_sha256") not in (sha, exported_from):
            raise ValueError(f"{path}: results of another checkpoint (sha256 {res.get('checkpoint_sha256')}, "
                             f"not {sha} nor the file it was exported from)")
    kind = "vintix" if context == "history" else "vintix-episodic"
    env_id = envs[0] if len(envs) == 1 else envs
    out = Path(args.out) if args.out else Path(args.zoo) / envs[0] / family / kind
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ckpt, out / "vintix.pt")
    card.update({
        "env_id": env_id, "family": family,
        "agent": (f"{kind} (default checkpoint in the {family} family of {envs[0]})" if not args.out else
                  f"{kind} of the {family} family, trained on {', '.join(envs)}"),
        "evaluation": [evaluation(res) for _, res in runs],
        "results": [summary(res, path) for path, res in runs],
        "compared_in_the_same_run": [summary(json.loads(Path(c).read_text()), Path(c)) for c in args.compare],
        "trained_in": card.get("source"), "source": args.source, "notes": args.note,
    })
    (out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{out}: {kind} of {'/'.join(envs)} ({family}); final IQM "
          + ", ".join(f"{r['final']['iqm']:.2f}" for r in card["results"]))
    return out


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"error: {' '.join(str(e).split())}")
