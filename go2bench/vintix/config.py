"""Typed configs of the Vintix stage: model presets and training settings.

Everything here is a dataclass built with :func:`go2bench.core.config.from_dict`, so unknown keys
in a YAML file are errors that name the file and the key.  Dataset configs (which datasets form
which task group) are parsed by :mod:`go2bench.histories.dataset_config`, the one parser for
collection and training.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal


from go2bench.core.config import ConfigError, from_dict, parse_yaml, read_yaml, to_dict
from go2bench.histories.dataset_config import resolve_config_path

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "MODEL_PRESETS",
    "make_model_config",
    "parse_overrides",
    "effective_compile",
]


@dataclass
class ModelConfig:
    """Decoder-only transformer over per-timestep tokens.

    Token width ``d_model = obs_emb_dim + act_emb_dim + rew_emb_dim`` (the three per-group
    encoders' outputs are concatenated).  ``mlp`` "swiglu" uses three matrices of
    ``d_model x mlp_hidden``; "gelu" two.
    """

    n_layers: int = 3
    n_heads: int = 4
    obs_emb_dim: int = 127
    act_emb_dim: int = 127
    rew_emb_dim: int = 2
    mlp_hidden: int = 128
    mlp: Literal["swiglu", "gelu"] = "swiglu"
    dropout: float = 0.1
    qk_norm: bool = False
    pos_encoding: Literal["rope", "alibi", "none"] = "rope"
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    bias: bool = False

    def __post_init__(self):
        for name in ("n_layers", "n_heads", "obs_emb_dim", "act_emb_dim", "rew_emb_dim", "mlp_hidden"):
            _at_least(self, name, 1)
        _in_range(self, "dropout", 0.0, 1.0, hi_open=True)
        _positive(self, "rope_base")
        _positive(self, "norm_eps")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} (= obs_emb_dim + act_emb_dim + rew_emb_dim) "
                             f"is not divisible by n_heads {self.n_heads}")
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head dim, got {self.head_dim}")

    @property
    def d_model(self) -> int:
        return self.obs_emb_dim + self.act_emb_dim + self.rew_emb_dim

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # seconds on a CPU: for tests and smoke runs
    "tiny": dict(n_layers=2, n_heads=2, obs_emb_dim=31, act_emb_dim=31, rew_emb_dim=2, mlp_hidden=128, dropout=0.0),
    # the seed's model: 3 layers, 4 heads, width 256 = 127 + 127 + 2, MLP hidden 128, dropout 0.1
    "seed": dict(n_layers=3, n_heads=4, obs_emb_dim=127, act_emb_dim=127, rew_emb_dim=2, mlp_hidden=128,
                 dropout=0.1),
    # a few M parameters
    "small": dict(n_layers=6, n_heads=6, obs_emb_dim=191, act_emb_dim=191, rew_emb_dim=2, mlp_hidden=768,
                  dropout=0.1),
    # the Vintix paper's: 20 layers, 16 heads, width 1024 = 511 + 511 + 2, MLP 4096 (SwiGLU)
    "paper": dict(n_layers=20, n_heads=16, obs_emb_dim=511, act_emb_dim=511, rew_emb_dim=2, mlp_hidden=4096,
                  dropout=0.0, qk_norm=True),
}


def parse_overrides(items) -> dict[str, Any]:
    """``["n_layers=4", "qk_norm=true"]`` -> ``{"n_layers": 4, "qk_norm": True}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_yaml(v, f"override {item!r}")
    return out


def make_model_config(model: str = "seed", overrides: dict[str, Any] | None = None) -> ModelConfig:
    """A preset name (tiny, seed, small, paper) or a YAML file path, plus field overrides."""
    where = f"model {model!r}"
    if model in MODEL_PRESETS:
        base = dict(MODEL_PRESETS[model])
    else:
        p = resolve_config_path(model)
        data = read_yaml(p) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of ModelConfig fields")
        preset = data.pop("preset", None)
        base = dict(MODEL_PRESETS[preset]) if preset else {}
        if preset and preset not in MODEL_PRESETS:
            raise ConfigError(f"{p}: unknown preset {preset!r}; known: {sorted(MODEL_PRESETS)}")
        base.update(data)
        where = str(p)
    base.update(overrides or {})
    return from_dict(ModelConfig, base, where)


@dataclass
class TrainConfig:
    """Settings of ``go2bench train``.

    Global batch (sequences per optimizer step) = ``batch_size x world_size x grad_accum``;
    ``batch_size`` is per process (per GPU).  ``context``: "history" (Algorithm Distillation: windows
    span episodes, so the model learns from earlier episodes) or "episode" (windows never leave one
    episode: the no-context baseline; its checkpoint makes the policy forget at every episode start).
    ``target``: "action" (AD: the action the history executed, exploration noise included) or
    "demonstrator_action" (DPT-style: the teacher's clean action at that step; the histories must hold it).
    """

    data_dir: str = "data"
    dataset_config_paths: list[str] = field(default_factory=lambda: ["multitask_go2_minicheetah_config.yaml"])
    name: str = "vintix"
    out_dir: str = "runs"
    model: str = "seed"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    context_len: int = 2048
    context: Literal["history", "episode"] = "history"
    target: Literal["action", "demonstrator_action"] = "action"
    batch_size: int = 8
    trajectory_sparsity: int = 128
    epochs: int = 100
    save_every: int = 5
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    warmup_steps: int | None = None  # default: 5% of the planned steps, at least 1, at most 1000
    grad_clip: float = 1.0
    grad_accum: int = 1
    compile: Literal["auto", True, False] = "auto"  # auto: on CUDA only (see effective_compile)
    device: str = "auto"
    seed: int = 0
    num_workers: int = 2
    max_steps: int | None = None
    max_minutes: float | None = None
    resume: bool = False
    log_every: int = 10
    progress_bar: bool = True

    def __post_init__(self):
        for name in ("batch_size", "trajectory_sparsity", "epochs", "save_every", "grad_accum", "log_every"):
            _at_least(self, name, 1)
        _at_least(self, "context_len", 2)  # one step predicts from no context at all
        _at_least(self, "num_workers", 0)
        _in_range(self, "seed", 0, 2**31 - 1)  # numpy seeds are 32-bit; rank is added to the seed
        if self.max_steps is not None:
            _at_least(self, "max_steps", 1)
        if self.warmup_steps is not None:
            _at_least(self, "warmup_steps", 0)
        _positive(self, "lr")
        _positive(self, "grad_clip")  # clip_grad_norm_ with a negative norm flips the gradients
        if self.max_minutes is not None:
            _positive(self, "max_minutes")
        _in_range(self, "min_lr_ratio", 0.0, 1.0)
        _in_range(self, "weight_decay", 0.0, math.inf, hi_open=True)
        _in_range(self, "beta1", 0.0, 1.0, hi_open=True)
        _in_range(self, "beta2", 0.0, 1.0, hi_open=True)
        if not isinstance(self.compile, bool) and self.compile != "auto":  # 1 == True passes the Literal check
            raise ValueError(f"compile must be true, false or auto, got {self.compile!r}")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")


def effective_compile(compile: bool | str, device) -> bool:
    """Whether to ``torch.compile`` the trunk: ``compile`` itself, or for "auto" on a CUDA device with
    Triton (compiled, the seed model trains up to 1.8x faster on an H200; on the CPU compiling costs
    more than it saves in a short run)."""
    if compile != "auto":
        return bool(compile)
    return getattr(device, "type", str(device).split(":")[0]) == "cuda" and importlib.util.find_spec("triton") is not None


def _number(obj, name: str) -> float:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


def _at_least(obj, name: str, lo: int) -> None:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")


def _positive(obj, name: str) -> None:
    if not _number(obj, name) > 0:
        raise ValueError(f"{name} must be > 0, got {getattr(obj, name)!r}")


def _in_range(obj, name: str, lo: float, hi: float, hi_open: bool = False) -> None:
    v = _number(obj, name)
    if not (lo <= v < hi if hi_open else lo <= v <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}{')' if hi_open else ']'}, got {v!r}")


def model_config_dict(cfg: ModelConfig) -> dict[str, Any]:
    return to_dict(cfg)


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    names = {f.name for f in dataclasses.fields(ModelConfig)}
    return from_dict(ModelConfig, {k: v for k, v in d.items() if k in names}, "checkpoint model_config")
