"""Configuration of the Walk task (velocity tracking), with the original workflow's defaults.

Defaults equal Genesis' Go2 locomotion example, which the original workflow used, so that returns
compare: command fixed at 0.5 m/s forward, each reward term scaled by dt, 50 Hz control, 20 s
episodes, one step of action latency. A perfect 1000-step episode returns (1.0 + 0.2) * 0.02 * 1000 = 24.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from go2bench.core.config import OMIT_AT_DEFAULT, from_dict, load_yaml, to_dict

ObsMode = Literal["noleak", "full"]


def _finite(where: str, *values: float) -> None:
    """NaN or inf in a task parameter would reach the simulation as NaN observations."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise ValueError(f"{where} must be finite numbers, got {values if len(values) > 1 else values[0]!r}")


@dataclass(frozen=True)
class CommandRanges:
    """Uniform ranges of the velocity command; resampled per episode and every ``resample_time_s``."""

    lin_vel_x: tuple[float, float] = (0.5, 0.5)  # m/s, forward
    lin_vel_y: tuple[float, float] = (0.0, 0.0)  # m/s, left
    ang_vel_yaw: tuple[float, float] = (0.0, 0.0)  # rad/s
    resample_time_s: float = 4.0

    def __post_init__(self) -> None:
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):
            lo, hi = getattr(self, name)
            _finite(f"commands.{name}", lo, hi)
            if lo > hi:
                raise ValueError(f"commands.{name}: lower bound {lo} exceeds upper bound {hi}")
        _finite("commands.resample_time_s", self.resample_time_s)
        if self.resample_time_s <= 0:
            raise ValueError("commands.resample_time_s must be positive")

    @property
    def is_fixed(self) -> bool:
        return all(lo == hi for lo, hi in (self.lin_vel_x, self.lin_vel_y, self.ang_vel_yaw))


@dataclass(frozen=True)
class RewardScales:
    """Weights of the reward terms (each is also multiplied by dt)."""

    tracking_lin_vel: float = 1.0
    tracking_ang_vel: float = 0.2
    lin_vel_z: float = -1.0
    base_height: float = -50.0
    action_rate: float = -0.005
    similar_to_default: float = -0.1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _finite(f"rewards.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class ObsScales:
    """Multipliers applied to observation terms (commands use lin_vel, lin_vel, ang_vel)."""

    lin_vel: float = 2.0
    ang_vel: float = 0.25
    dof_pos: float = 1.0
    dof_vel: float = 0.05

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _finite(f"obs_scales.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class Randomization:
    """Dynamics and initial-pose randomisation, all off by default; drawn per env and episode from the env's seed.

    Draws are counter-based (``envs.streams``): an env's values in an episode do not depend on
    which other envs reset with it. For hidden parameters held over a trial, use a task family
    (``family="dynamics"``, ``envs.families``) instead.
    """

    friction_range: tuple[float, float] | None = None  # contact friction coefficient, set on the ground and robot
    added_mass_range: tuple[float, float] | None = None  # kg added to the base link
    motor_strength_range: tuple[float, float] | None = None  # multiplies the PD gains
    push_interval_s: float | None = None  # a random horizontal push every interval
    push_max_velocity: float = 1.0  # m/s added to the base's horizontal velocity
    # rad: each reset puts every joint at default + u * this, u uniform in [-1, 1), clipped to the joint limits, so
    # evaluation seeds vary a deterministic agent's trials (off: every reset is the exact default pose)
    init_joint_noise: float | None = field(default=None, metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        for name in ("friction_range", "added_mass_range", "motor_strength_range"):
            r = getattr(self, name)
            if r is not None:
                _finite(f"randomization.{name}", *r)
            if r is not None and r[0] > r[1]:
                raise ValueError(f"randomization.{name}: lower bound exceeds upper bound")
        if self.friction_range is not None and self.friction_range[0] <= 0:
            raise ValueError("randomization.friction_range must be positive")
        if self.motor_strength_range is not None and self.motor_strength_range[0] <= 0:
            raise ValueError("randomization.motor_strength_range must be positive")
        _finite("randomization.push_max_velocity", self.push_max_velocity)
        if self.push_max_velocity < 0:
            raise ValueError("randomization.push_max_velocity must be >= 0")
        if self.push_interval_s is not None and not (math.isfinite(self.push_interval_s) and self.push_interval_s > 0):
            raise ValueError("randomization.push_interval_s must be positive")
        if self.init_joint_noise is not None:
            _finite("randomization.init_joint_noise", self.init_joint_noise)
            if self.init_joint_noise < 0:
                raise ValueError(f"randomization.init_joint_noise must be >= 0 radians, got {self.init_joint_noise}")

    @property
    def dynamics_enabled(self) -> bool:
        """Whether a reset draws friction, added mass or motor strength."""
        return any(v is not None for v in (self.friction_range, self.added_mass_range, self.motor_strength_range))

    @property
    def any_enabled(self) -> bool:
        return self.dynamics_enabled or self.push_interval_s is not None or self.init_joint_noise is not None


@dataclass(frozen=True)
class WalkConfig:
    """Everything about the Walk task that is not the robot."""

    obs_mode: ObsMode = "noleak"  # "full" adds the last action (envs.spaces.observation_layout)
    dt: float = 0.02  # control period, s (50 Hz)
    substeps: int = 2
    episode_length_s: float = 20.0
    action_latency: bool = True  # apply the previous step's action, as the original did
    tracking_sigma: float = 0.25
    base_height_target: float | None = None  # None: the robot description's target
    commands: CommandRanges = field(default_factory=CommandRanges)
    rewards: RewardScales = field(default_factory=RewardScales)
    obs_scales: ObsScales = field(default_factory=ObsScales)
    randomization: Randomization = field(default_factory=Randomization)

    def __post_init__(self) -> None:
        if self.obs_mode not in ("noleak", "full"):
            raise ValueError(f"obs_mode must be 'noleak' or 'full', got {self.obs_mode!r}")
        _finite("dt, episode_length_s and tracking_sigma", self.dt, self.episode_length_s, self.tracking_sigma)
        if self.dt <= 0 or self.substeps < 1 or self.episode_length_s <= 0:
            raise ValueError("dt and episode_length_s must be positive and substeps at least 1")
        if self.tracking_sigma <= 0:
            raise ValueError(f"tracking_sigma must be positive, got {self.tracking_sigma}")
        if self.base_height_target is not None and not (math.isfinite(self.base_height_target)
                                                        and self.base_height_target > 0):
            raise ValueError(f"base_height_target must be a positive number of metres, got {self.base_height_target}")

    @property
    def max_episode_steps(self) -> int:
        return int(round(self.episode_length_s / self.dt))


    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def make_walk_config(config: WalkConfig | dict | str | Path | None = None, **overrides: Any) -> WalkConfig:
    """A WalkConfig from a config object, a mapping or a YAML path, with top-level overrides.

    ``overrides`` are WalkConfig fields given as keyword arguments, e.g. ``obs_mode="full"``.
    Unknown keys are rejected with the list of known ones.
    """
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, WalkConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = dict(config)
    elif isinstance(config, (str, Path)):
        base = load_yaml(WalkConfig, config).to_dict()
    else:
        raise TypeError(f"config must be a WalkConfig, a mapping or a YAML path, got {type(config).__name__}")
    base.update(overrides)
    return from_dict(WalkConfig, base, "walk config")
