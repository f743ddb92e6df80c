"""Robot descriptions: everything that differs between quadrupeds, as data.

The environment code is one implementation; a :class:`RobotDescription` is the only thing that
changes between the Unitree Go2 and the MIT Mini Cheetah. Joints are always looked up by name,
never by their order in the URDF.

Joint order (the order of actions and of joint observations), shared by every robot::

    0 FR_hip   1 FR_thigh   2 FR_calf
    3 FL_hip   4 FL_thigh   5 FL_calf
    6 RR_hip   7 RR_thigh   8 RR_calf
    9 RL_hip  10 RL_thigh  11 RL_calf

This is the order of Genesis' Go2 locomotion example and of the original workflow's datasets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources

LEGS = ("FR", "FL", "RR", "RL")
LEG_JOINTS = ("hip", "thigh", "calf")
JOINT_NAMES = tuple(f"{leg}_{joint}_joint" for leg in LEGS for joint in LEG_JOINTS)
NUM_JOINTS = len(JOINT_NAMES)  # actions and joint observations per robot


@dataclass(frozen=True)
class RobotDescription:
    """Physical and control description of one quadruped.

    Angles are in radians, lengths in metres, gains in N*m/rad and N*m*s/rad.
    """

    name: str
    urdf: str  # a Genesis asset path ("urdf/go2/urdf/go2.urdf") or an absolute file path
    default_joint_angles: dict[str, float]  # by joint name, for every entry of joint_names
    joint_lower: tuple[float, ...]  # joint position limits, joint_names order
    joint_upper: tuple[float, ...]
    torque_limits: tuple[float, ...]  # N*m, joint_names order
    kp: float = 20.0
    kd: float = 0.5
    action_scale: float = 0.25  # joint target = default + action_scale * action
    base_init_height: float = 0.42
    base_height_target: float = 0.3
    termination_roll_deg: float = 10.0
    termination_pitch_deg: float = 10.0
    # Mass of the base link as the simulation builds it (fixed links merged into it), kg. Task
    # families scale added payloads by it (envs.families); a test checks it against the built scene.
    base_mass_kg: float = 0.0
    joint_names: tuple[str, ...] = field(default=JOINT_NAMES)

    def __post_init__(self) -> None:
        missing = [n for n in self.joint_names if n not in self.default_joint_angles]
        if missing:
            raise ValueError(f"robot {self.name!r}: no default angle for joints {missing}")
        for what in ("joint_lower", "joint_upper", "torque_limits"):
            if len(getattr(self, what)) != len(self.joint_names):
                raise ValueError(f"robot {self.name!r}: {what} needs {len(self.joint_names)} values")
        for name, lo, hi in zip(self.joint_names, self.joint_lower, self.joint_upper):
            if not lo < self.default_joint_angles[name] < hi:
                raise ValueError(f"robot {self.name!r}: default angle of {name} outside its limits")
        if not self.base_mass_kg > 0:
            raise ValueError(f"robot {self.name!r}: base_mass_kg must be positive, got {self.base_mass_kg}")

    @property
    def num_joints(self) -> int:
        """Number of actuated joints: the action size and the size of each joint observation block."""
        return len(self.joint_names)

    @property
    def default_pose(self) -> tuple[float, ...]:
        """Default joint angles in JOINT_NAMES order."""
        return tuple(self.default_joint_angles[n] for n in self.joint_names)

    def action_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-joint action bounds: this robot's joint limits mapped into action space.

        An action a asks for the joint target default + action_scale * a, so these bounds are
        exactly the actions whose targets stay within the joint limits. They are the env's action
        space, and the range of the data collector's uniform noise (the original reused Go2's
        limits for every robot). They are much wider than [-1, 1]: a heavy robot needs targets
        beyond +-0.25 rad from the default pose to carry itself on two legs with kp = 20.
        """
        lows, highs = [], []
        for name, lo, hi in zip(self.joint_names, self.joint_lower, self.joint_upper):
            d = self.default_joint_angles[name]
            lows.append((lo - d) / self.action_scale)
            highs.append((hi - d) / self.action_scale)
        return tuple(lows), tuple(highs)


def _per_leg(hip: float, front_thigh: float, rear_thigh: float, calf: float) -> dict[str, float]:
    angles = {}
    for leg in LEGS:
        angles[f"{leg}_hip_joint"] = hip
        angles[f"{leg}_thigh_joint"] = front_thigh if leg[0] == "F" else rear_thigh
        angles[f"{leg}_calf_joint"] = calf
    return angles


def _repeat(hip: float, thigh: float, calf: float) -> tuple[float, ...]:
    return (hip, thigh, calf) * len(LEGS)


# Unitree Go2, from the URDF shipped with genesis-world; angles and gains from Genesis' Go2
# locomotion example (the original workflow's settings). Limits from that URDF (front and rear
# thighs share the same range).
GO2 = RobotDescription(
    name="go2",
    urdf="urdf/go2/urdf/go2.urdf",
    default_joint_angles=_per_leg(hip=0.0, front_thigh=0.8, rear_thigh=1.0, calf=-1.5),
    joint_lower=_repeat(-1.0472, -1.5708, -2.7227),
    joint_upper=_repeat(1.0472, 3.4907, -0.83776),
    torque_limits=_repeat(23.7, 23.7, 35.55),
    kp=20.0,
    kd=0.5,
    action_scale=0.25,
    base_init_height=0.42,
    base_height_target=0.3,
    base_mass_kg=6.923,  # 6.921 kg base + the two 1 g head links merged into it
)


def _mini_cheetah_urdf() -> str:
    return str(resources.files("go2bench.envs") / "assets" / "mini_cheetah" / "mini_cheetah.urdf")


# MIT Mini Cheetah, our own primitive-shape URDF built from published physical parameters (see
# assets/mini_cheetah/README.md). PD gains and default angles are the original workflow's.
MINI_CHEETAH = RobotDescription(
    name="mini_cheetah",
    urdf=_mini_cheetah_urdf(),
    default_joint_angles=_per_leg(hip=0.0, front_thigh=-0.8, rear_thigh=-0.8, calf=1.5),
    joint_lower=_repeat(-1.6, -2.6, -2.6),
    joint_upper=_repeat(1.6, 2.6, 2.6),
    torque_limits=_repeat(18.0, 18.0, 26.0),
    kp=20.0,
    kd=0.5,
    action_scale=0.25,
    base_init_height=0.40,
    base_height_target=0.3,
    base_mass_kg=3.3,
)

ROBOTS: dict[str, RobotDescription] = {r.name: r for r in (GO2, MINI_CHEETAH)}


def get_robot(name: str) -> RobotDescription:
    """Look up a robot description by name, with a clear error for unknown names."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known robots: {sorted(ROBOTS)}") from None


def deg2rad(deg: float) -> float:
    return deg * math.pi / 180.0
