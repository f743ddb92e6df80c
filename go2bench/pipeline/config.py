"""What one pipeline run is: :class:`PipelineConfig` (collect, train and eval sections), its presets
and the ``--set section.field=value`` override syntax.

The ``collect`` and ``train`` sections are the stages' own config dataclasses
(:class:`~go2bench.collect.config.CollectConfig`, :class:`~go2bench.vintix.config.TrainConfig`);
the pipeline fills in the fields that follow from the run folder and the task list
(:data:`PIPELINE_FIELDS`), so those cannot be set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal


from go2bench.collect.config import CollectConfig
from go2bench.core.config import ConfigError, from_dict, parse_yaml, to_dict
from go2bench.envs.registry import task_spec
from go2bench.vintix.config import TrainConfig

__all__ = ["EvalConfig", "PipelineConfig", "PRESETS", "PIPELINE_FIELDS", "override_keys", "apply_overrides",
           "pipeline_config", "flatten"]

# "vintix-zoo": the Vintix checkpoint shipped in go2bench/zoo/vintix (trained by the gpu preset);
# "vintix" and "vintix-nocontext": the checkpoint this run trains; any other name: a registered agent.
ALL_AGENTS = ("random", "teacher", "vintix", "vintix-nocontext", "vintix-zoo")

# Section fields the pipeline sets itself, with the reason shown when one is overridden.
PIPELINE_FIELDS: dict[str, str] = {
    "collect.env": "one dataset per env of `envs`",
    "collect.teacher": "each env's shipped teacher",
    "train.data_dir": "the run folder's data/",
    "train.dataset_config_paths": "the run's dataset_config.yaml",
    "train.name": "runs/vintix in the run folder",
    "train.out_dir": "runs/vintix in the run folder",
    "train.resume": "a stopped training run is always resumed",
}


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation stage: every agent on every env of the run, in context (``go2bench eval``)."""

    agents: tuple[str, ...] = ALL_AGENTS
    episodes: int = 10  # consecutive episodes per env
    num_envs: int = 10
    seeds: tuple[int, ...] = (0,)
    max_episode_steps: int | None = None  # None: collect.max_episode_steps
    # True: normalise with this run's random and teacher returns (which then score 0 and 1);
    # False: with the shipped teachers' reference scores (1000-step episodes)
    measured_reference_scores: bool = True
    jobs: int = 1  # >1: that many `go2bench eval` processes at a time (several GPUs, or one busy GPU)

    def __post_init__(self) -> None:
        for name in ("episodes", "num_envs", "jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1, got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("eval.seeds: at least one seed is needed")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"eval.seeds must be >= 0, got {list(self.seeds)}")
        known = {"random", "teacher", "vintix", "vintix-nocontext", "vintix-zoo"}
        unknown = [a for a in self.agents if a not in known]
        if unknown:
            raise ValueError(f"eval.agents: unknown {unknown}; the pipeline evaluates {sorted(known)}")
        if not self.agents:
            raise ValueError("eval.agents: at least one agent is needed")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"eval.max_episode_steps must be >= 1 or null, got {self.max_episode_steps}")
        if self.measured_reference_scores and not {"random", "teacher"} <= set(self.agents):
            raise ValueError("eval.measured_reference_scores needs the agents random and teacher")


@dataclass(frozen=True)
class PipelineConfig:
    """One end-to-end run: collect a dataset per env, train one Vintix on them, evaluate every agent."""

    name: str = "cpu"
    envs: tuple[str, ...] = ("Go2Walk-v0", "MiniCheetahWalk-v0")  # the two robots of the original workflow
    backend: Literal["cpu", "gpu"] = "cpu"  # Genesis backend of collection and evaluation
    gpus: int = 1  # GPUs to spread collections and evaluation processes over
    train_gpus: int = 1  # >1: DDP through torchrun; train.batch_size is then split over the GPUs
    reward_scale: float = 50.0  # the datasets' reward_scale (the factor on Vintix's reward tokens)
    collect: CollectConfig = CollectConfig(num_histories=16, steps_per_history=4000, max_episode_steps=200)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        model="tiny", context_len=512, batch_size=8, trajectory_sparsity=64, epochs=3, save_every=3, max_steps=700,
        lr=1e-3, num_workers=1, device="auto"))  # bounded by steps, never by wall time
    eval: EvalConfig = EvalConfig()

    def __post_init__(self) -> None:
        if not self.envs:
            raise ValueError("envs: at least one env is needed")
        for env_id in self.envs:
            task_spec(env_id)
        if not (self.reward_scale > 0 and self.reward_scale < float("inf")):
            raise ValueError(f"reward_scale must be a finite number > 0, got {self.reward_scale}")
        if self.gpus < 1 or self.train_gpus < 1:
            raise ValueError(f"gpus and train_gpus must be >= 1, got {self.gpus} and {self.train_gpus}")
        if self.train_gpus > 1 and self.backend != "gpu":
            raise ValueError("train_gpus > 1 (DDP) needs backend gpu")
        for key, reason in PIPELINE_FIELDS.items():
            section, name = key.split(".")
            value = getattr(getattr(self, section), name)
            default = getattr(type(getattr(self, section))(), name)
            if value != default:
                raise ValueError(f"{key} is set by the pipeline ({reason}); leave it at {default!r}")

    @property
    def eval_max_episode_steps(self) -> int:
        return self.eval.max_episode_steps or self.collect.max_episode_steps


_GPU_COLLECT = CollectConfig(num_histories=1024, steps_per_history=10_000, max_episode_steps=1000)
_GPU_EVAL = EvalConfig(agents=("random", "teacher", "vintix", "vintix-nocontext"), measured_reference_scores=False,
                       jobs=8)

PRESETS: dict[str, PipelineConfig] = {
    # a demonstration on a 2-core CPU in about 6 minutes
    "cpu": PipelineConfig(),
    # the seed's 10M steps per robot as 1,024 parallel histories, on one GPU machine
    "gpu": PipelineConfig(
        name="gpu", backend="gpu", collect=_GPU_COLLECT,
        train=TrainConfig(model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=1,
                          save_every=1, max_steps=8000, lr=3e-4, num_workers=6, device="cuda"),
        eval=_GPU_EVAL,
    ),
    # the original's layout: 10 histories x 1M steps per robot
    "seed": PipelineConfig(
        name="seed", backend="gpu",
        collect=CollectConfig(num_histories=10, steps_per_history=1_000_000, max_episode_steps=1000),
        train=TrainConfig(model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=100,
                          save_every=100, lr=3e-4, num_workers=6, device="cuda"),
        eval=_GPU_EVAL,
    ),
}

_SECTIONS = {"collect": CollectConfig, "train": TrainConfig, "eval": EvalConfig}


def override_keys() -> dict[str, list[str]]:
    """The keys ``--set`` accepts: top-level fields under "", then each section's fields."""
    keys = {"": [f.name for f in dataclasses.fields(PipelineConfig) if f.name not in _SECTIONS]}
    for section, cls in _SECTIONS.items():
        keys[section] = [f.name for f in dataclasses.fields(cls) if f"{section}.{f.name}" not in PIPELINE_FIELDS]
    return keys


def apply_overrides(config: PipelineConfig, items: Iterable[str]) -> PipelineConfig:
    """``config`` with ``KEY=VALUE`` overrides such as ``train.max_steps=200`` or ``gpus=2``.

    Values are YAML (``null``, ``true``, ``[random, teacher]``); a :class:`ConfigError` of one line
    names an unknown key together with the known ones.
    """
    data = to_dict(config)
    known = override_keys()
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.max_steps=200")
        section, _, name = key.rpartition(".")
        if key in PIPELINE_FIELDS:
            raise ConfigError(f"--set {key}: set by the pipeline ({PIPELINE_FIELDS[key]})")
        if key in _SECTIONS:
            raise ConfigError(f"--set {key}: a section; set one of its keys, e.g. {key}.{known[key][0]}=...")
        if section not in known or name not in known[section]:
            if section in _SECTIONS:
                raise ConfigError(f"--set {key}: unknown key; {section} keys: {', '.join(known[section])}")
            listed = known[""] + [f"{s}.*" for s in _SECTIONS]
            raise ConfigError(f"--set {key}: unknown key; keys: {', '.join(listed)}")
        value = parse_yaml(text, f"--set {key}")
        (data[section] if section else data)[name] = value
    return from_dict(PipelineConfig, data, "pipeline")


def pipeline_config(preset: str = "cpu", overrides: Iterable[str] = ()) -> PipelineConfig:
    """A preset with ``--set`` overrides applied, checked to fit this machine."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    config = apply_overrides(PRESETS[preset], overrides)
    check_fits(config)
    return config


def check_fits(config: PipelineConfig) -> None:
    """Refuse scenes this machine cannot hold now, not after collection and training (imports torch)."""
    from go2bench.envs.sim_support import check_memory

    for what, n in (("eval.num_envs", config.eval.num_envs), ("collect.num_histories", config.collect.num_histories)):
        try:
            check_memory(n, config.backend)
        except MemoryError as e:
            raise ConfigError(f"pipeline: {what}: {e}") from None


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """A :func:`to_dict` of a config as ``{"gpus": 1, "train.max_steps": 700, ...}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
