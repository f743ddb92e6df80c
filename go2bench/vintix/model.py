"""Vintix: a causal decoder-only transformer over per-timestep (obs, prev action, prev reward) tokens.

* Per-group input encoders (Linear obs -> obs_emb, Linear act -> act_emb, Linear 1 -> rew_emb,
  concatenated to ``d_model``) and per-group linear action heads, so groups may have different
  observation and action sizes; a batch may mix groups (inputs zero-padded to the widest group).
* Pre-norm blocks; attention through ``F.scaled_dot_product_attention(is_causal=True)`` (flash /
  memory-efficient kernels; no additive bias) with rotary position embeddings (relative, so a
  sliding KV cache at inference needs no re-encoding); optional qk-norm; SwiGLU or GELU MLP.
* ``pos_encoding="alibi"`` is an additive-bias variant (a float attn_mask), kept for comparison
  (see ``benchmarks/train_throughput.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from go2bench.vintix.config import ModelConfig

__all__ = ["VintixModel", "masked_mse", "rope_tables", "alibi_slopes", "matmul_attention"]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight.to(x.dtype)


def rope_tables(pos: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape pos.shape + (head_dim,), computed in float64 (exact for large positions)."""
    inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=pos.device) / head_dim)
    ang = pos.to(torch.float64)[..., None] * inv
    ang = torch.cat([ang, ang], -1)
    return ang.cos().float(), ang.sin().float()


def _rotate(x, cos, sin):
    x1, x2 = x.chunk(2, -1)
    return x * cos.to(x.dtype) + torch.cat([-x2, x1], -1) * sin.to(x.dtype)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        s = pow2(n_heads)
    else:
        c = 2 ** math.floor(math.log2(n_heads))
        s = pow2(c) + pow2(2 * c)[0::2][: n_heads - c]
    return torch.tensor(s, dtype=torch.float32)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.qkv = nn.Linear(d, 3 * d, bias=cfg.bias)
        self.proj = nn.Linear(d, d, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.qk_norm = cfg.qk_norm
        if cfg.qk_norm:
            self.q_norm = RMSNorm(cfg.head_dim)
            self.k_norm = RMSNorm(cfg.head_dim)

    def _qkv(self, x, cos, sin):
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if cos is not None:
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        return q, k, v

    def forward(self, x, cos=None, sin=None, attn_mask=None):
        B, L, D = x.shape
        q, k, v = self._qkv(x, cos, sin)
        p = self.dropout if self.training else 0.0
        if attn_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.to(q.dtype) if attn_mask.is_floating_point()
                                               else attn_mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))

    def step(self, x, cos, sin, k_cache, v_cache, slot: torch.Tensor, mask, attention: str = "sdpa"):
        """One token per env against a ring-buffer KV cache.

        x (N, 1, D); k_cache/v_cache (N, H, C, Dh) updated in place at ``slot`` (a (1,) long tensor on
        the cache's device: no host integer, so a CUDA graph of the step holds at every slot); mask
        (N, 1, 1, C), bool (valid slots) or float (additive bias with -inf for invalid slots; pass it in the
        cache's dtype to spare a conversion per layer), or None when every slot is valid (no bias).  The
        attention runs in the cache's dtype (a bfloat16/float16 cache halves the bytes read per step; the rest
        stays in x's dtype).  ``attention``: "sdpa" (F.scaled_dot_product_attention) or "matmul"
        (:func:`matmul_attention`).
        """
        N, _, D = x.shape
        q, k, v = self._qkv(x, cos, sin)
        kv = k_cache.dtype
        k_cache.index_copy_(2, slot, k.to(kv))
        v_cache.index_copy_(2, slot, v.to(kv))
        q = q.to(kv)
        m = mask.to(kv) if mask is not None and mask.is_floating_point() else mask
        if attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=m)
        elif attention == "matmul":
            y = matmul_attention(q, k_cache, v_cache, m)
        else:
            raise ValueError(f"attention must be 'sdpa' or 'matmul', got {attention!r}")
        return self.proj(y.to(x.dtype).transpose(1, 2).reshape(N, 1, D))


def matmul_attention(q, k, v, mask):
    """Attention written out for a few queries over a long cache: two batched matrix products (q K^T,
    then the weights times V, in the cache's dtype) around a float32 softmax.  For one query per env
    these are matrix-vector products that read the cache once each, where a fused attention kernel
    built for long query blocks may leave most of its tile idle; ``mask`` as in :meth:`Attention.step`."""
    s = torch.matmul(q, k.transpose(-1, -2)).float() * (q.shape[-1] ** -0.5)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask.float()
    return torch.matmul(torch.softmax(s, -1).to(v.dtype), v)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h = cfg.d_model, cfg.mlp_hidden
        self.swiglu = cfg.mlp == "swiglu"
        self.fc = nn.Linear(d, 2 * h if self.swiglu else h, bias=cfg.bias)
        self.out = nn.Linear(h, d, bias=cfg.bias)

    def forward(self, x):
        h = self.fc(x)
        if self.swiglu:
            a, b = h.chunk(2, -1)
            h = F.silu(a) * b
        else:
            h = F.gelu(h)
        return self.out(h)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos=None, sin=None, attn_mask=None):
        x = x + self.drop(self.attn(self.ln1(x), cos, sin, attn_mask))
        return x + self.drop(self.mlp(self.ln2(x)))

    def step(self, x, cos, sin, k_cache, v_cache, slot, mask, attention: str = "sdpa"):
        x = x + self.attn.step(self.ln1(x), cos, sin, k_cache, v_cache, slot, mask, attention)
        return x + self.mlp(self.ln2(x))


class Trunk(nn.Module):
    """The transformer blocks and final norm (the part ``--compile`` compiles)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)

    def forward(self, x, cos=None, sin=None, attn_mask=None):
        for b in self.blocks:
            x = b(x, cos, sin, attn_mask)
        return self.norm(x)


class VintixModel(nn.Module):
    """``groups``: ordered mapping group name -> {"obs_dim", "act_dim", ...}; index i = i-th group."""

    def __init__(self, cfg: ModelConfig, groups: dict[str, dict[str, Any]]):
        super().__init__()
        self.cfg = cfg
        self.group_names = list(groups)
        self.obs_dims = [int(groups[g]["obs_dim"]) for g in self.group_names]
        self.act_dims = [int(groups[g]["act_dim"]) for g in self.group_names]
        self.max_obs_dim, self.max_act_dim = max(self.obs_dims), max(self.act_dims)
        self.obs_enc = nn.ModuleList(nn.Linear(o, cfg.obs_emb_dim) for o in self.obs_dims)
        self.act_enc = nn.ModuleList(nn.Linear(a, cfg.act_emb_dim) for a in self.act_dims)
        self.rew_enc = nn.ModuleList(nn.Linear(1, cfg.rew_emb_dim) for _ in self.group_names)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.trunk = Trunk(cfg)
        self.heads = nn.ModuleList(nn.Linear(cfg.d_model, a) for a in self.act_dims)
        mask = torch.zeros(len(self.group_names), self.max_act_dim, dtype=torch.bool)
        for i, a in enumerate(self.act_dims):
            mask[i, :a] = True
        self.register_buffer("act_mask", mask, persistent=False)
        if cfg.pos_encoding == "alibi":
            self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)
        self._rope_cache: dict = {}
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("attn.proj.weight") or n.endswith("mlp.out.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def num_params(self, trunk_only: bool = False) -> int:
        mod = self.trunk if trunk_only else self
        return sum(p.numel() for p in mod.parameters())

    def group_index(self, group: str) -> int:
        try:
            return self.group_names.index(group)
        except ValueError:
            raise KeyError(f"unknown group {group!r}; the model knows {self.group_names}") from None

    # ---------------------------------------------------------------- per-group routing
    @staticmethod
    def _route(group: torch.Tensor, fn):
        """Apply fn(gi, idx) per group present in ``group`` (B,) and put the rows back in order.

        ``group`` may be a plain int (one group for the whole batch): no host synchronisation, which
        matters for streaming inference, one call per env step.
        """
        if isinstance(group, int):
            return fn(group, slice(None))
        if group.numel() == 0:
            raise ValueError("empty batch")
        g0 = int(group[0])
        if bool((group == g0).all()):
            return fn(g0, slice(None))
        outs, order = [], []
        for gi in torch.unique(group).tolist():
            idx = (group == gi).nonzero(as_tuple=True)[0]
            outs.append(fn(gi, idx))
            order.append(idx)
        y = torch.cat(outs)
        res = torch.empty_like(y)
        res[torch.cat(order)] = y
        return res

    def embed(self, obs, prev_action, prev_reward, group):
        """obs (B, L, >=obs_dim), prev_action (B, L, >=act_dim), prev_reward (B, L), group (B,) -> (B, L, d)."""
        def fn(gi, idx):
            o = obs[idx][..., : self.obs_dims[gi]]
            a = prev_action[idx][..., : self.act_dims[gi]]
            r = prev_reward[idx][..., None]
            return torch.cat([self.obs_enc[gi](o), self.act_enc[gi](a), self.rew_enc[gi](r)], -1)

        return self.emb_drop(self._route(group, fn))

    def head(self, h, group):
        """(B, L, d) -> (B, L, max_act_dim), zero-padded beyond each group's act_dim."""
        def fn(gi, idx):
            y = self.heads[gi](h[idx])
            return F.pad(y, (0, self.max_act_dim - y.shape[-1]))

        return self._route(group, fn)

    # ---------------------------------------------------------------- positions and masks
    def _rope(self, L: int, device):
        key = (L, str(device))
        if key not in self._rope_cache:
            self._rope_cache = {key: rope_tables(torch.arange(L, device=device), self.cfg.head_dim, self.cfg.rope_base)}
        return self._rope_cache[key]

    def attn_inputs(self, L: int, device, window: int | None = None):
        """(cos, sin, attn_mask) for a full forward over L positions; ``window`` = sliding-window attention."""
        cos = sin = None
        if self.cfg.pos_encoding == "rope":
            cos, sin = self._rope(L, device)
        mask = None
        i = torch.arange(L, device=device)
        rel = i[:, None] - i[None, :]  # query - key
        if self.cfg.pos_encoding == "alibi":
            allowed = rel >= 0
            if window is not None:
                allowed &= rel < window
            bias = -self.slopes.to(device)[:, None, None] * rel.float()
            mask = bias.masked_fill(~allowed, float("-inf"))[None]
        elif window is not None and window < L:
            mask = (rel >= 0) & (rel < window)
        return cos, sin, mask

    # ---------------------------------------------------------------- forward
    def forward(self, obs, prev_action, prev_reward, group, window: int | None = None):
        """Predicted normalised actions (B, L, max_act_dim); causal (optionally sliding-window) attention."""
        x = self.embed(obs, prev_action, prev_reward, group)
        cos, sin, mask = self.attn_inputs(x.shape[1], x.device, window)
        h = self.trunk(x, cos, sin, mask)
        return self.head(h, group)

    def loss(self, pred, target, group, token_mask=None):
        """MSE over each group's action dims and, with ``token_mask`` (B, L) bool, over the unpadded steps."""
        return masked_mse(pred, target, self.act_mask[group], token_mask)

    def flops_per_token(self, context_len: int) -> float:
        """Training FLOPs per token: 6 x matmul params + attention (12 n_layers d L, halved for causality)."""
        c = self.cfg
        n = sum(p.numel() for n_, p in self.trunk.named_parameters() if p.dim() == 2)
        n += self.cfg.d_model * self.max_act_dim + self.max_obs_dim * c.obs_emb_dim + self.max_act_dim * c.act_emb_dim
        return 6.0 * n + 6.0 * c.n_layers * c.d_model * context_len


def masked_mse(pred, target, mask, token_mask=None):
    """Mean squared error over valid action dims, mask (B, A) bool, and valid steps, token_mask (B, L) bool
    (None: every step)."""
    m = mask[:, None, :].float()
    m = m.expand(-1, pred.shape[1], -1) if token_mask is None else m * token_mask[:, :, None].float()
    err = (pred.float() - target.float()) ** 2 * m
    return err.sum() / m.sum().clamp_min(1)
