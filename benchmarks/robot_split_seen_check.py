"""Control for a leave-one-robot-out fold: does the fold's Vintix walk on the robots it WAS trained on?

Why: a fold that fails on its held-out robot says something about transfer only if it walks on its
training robots. This evaluates a fold checkpoint (`go2bench train` on the pooled dataset of
`go2bench data robot-split`) on one or more of its training robots with the default in-context protocol
(cold start, K episodes per env), normalised by each robot's shipped teacher and random agent, and
writes one JSON with a row per (checkpoint, robot) pair; a pair whose robot the checkpoint never saw is
skipped and says so.

    python benchmarks/robot_split_seen_check.py --checkpoint heldout_go2.pt --env A1Walk-v0 \
        --episodes 3 --num-envs 1 --max-episode-steps 300 --out benchmarks/results/gpu_robots_split/seen_check.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def check(checkpoint: str, env_id: str, args) -> dict:
    from go2bench.agents.vintix_agent import VintixAgent
    from go2bench.envs import robot_for_env
    from go2bench.envs.robot_split import load_robot_split
    from go2bench.eval.protocol import evaluate_in_context
    from go2bench.eval.robot_split_protocol import prepare_agent
    from go2bench.vintix.inference import VintixPolicy

    split = load_robot_split(args.split)
    policy = VintixPolicy.load(checkpoint, device=args.device)
    info = policy.groups.get(split.group)
    folds = [f for f in split.folds.values() if info is not None and f.dataset == info.get("dataset")]
    if not folds:
        raise SystemExit(f"Error: {checkpoint}: no group {split.group!r} trained on a fold dataset of {args.split} "
                         f"(groups: {sorted(policy.groups)}); pass a checkpoint of `go2bench data robot-split`'s data")
    fold, robot = folds[0], robot_for_env(env_id)
    if robot not in fold.train:
        return {"checkpoint": checkpoint, "env": env_id, "skipped": f"not trained on {robot}: the fold's held-out "
                f"robot is {fold.held_out}; this control evaluates a fold on robots it has seen"}
    agent = VintixAgent(policy, checkpoint=checkpoint)
    prepare_agent(agent, fold)  # the fold's own checks (never saw its held-out robot) and its group pinned
    t0 = time.perf_counter()
    res = evaluate_in_context(agent, env_id, episodes=args.episodes, num_envs=args.num_envs, seeds=args.seeds,
                              backend=args.backend, max_episode_steps=args.max_episode_steps, progress=False,
                              device=args.device)
    return {"checkpoint": checkpoint, "checkpoint_sha256": res["checkpoint_sha256"],
            "fold_held_out": fold.held_out, "trained_on": list(fold.train), "env": env_id,
            "normalized_score": res["normalized_score"], "per_episode": res["per_episode"]["normalized_score"],
            "mean_length": res["mean_length"], "fall_rate": res["fall_rate"], "wall_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", required=True, help="a fold's Vintix checkpoint (repeatable)")
    ap.add_argument("--env", action="append", required=True, help="a training robot's env id (repeatable)")
    ap.add_argument("--split", default="robots-v0")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--num-envs", type=int, default=1)
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    ap.add_argument("--max-episode-steps", type=int, default=1000)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    for c in args.checkpoint:
        if not Path(c).is_file():
            print(f"Error: --checkpoint {c}: no such file", file=sys.stderr)
            return 2
    from go2bench.core.provenance import versions, write_json_atomic

    rows = []
    print(f"{'checkpoint':<28} {'env':<20} {'score':>7} {'length':>7} {'falls':>6}  per episode")
    for c in args.checkpoint:
        for env_id in args.env:
            r = check(c, env_id, args)
            if "skipped" in r:
                print(f"{Path(c).name:<28} {env_id:<20} skipped: {r['skipped']}")
                continue
            rows.append(r)
            print(f"{Path(c).name:<28} {env_id:<20} {r['normalized_score']:>7.3f} {r['mean_length']:>7.1f} "
                  f"{r['fall_rate']:>6.0%}  {' '.join(f'{x:.3f}' for x in r['per_episode'])}", flush=True)
    if not rows:
        print("Error: no (checkpoint, env) pair had a robot the checkpoint was trained on", file=sys.stderr)
        return 2
    write_json_atomic(args.out, {"what": __doc__.splitlines()[0], "config": {k: (str(v) if isinstance(v, Path) else v)
                                                                           for k, v in vars(args).items()},
                                 "versions": versions(), "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
