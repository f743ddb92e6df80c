"""Evaluation throughput of the batched KV-cache Vintix agent against the original one-env-at-a-time loop.

Both sides use the same model (same weights, same process, same machine, eval mode):

* ``batched`` (eager): :class:`go2bench.vintix.inference.VintixPolicy` over N envs at once
  (through :class:`go2bench.agents.vintix_agent.VintixAgent`) with ``cuda_graph=False``: one token
  per env per step appended to a ring-buffer KV cache of ``context_len`` slots, op by op;
* ``graph``: the same policy with its decode step replayed as one CUDA graph (the ``go2bench
  eval`` default on CUDA); on the CPU this row is skipped with the reason;
* ``naive``: the original workflow's way: for each env in turn, every step runs a full forward
  pass of the model over that env's last ``context_len`` tokens (batch 1) and takes the last
  position's action; nothing is cached.

Agent-side inference only, on synthetic observations and rewards (no simulator): the steady state
of an evaluation, where every env's context is full (10 episodes x 1000 steps >> context_len).
The batched policy is first run ``context_len`` steps to fill its cache, then timed; the naive
loop is timed on histories of ``context_len`` tokens. Correctness, always checked: the eager
policy against the naive loop on a short stream, and the graph against the eager policy on a
stream of ``context_len + 32`` steps (the ring buffer wraps) with episode starts (max abs diff). ``--with-env S`` additionally times the batched agent
driving the real simulation (CPU Genesis) for S steps, to show where the time goes in ``go2bench eval``.

Usage::

    python benchmarks/eval_throughput.py --checkpoint runs/vintix/final.pt        # a trained model
    python benchmarks/eval_throughput.py --model seed --context-len 2048          # random weights
    python benchmarks/eval_throughput.py --quick                                  # tiny model, seconds
    python3 benchmarks/eval_throughput.py --device cuda --checkpoint go2bench/zoo/vintix/vintix.pt --steps 200

Nothing is trained. Results go to ``benchmarks/results/eval_throughput_<device>.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OBS_DIM, ACT_DIM = 33, 12


def build_policy(args):
    """An eager VintixPolicy from ``--checkpoint``, else a randomly initialised model of ``--model``."""
    from go2bench.vintix.inference import VintixPolicy

    if args.checkpoint:
        policy = VintixPolicy.load(args.checkpoint, device=args.device, cuda_graph=False)
        if args.context_len:
            policy.context_len = int(args.context_len)
        return policy, f"checkpoint {args.checkpoint}"
    from go2bench.vintix.config import make_model_config
    from go2bench.vintix.model import VintixModel

    torch.manual_seed(0)
    cfg = make_model_config(args.model, {"dropout": 0.0})
    groups = {
        "go2_walk": {
            "obs_dim": OBS_DIM, "act_dim": ACT_DIM, "env_id": "Go2Walk-v0", "task_name": "walk",
            "reward_scale": 1.0, "obs_mean": [0.0] * OBS_DIM, "obs_std": [1.0] * OBS_DIM,
            "act_mean": [0.0] * ACT_DIM, "act_std": [1.0] * ACT_DIM,
        }
    }
    model = VintixModel(cfg, groups)
    return (VintixPolicy(model, groups, args.context_len or 2048, device=args.device, cuda_graph=False),
            f"random init, preset {args.model}")


def graph_policy(eager):
    """The same model and settings with the CUDA-graph decode step; (policy, None) or (None, why not)."""
    from go2bench.vintix.graph_decode import graph_unavailable_reason
    from go2bench.vintix.inference import VintixPolicy

    why = graph_unavailable_reason(eager.device)
    if why:
        return None, why
    return VintixPolicy(eager.model, eager.groups, eager.context_len, eager.device, context=eager.context,
                        cuda_graph=True), None


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def naive_policy(policy, num_envs: int, group: str, prefill: int = 0):
    """The original workflow's loop over the same model: go2bench's training-exact
    :class:`~go2bench.vintix.recompute.RecomputePolicy` (for each env in turn, a full forward over its last
    ``context_len`` tokens), with ``prefill`` random tokens per env already in context (a full window to time)."""
    from go2bench.vintix.recompute import RecomputePolicy

    naive = RecomputePolicy(policy.model, policy.groups, policy.context_len, policy.device, context=policy.context)
    naive.reset(num_envs, group)
    g, dev = torch.Generator().manual_seed(1), policy.device
    naive._tokens = [(torch.randn(prefill, naive._obs_dim, generator=g).to(dev),
                      torch.randn(prefill, naive._act_dim, generator=g).to(dev) * 0.5,
                      torch.randn(prefill, generator=g).to(dev) * 0.02) for _ in range(num_envs)]
    return naive


def synthetic_stream(steps: int, n: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for t in range(steps):
        obs = torch.randn(n, OBS_DIM, generator=g).to(device)
        rew = (torch.rand(n, generator=g) * 0.03).to(device)
        start = torch.zeros(n, dtype=torch.bool, device=device)
        if t == 0:
            start[:] = True
        yield obs, rew, start


def check_equal(policy, group, n: int = 2, steps: int = 24) -> float:
    """Max |a_batched - a_naive| over a short stream with an episode boundary (contexts never clear)."""
    naive = naive_policy(policy, n, group)
    ref = []
    stream = list(synthetic_stream(steps, n, policy.device, seed=5))
    stream[steps // 2][2][:] = True  # an episode start in the middle
    for obs, rew, start in stream:
        ref.append(naive.act(obs, rew, start))
    policy.reset(n, group)
    err = 0.0
    for (obs, rew, start), r in zip(stream, ref):
        err = max(err, float((policy.act(obs, rew, start) - r).abs().max()))
    return err


def check_graph(eager, graph, group, n: int) -> tuple[float, float]:
    """(max |a_graph - a_eager| over ``context_len + 32`` steps (the ring buffer wraps), episode starts for
    all envs at step 0 and for every other env a third of the way in; seconds of the graph's capture)."""
    steps = eager.context_len + 32
    eager.reset(n, group)
    sync(graph.device)
    t0 = time.perf_counter()
    graph.reset(n, group)  # captures the step for this N and group (later resets reuse it)
    sync(graph.device)
    capture_s = time.perf_counter() - t0
    err = 0.0
    for t, (obs, rew, start) in enumerate(synthetic_stream(steps, n, eager.device, seed=7)):
        if t == steps // 3:
            start[::2] = True
        err = max(err, float((graph.act(obs, rew, start) - eager.act(obs, rew, start)).abs().max()))
    return err, capture_s


def time_batched(policy, group, n: int, steps: int, fill: int) -> dict:
    from go2bench.agents.vintix_agent import VintixAgent

    agent = VintixAgent(policy)
    agent.group = group
    policy.reset(n, group)
    agent.num_envs, agent.obs_dim = n, policy.groups[group]["obs_dim"]
    for obs, rew, start in synthetic_stream(fill, n, policy.device, seed=2):
        agent.act(obs, rew, start)
    stream = list(synthetic_stream(steps, n, policy.device, seed=3))
    for s in stream:
        s[2][:] = False
    sync(policy.device)
    t0 = time.perf_counter()
    for obs, rew, start in stream:
        agent.act(obs, rew, start)
    sync(policy.device)
    wall = time.perf_counter() - t0
    return {"num_envs": n, "steps": steps, "filled_tokens": min(fill, policy.context_len), "wall_s": wall,
            "env_steps_per_s": n * steps / wall, "ms_per_batch_step": 1e3 * wall / steps,
            "decode": dict(policy.decode_info)}


def time_naive(policy, group, n: int, steps: int) -> dict:
    naive = naive_policy(policy, n, group, prefill=policy.context_len)
    stream = list(synthetic_stream(steps, n, policy.device, seed=3))
    for s in stream:
        s[2][:] = False
    naive.act(*stream[0])  # warm-up
    sync(policy.device)
    t0 = time.perf_counter()
    for obs, rew, start in stream[1:]:
        naive.act(obs, rew, start)
    sync(policy.device)
    wall = time.perf_counter() - t0
    timed = steps - 1
    return {"num_envs": n, "steps": timed, "context_tokens": policy.context_len, "wall_s": wall,
            "env_steps_per_s": n * timed / wall, "ms_per_env_step": 1e3 * wall / (n * timed)}


def time_with_env(policy, n: int, steps: int, backend: str) -> dict:
    """The batched agent driving the real simulation (one episode of ``steps`` steps per env)."""
    from go2bench.eval.protocol import evaluate_in_context
    from go2bench.agents.vintix_agent import VintixAgent

    env_id = next((g["env_id"] for g in policy.groups.values() if g.get("env_id")), "Go2Walk-v0")
    res = evaluate_in_context(VintixAgent(policy), env_id, episodes=1, num_envs=n, seeds=[0], backend=backend,
                              max_episode_steps=steps, progress=False)
    wall = res["per_seed"][0]["wall_s"]
    return {"env_id": env_id, "num_envs": n, "steps": steps, "wall_s": wall, "env_steps_per_s": n * steps / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="A Vintix checkpoint (else a randomly initialised model).")
    ap.add_argument("--model", default="seed", help="Preset of the random model (tiny, seed, small, paper).")
    ap.add_argument("--context-len", type=int, default=None, help="Default: the checkpoint's, else 2048.")
    ap.add_argument("--num-envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50, help="Timed batch steps of the batched agent.")
    ap.add_argument("--naive-steps", type=int, default=3, help="Timed steps (x num_envs forwards) of the naive loop.")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--check", action="store_true", help="(kept for old command lines: the checks always run)")
    ap.add_argument("--with-env", type=int, default=0, metavar="STEPS",
                    help="Also time the batched agent with the simulation for STEPS steps.")
    ap.add_argument("--backend", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--quick", action="store_true", help="tiny model, context 256, 16 envs: seconds")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.model, args.context_len, args.num_envs, args.steps = "tiny", args.context_len or 256, 16, 20
    if args.threads:
        torch.set_num_threads(args.threads)

    policy, source = build_policy(args)
    group = next(iter(policy.groups))
    out: dict = {
        "benchmark": "eval_throughput", "model": source, "device": str(policy.device),
        "context_len": policy.context_len, "num_envs": args.num_envs,
        "model_params": sum(p.numel() for p in policy.model.parameters()),
        "date": _dt.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv[1:],
    }
    try:
        from go2bench.core.provenance import hardware, versions

        out["versions"], out["hardware"] = versions(), hardware(str(policy.device))
    except Exception:  # noqa: BLE001
        pass
    eager = policy
    graph, why_not = graph_policy(eager)
    out["max_abs_action_diff"] = check_equal(eager, group)  # eager against the naive loop
    if graph is not None:
        out["max_abs_diff_graph_vs_eager"], capture_s = check_graph(eager, graph, group, args.num_envs)
        why_not = graph.decode_info["reason"]  # a failed capture leaves an eager policy: no graph row
    out["batched"] = time_batched(eager, group, args.num_envs, args.steps, fill=eager.context_len)
    if why_not:
        out["graph"], graph = {"skipped": why_not}, None
    else:
        out["graph"] = dict(time_batched(graph, group, args.num_envs, args.steps, fill=eager.context_len),
                            capture_s=capture_s)
    out["naive"] = time_naive(eager, group, args.num_envs, args.naive_steps + 1)
    naive_rate = out["naive"]["env_steps_per_s"]
    out["speedup"] = out["batched"]["env_steps_per_s"] / naive_rate
    rows = [("naive: one env at a time, full recompute", out["naive"], "-", "1.0x"),
            ("batched KV cache, eager", out["batched"], f"vs naive {out['max_abs_action_diff']:.1e}",
             f"{out['speedup']:,.1f}x")]
    if "env_steps_per_s" in out["graph"]:
        out["graph_speedup"] = out["graph"]["env_steps_per_s"] / naive_rate
        out["graph_vs_eager"] = out["graph"]["env_steps_per_s"] / out["batched"]["env_steps_per_s"]
        rows.append(("batched KV cache, CUDA graph", out["graph"],
                     f"vs eager {out['max_abs_diff_graph_vs_eager']:.1e}", f"{out['graph_speedup']:,.1f}x"))
    print(f"{policy.device.type}, {out['model']}, context {policy.context_len}, {args.num_envs} envs")
    print(f"| {'path':<42} | {'env-steps/s':>12} | {'vs naive':>9} | {'max abs action diff':>20} |")
    print(f"|{'-' * 44}|{'-' * 13}:|{'-' * 10}:|{'-' * 21}:|")
    for name, r, diff, ratio in rows:
        print(f"| {name:<42} | {r['env_steps_per_s']:>12,.0f} | {ratio:>9} | {diff:>20} |")
    if "skipped" in out["graph"]:
        print(f"CUDA graph row skipped: {out['graph']['skipped']}")
    else:
        print(f"graph / eager: {out['graph_vs_eager']:.2f}x (capture at reset: {out['graph']['capture_s']:.2f} s)")
    if args.with_env:
        out["with_env"] = time_with_env(graph or eager, args.num_envs, args.with_env, args.backend)
        print(f"batched agent + {args.backend} simulation: {out['with_env']['env_steps_per_s']:,.0f} env-steps/s")
    path = Path(args.out) if args.out else RESULTS_DIR / f"eval_throughput_{policy.device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
