"""Resuming a training run: which checkpoint, which settings may change, which metrics lines stay.

A resumed run must compute what the uninterrupted run would have computed, so every setting
that shapes the model, the data, the optimizer or the sample order has to be the checkpoint's;
:func:`resume_conflicts` names each one that differs instead of silently keeping some and
recording others.  :data:`MAY_CHANGE_ON_RESUME` are the settings of *how long*, *where* and *how
verbosely* a run goes on.  A checkpoint damaged by a crash or a full disk must not end a run
that has older, intact ones: :func:`find_checkpoint` falls back to the newest readable one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from go2bench.core.config import to_dict
from go2bench.vintix.config import ModelConfig, TrainConfig
from go2bench.vintix.inference import load_checkpoint

__all__ = ["MAY_CHANGE_ON_RESUME", "find_checkpoint", "latest_named", "resume_conflicts", "truncate_metrics"]

# TrainConfig fields a resumed run may set differently.  epochs and max_steps re-plan the cosine
# schedule (and a default warmup) from the resumed step on; data_dir and dataset_config_paths may
# point elsewhere as long as they resolve to the same groups with the same reward_scale and
# episode_sparsity (checked separately); model/model_overrides are compared as the model config
# they resolve to.  Everything else (model, context_len, batch_size, grad_accum, lr and the other
# optimizer settings, trajectory_sparsity, seed, the number of processes) must match.
MAY_CHANGE_ON_RESUME = frozenset({
    "resume", "max_steps", "max_minutes", "epochs", "save_every", "log_every", "num_workers", "device",
    "compile", "progress_bar", "out_dir", "name", "data_dir", "dataset_config_paths",
})
_COMPARED_AS_MODEL_CONFIG = frozenset({"model", "model_overrides"})
_GROUP_FIELDS = ("reward_scale", "episode_sparsity")
_REQUIRED_KEYS = ("step", "epoch", "batch_in_epoch", "model_state", "model_config", "optimizer", "scheduler",
                  "group_names", "groups")


def _load_valid(path: Path) -> dict[str, Any]:
    """A checkpoint that can be resumed from; ValueError naming what is wrong otherwise."""
    try:
        ckpt = load_checkpoint(path)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - torch.load reports a damaged file with many exception types
        raise ValueError(f"{path}: unreadable checkpoint ({type(e).__name__}: {' '.join(str(e).split())[:200]})") \
            from None
    missing = [k for k in _REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return ckpt


def latest_named(run_dir: Path) -> tuple[Path | None, str | None]:
    """(file named by latest.json, None) or (None, why latest.json cannot be used)."""
    p = run_dir / "latest.json"
    if not p.exists():
        return None, f"{p} is missing"
    try:
        name = json.loads(p.read_text())["file"]
        if not isinstance(name, str) or Path(name).name != name:
            raise ValueError(f"'file' should be a file name, got {name!r}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"{p} is unreadable ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
    return run_dir / name, None


def find_checkpoint(run_dir, say: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to resume from and its contents; None when the run folder has no checkpoint.

    ``latest.json``'s file when it loads; otherwise (``say`` tells why) the readable checkpoint of
    the highest step, newest file first on a tie.  ValueError when none is readable.
    """
    run_dir = Path(run_dir)
    named, why = latest_named(run_dir)
    if named is not None:
        try:
            return named, _load_valid(named)
        except (ValueError, FileNotFoundError) as e:
            why = f"{run_dir / 'latest.json'} names {named.name}, which cannot be used ({e})"
    cands = [p for p in [*run_dir.glob("epoch_*.pt"), run_dir / "final.pt"] if p.is_file() and p != named]
    if not cands:
        if named is None and not (run_dir / "latest.json").exists():
            return None
        raise ValueError(f"--resume: {why}, and {run_dir} holds no other checkpoint")
    best, bad = None, []
    for p in sorted(cands, key=lambda c: c.stat().st_mtime_ns, reverse=True):
        try:
            ckpt = _load_valid(p)
        except ValueError as e:
            bad.append(str(e))
            continue
        if best is None or ckpt["step"] > best[1]["step"]:
            best = (p, ckpt)
    if best is None:
        raise ValueError(f"--resume: {why}; no other checkpoint is readable either: {'; '.join(bad)}")
    say(f"warning: {why}; resuming from the newest readable checkpoint {best[0]} (step {best[1]['step']})")
    for line in bad:
        say(f"warning: skipped {line}")
    return best


def resume_conflicts(cfg: TrainConfig, model_cfg: ModelConfig, group_entries: dict[str, dict[str, Any]],
                     world: int, ckpt: dict[str, Any]) -> list[str]:
    """Every setting of this run that differs from the checkpoint's, one ``field = now (checkpoint: then)`` each.

    ``group_entries`` maps each task group of the dataset configs to its entry fields
    (reward_scale, episode_sparsity).  A field the checkpoint does not record is not compared.
    """
    out = []
    then = ckpt.get("train_config") or {}
    for field, now in to_dict(cfg).items():
        if field in MAY_CHANGE_ON_RESUME or field in _COMPARED_AS_MODEL_CONFIG or field not in then:
            continue
        if then[field] != now:
            out.append(f"{field} = {now!r} (checkpoint: {then[field]!r})")
    old_model = ckpt.get("model_config") or {}
    for field, now in to_dict(model_cfg).items():
        if field in old_model and old_model[field] != now:
            out.append(f"model {field} = {now!r} (checkpoint: {old_model[field]!r}; from --model {cfg.model!r})")
    old_groups = list(ckpt.get("group_names", []))
    if old_groups != list(group_entries):
        out.append(f"dataset groups = {list(group_entries)} (checkpoint: {old_groups})")
    else:
        for g, entry in group_entries.items():
            info = ckpt["groups"].get(g, {})
            for field in _GROUP_FIELDS:
                if field in info and info[field] != entry[field]:
                    out.append(f"group {g} {field} = {entry[field]!r} (checkpoint: {info[field]!r})")
    old_world = len(ckpt["rng"]) if isinstance(ckpt.get("rng"), dict) and ckpt["rng"] else None
    if old_world is not None and old_world != world:
        out.append(f"number of processes = {world} (checkpoint: {old_world})")
    return out


def truncate_metrics(path, step: int) -> int:
    """Keep the ``metrics.jsonl`` lines of steps up to ``step`` (and drop torn lines); returns lines dropped.

    A run resumed from step S logs steps S+1, ...  again, so lines written after its checkpoint
    must go, or the file would list some steps twice.
    """
    path = Path(path)
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            ok = int(rec["step"]) <= step
        except (ValueError, KeyError, TypeError):
            ok = False
        if ok:
            keep.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(x + "\n" for x in keep))
        os.replace(tmp, path)
    return dropped

