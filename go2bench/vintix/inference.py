"""VintixPolicy: streaming in-context inference over N envs with a batched ring-buffer KV cache.

Each :meth:`VintixPolicy.act` call appends one token per env (normalised obs, the policy's own
previous action, the previous reward x reward_scale; both zero at an episode start, exactly as
in training) and attends over at most ``context_len`` cached tokens per env.  The cache is one
ring buffer of ``context_len`` slots per layer shared by all envs (they step together), with a
per-env validity mask, so :meth:`clear_context` can forget some envs while the others keep their
context.  Once ``context_len`` tokens are cached the oldest slot is overwritten (a sliding
window): the outputs are those of a full forward pass with sliding-window causal attention of
width ``context_len`` over the env's whole stream since its last reset (identical to plain causal
attention while the stream is no longer than ``context_len``).  Positions are RoPE (relative),
so cached keys never need re-encoding.

A checkpoint trained with ``context="episode"`` (:attr:`VintixPolicy.context`) saw only the current
episode in every training window, so its policy forgets each env's context at that env's episode
starts: the same inputs as in training, without any caller having to know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from go2bench.vintix.config import model_config_from_dict
from go2bench.vintix.model import VintixModel, rope_tables

__all__ = ["VintixPolicy", "load_checkpoint", "checkpoint_context"]


def load_checkpoint(path, map_location="cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        cands = [path / "final.pt", path / "latest.pt"]
        found = [c for c in cands if c.exists()]
        if not found:
            raise FileNotFoundError(f"{path}: no final.pt or latest.pt checkpoint")
        path = found[0]
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except Exception as e:  # noqa: BLE001 - truncated file, not a torch file, or objects refused unpickled
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a readable weights-only Vintix checkpoint ({type(e).__name__}: "
                         f"{first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "go2bench-vintix":
        raise ValueError(f"{path}: not a go2bench Vintix checkpoint")
    return ckpt


def checkpoint_context(ckpt: dict[str, Any]) -> str:
    """What the checkpoint's training windows spanned: "history" or "episode" (older checkpoints: history)."""
    context = ckpt.get("context") or (ckpt.get("train_config") or {}).get("context") or "history"
    if context not in ("history", "episode"):
        raise ValueError(f"checkpoint context {context!r}: expected 'history' or 'episode'")
    return context


class VintixPolicy:
    """An in-context policy over N envs of one group (task); ``context="episode"``: forgets at episode starts."""

    def __init__(self, model: VintixModel, groups: dict[str, dict], context_len: int, device="cpu",
                 context: str = "history"):
        if context not in ("history", "episode"):
            raise ValueError(f"context must be 'history' or 'episode', got {context!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.groups = groups
        self.context_len = int(context_len)
        self.context = context
        self.group: str | None = None
        self.num_envs = 0

    @classmethod
    def load(cls, path, device="cpu") -> "VintixPolicy":
        ckpt = load_checkpoint(path)
        cfg = model_config_from_dict(ckpt["model_config"])
        groups = {g: dict(ckpt["groups"][g]) for g in ckpt["group_names"]}
        model = VintixModel(cfg, groups)
        model.load_state_dict(ckpt["model_state"])
        pol = cls(model, groups, ckpt["context_len"], device, context=checkpoint_context(ckpt))
        pol.checkpoint_info = {k: ckpt.get(k) for k in ("step", "epoch", "versions", "train_config")}
        pol.checkpoint_info["context"] = pol.context
        return pol

    def group_for_env(self, env_id: str) -> str:
        hits = [g for g, info in self.groups.items() if info.get("env_id") == env_id]
        if len(hits) == 1:
            return hits[0]
        known = {g: info.get("env_id") for g, info in self.groups.items()}
        if not hits:
            raise KeyError(f"no group of this checkpoint was trained on {env_id!r} (groups -> env_id: {known}); "
                           "pass the group explicitly")
        raise KeyError(f"several groups were trained on {env_id!r}: {hits}; pass the group explicitly")

    # ------------------------------------------------------------------ state
    def reset(self, num_envs: int, group: str) -> None:
        if group not in self.groups:
            raise KeyError(f"unknown group {group!r}; known: {list(self.groups)}")
        m, cfg, dev = self.model, self.model.cfg, self.device
        N, C = int(num_envs), self.context_len
        self.group, self.num_envs = group, N
        gi = m.group_index(group)
        info = self.groups[group]
        self._gi = int(gi)  # one group for all envs: routed without host synchronisation
        self._obs_dim, self._act_dim = int(info["obs_dim"]), int(info["act_dim"])
        f32 = dict(dtype=torch.float32, device=dev)
        self._obs_mean = torch.tensor(info["obs_mean"], **f32)
        self._obs_std = torch.tensor(info["obs_std"], **f32)
        self._act_mean = torch.tensor(info["act_mean"], **f32)
        self._act_std = torch.tensor(info["act_std"], **f32)
        self._rscale = float(info["reward_scale"])
        shape = (N, cfg.n_heads, C, cfg.head_dim)
        self._k = [torch.zeros(shape, **f32) for _ in range(cfg.n_layers)]
        self._v = [torch.zeros(shape, **f32) for _ in range(cfg.n_layers)]
        self._valid = torch.zeros(N, C, dtype=torch.bool, device=dev)
        self._slot_pos = torch.zeros(N, C, dtype=torch.long, device=dev)
        self._pos = torch.zeros(N, dtype=torch.long, device=dev)
        self._prev_act = torch.zeros(N, self._act_dim, **f32)  # normalised
        self._t = 0

    def clear_context(self, mask: torch.Tensor) -> None:
        mask = torch.as_tensor(mask, device=self.device).bool().reshape(-1)
        if mask.shape[0] != self.num_envs:
            raise ValueError(f"mask has {mask.shape[0]} entries for {self.num_envs} envs")
        self._valid[mask] = False
        self._pos[mask] = 0
        self._prev_act[mask] = 0.0

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self._obs_mean) / self._obs_std

    def normalize_action(self, act: torch.Tensor) -> torch.Tensor:
        return (act - self._act_mean) / self._act_std

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: torch.Tensor, prev_reward: torch.Tensor, episode_start: torch.Tensor) -> torch.Tensor:
        if self.group is None:
            raise RuntimeError("call reset(num_envs, group) first")
        m, cfg, dev = self.model, self.model.cfg, self.device
        N, C = self.num_envs, self.context_len
        obs = torch.as_tensor(obs, device=dev, dtype=torch.float32)
        if obs.shape != (N, self._obs_dim):
            raise ValueError(f"obs has shape {tuple(obs.shape)}, expected {(N, self._obs_dim)} (group {self.group})")
        prev_reward = torch.as_tensor(prev_reward, device=dev, dtype=torch.float32).reshape(N)
        start = torch.as_tensor(episode_start, device=dev).bool().reshape(N)
        if self.context == "episode":  # without a host sync: forget the envs whose episode starts
            self._valid &= ~start[:, None]
            self._pos.masked_fill_(start, 0)
        o = self.normalize_obs(obs)
        pa = torch.where(start[:, None], torch.zeros_like(self._prev_act), self._prev_act)
        pr = torch.where(start, torch.zeros_like(prev_reward), prev_reward * self._rscale)
        x = m.embed(o[:, None], pa[:, None], pr[:, None], self._gi)  # (N, 1, d)
        slot = self._t % C
        self._valid[:, slot] = True
        self._slot_pos[:, slot] = self._pos
        cos = sin = None
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(self._pos, cfg.head_dim, cfg.rope_base)
            cos, sin = cos[:, None, None, :], sin[:, None, None, :]
        if cfg.pos_encoding == "alibi":
            rel = (self._pos[:, None] - self._slot_pos).float()  # (N, C)
            bias = -m.slopes.to(dev)[None, :, None] * rel[:, None, :]
            mask = bias.masked_fill(~self._valid[:, None, :], float("-inf"))[:, :, None, :]
        else:
            mask = self._valid[:, None, None, :]
        for layer, blk in enumerate(m.trunk.blocks):
            x = blk.step(x, cos, sin, self._k[layer], self._v[layer], slot, mask)
        h = m.trunk.norm(x)
        a = m.head(h, self._gi)[:, 0, : self._act_dim].float()
        self._prev_act = a
        self._pos += 1
        self._t += 1
        return a * self._act_std + self._act_mean
