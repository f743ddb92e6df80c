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

On a CUDA device the decode step is captured once per (N, group) at :meth:`VintixPolicy.reset` and
replayed as one CUDA graph (:mod:`go2bench.vintix.graph_decode`): the ring-buffer slot is a device
tensor and every state tensor is updated in place, so the same graph serves every position.

Decode variants (``benchmarks/eval_throughput.py`` measures each against the float32 SDPA step).  The default,
what ``go2bench eval`` runs, is a float32 cache with ``attention="auto"``: "matmul" on CUDA (exact to ~1e-6 and
1.4-1.5x faster than SDPA there at 64-256 envs on an H200: SDPA's kernels are built for many queries, a decode
step has one), "sdpa" elsewhere (faster on the CPU).  Opt-in: ``kv_dtype`` a
bfloat16/float16 cache (the attention reads half the bytes; lossy, the benchmark reports by how much),
``attention="matmul"`` the attention as two matrix-vector products around a float32 softmax,
``compile_step`` the step function through ``torch.compile`` before any graph capture, and
``unmasked_when_full``: once every env's context is full, a step without an attention mask (which lets
SDPA pick its fused flash kernel for a bfloat16/float16 cache).  Whether the context is full is known on the
host without a sync only where all envs share it: a history-context policy counts the steps since its last
reset or :meth:`~VintixPolicy.clear_context` (any env's clear restarts the count); an episode-context
policy, whose episode starts arrive on the device, always masks.  On CUDA a second graph is captured for it.

A checkpoint trained with ``context="episode"`` (:attr:`VintixPolicy.context`) saw only the current
episode in every training window, so its policy forgets each env's context at that env's episode
starts: the same inputs as in training, without any caller having to know.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from go2bench.vintix.config import model_config_from_dict
from go2bench.vintix.graph_decode import StaticStep, capture_step, graph_unavailable_reason, wants_graph
from go2bench.vintix.model import VintixModel, rope_tables

__all__ = ["VintixPolicy", "load_checkpoint", "checkpoint_context", "resolve_attention", "KV_DTYPES", "ATTENTIONS"]

KV_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTENTIONS = ("sdpa", "matmul")


def resolve_attention(attention: str, device) -> str:
    """The decode step's attention for ``attention`` ("auto", "sdpa", "matmul") on ``device``: "auto" is "matmul"
    on CUDA (exact, faster there: eval_throughput.py's variant rows), "sdpa" elsewhere."""
    if attention not in ("auto", *ATTENTIONS):
        raise ValueError(f"attention must be one of {['auto', *ATTENTIONS]}, got {attention!r}")
    if attention == "auto":
        return "matmul" if torch.device(device).type == "cuda" else "sdpa"
    return attention


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
    """An in-context policy over N envs of one group (task); ``context="episode"``: forgets at episode starts.

    ``cuda_graph``: replay the decode step as a CUDA graph (captured at :meth:`reset` for its N and
    group); None (default) = on for a CUDA device unless ``GO2BENCH_CUDA_GRAPH=0``.  Where no graph
    can be used (CPU, capture failed) the step runs eagerly; :attr:`decode_info` says which and why.
    ``kv_dtype`` ("float32", "bfloat16", "float16" or the torch dtype), ``attention`` ("auto", "sdpa" or "matmul"),
    ``compile_step`` and ``unmasked_when_full``: the opt-in decode variants of the module docstring (what was
    chosen: :attr:`decode_options`).
    """

    def __init__(self, model: VintixModel, groups: dict[str, dict], context_len: int, device="cpu",
                 context: str = "history", cuda_graph: bool | None = None, kv_dtype: str | torch.dtype = "float32",
                 attention: str = "auto", compile_step: bool = False, unmasked_when_full: bool = False):
        if context not in ("history", "episode"):
            raise ValueError(f"context must be 'history' or 'episode', got {context!r}")
        names = {v: k for k, v in KV_DTYPES.items()}
        if names.get(kv_dtype, kv_dtype) not in KV_DTYPES:
            raise ValueError(f"kv_dtype must be one of {list(KV_DTYPES)}, got {kv_dtype!r}")
        attention = resolve_attention(attention, device)
        self.kv_dtype = KV_DTYPES[names.get(kv_dtype, kv_dtype)]
        self.attention = attention
        # compiled lazily by its first call (a capture's warm-up on CUDA); torch.compile needs a C compiler on the CPU
        compiled = (lambda f: torch.compile(f, dynamic=False, fullgraph=True)) if compile_step else (lambda f: f)
        self._step_fn, self._full_fn = compiled(self._step), compiled(self._step_full)
        # (an alibi model's mask is its position bias: never dropped)
        self.unmasked_when_full = (bool(unmasked_when_full) and context == "history"
                                   and model.cfg.pos_encoding != "alibi")
        self.decode_options = {"kv_dtype": names[self.kv_dtype], "attention": attention, "compiled": bool(compile_step),
                               "unmasked_when_full": self.unmasked_when_full}
        self._full_steps = 0  # host count of steps since the last reset or clear: every slot valid once >= context_len
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.groups = groups
        self.context_len = int(context_len)
        self.context = context
        self.group: str | None = None
        self.num_envs = 0
        self.cuda_graph = wants_graph(self.device, cuda_graph)
        self._static: StaticStep | None = None  # the captured decode step, when there is one
        self._static_full: StaticStep | None = None  # the same without a mask (unmasked_when_full)
        self._state_key: tuple | None = None  # (N, group, context_len) of the state buffers
        self.decode_info: dict[str, Any] = {"cuda_graph": self.cuda_graph, "mode": "eager", "reason": None}

    @classmethod
    def load(cls, path, device="cpu", cuda_graph: bool | None = None, **decode) -> "VintixPolicy":
        """The policy of a checkpoint; ``decode``: the decode variant's options (see the class)."""
        ckpt = load_checkpoint(path)
        cfg = model_config_from_dict(ckpt["model_config"])
        groups = {g: dict(ckpt["groups"][g]) for g in ckpt["group_names"]}
        model = VintixModel(cfg, groups)
        model.load_state_dict(ckpt["model_state"])
        pol = cls(model, groups, ckpt["context_len"], device, context=checkpoint_context(ckpt), cuda_graph=cuda_graph,
                  **decode)
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
        """Empty contexts for ``num_envs`` envs of ``group``; the same N, group and context length as the
        last reset reuse the state buffers (zeroed in place) and so the captured graph."""
        if group not in self.groups:
            raise KeyError(f"unknown group {group!r}; known: {list(self.groups)}")
        key = (int(num_envs), group, self.context_len)
        if self._state_key == key:
            self._zero_state()
            return
        self._alloc_state(*key)
        self._state_key, self._static, self._static_full = key, None, None
        if self.cuda_graph:
            self._capture()

    def _alloc_state(self, N: int, group: str, C: int) -> None:
        m, cfg, dev = self.model, self.model.cfg, self.device
        self.group, self.num_envs = group, N
        self._gi = int(m.group_index(group))  # one group for all envs: routed without host synchronisation
        info = self.groups[group]
        self._obs_dim, self._act_dim = int(info["obs_dim"]), int(info["act_dim"])
        f32 = dict(dtype=torch.float32, device=dev)
        self._obs_mean = torch.tensor(info["obs_mean"], **f32)
        self._obs_std = torch.tensor(info["obs_std"], **f32)
        self._act_mean = torch.tensor(info["act_mean"], **f32)
        self._act_std = torch.tensor(info["act_std"], **f32)
        self._rscale = float(info["reward_scale"])
        shape, kv = (N, cfg.n_heads, C, cfg.head_dim), dict(dtype=self.kv_dtype, device=dev)
        self._k = [torch.zeros(shape, **kv) for _ in range(cfg.n_layers)]
        self._v = [torch.zeros(shape, **kv) for _ in range(cfg.n_layers)]
        self._valid = torch.zeros(N, C, dtype=torch.bool, device=dev)
        self._slot_pos = torch.zeros(N, C, dtype=torch.long, device=dev)
        self._pos = torch.zeros(N, dtype=torch.long, device=dev)
        self._prev_act = torch.zeros(N, self._act_dim, **f32)  # normalised
        self._slot = torch.zeros(1, dtype=torch.long, device=dev)  # ring-buffer slot of the next token

    def _zero_state(self) -> None:
        """Forget every env, in place (a captured graph keeps pointing at these buffers)."""
        for t in (*self._k, *self._v, self._valid, self._slot_pos, self._pos, self._prev_act, self._slot):
            t.zero_()
        self._full_steps = 0

    def static_step(self, full: bool = False) -> StaticStep:
        """The decode step on static input buffers for the current N (what a CUDA graph records); ``full``: the
        step without a mask, for a full context (``unmasked_when_full``)."""
        N, dev = self.num_envs, self.device
        return StaticStep(self._full_fn if full else self._step_fn,
                          [torch.zeros(N, self._obs_dim, device=dev), torch.zeros(N, device=dev),
                           torch.ones(N, dtype=torch.bool, device=dev)])

    @torch.no_grad()
    def _capture(self) -> None:
        why = graph_unavailable_reason(self.device)
        if why is None:
            steps = [self.static_step(full) for full in (False, True)[: 1 + self.unmasked_when_full]]
            try:
                for step in steps:
                    capture_step(step)
                self._static, self._static_full = steps[0], steps[-1] if self.unmasked_when_full else None
            except Exception as e:  # noqa: BLE001 - any capture failure falls back to the eager step
                why = f"capture failed ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
            self._zero_state()  # the warm-up runs advanced the state
        self.decode_info = {"cuda_graph": True, "mode": "eager" if why else "cuda-graph", "reason": why}
        if why:
            warnings.warn(f"VintixPolicy: decode step runs eagerly: {why}", RuntimeWarning, stacklevel=3)

    def clear_context(self, mask: torch.Tensor) -> None:
        mask = torch.as_tensor(mask, device=self.device).bool().reshape(-1)
        if mask.shape[0] != self.num_envs:
            raise ValueError(f"mask has {mask.shape[0]} entries for {self.num_envs} envs")
        self._valid[mask] = False
        self._pos[mask] = 0
        self._prev_act[mask] = 0.0
        self._full_steps = 0  # (the mask may select no env: a masked step is right in any case)

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self._obs_mean) / self._obs_std

    def normalize_action(self, act: torch.Tensor) -> torch.Tensor:
        return (act - self._act_mean) / self._act_std

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: torch.Tensor, prev_reward: torch.Tensor, episode_start: torch.Tensor) -> torch.Tensor:
        if self.group is None:
            raise RuntimeError("call reset(num_envs, group) first")
        N, dev = self.num_envs, self.device
        obs = torch.as_tensor(obs, device=dev, dtype=torch.float32)
        if obs.shape != (N, self._obs_dim):
            raise ValueError(f"obs has shape {tuple(obs.shape)}, expected {(N, self._obs_dim)} (group {self.group})")
        prev_reward = torch.as_tensor(prev_reward, device=dev, dtype=torch.float32).reshape(N)
        start = torch.as_tensor(episode_start, device=dev).bool().reshape(N)
        full = self.unmasked_when_full and self._full_steps >= self.context_len  # every slot valid (history context)
        self._full_steps += 1
        step = (self._static_full or self._full_fn) if full else (self._static or self._step_fn)
        return step(obs, prev_reward, start)

    def _step_full(self, obs: torch.Tensor, prev_reward: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return self._step(obs, prev_reward, start, full=True)

    def _step(self, obs: torch.Tensor, prev_reward: torch.Tensor, start: torch.Tensor,
              full: bool = False) -> torch.Tensor:
        """One token per env: every state tensor updated in place, no host sync (CUDA-graph safe); ``full``: every
        cache slot is valid, the attention runs without a mask."""
        m, cfg = self.model, self.model.cfg
        if self.context == "episode":  # forget the envs whose episode starts
            self._valid &= ~start[:, None]
            self._pos.masked_fill_(start, 0)
        o = self.normalize_obs(obs)
        pa = torch.where(start[:, None], torch.zeros_like(self._prev_act), self._prev_act)
        pr = torch.where(start, torch.zeros_like(prev_reward), prev_reward * self._rscale)
        x = m.embed(o[:, None], pa[:, None], pr[:, None], self._gi)  # (N, 1, d)
        slot = self._slot
        self._valid.index_fill_(1, slot, True)
        self._slot_pos.index_copy_(1, slot, self._pos[:, None])
        cos = sin = None
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(self._pos, cfg.head_dim, cfg.rope_base)
            cos, sin = cos[:, None, None, :], sin[:, None, None, :]
        # the additive mask (-inf at invalid slots), built once per step in the attention's dtype (the cache's):
        # a boolean one would be converted by every layer's attention call
        if full:
            mask = None
        elif cfg.pos_encoding == "alibi":
            rel = (self._pos[:, None] - self._slot_pos).float()  # (N, C)
            bias = -m.slopes[None, :, None] * rel[:, None, :]
            mask = bias.masked_fill(~self._valid[:, None, :], float("-inf"))[:, :, None, :].to(self.kv_dtype)
        else:
            mask = torch.zeros(self._valid.shape, dtype=self.kv_dtype, device=self.device)
            mask = mask.masked_fill_(~self._valid, float("-inf"))[:, None, None, :]
        for layer, blk in enumerate(m.trunk.blocks):
            x = blk.step(x, cos, sin, self._k[layer], self._v[layer], slot, mask, self.attention)
        h = m.trunk.norm(x)
        a = m.head(h, self._gi)[:, 0, : self._act_dim].float()
        self._prev_act.copy_(a)
        self._pos += 1
        self._slot.add_(1).remainder_(self.context_len)
        return a * self._act_std + self._act_mean
