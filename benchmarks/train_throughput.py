"""Vintix training throughput: tokens/s of full training steps, RoPE + flash SDPA vs an ALiBi additive bias.

What is timed: forward + backward + AdamW step of :class:`VintixModel` (bf16 autocast on CUDA,
float32 on CPU) on random inputs already on the device (no data loading), for

* ``rope``: attention via ``scaled_dot_product_attention(is_causal=True)``, no mask tensor, so
  PyTorch may pick the flash kernel;
* ``alibi``: the same model with ALiBi positions passed as a float ``attn_mask`` (B-independent
  (1, H, L, L) bias), which the flash kernel does not accept.

For each variant on CUDA the script also asks SDPA for the flash backend alone
(``sdpa_kernel(FLASH_ATTENTION)``) and records whether that works, and reports peak memory and
MFU = tokens/s x training FLOPs per token / the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOPS).

Optionally (``--data-steps N``) it also writes a synthetic dataset of 2 groups x ``--data-histories``
histories x N steps, builds the lazy window index and reads batches through a DataLoader with
workers, reporting the process's resident memory (RSS) before/after and samples/s.

Usage::

    python benchmarks/train_throughput.py --quick            # CPU, tiny shapes, a few seconds
    python benchmarks/train_throughput.py                    # seed preset, context 2048, batch 8
    python benchmarks/train_throughput.py --models seed,small,paper --steps 20
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import torch

from go2bench.vintix.config import make_model_config
from go2bench.vintix.model import VintixModel

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _flash_ok(model, batch, device) -> bool | None:
    if device.type != "cuda":
        return None
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), torch.autocast("cuda", dtype=torch.bfloat16):
            model(*batch)
        torch.cuda.synchronize()
        return True
    except RuntimeError:
        return False


def bench(preset: str, pos: str, L: int, B: int, steps: int, warmup: int, device: torch.device,
          compile_: bool = False) -> dict:
    torch.manual_seed(0)
    cfg = make_model_config(preset, {"pos_encoding": pos})
    groups = {"go2": {"obs_dim": 45, "act_dim": 12}}
    model = VintixModel(cfg, groups).to(device)
    if compile_:
        model.trunk.compile()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    obs = torch.randn(B, L, 45, device=device)
    pa = torch.randn(B, L, 12, device=device)
    pr = torch.randn(B, L, device=device)
    tgt = torch.randn(B, L, 12, device=device)
    grp = torch.zeros(B, dtype=torch.long, device=device)
    amp = device.type == "cuda"

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = model.loss(model(obs, pa, pr, grp), tgt, grp)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    tok_s = B * L * steps / dt
    res = {"model": preset, "pos_encoding": pos, "attention": "sdpa is_causal (no mask)" if pos == "rope"
           else "sdpa + float attn_mask (ALiBi bias)", "context_len": L, "batch_size": B, "steps": steps,
           "params": model.num_params(), "step_ms": 1000 * dt / steps, "tokens_per_s": tok_s,
           "flops_per_token": model.flops_per_token(L), "compiled": compile_}
    model.eval()
    res["flash_kernel_usable"] = _flash_ok(model, (obs, pa, pr, grp), device)
    if device.type == "cuda":
        res["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        res["mfu"] = tok_s * res["flops_per_token"] / peak if peak else None
    return res


def data_bench(steps: int, histories: int, context_len: int, batch: int, workers: int, batches: int) -> dict:
    from go2bench.histories.dataset_config import load_dataset_configs
    from go2bench.testing import write_synthetic_dataset
    from go2bench.vintix.data import MultiTaskWindows

    out = {"steps_per_history": steps, "histories_per_group": histories, "groups": 2}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        t0 = time.perf_counter()
        write_synthetic_dataset(tmp, "go2", n_histories=histories, steps=steps, obs_dim=45, act_dim=12,
                                episode_len=1000, env_id="Go2Walk-v0")
        write_synthetic_dataset(tmp, "mc", n_histories=histories, steps=steps, obs_dim=33, act_dim=12,
                                episode_len=1000, env_id="MiniCheetahWalk-v0")
        out["write_s"] = time.perf_counter() - t0
        out["disk_gb"] = sum(p.stat().st_size for p in Path(tmp).rglob("*.h5")) / 1e9
        cfg = Path(tmp) / "cfg.yaml"
        cfg.write_text("go2: {path: go2, group: go2, reward_scale: 50.0}\nmc: {path: mc, group: mc}\n")
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        ds = MultiTaskWindows(load_dataset_configs([cfg], tmp), context_len, 128)
        out["index_and_stats_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = MultiTaskWindows(load_dataset_configs([cfg], tmp), context_len, 128)
        out["index_cached_stats_s"] = time.perf_counter() - t0
        out["windows"] = len(ds)
        out["rss_mb_before_index"] = rss0
        out["rss_mb_after_index"] = _rss_mb()
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers)
        t0 = time.perf_counter()
        n = 0
        for i, _b in enumerate(loader):
            n += 1
            if n >= batches:
                break
        dt = time.perf_counter() - t0
        out["loader_batches"] = n
        out["loader_samples_per_s"] = n * batch / dt
        out["loader_tokens_per_s"] = n * batch * context_len / dt
        out["rss_mb_after_loading"] = _rss_mb()
        del loader
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Tiny shapes (CPU smoke test: a few seconds).")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", default=None, help="Comma-separated presets (default: seed; --quick: tiny,seed).")
    ap.add_argument("--context-len", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--data-steps", type=int, default=0, help="Also benchmark the data pipeline at this scale.")
    ap.add_argument("--data-histories", type=int, default=10)
    ap.add_argument("--data-workers", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    dev = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if a.device == "auto" else a.device))
    quick = a.quick
    L = a.context_len or (256 if quick else 2048)
    B = a.batch_size if not quick else min(a.batch_size, 2)
    steps = a.steps or (3 if quick else (30 if dev.type == "cuda" else 5))
    warmup = a.warmup if a.warmup is not None else (1 if quick else (5 if dev.type == "cuda" else 1))
    models = (a.models or ("tiny,seed" if quick else "seed")).split(",")
    rows = []
    for preset in models:
        for pos in ("rope", "alibi"):
            r = bench(preset, pos, L, B, steps, warmup, dev, a.compile)
            rows.append(r)
            print(f"{preset:6s} {pos:6s} L={L} B={B} params={r['params']:>11,}  {r['tokens_per_s']:>12,.0f} tok/s  "
                  f"{r['step_ms']:8.1f} ms/step  flash usable: {r['flash_kernel_usable']}"
                  + (f"  peak {r['peak_mem_gb']:.2f} GB  MFU {r['mfu']:.1%}" if r.get("mfu") is not None else ""),
                  flush=True)
    print()
    print("| model | positions | params | tokens/s | ms/step | flash usable | MFU |")
    print("|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a"
        print(f"| {r['model']} | {r['pos_encoding']} | {r['params']:,} | {r['tokens_per_s']:,.0f} | {r['step_ms']:.1f} "
              f"| {r['flash_kernel_usable']} | {mfu} |")
    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"), "host": socket.gethostname(),
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": str(torch.__version__), "threads": torch.get_num_threads(), "quick": quick,
        "load_avg_1m": os.getloadavg()[0], "results": rows,
    }
    if a.data_steps:
        d = data_bench(a.data_steps, a.data_histories, L, B, a.data_workers, 50)
        result["data_pipeline"] = d
        print(f"\ndata: 2 x {a.data_histories} x {a.data_steps:,} steps ({d['disk_gb']:.2f} GB): index+stats "
              f"{d['index_and_stats_s']:.1f} s (cached stats {d['index_cached_stats_s']:.2f} s), {d['windows']:,} windows; "
              f"RSS {d['rss_mb_before_index']:.0f} -> {d['rss_mb_after_index']:.0f} -> {d['rss_mb_after_loading']:.0f} MB; "
              f"loader {d['loader_samples_per_s']:.0f} samples/s ({d['loader_tokens_per_s']:,.0f} tok/s)")
    out = Path(a.out) if a.out else RESULTS_DIR / f"train_throughput_{'gpu' if dev.type == 'cuda' else 'cpu'}{'_quick' if quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
