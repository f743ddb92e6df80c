"""Task families: a hidden task parameter theta per env, its layout defined once.

A *family* is a set of Walk tasks that differ only in a parameter vector theta which the agent
never observes: no observation slot carries it (``info["task"]`` reports it, for analysis), so a
policy can only infer it from what happens (rewards, its own motion). theta is set when a trial
starts and held for every episode of the trial (:mod:`go2bench.envs.tasks`); the fixed train and
test thetas of a family live in versioned suite files (:mod:`go2bench.envs.suites`).

Families (theta layout in this order; ranges are the family's full range: every valid theta lies
in it, and it is the range that ``normalise`` maps to [-1, 1]):

``velocity`` (the reward tracks theta; the command slots of the observation are zero)::

    lin_vel_x     m/s    [0.0, 1.0]    default 0.5   target forward velocity, body frame
    lin_vel_y     m/s    [-0.5, 0.5]   default 0.0   target lateral velocity (left +)
    ang_vel_yaw   rad/s  [-0.5, 0.5]   default 0.0   target yaw rate (counter-clockwise +)

``dynamics`` (the command stays visible at the config's default, 0.5 m/s)::

    added_mass    kg     [-0.2, 1.0] x the robot's base mass   default 0   payload on the base link
    friction      -      [0.1, 1.25]   default 1.0   contact friction coefficient with the ground
    strength_FR   -      [0.1, 1.1]    default 1.0   torque multiplier of the FR leg's 3 motors
    strength_FL, strength_RR, strength_RL            the same for the other legs
    latency_steps steps  [0, 2]        default 1     integer: the action executed is the one of
                                                     ``latency_steps`` control steps ago

``faults`` (the dynamics fields above, in that order, then actuator faults)::

    offset_thigh_FR rad  [-0.4, 0.4]   default 0     encoder zero error of that joint, added to its
    ..., offset_calf_RL                              position target (thigh and calf of each leg: 8 fields)
    flip_FR       -      [0, 1]        default 0     integer: 1 = the leg's motors are reversed (its
    ..., flip_RL                                     action negated about the default pose)

Joint target = default + offset + sign * action_scale * action (sign -1 on a reversed leg). Both
physics families are applied by one function (``tasks._apply_dynamics``); a layout without the
fault fields (``dynamics``) gets no fault. ``faults`` is a family of its own, not a new dynamics
suite, so that teachers trained on ``dynamics`` (7 theta inputs) keep running it.

Motor strength multiplies the torque a leg's motors deliver: its PD gains (kp, kd) and its torque
limits are scaled together, so clip(s * PD, +-s * limit) = s * clip(PD, +-limit). Friction is
applied to the ground plane and to every robot geom of that env (Genesis combines two surfaces by
the maximum of their coefficients, so lowering only the robot's would change nothing). Without a
family, ``action_latency`` of the config gives 1 step (True) or 0 (False) as before.

The dynamics ranges were widened for ``dynamics-v1`` (heavier payloads, icier ground, a nearly
dead leg): on ``dynamics-v0``'s narrower thetas a blind teacher scored within 0.2 of the
privileged one (Go2 0.84, Mini Cheetah 1.00 normalised), so that suite could not reward adapting.
Every ``dynamics-v0`` theta still lies inside the wider ranges, but the privileged observation
normalises theta over these ranges, so teachers trained before the change read a different input.

A later ``robot`` family (leave one robot out) fits this shape as a family whose theta selects the
scene itself: it has no per-env fields (one robot per batched scene), ``robot_specific`` is False,
and its suite lists robot names per split instead of thetas per robot. Nothing here assumes that a
family has a field; code reading thetas uses ``ThetaLayout.dim`` and ``names``.

This module is data only (no torch, no Genesis): the simulation applies thetas in
:mod:`go2bench.envs.tasks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from go2bench.core.config import ConfigError, short_repr
from go2bench.envs.robots import LEG_JOINTS, LEGS, RobotDescription, get_robot

OFFSET_JOINTS = ("thigh", "calf")  # the joints of each leg whose zero offset is a faults axis

__all__ = ["ThetaField", "ThetaLayout", "Family", "FAMILIES", "get_family", "theta_layout", "VELOCITY", "DYNAMICS",
           "FAULTS", "joint_columns"]


@dataclass(frozen=True)
class ThetaField:
    """One entry of a family's theta vector."""

    name: str
    low: float  # full range of the family (validity and normalisation); times base mass if per_base_mass
    high: float
    default: float
    unit: str
    description: str
    per_base_mass: bool = False  # low, high and default are multiples of the robot's base_mass_kg
    integer: bool = False  # only whole numbers are valid


@dataclass(frozen=True)
class ThetaLayout:
    """A family's theta vector for one robot: names and ranges resolved (the one definition of the layout).

    Used by ``info["task"]``, the privileged observation (``normalise``), the suites, and later the
    datasets, so every place agrees on what column i of a theta means.
    """

    family: str
    robot: str
    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    default: tuple[float, ...]
    units: tuple[str, ...]
    integer: tuple[bool, ...]

    @property
    def dim(self) -> int:
        return len(self.names)

    def vector(self, spec: Mapping[str, Any] | None = None, where: str = "task", complete: bool = False) -> tuple[float, ...]:
        """A validated theta vector from a mapping ``{name: value}``; missing names take the default.

        ``complete=True`` (suite files) requires every name. Unknown names, non-numbers, NaN/inf,
        values outside the family's range and non-integers for integer fields raise one
        :class:`~go2bench.core.config.ConfigError` naming the field.
        """
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: a {self.family} task must be a mapping of {list(self.names)}, got "
                              f"{short_repr(spec)}")
        unknown = sorted(str(k) for k in spec if k not in self.names)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {short_repr(unknown, 200)} for a {self.family} task; "
                              f"known keys: {list(self.names)}")
        missing = [n for n in self.names if n not in spec]
        if complete and missing:
            raise ConfigError(f"{where}: missing key(s) {missing} of a {self.family} task")
        out = []
        for name, lo, hi, default, integer in zip(self.names, self.low, self.high, self.default, self.integer):
            value = spec.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}.{name}: expected a number, got {short_repr(value)}")
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"{where}.{name}: expected a finite number, got {value!r}")
            if not lo - 1e-9 <= value <= hi + 1e-9:
                raise ConfigError(f"{where}.{name}: {value} is outside the {self.family} family's range "
                                  f"[{lo:g}, {hi:g}] for {self.robot}")
            if integer and value != round(value):
                raise ConfigError(f"{where}.{name}: expected a whole number, got {value}")
            out.append(value)
        return tuple(out)

    def as_dict(self, values: Sequence[float]) -> dict[str, float | int]:
        """``{name: value}`` of a theta vector (integer fields as ints)."""
        return {n: (int(round(float(v))) if i else float(v)) for n, v, i in zip(self.names, values, self.integer)}

    def normalise(self, values):
        """theta mapped to [-1, 1] over the family's range; works on floats, NumPy arrays and torch tensors (..., dim)."""
        low, span = self._low_span(values)
        return 2.0 * (values - low) / span - 1.0

    def _low_span(self, like):
        spans = tuple(h - lo for lo, h in zip(self.low, self.high))
        if hasattr(like, "new_tensor"):  # torch
            return like.new_tensor(self.low), like.new_tensor(spans)
        import numpy as np

        return np.asarray(self.low, dtype=np.float64), np.asarray(spans, dtype=np.float64)


@dataclass(frozen=True)
class Family:
    """A task family: its theta fields and how they reach the task (see the module docstring)."""

    name: str
    fields: tuple[ThetaField, ...]
    description: str
    hides_command: bool = False  # True: the observation's command slots are zero (the target is theta)
    robot_specific: bool = False  # True: ranges depend on the robot, so suites list thetas per robot
    physics: bool = False  # True: theta sets the simulation's physics (per-env dof and link info)

    def layout(self, robot: str | RobotDescription) -> ThetaLayout:
        """The theta layout of this family for ``robot`` (robot-relative ranges resolved)."""
        rd = robot if isinstance(robot, RobotDescription) else get_robot(robot)

        def scaled(f: ThetaField, v: float) -> float:
            return v * rd.base_mass_kg if f.per_base_mass else v

        fs = self.fields
        return ThetaLayout(
            family=self.name, robot=rd.name, names=tuple(f.name for f in fs),
            low=tuple(scaled(f, f.low) for f in fs), high=tuple(scaled(f, f.high) for f in fs),
            default=tuple(scaled(f, f.default) for f in fs), units=tuple(f.unit for f in fs),
            integer=tuple(f.integer for f in fs),
        )


VELOCITY = Family(
    name="velocity",
    fields=(
        ThetaField("lin_vel_x", 0.0, 1.0, 0.5, "m/s", "target forward base velocity, body frame"),
        ThetaField("lin_vel_y", -0.5, 0.5, 0.0, "m/s", "target lateral base velocity, body frame, left +"),
        ThetaField("ang_vel_yaw", -0.5, 0.5, 0.0, "rad/s", "target yaw rate, counter-clockwise +"),
    ),
    description="hidden target velocity: the reward tracks theta, the observation's command slots are zero",
    hides_command=True,
)

DYNAMICS = Family(
    name="dynamics",
    fields=(
        ThetaField("added_mass", -0.2, 1.0, 0.0, "kg", "mass added to the base link (times the robot's base mass)",
                   per_base_mass=True),
        ThetaField("friction", 0.1, 1.25, 1.0, "", "ground contact friction coefficient"),
        *(ThetaField(f"strength_{leg}", 0.1, 1.1, 1.0, "", f"torque multiplier of the {leg} leg's motors")
          for leg in LEGS),
        ThetaField("latency_steps", 0.0, 2.0, 1.0, "steps", "control steps between an action and its execution",
                   integer=True),
    ),
    description="hidden dynamics: payload, ground friction, per-leg motor strength, action latency",
    robot_specific=True,
    physics=True,
)

FAULTS = Family(
    name="faults",
    fields=(
        *DYNAMICS.fields,
        *(ThetaField(f"offset_{joint}_{leg}", -0.4, 0.4, 0.0, "rad",
                     f"zero error of the {leg} {joint} joint: added to its position target")
          for joint in OFFSET_JOINTS for leg in LEGS),
        *(ThetaField(f"flip_{leg}", 0.0, 1.0, 0.0, "", f"1: the {leg} leg's motors turn the other way "
                     "(its action is negated about the default pose)", integer=True) for leg in LEGS),
    ),
    description="hidden actuator faults: dynamics-v1's axes + joint zero offsets + reversed legs",
    robot_specific=True,
    physics=True,
)

FAMILIES: dict[str, Family] = {f.name: f for f in (VELOCITY, DYNAMICS, FAULTS)}


def get_family(family: str | Family) -> Family:
    """A family by name (or the family itself); a clear error for unknown names."""
    if isinstance(family, Family):
        return family
    try:
        return FAMILIES[family]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown task family {short_repr(family)}; known families: {sorted(FAMILIES)}") from None


def theta_layout(family: str | Family, robot: str | RobotDescription) -> ThetaLayout:
    """Shorthand for ``get_family(family).layout(robot)``."""
    return get_family(family).layout(robot)


def joint_columns(layout: ThetaLayout, prefix: str, joints: Sequence[str] = LEG_JOINTS) -> list[int | None]:
    """Per joint of a robot (``LEGS`` x ``LEG_JOINTS`` order, every robot's ``joint_names``), the theta
    column of its leg's field ``f"{prefix}{leg}"`` (e.g. "strength_"), or None for joints not in ``joints``
    and for fields the layout lacks.

    The order, not the joint names, gives the leg: ANYmal C names its joints RF_HAA, ... .
    """
    idx = {n: k for k, n in enumerate(layout.names)}
    return [idx.get(f"{prefix}{leg}") if joint in joints else None for leg in LEGS for joint in LEG_JOINTS]
