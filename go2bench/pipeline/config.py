"""What one pipeline run is: :class:`PipelineConfig` (collect, train and eval sections, and the task
family part: family, family_collect, family_train), its presets and the ``--set section.field=value``
override syntax.

The ``collect``/``family_collect`` and ``train``/``family_train`` sections are the stages' own config
dataclasses (:class:`~go2bench.collect.config.CollectConfig`, :class:`~go2bench.vintix.config.TrainConfig`);
the pipeline fills in the fields that follow from the run folder and the task list
(:data:`PIPELINE_FIELDS`), so those cannot be set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal


from go2bench.collect.config import CollectConfig
from go2bench.core.config import ConfigError, from_dict, parse_yaml, to_dict
from go2bench.envs.families import FAMILIES
from go2bench.envs.registry import TASKS, task_spec
from go2bench.vintix.config import TrainConfig

__all__ = ["EvalConfig", "FamilyConfig", "PipelineConfig", "PRESETS", "PIPELINE_FIELDS", "FAMILY_AGENTS",
           "override_keys", "apply_overrides", "pipeline_config", "flatten", "check_zoo"]

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
    "family_collect.env": "one dataset per env of family.envs and family of family.families",
    "family_collect.teacher": "each env's shipped privileged teacher of the family",
    "family_collect.family": "one dataset per family of family.families",
    "family_collect.split": "histories take the train thetas; the test thetas are held out",
    "family_train.data_dir": "the run folder's family/data/",
    "family_train.dataset_config_paths": "the family's dataset config in the run folder",
    "family_train.name": "family/runs/<family>/{vintix,vintix-episodic} in the run folder",
    "family_train.out_dir": "family/runs/<family> in the run folder",
    "family_train.resume": "a stopped training run is always resumed",
    "family_train.context": "both are trained: vintix on whole histories, vintix-episodic on single episodes",
}

# "vintix" and "vintix-nocontext" (the diagnostic): the run's Vintix of the family; "vintix-episodic": its
# episode-context twin (the no-context baseline); the others: the registry's agents.
FAMILY_AGENTS = ("random", "teacher-blind", "teacher-privileged", "vintix", "vintix-episodic", "vintix-nocontext")


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
class FamilyConfig:
    """The task-family part (stage ``family``): for each family, histories on its train thetas written by
    each env's privileged teacher (the rows without theta), a Vintix on them and its episode-context twin
    (``vintix-episodic``, the no-context baseline), and every agent under the family protocol
    (``go2bench eval --family``) on ``split``. No families: the stage does nothing."""

    families: tuple[str, ...] = ("velocity",)
    envs: tuple[str, ...] = ("Go2Walk-v0",)
    agents: tuple[str, ...] = FAMILY_AGENTS[:5]
    split: Literal["train", "test"] = "test"
    trials: int | None = None  # the first N thetas of the split; None: all of them
    seeds: tuple[int, ...] = (0, 1, 2)
    episodes: int = 10  # consecutive episodes per trial (theta held)
    reference_episodes: int = 3  # episodes per theta when the random / privileged reference returns are measured
    warmup_steps: int = 0  # unscored steps per trial before its episodes (go2bench eval --warmup-steps); 0: cold

    def __post_init__(self) -> None:
        for key, values, known in (("families", self.families, FAMILIES), ("envs", self.envs, TASKS),
                                   ("agents", self.agents, FAMILY_AGENTS)):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ValueError(f"family.{key}: unknown {unknown}; known: {', '.join(sorted(known))}")
        if self.families and not self.envs:
            raise ValueError("family.envs: at least one env is needed")
        if self.families and not self.agents:
            raise ValueError("family.agents: at least one agent is needed")
        for name in ("episodes", "reference_episodes") + (("trials",) if self.trials is not None else ()):
            if getattr(self, name) < 1:
                raise ValueError(f"family.{name} must be >= 1, got {getattr(self, name)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"family.seeds: distinct seeds >= 0 are needed, got {list(self.seeds)}")
        if self.warmup_steps < 0:
            raise ValueError(f"family.warmup_steps must be >= 0, got {self.warmup_steps}")


# context 200 = two 100-step episodes; the episode-context twin gets 100 (PipelineConfig.episodic_context_len)
_CPU_FAMILY_TRAIN = TrainConfig(model="tiny", context_len=200, batch_size=8, trajectory_sparsity=50, epochs=20,
                                save_every=20, max_steps=150, lr=1e-3, num_workers=0, device="auto")


@dataclass(frozen=True)
class PipelineConfig:
    """One end-to-end run: collect a dataset per env, train one Vintix on them, evaluate every agent."""

    name: str = "cpu"
    envs: tuple[str, ...] = ("Go2Walk-v0", "MiniCheetahWalk-v0")  # the two robots of the original workflow
    backend: Literal["cpu", "gpu"] = "cpu"  # Genesis backend of collection and evaluation
    gpus: int = 1  # GPUs to spread collections and evaluation processes over
    train_gpus: int = 1  # >1: DDP through torchrun; train.batch_size is then split over the GPUs
    family_beside: bool = True  # gpu backend, gpus >= 2: the family stage runs beside the others on half the GPUs
    # the family stage's trainings (two per family) as processes at once; None: on the gpu backend
    family_train_at_once: bool | None = None
    reward_scale: float = 50.0  # the datasets' reward_scale (the factor on Vintix's reward tokens)
    collect: CollectConfig = CollectConfig(num_histories=16, steps_per_history=4000, max_episode_steps=200)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        model="tiny", context_len=512, batch_size=8, trajectory_sparsity=64, epochs=3, save_every=3, max_steps=700,
        lr=1e-3, num_workers=1, device="auto"))  # bounded by steps, never by wall time
    eval: EvalConfig = EvalConfig()
    # the task-family part, at micro scale: Go2, velocity family, 8 test thetas x 2 seeds x 5 episodes of 100 steps
    family: FamilyConfig = FamilyConfig(trials=8, seeds=(0, 1), episodes=5, reference_episodes=1)
    family_collect: CollectConfig = CollectConfig(num_histories=8, steps_per_history=1500, max_episode_steps=100,
                                                  chunk_steps=100)
    family_train: TrainConfig = field(default_factory=lambda: _CPU_FAMILY_TRAIN)

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
        if self.family.families and self.episodic_context_len < 2:
            raise ValueError(f"family_collect.max_episode_steps {self.family_collect.max_episode_steps}: the "
                             "episode-context Vintix needs episodes of at least 2 steps")
        for key, reason in PIPELINE_FIELDS.items():
            section, name = key.split(".")
            value = getattr(getattr(self, section), name)
            default = getattr(type(getattr(self, section))(), name)
            if value != default:
                raise ValueError(f"{key} is set by the pipeline ({reason}); leave it at {default!r}")

    @property
    def eval_max_episode_steps(self) -> int:
        return self.eval.max_episode_steps or self.collect.max_episode_steps

    @property
    def episodic_context_len(self) -> int:
        """The episode-context Vintix's context: longer than an episode would only add padding."""
        return min(self.family_train.context_len, self.family_collect.max_episode_steps)


# groups of 2,000 steps: a collection cut by a device call's time limit resumes from its last complete group
# (with one 10,000-step group per history, a cut lost every history); 2 ms of writing per group
_GPU_COLLECT = CollectConfig(num_histories=1024, steps_per_history=10_000, max_episode_steps=1000, group_size=2000)
_GPU_EVAL = EvalConfig(agents=("random", "teacher", "vintix", "vintix-nocontext"), measured_reference_scores=False,
                       jobs=8)
# every family and robot with shipped family teachers; the settings of the README's GPU family rows: all 32 test
# thetas x 2 seeds x 10 episodes of 500 steps, histories of 20 such episodes, 3,000 training steps per model
_GPU_FAMILY = FamilyConfig(families=("velocity", "dynamics"), envs=("Go2Walk-v0", "MiniCheetahWalk-v0"),
                           agents=FAMILY_AGENTS, seeds=(0, 1))
_GPU_FAMILY_COLLECT = CollectConfig(num_histories=512, steps_per_history=10_000, max_episode_steps=500,
                                    group_size=2000)
_GPU_FAMILY_TRAIN = TrainConfig(model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=1,
                                save_every=1, max_steps=3000, lr=3e-4, num_workers=6, device="cuda")

PRESETS: dict[str, PipelineConfig] = {
    # a demonstration on a 2-core CPU in about 6 minutes
    "cpu": PipelineConfig(),
    # the seed's 10M steps per robot as 1,024 parallel histories, on one GPU machine
    "gpu": PipelineConfig(
        name="gpu", backend="gpu", collect=_GPU_COLLECT,
        train=TrainConfig(model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=1,
                          save_every=1, max_steps=8000, lr=3e-4, num_workers=6, device="cuda"),
        eval=_GPU_EVAL, family=_GPU_FAMILY, family_collect=_GPU_FAMILY_COLLECT, family_train=_GPU_FAMILY_TRAIN,
    ),
    # the original's layout: 10 histories x 1M steps per robot
    "seed": PipelineConfig(
        name="seed", backend="gpu",
        collect=CollectConfig(num_histories=10, steps_per_history=1_000_000, max_episode_steps=1000),
        train=TrainConfig(model="seed", context_len=2048, batch_size=8, trajectory_sparsity=128, epochs=100,
                          save_every=100, lr=3e-4, num_workers=6, device="cuda"),
        eval=_GPU_EVAL, family=_GPU_FAMILY, family_collect=_GPU_FAMILY_COLLECT, family_train=_GPU_FAMILY_TRAIN,
    ),
}

_SECTIONS = {"collect": CollectConfig, "train": TrainConfig, "eval": EvalConfig, "family": FamilyConfig,
             "family_collect": CollectConfig, "family_train": TrainConfig}


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
    check_zoo(config)
    check_fits(config)
    return config


def check_zoo(config: PipelineConfig) -> None:
    """Every (env, family) of the family part has the shipped teachers it needs, else a one-line ConfigError."""
    kinds = ["privileged"] + (["blind"] if "teacher-blind" in config.family.agents else [])
    for env_id in config.family.envs if config.family.families else ():
        for family in config.family.families:
            for kind in kinds:
                folder = task_spec(env_id).zoo_dir / family / kind
                if not (folder / "model_card.json").is_file():
                    raise ConfigError(f"family: {env_id} has no shipped {kind} teacher of the {family} family "
                                      f"({folder}); set family.envs to robots that have one"
                                      + (", or leave teacher-blind out of family.agents" if kind == "blind" else ""))


def check_fits(config: PipelineConfig) -> None:
    """Refuse scenes this machine cannot hold now, not after collection and training (imports torch)."""
    from go2bench.envs.sim_support import check_memory

    scenes = [("eval.num_envs", config.eval.num_envs), ("collect.num_histories", config.collect.num_histories)]
    if config.family.families:
        scenes += [("family.trials x family.seeds", family_scene_envs(config)),
                   ("family_collect.num_histories", config.family_collect.num_histories)]
    for what, n in scenes:
        try:
            check_memory(n, config.backend)
        except MemoryError as e:
            raise ConfigError(f"pipeline: {what}: {e}") from None


def family_scene_envs(config: PipelineConfig) -> int:
    """Envs of the family protocol's scene (one per trial): thetas x seeds, the largest over the families."""
    from go2bench.envs.registry import robot_for_env
    from go2bench.envs.suites import load_suite

    f = config.family
    thetas = [len(load_suite(fam, robot_for_env(env)).split(f.split)) for fam in f.families for env in f.envs]
    return min(f.trials or max(thetas), max(thetas)) * len(f.seeds)


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """A :func:`to_dict` of a config as ``{"gpus": 1, "train.max_steps": 700, ...}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
