"""Multitask Vintix training: AdamW, warmup + cosine, grad clipping/accumulation, bf16 on CUDA, DDP.

One code path for 1 or N processes: under ``torchrun`` (``WORLD_SIZE > 1``) the process group
is initialised (NCCL on CUDA, gloo on CPU), the model is wrapped in DistributedDataParallel and
each rank reads its shard through a DistributedSampler; rank 0 writes everything.  Global batch
(sequences per optimizer step) = ``batch_size x world_size x grad_accum``.

Run folder ``<out_dir>/<name>/``: ``config.json``, ``metrics.jsonl`` (one line per logged step
and per epoch), checkpoints ``epoch_XXXX.pt`` every ``save_every`` epochs, ``final.pt`` at the
end (also after ``max_steps``/``max_minutes``) and ``latest.json`` naming the newest one, which
``resume`` continues from (model, optimizer, scheduler, epoch, position in the epoch, RNG).

Before any step the data gets the checks of ``go2bench data check --config`` (a bad dataset
otherwise trains silently on wrong windows or fails deep in the loop), and a resumed run gets
the checks of :mod:`go2bench.vintix.resume` (same settings, a readable checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from go2bench.core.provenance import versions, write_json_atomic
from go2bench.core.config import to_dict
from go2bench.histories.check import DataProblems, check_config
from go2bench.histories.dataset_config import load_dataset_configs
from go2bench.vintix.config import TrainConfig, effective_compile, make_model_config, model_config_from_dict
from go2bench.vintix.data import MultiTaskWindows
from go2bench.vintix.model import VintixModel
from go2bench.vintix.resume import MAY_CHANGE_ON_RESUME, find_checkpoint, resume_conflicts, truncate_metrics

__all__ = ["train", "lr_lambda"]

CKPT_FORMAT = "go2bench-vintix"
SUMMARY_FILE = "train_summary.json"  # step, planned steps, and whether a time cap cut the run short
WARNINGS_SHOWN = 3  # data warnings printed at the start of a run; `go2bench data check` lists them all


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class _ResumableSampler(DistributedSampler):
    """DistributedSampler that can skip the first ``skip`` indices of this rank (mid-epoch resume)."""

    skip = 0

    def __iter__(self):
        it = list(super().__iter__())
        return iter(it[self.skip:])

    def __len__(self):
        return super().__len__() - self.skip


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
          "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    p = st["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in st and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(st["cuda"])


def _setup_dist(device_opt: str):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = device_opt.startswith("cuda") or (device_opt == "auto" and torch.cuda.is_available())
    _check_device(device_opt, local)
    if want_cuda:
        device = torch.device(f"cuda:{local}" if device_opt in ("auto", "cuda") else device_opt)
        torch.cuda.set_device(device)
    else:
        device = torch.device(device_opt if device_opt not in ("auto",) else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world, rank, device


def _check_device(device_opt: str, local_rank: int) -> None:
    """A one-line error for a device this machine lacks, before any data is read."""
    if device_opt.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise RuntimeError(f"--device {device_opt}: CUDA is not available on this machine ({why}); "
                               "use --device cpu or auto")
        index = int(device_opt.split(":")[1]) if ":" in device_opt else local_rank
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"--device {device_opt}: there is no GPU {index}; this machine has "
                               f"{torch.cuda.device_count()}")
    elif device_opt == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("--device mps: MPS is not available on this machine; use --device cpu or auto")


def _check_data(cfg: TrainConfig, world: int, rank: int, device: torch.device, say) -> None:
    """``go2bench data check --config``'s checks; DataProblems listing every problem stops all ranks."""
    found = [None]
    if rank == 0:
        found[0] = check_config(cfg.dataset_config_paths, cfg.data_dir)
    if world > 1:
        dist.broadcast_object_list(found, src=0, device=device if device.type == "cuda" else None)
    problems, warnings = found[0]
    if problems:
        if rank == 0:
            raise DataProblems(problems, warnings)
        raise RuntimeError(f"rank {rank}: stopped, rank 0 found {len(problems)} problem(s) in the data")
    for line in warnings[:WARNINGS_SHOWN]:
        say(f"warning: {line}")
    if len(warnings) > WARNINGS_SHOWN:
        say(f"warning: ... and {len(warnings) - WARNINGS_SHOWN} more (go2bench data check lists them)")


def _resume_point(cfg: TrainConfig, run_dir: Path, specs, world: int, say) -> dict[str, Any]:
    """The checkpoint to continue from; ValueError naming every setting that differs from it."""
    found = find_checkpoint(run_dir, say)
    if found is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}")
    path, ckpt = found
    entries = {s.entry.group: {"reward_scale": float(s.entry.reward_scale),
                               "episode_sparsity": int(s.entry.episode_sparsity)} for s in specs}
    conflicts = resume_conflicts(cfg, make_model_config(cfg.model, cfg.model_overrides), entries, world, ckpt)
    if conflicts:
        raise ValueError(
            f"--resume: {path} was trained with other settings: {'; '.join(conflicts)}. Resume with the "
            f"checkpoint's settings, or start a new run under another --name (a resumed run may change only "
            f"{', '.join(sorted(MAY_CHANGE_ON_RESUME - {'resume'}))})")
    say(f"resuming from {path} (step {ckpt['step']}, epoch {ckpt['epoch']})")
    return ckpt


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train per ``cfg``; returns a summary dict (rank 0's view)."""
    world, rank, device = _setup_dist(cfg.device)
    is_main = rank == 0
    try:
        return _train(cfg, world, rank, device, is_main)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, world: int, rank: int, device: torch.device, is_main: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    run_dir = Path(cfg.out_dir) / cfg.name
    say = print if is_main else (lambda _line: None)
    specs = load_dataset_configs(cfg.dataset_config_paths, cfg.data_dir)
    ckpt = _resume_point(cfg, run_dir, specs, world, say) if cfg.resume else None
    _check_data(cfg, world, rank, device, say)

    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    torch.manual_seed(cfg.seed + rank)

    # ---------------------------------------------------------------- data (rank 0 fills the stats caches first)
    stats = ckpt["groups"] if ckpt else None

    def build():
        return MultiTaskWindows(specs, cfg.context_len, cfg.trajectory_sparsity, stats=stats, context=cfg.context,
                                target=cfg.target)

    if world > 1:
        ds = build() if is_main else None
        dist.barrier()
        ds = ds or build()
    else:
        ds = build()
    if len(ds) == 0:
        raise ValueError(f"no windows of context_len {cfg.context_len} in the datasets (histories too short?)")

    # ---------------------------------------------------------------- model
    mcfg = model_config_from_dict(ckpt["model_config"]) if ckpt else make_model_config(cfg.model, cfg.model_overrides)
    model = VintixModel(mcfg, ds.groups).to(device)
    if ckpt:
        model.load_state_dict(ckpt["model_state"])
    raw = model
    compile_on = effective_compile(cfg.compile, device)
    if compile_on:
        raw.trunk.compile()
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=len(ds.group_names) > 1)

    decay = [p for n, p in raw.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in raw.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")

    sampler = _ResumableSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True)
    loader = DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=device.type == "cuda", drop_last=True,
                        persistent_workers=False, prefetch_factor=4 if cfg.num_workers > 0 else None)
    batches_per_epoch = len(sampler) // cfg.batch_size
    steps_per_epoch = batches_per_epoch // cfg.grad_accum
    if steps_per_epoch < 1:
        raise ValueError(f"{len(ds)} windows are too few for one optimizer step of global batch "
                         f"{cfg.batch_size * world * cfg.grad_accum}")
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:  # a capped run plans its warmup + cosine for the steps it will take
        total_steps = min(total_steps, cfg.max_steps)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, min(1000, total_steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, warmup, total_steps, cfg.min_lr_ratio))

    step, epoch, batch_in_epoch = 0, 0, 0
    loss_history: list[list[float]] = []
    if ckpt:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        loss_history = [list(x) for x in ckpt.get("loss_history", [])]
        rng = ckpt.get("rng", {}).get(str(rank))
        if rng:
            _set_rng_state(rng)

    global_batch = cfg.batch_size * world * cfg.grad_accum
    tokens_per_step = global_batch * cfg.context_len
    info = {
        "train_config": to_dict(cfg), "model_config": to_dict(mcfg), "params": raw.num_params(),
        "world_size": world, "global_batch": global_batch, "tokens_per_step": tokens_per_step,
        "windows": len(ds), "windows_per_group": ds.samples_per_group(), "steps_per_epoch": steps_per_epoch,
        "context": cfg.context, "window_fill": float(ds.sample_len.mean()) / cfg.context_len,  # 1 - padding
        "total_steps": total_steps, "warmup_steps": warmup, "device": str(device), "compile": compile_on,
        "versions": versions(),
        "groups": {g: {k: v for k, v in i.items() if not k.endswith(("_mean", "_std"))} for g, i in ds.groups.items()},
    }
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", info)
        print(f"{raw.num_params():,} parameters; {len(ds):,} windows {ds.samples_per_group()} "
              f"(context: {cfg.context}, {info['window_fill']:.0%} of window steps are data); "
              f"{steps_per_epoch} steps/epoch of {global_batch} x {cfg.context_len} tokens; world {world}; "
              f"torch.compile {'on' if compile_on else 'off'} (compile: {cfg.compile})")
    metrics_f = None
    if is_main:  # a resumed run logs the steps after its checkpoint again; a new run starts a new file
        dropped = truncate_metrics(run_dir / "metrics.jsonl", step) if ckpt else 0
        if dropped:
            print(f"{run_dir / 'metrics.jsonl'}: dropped {dropped} line(s) logged after step {step}")
        metrics_f = open(run_dir / "metrics.jsonl", "a" if ckpt else "w")

    def save(fname: str) -> Path:
        rngs = [None] * world
        st = _rng_state()
        if world > 1:
            dist.all_gather_object(rngs, st)
        else:
            rngs = [st]
        if not is_main:
            return run_dir / fname
        obj = {
            "format": CKPT_FORMAT, "version": 1, "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "model_state": raw.state_dict(), "model_config": to_dict(mcfg), "group_names": ds.group_names,
            "groups": ds.groups, "context_len": cfg.context_len, "context": cfg.context, "train_config": to_dict(cfg),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "loss_history": loss_history,
            "rng": {str(r): s for r, s in enumerate(rngs)}, "versions": versions(), "params": raw.num_params(),
        }
        tmp = run_dir / f".{fname}.tmp"
        torch.save(obj, tmp)
        os.replace(tmp, run_dir / fname)
        write_json_atomic(run_dir / "latest.json", {"file": fname, "step": step, "epoch": epoch})
        return run_dir / fname

    use_amp = device.type == "cuda"
    bar = None
    if is_main and cfg.progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=min(total_steps, cfg.max_steps or total_steps), initial=step, unit="step", dynamic_ncols=True)

    def should_stop() -> bool:
        stop = cfg.max_steps is not None and step >= cfg.max_steps
        if cfg.max_minutes is not None:
            flag = torch.tensor([float(time.perf_counter() - t_start > 60 * cfg.max_minutes)])
            if world > 1:  # rank 0's clock decides, so that all ranks stop at the same step
                flag = flag.to(device)
                dist.broadcast(flag, 0)
            stop = stop or bool(flag.item())
        return stop

    net.train()
    t_log, tok_log = time.perf_counter(), 0
    tok_s = 0.0
    stopped = should_stop() or step >= total_steps
    last_loss = float("nan")
    while not stopped and epoch < cfg.epochs:
        sampler.set_epoch(epoch)
        sampler.skip = batch_in_epoch * cfg.batch_size
        it = iter(loader)
        ep_loss, ep_n = 0.0, 0
        while batch_in_epoch + cfg.grad_accum <= batches_per_epoch:
            acc = torch.zeros((), device=device)
            for k in range(cfg.grad_accum):
                b = next(it)
                b = {n: t.to(device, non_blocking=True) for n, t in b.items()}
                sync = k == cfg.grad_accum - 1 or world == 1
                ctx = contextlib.nullcontext() if sync else net.no_sync()
                with ctx, torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                    pred = net(b["obs"], b["prev_action"], b["prev_reward"], b["group"])
                    loss = raw.loss(pred, b["target"], b["group"], b["mask"]) / cfg.grad_accum
                loss.backward()
                acc += loss.detach()
            batch_in_epoch += cfg.grad_accum
            gnorm = torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if world > 1:
                dist.all_reduce(acc)
                acc /= world
            last_loss = float(acc)
            ep_loss += last_loss
            ep_n += 1
            tok_log += tokens_per_step
            if step % cfg.log_every == 0 or step == 1:
                loss_history.append([step, last_loss])
            if is_main and (step % cfg.log_every == 0 or step == 1):
                now = time.perf_counter()
                tok_s = tok_log / max(now - t_log, 1e-9)
                t_log, tok_log = now, 0
                rec = {"step": step, "epoch": epoch, "loss": last_loss, "lr": sched.get_last_lr()[0],
                       "grad_norm": float(gnorm), "tokens_per_s": tok_s, "elapsed_s": now - t_start}
                metrics_f.write(json.dumps(rec) + "\n")
                metrics_f.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", tok_s=f"{tok_s:,.0f}", epoch=epoch)
            if should_stop():
                stopped = True
                break
        del it
        if not stopped:
            if is_main:
                metrics_f.write(json.dumps({"epoch": epoch, "epoch_loss": ep_loss / max(ep_n, 1), "step": step}) + "\n")
                metrics_f.flush()
            epoch += 1
            batch_in_epoch = 0
            if epoch % cfg.save_every == 0 and epoch < cfg.epochs:
                save(f"epoch_{epoch:04d}.pt")
    final = save("final.pt")
    if bar is not None:
        bar.close()
    if metrics_f:
        metrics_f.close()
    wall = time.perf_counter() - t_start
    # A time cap that ends training before its planned steps leaves the schedule unfinished: say so.
    cut_short = step < total_steps and cfg.max_minutes is not None and (cfg.max_steps is None or step < cfg.max_steps)
    summary = {"run_dir": str(run_dir), "checkpoint": str(final), "step": step, "planned_steps": total_steps,
               "epoch": epoch, "final_loss": last_loss if math.isfinite(last_loss) else None, "params": raw.num_params(), "wall_s": wall,
               "world_size": world, "loss_history": loss_history, "is_main": is_main,
               "cut_short_by": "max_minutes" if cut_short else None}
    if is_main:
        write_json_atomic(run_dir / SUMMARY_FILE, {k: v for k, v in summary.items() if k != "loss_history"})
        if cut_short:
            print(f"WARNING: training was CUT SHORT by max_minutes={cfg.max_minutes}: it stopped at step {step} of "
                  f"{total_steps} planned, before its learning-rate schedule finished; --resume continues it",
                  file=sys.stderr, flush=True)
    return summary
