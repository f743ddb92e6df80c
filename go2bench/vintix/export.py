"""Weights-only copies of Vintix training checkpoints, and a model card skeleton for them.

A training checkpoint (``final.pt``) also holds what only resuming needs: AdamW's two moments (twice the
weights), the learning-rate schedule and every process's RNG state (13 MB for the 1.1M-parameter seed model,
against 4.4 MB for what inference reads). A device call brings back few, small files, and a shipped model
should hold nothing its user cannot use, so :func:`export_weights` writes the checkpoint without them: it loads
with :func:`go2bench.vintix.inference.load_checkpoint` and acts exactly like its source.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import torch

from go2bench.core.provenance import check_output_path, file_sha256, read_json_object, write_atomic
from go2bench.vintix.inference import load_checkpoint
from go2bench.vintix.resume import latest_named
from go2bench.vintix.train import SUMMARY_FILE

__all__ = ["RESUME_ONLY_KEYS", "INFERENCE_KEYS", "training_checkpoint", "export_weights", "model_card_skeleton"]

RESUME_ONLY_KEYS = ("optimizer", "scheduler", "rng")
INFERENCE_KEYS = ("model_state", "model_config", "group_names", "groups", "context_len")
TO_FILL = "TO FILL"


def training_checkpoint(src) -> Path:
    """The checkpoint file of ``src``: the file itself, or a run folder's ``final.pt``, else the file its
    ``latest.json`` names (a run cut short before its end)."""
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such run folder or checkpoint file")
    if src.is_file():
        return src
    if (src / "final.pt").is_file():
        return src / "final.pt"
    if (src / "latest.json").is_file():
        named, why = latest_named(src)  # the same reading as a resumed training's
        if named is not None and named.is_file():
            return named
        raise ValueError(why or f"{src / 'latest.json'}: names {named.name}, which is not a checkpoint file of {src}")
    raise FileNotFoundError(f"{src}: a run folder without final.pt or latest.json (no checkpoint to export)")


def export_weights(src, out) -> dict[str, Any]:
    """Write ``src``'s checkpoint (a file or a run folder) to ``out`` without its resume-only state, atomically.

    Returns a summary: source and output paths and sizes, the step, the keys dropped, the output's SHA-256.
    """
    path = training_checkpoint(src)
    check_output_path(out)
    ckpt = load_checkpoint(path)
    missing = [k for k in INFERENCE_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a complete Vintix checkpoint (lacks {', '.join(missing)})")
    if not isinstance(ckpt["model_state"], dict) or not all(isinstance(v, torch.Tensor)
                                                            for v in ckpt["model_state"].values()):
        raise ValueError(f"{path}: model_state is not a dict of tensors")
    kept = {k: v for k, v in ckpt.items() if k not in RESUME_ONLY_KEYS}
    # own storage per tensor: a view would otherwise save the whole storage it looks into
    kept["model_state"] = {k: v.detach().clone() for k, v in ckpt["model_state"].items()}
    kept["exported_from"] = {"file": path.name, "sha256": file_sha256(path)}
    out = write_atomic(out, lambda tmp: torch.save(kept, tmp), "write the exported checkpoint")
    return {"source": str(path), "out": str(out), "source_bytes": path.stat().st_size, "bytes": out.stat().st_size,
            "step": ckpt.get("step"), "params": ckpt.get("params"),
            "dropped": [k for k in RESUME_ONLY_KEYS if k in ckpt], "sha256": file_sha256(out)}


def _optional_json(path: Path) -> dict[str, Any]:
    return read_json_object(path) if path.is_file() else {}


def model_card_skeleton(exported, run_dir=None) -> dict[str, Any]:
    """A model card for an exported checkpoint, from it and (if given) its run folder's ``config.json`` and
    ``train_summary.json``: model, groups, dataset and training filled in; evaluation and results ``TO FILL``."""
    ckpt = load_checkpoint(exported)
    run = Path(run_dir) if run_dir is not None else None
    info = _optional_json(run / "config.json") if run else {}
    summary = _optional_json(run / SUMMARY_FILE) if run else {}
    m, tc = ckpt["model_config"], ckpt.get("train_config") or {}
    width = m["obs_emb_dim"] + m["act_emb_dim"] + m["rew_emb_dim"]
    params = ckpt.get("params")
    # a group pooled over several robots (a leave-one-robot-out fold) has no env id: its dataset names it
    groups = {g: ckpt["groups"][g].get("env_id") or ckpt["groups"][g].get("dataset") for g in ckpt["group_names"]}
    training = {
        "model": tc.get("model"), "context_len": ckpt["context_len"], "context": ckpt.get("context", "history"),
        "global_batch": info.get("global_batch"), "world_size": info.get("world_size"),
        "trajectory_sparsity": tc.get("trajectory_sparsity"), "lr": tc.get("lr"), "seed": tc.get("seed"),
        "steps": ckpt.get("step"), "planned_steps": summary.get("planned_steps", info.get("total_steps")),
        "cut_short_by": summary.get("cut_short_by"), "final_loss": summary.get("final_loss"),
        "wall_s": summary.get("wall_s"), "device": info.get("device"),
    }
    dataset = {
        "data_dir": tc.get("data_dir"), "dataset_config_paths": tc.get("dataset_config_paths"),
        "groups": {g: {k: ckpt["groups"][g].get(k) for k in ("env_id", "robot", "dataset", "num_histories",
                                                              "reward_scale")}
                   for g in ckpt["group_names"]},
        "windows_per_group": info.get("windows_per_group"),
    }
    return {
        "model": f"Vintix (go2bench re-implementation), preset {tc.get('model')!r}: {m['n_layers']} layers, "
                 f"{m['n_heads']} heads, width {width}, {m.get('pos_encoding')}"
                 + (f", {params:,} parameters" if isinstance(params, int) else ""),
        "groups": groups, "dataset": dataset, "training": training,
        "evaluation": TO_FILL, "results": TO_FILL,
        "sha256": file_sha256(exported), "source": str(run) if run else TO_FILL,
        "versions": ckpt.get("versions"), "date": datetime.date.today().isoformat(),
    }
