"""Evaluation of several agents: one after the other (``--sequential``) against side by side in one scene.

``--protocol family`` (default): both ways go through :func:`go2bench.eval.multi_agent.evaluate_family_agents`;
``--protocol default`` (the in-context protocol of ``go2bench eval`` and the pipeline's eval stage):
through :func:`go2bench.eval.multi_agent.evaluate_in_context_agents`, one run per seed. Same arguments in
the same process (sequential first, then side by side; a one-env scene is built first so neither
pays the process's first build): sequential builds one scene of n envs per scene kind (family: n =
trials x seeds; default: ``--num-envs``) and runs the agents in turn; side by side builds one of A x n
envs and runs them at once (:mod:`go2bench.eval.side_by_side`). Reported per way: wall seconds, scene build seconds, evaluation
seconds (wall minus builds), batch steps and env steps, and the ratios sequential / side by side.
Every agent's returns are checked equal between the two ways (bit for bit).

On the CPU a batch step costs about in proportion to its envs, so side by side saves little there
(fewer Python and agent calls per env step), and it can lose: a scene steps until its slowest agent's
envs are done, so the envs of an agent that falls early keep stepping (more env steps); on a GPU a step at 64 or 600 envs costs
about the same, so the evaluation seconds divide by about the number of agents. The lead measures the
GPU with ``--backend gpu --device cuda``.

The family protocol's reference returns are placeholders (random -1, privileged 1 for every theta): this
measures time, not scores; the normalised numbers it prints are not meaningful.

    python benchmarks/eval_side_by_side.py                                  # CPU, 4 agents x 8 trials
    python benchmarks/eval_side_by_side.py --protocol default               # CPU, the pipeline's 4 agents x 8 envs
    python benchmarks/eval_side_by_side.py --backend gpu --device cuda --trials 32 --seeds 0,1 \\
        --episodes 10 --max-episode-steps 500 --out benchmarks/results/eval_side_by_side_gpu.json
    python benchmarks/eval_side_by_side.py --protocol default --backend gpu --device cuda --num-envs 10 \
        --episodes 10 --max-episode-steps 1000     # the gpu pipeline preset's eval stage
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
AGENTS = {"family": "random,teacher-blind,vintix,vintix:go2bench/zoo/vintix/vintix.pt",
          "default": "random,teacher,vintix,vintix-nocontext"}  # the second: the pipeline's eval agents, shipped Vintix


def evaluate(specs: list[str], args, side_by_side: bool, refs: dict | None) -> list[dict]:
    """Every agent's results, evaluated one way under ``args.protocol``."""
    from go2bench.eval.multi_agent import evaluate_family_agents, evaluate_in_context_agents

    common = dict(backend=args.backend, max_episode_steps=args.max_episode_steps, device=args.device,
                  episodes=args.episodes, progress=False, side_by_side=side_by_side, seeds=args.seeds)
    if args.protocol == "default":
        return evaluate_in_context_agents(specs, args.env, num_envs=args.num_envs, **common)
    return evaluate_family_agents(specs, args.env, args.family, args.split, trials=args.trials, references=refs,
                                  reference_cache=None, compute_references=False, bootstrap_reps=200, **common)


def run_steps(res: dict, n: int) -> list[int]:
    """The batch steps of each run of an agent's evaluation, as alone: one per seed (default), or one (family)."""
    if "per_seed" in res:
        return [s["env_steps"] // n for s in res["per_seed"]]
    return [res["env_steps"] // n]


def measure(specs: list[str], args, side_by_side: bool, refs: dict | None) -> tuple[dict[str, Any], dict[str, dict]]:
    """(timing row, results per spec) of one way of evaluating ``specs``."""
    t0 = time.perf_counter()
    results = evaluate(specs, args, side_by_side, refs)
    wall = time.perf_counter() - t0
    builds = results[-1]["process"]["scene_builds_s"] if not side_by_side else \
        sum({tuple(r["process"]["scene_kind"]): r["process"]["scene_build_s"] for r in results}.values())
    n = args.num_envs if args.protocol == "default" else args.trials * len(args.seeds)
    kinds: dict[tuple, list[list[int]]] = {}  # per scene kind, per agent, per run: its batch steps as alone
    for r in results:
        kinds.setdefault(tuple(r["process"]["scene_kind"]), []).append(run_steps(r, n))
    if side_by_side:  # each run of a scene kind as long as its longest agent's, stepping A x n envs
        longest = {k: [max(col) for col in zip(*v)] for k, v in kinds.items()}
        batch_steps = sum(sum(x) for x in longest.values())
        env_steps = sum(sum(x) * len(kinds[k]) * n for k, x in longest.items())
    else:
        batch_steps = sum(sum(steps) for v in kinds.values() for steps in v)
        env_steps = batch_steps * n
    row = {"way": "side by side" if side_by_side else "sequential", "wall_s": round(wall, 3),
           "scene_builds_s": round(builds, 3), "eval_s": round(wall - builds, 3), "scenes": len(kinds),
           "scene_envs": sorted({r["process"]["scene_envs"] for r in results}), "batch_steps": batch_steps,
           "env_steps": env_steps}
    row["ms_per_batch_step"] = round(1e3 * row["eval_s"] / batch_steps, 3)
    row["us_per_env_step"] = round(1e6 * row["eval_s"] / env_steps, 1)
    return row, {r["agent_spec"]: r for r in results}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=["family", "default"], default="family")
    p.add_argument("--env", default="Go2Walk-v0")
    p.add_argument("--family", default="velocity")
    p.add_argument("--split", default="test")
    p.add_argument("--agents", default=None, help=f"comma-separated agent specs [family: {AGENTS['family']}; "
                   f"default: {AGENTS['default']}]")
    p.add_argument("--trials", type=int, default=8, help="family protocol [%(default)s]")
    p.add_argument("--num-envs", type=int, default=8, help="default protocol: envs per agent [%(default)s]")
    p.add_argument("--seeds", default="0", help="comma-separated [%(default)s]")
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--max-episode-steps", type=int, default=100)
    p.add_argument("--backend", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--device", default="cpu", help="torch device of the agents")
    p.add_argument("--out", type=Path, default=None,
                   help="[benchmarks/results/eval_side_by_side[_default]_<backend>.json]")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    specs = [s for s in (args.agents or AGENTS[args.protocol]).split(",") if s]

    from go2bench.core.provenance import versions, write_json_atomic
    from go2bench.envs.walk_sim import make_walk_sim
    from go2bench.eval.family_protocol import family_tasks

    refs = None
    if args.protocol == "family":
        _, tasks = family_tasks(args.env, args.family, args.split, args.trials)
        refs = {t.id: {"random": -1.0, "privileged": 1.0} for t in tasks}
    t0 = time.perf_counter()
    make_walk_sim(args.env, 1, args.backend, max_episode_steps=10).close()
    warmup = time.perf_counter() - t0
    seq, seq_res = measure(specs, args, False, refs)
    sbs, sbs_res = measure(specs, args, True, refs)
    equal = {s: bool(np.array_equal(seq_res[s]["returns"], sbs_res[s]["returns"])
                     and seq_res[s]["lengths"] == sbs_res[s]["lengths"]) for s in specs}
    max_diff = max(float(np.max(np.abs(np.subtract(seq_res[s]["returns"], sbs_res[s]["returns"])))) for s in specs)
    ratios = {k: round(seq[k] / sbs[k], 3) for k in ("wall_s", "eval_s", "batch_steps") if sbs[k]}

    what = f"{args.family}/{args.split}: {len(specs)} agents x {args.trials} trials" if args.protocol == "family" \
        else f"default protocol: {len(specs)} agents x {args.num_envs} envs"
    print(f"{args.env} {what} x {len(args.seeds)} seed(s) x {args.episodes} episodes of {args.max_episode_steps} "
          f"steps, backend {args.backend}, agents on {args.device} (warm-up build {warmup:.1f} s)")
    cols = ("way", "wall_s", "scene_builds_s", "eval_s", "scenes", "batch_steps", "env_steps", "ms_per_batch_step",
            "us_per_env_step")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in (seq, sbs):
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    print("sequential / side by side: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    print(f"returns equal per agent: {equal} (max |difference| {max_diff:g})")

    out = {"benchmark": "eval_side_by_side", "date": _dt.datetime.now().isoformat(timespec="seconds"),
           "config": {"protocol": args.protocol, "env": args.env, "agents": specs, "seeds": args.seeds,
                      "episodes": args.episodes, "max_episode_steps": args.max_episode_steps, "backend": args.backend,
                      "device": args.device, **({"family": args.family, "split": args.split, "trials": args.trials,
                                                 "references": "placeholders (random -1, privileged 1): timing only"}
                                                if args.protocol == "family" else {"num_envs": args.num_envs})},
           "warmup_build_s": round(warmup, 3), "sequential": seq, "side_by_side": sbs,
           "ratio_sequential_over_side_by_side": ratios, "returns_equal": equal, "max_abs_return_diff": max_diff,
           "versions": versions()}
    mode = "" if args.protocol == "family" else "_default"
    path = args.out or RESULTS / f"eval_side_by_side{mode}_{args.backend}.json"
    write_json_atomic(path, out)
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
