"""Evaluation throughput of the batched KV-cache Vintix agent against the original one-env-at-a-time loop.

Both sides use the same model (same weights, same process, same machine, eval mode):

* ``batched`` (eager): :class:`go2bench.vintix.inference.VintixPolicy` over N envs at once
  (through :class:`go2bench.agents.vintix_agent.VintixAgent`) with ``cuda_graph=False``: one token
  per env per step appended to a ring-buffer KV cache of ``context_len`` slots, op by op; the float32
  reference of every variant;
* the decode variants (``--variants``, table :data:`VARIANTS`), each replayed as one CUDA graph on a CUDA
  device (eagerly elsewhere, so the script runs on the CPU): ``graph`` (the ``go2bench eval`` default on CUDA;
  its row is also written under the older keys ``graph``, ``graph_speedup``, ``graph_vs_eager``), the attention
  written as two matrix-vector products (``-matmul``), no attention mask once every context is full
  (``-nomask``: a second graph; SDPA may then pick its flash kernel), a bfloat16/float16 KV cache
  (``-bf16kv``/``-fp16kv``: half the bytes the attention reads; lossy) and the step through ``torch.compile``
  (``-compiled``: opt-in, it compiles at the capture, tens of seconds);
* ``naive``: the original workflow's way: for each env in turn, every step runs a full forward
  pass of the model over that env's last ``context_len`` tokens (batch 1) and takes the last
  position's action; nothing is cached.

Agent-side inference only, on synthetic observations and rewards (no simulator): the steady state
of an evaluation, where every env's context is full (10 episodes x 1000 steps >> context_len).
Every batched path runs the same stream: ``context_len + 300`` steps that fill the cache and wrap the ring
buffer, with episode starts (all envs at step 0, every other env a third of the way in), then ``--steps`` timed
steps; each variant's max abs action difference against the eager float32 reference covers the whole stream.
The naive loop is timed on histories of ``context_len`` tokens; the eager policy is checked against it on a
short stream. ``--with-env S`` additionally times the default agent driving the real simulation (CPU
Genesis) for S steps, to show where the time goes in ``go2bench eval``.

Usage::

    python benchmarks/eval_throughput.py --checkpoint runs/vintix/final.pt        # a trained model
    python benchmarks/eval_throughput.py --model seed --context-len 2048          # random weights
    python benchmarks/eval_throughput.py --quick                                  # tiny model, seconds
    python3 benchmarks/eval_throughput.py --device cuda --checkpoint go2bench/zoo/vintix/vintix.pt --steps 200
    python3 benchmarks/eval_throughput.py --device cuda ... --variants graph,graph-compiled,graph-compiled-matmul

Nothing is trained. Results go to ``benchmarks/results/eval_throughput_<device>.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import sys
import time
import warnings
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OBS_DIM, ACT_DIM = 33, 12


def build_policy(args):
    """An eager VintixPolicy from ``--checkpoint``, else a randomly initialised model of ``--model``."""
    from go2bench.vintix.inference import VintixPolicy

    if args.checkpoint:
        policy = VintixPolicy.load(args.checkpoint, device=args.device, cuda_graph=False, attention="sdpa")
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
    return (VintixPolicy(model, groups, args.context_len or 2048, device=args.device, cuda_graph=False, attention="sdpa"),
            f"random init, preset {args.model}")


VARIANTS = {  # name -> VintixPolicy decode options: each a CUDA graph on a CUDA device, eager elsewhere
    "graph": {"attention": "sdpa"},  # float32 cache, F.scaled_dot_product_attention (the default until 2026-12-01)
    "graph-matmul": {"attention": "matmul"},
    "graph-nomask": {"unmasked_when_full": True},
    "graph-bf16kv": {"kv_dtype": "bfloat16"},
    "graph-fp16kv": {"kv_dtype": "float16"},
    "graph-bf16kv-matmul": {"kv_dtype": "bfloat16", "attention": "matmul"},
    "graph-fp16kv-matmul": {"kv_dtype": "float16", "attention": "matmul"},
    "graph-bf16kv-nomask": {"kv_dtype": "bfloat16", "unmasked_when_full": True},
    "graph-fp16kv-nomask": {"kv_dtype": "float16", "unmasked_when_full": True},
    "graph-compiled": {"compile_step": True},
    "graph-compiled-matmul": {"compile_step": True, "attention": "matmul"},
    "graph-compiled-fp16kv-matmul": {"compile_step": True, "kv_dtype": "float16", "attention": "matmul"},
    "graph-compiled-fp16kv-nomask": {"compile_step": True, "kv_dtype": "float16", "unmasked_when_full": True},
}
# the likeliest gains first (--max-seconds skips the last ones); compiled variants are opt-in (tens of seconds to start)
DEFAULT_VARIANTS = ("graph,graph-fp16kv-nomask,graph-fp16kv,graph-matmul,graph-fp16kv-matmul,graph-nomask,"
                    "graph-bf16kv-nomask")
RESERVE_S = 10.0  # --max-seconds: kept for the naive loop and the JSON after the last variant
COMPILE_S = 60.0  # --max-seconds: what a first torch.compile'd variant is expected to take (compile + capture + run)
CHECK_EXTRA = 300  # steps past context_len before the timed ones: the ring buffer has wrapped by 300 slots


def variant_policy(eager, options: dict):
    """The eager policy's model and settings with ``options`` and a CUDA graph requested: where none can be used
    (the CPU, a failed capture) the step runs eagerly and its ``decode_info`` says why (the warning is muted)."""
    from go2bench.vintix.inference import VintixPolicy

    return VintixPolicy(eager.model, eager.groups, eager.context_len, eager.device, context=eager.context,
                        cuda_graph=True, **options)


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


def decode_stream(context_len: int, n: int, timed: int, device) -> tuple[list, int]:
    """(steps, how many come before the timed ones): ``context_len + CHECK_EXTRA`` steps that fill the cache and
    wrap the ring buffer, with episode starts for all envs at step 0 and for every other env a third of the way in,
    then ``timed`` steps without starts (the steady state of an evaluation: every context full)."""
    fill = context_len + CHECK_EXTRA
    stream = list(synthetic_stream(fill + timed, n, device, seed=7))
    stream[fill // 3][2][::2] = True
    return stream, fill


def run_decode(policy, group, n: int, stream: list, fill: int) -> tuple[dict, torch.Tensor]:
    """Reset (a CUDA graph's capture, a compiled step's compilation happen here or at the first step), run the
    ``fill`` steps, then time the rest; (the timing row, every step's actions (T, N, A))."""
    from go2bench.agents.vintix_agent import VintixAgent

    agent = VintixAgent(policy)
    agent.group, agent.num_envs, agent.obs_dim = group, n, policy.groups[group]["obs_dim"]
    sync(policy.device)
    t0 = time.perf_counter()
    policy.reset(n, group)  # captures the step for this N and group (later resets reuse it)
    sync(policy.device)
    t1 = time.perf_counter()
    acts = [agent.act(*stream[0])]
    sync(policy.device)
    setup = (t1 - t0, time.perf_counter() - t1)
    acts += [agent.act(*s) for s in stream[1:fill]]
    sync(policy.device)
    t0 = time.perf_counter()
    acts += [agent.act(*s) for s in stream[fill:]]
    sync(policy.device)
    wall, steps = time.perf_counter() - t0, len(stream) - fill
    return ({"num_envs": n, "steps": steps, "filled_tokens": min(fill, policy.context_len), "wall_s": wall,
             "env_steps_per_s": n * steps / wall, "ms_per_batch_step": 1e3 * wall / steps,
             "decode": dict(policy.decode_info), "decode_options": dict(policy.decode_options),
             "capture_s": setup[0], "first_step_s": setup[1]}, torch.stack(acts))


def run_variants(eager, names: list[str], group, n: int, stream: list, fill: int, ref: torch.Tensor,
                 end: float, ref_s: float) -> dict:
    """Each variant's timing row with its max and mean |action - eager action| over the whole stream, or
    {"skipped": why}: it failed, or it would not end by ``end`` (perf_counter) by its estimate, the longest run so
    far of its kind (compiled or not; the reference's, ``ref_s``, at least, and COMPILE_S for a first compile)."""
    rows, took = {}, {False: ref_s, True: COMPILE_S}
    for name in names:
        compiled = bool(VARIANTS[name].get("compile_step"))
        if time.perf_counter() + took[compiled] > end:
            rows[name] = {"skipped": f"out of time (--max-seconds): it would take about {took[compiled]:.0f} s"}
            continue
        t0 = time.perf_counter()
        try:
            policy = variant_policy(eager, VARIANTS[name])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "VintixPolicy: decode step runs eagerly", RuntimeWarning)
                row, acts = run_decode(policy, group, n, stream, fill)
            d = (acts.float() - ref).abs()
            row["max_abs_action_diff_vs_eager"] = _finite(d.max())
            row["mean_abs_action_diff_vs_eager"] = _finite(d.mean())
            row["compared_steps"] = len(stream)
            rows[name] = row
        except Exception as e:  # noqa: BLE001 - one variant failing (e.g. compilation) leaves the others' rows
            rows[name] = {"skipped": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
        took[compiled] = max(took[compiled], time.perf_counter() - t0)
        policy = None  # its captured step points back at it: a cycle, freed (with its cache) by the collector
        gc.collect()
        if eager.device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _finite(x) -> float | str:
    x = float(x)
    return x if x == x and abs(x) != float("inf") else str(x)  # JSON has no NaN or inf


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
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help=f"Comma list of decode variants to time (of {', '.join(VARIANTS)}); '' for none.")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="Budget from the script's start: a variant starts only if, by its estimate (run_variants), it "
                         f"ends {RESERVE_S:.0f} s before (else skipped, saying so), so the JSON is written in time.")
    ap.add_argument("--check", action="store_true", help="(kept for old command lines: the checks always run)")
    ap.add_argument("--with-env", type=int, default=0, metavar="STEPS",
                    help="Also time the batched agent with the simulation for STEPS steps.")
    ap.add_argument("--backend", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--quick", action="store_true", help="tiny model, context 256, 16 envs: seconds")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t_start = time.perf_counter()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
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
    out["max_abs_action_diff"] = check_equal(eager, group)  # eager against the naive loop
    stream, fill = decode_stream(eager.context_len, args.num_envs, args.steps, eager.device)
    t0 = time.perf_counter()
    out["batched"], ref = run_decode(eager, group, args.num_envs, stream, fill)
    end = t_start + args.max_seconds - RESERVE_S if args.max_seconds else float("inf")
    out["variants"] = run_variants(eager, names, group, args.num_envs, stream, fill, ref, end, time.perf_counter() - t0)
    out["naive"] = time_naive(eager, group, args.num_envs, args.naive_steps + 1)
    naive_rate, eager_rate = out["naive"]["env_steps_per_s"], out["batched"]["env_steps_per_s"]
    out["speedup"] = eager_rate / naive_rate
    for row in out["variants"].values():
        if "env_steps_per_s" in row:
            row["speedup_vs_naive"] = row["env_steps_per_s"] / naive_rate
            row["vs_eager"] = row["env_steps_per_s"] / eager_rate
    g = out["variants"].get("graph", {})  # the fields of the graph row from before the variants
    if g.get("decode", {}).get("mode") == "cuda-graph":
        out["graph"], out["max_abs_diff_graph_vs_eager"] = g, g["max_abs_action_diff_vs_eager"]
        out["graph_speedup"], out["graph_vs_eager"] = g["speedup_vs_naive"], g["vs_eager"]
    else:
        out["graph"] = {"skipped": g.get("skipped") or (g.get("decode") or {}).get("reason") or "not requested"}
    print_table(out, policy, args.num_envs)
    if args.with_env:
        from go2bench.vintix.inference import VintixPolicy  # the `go2bench eval` default decode

        default = VintixPolicy(eager.model, eager.groups, eager.context_len, eager.device, context=eager.context)
        out["with_env"] = time_with_env(default, args.num_envs, args.with_env, args.backend)
        print(f"batched agent + {args.backend} simulation: {out['with_env']['env_steps_per_s']:,.0f} env-steps/s")
    from go2bench.core.provenance import write_json_atomic

    path = Path(args.out) if args.out else RESULTS_DIR / f"eval_throughput_{policy.device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    print(f"wrote {path} ({time.perf_counter() - t_start:.0f} s)")


def print_table(out: dict, policy, n: int) -> None:
    rows = [("naive: one env at a time, full recompute", "-", out["naive"], "-"),
            ("batched KV cache, eager (reference)", "eager", out["batched"],
             f"vs naive {out['max_abs_action_diff']:.1e}")]
    rows += [(name, r["decode"]["mode"], r, f"{r['max_abs_action_diff_vs_eager']:.1e}")
             for name, r in out["variants"].items() if "env_steps_per_s" in r]
    naive = out["naive"]["env_steps_per_s"]
    print(f"{policy.device.type}, {out['model']}, context {policy.context_len}, {n} envs")
    print(f"| {'path':<42} | {'mode':<10} | {'env-steps/s':>12} | {'ms/step':>8} | {'vs naive':>9} "
          f"| {'max abs action diff':>20} |")
    print(f"|{'-' * 44}|{'-' * 12}|{'-' * 13}:|{'-' * 9}:|{'-' * 10}:|{'-' * 21}:|")
    for name, mode, r, diff in rows:
        ms = r.get("ms_per_batch_step", 1e3 * n / r["env_steps_per_s"])
        print(f"| {name:<42} | {mode:<10} | {r['env_steps_per_s']:>12,.0f} | {ms:>8.3f} "
              f"| {r['env_steps_per_s'] / naive:>8,.1f}x | {diff:>20} |")
    eager_why: dict[str, list[str]] = {}
    for name, r in out["variants"].items():
        if "skipped" in r:
            print(f"{name} skipped: {r['skipped']}")
        elif r["decode"]["reason"]:
            eager_why.setdefault(r["decode"]["reason"], []).append(name)
    for why, names in eager_why.items():
        print(f"ran eagerly ({why}): {', '.join(names)}")
    print(f"variants: max abs action diff against the eager float32 reference over {len_stream(out)} steps "
          f"(ring buffer wrapped, episode starts); setup = reset (capture) + first step")
    if "graph_vs_eager" in out:
        print(f"graph / eager: {out['graph_vs_eager']:.2f}x (capture at reset: {out['graph']['capture_s']:.2f} s)")


def len_stream(out: dict) -> int:
    return out["batched"]["steps"] + out["context_len"] + CHECK_EXTRA


if __name__ == "__main__":
    main()
