"""Robot descriptions: everything that differs between quadrupeds, as data.

The environment code is one implementation; a :class:`RobotDescription` is the only thing that
changes between robots (Unitree Go2, A1 and Go1, MIT Mini Cheetah, ANYbotics ANYmal C). Joints are
always looked up by name, never by their order in the URDF: ``joint_names`` lists the URDF's names
in the order below (ANYmal C's ``RF_HAA``... are mapped onto it that way).

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


def _per_side(hip_out: float, front_thigh: float, rear_thigh: float, calf: float) -> dict[str, float]:
    """Unitree-style pose with the hips splayed outwards: +hip_out on left legs, -hip_out on right legs."""
    angles = _per_leg(0.0, front_thigh, rear_thigh, calf)
    for leg in LEGS:
        angles[f"{leg}_hip_joint"] = hip_out if leg[1] == "L" else -hip_out
    return angles


def _asset(robot: str) -> str:
    """Absolute path of a URDF shipped in go2bench/envs/assets/<robot>/<robot>.urdf."""
    return str(resources.files("go2bench.envs") / "assets" / robot / f"{robot}.urdf")


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


# MIT Mini Cheetah, our own primitive-shape URDF built from published physical parameters (see
# assets/mini_cheetah/README.md). PD gains and default angles are the original workflow's.
MINI_CHEETAH = RobotDescription(
    name="mini_cheetah",
    urdf=_asset("mini_cheetah"),
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

# Base height targets: about 1.05x the height each robot settles at under zero action after 2 s
# (Go2: 0.3 for 0.288; A1 0.258, Go1 0.279, ANYmal C 0.491 m, on CPU), so that holding the target is
# reachable by straightening the legs a little, as for Go2.

# Unitree A1, our own primitive-shape URDF from Unitree's published model (assets/a1/README.md): 13.74 kg,
# 0.2 m thigh and calf. Pose and gains as legged_gym's A1 config (and Go2's): hips splayed 0.1 rad,
# thighs 0.8 front / 1.0 rear, calves -1.5; kp 20, kd 0.5, action scale 0.25. Limits and the
# 33.5 N m torque limit are the published ones (also in the URDF).
A1 = RobotDescription(
    name="a1",
    urdf=_asset("a1"),
    default_joint_angles=_per_side(hip_out=0.1, front_thigh=0.8, rear_thigh=1.0, calf=-1.5),
    joint_lower=_repeat(-0.802851, -1.047198, -2.696534),
    joint_upper=_repeat(0.802851, 4.18879, -0.916298),
    torque_limits=_repeat(33.5, 33.5, 33.5),
    kp=20.0,
    kd=0.5,
    action_scale=0.25,
    base_init_height=0.42,
    base_height_target=0.27,
    base_mass_kg=6.0,  # the trunk (base) link
)

# Unitree Go1, our own primitive-shape URDF from Unitree's published model (assets/go1/README.md):
# 12.01 kg, 0.213 m thigh and calf. Pose and gains as A1; limits and torques (23.7 / 23.7 /
# 35.55 N m: the knee has a 1.5x higher gear ratio) from Unitree's MuJoCo model.
GO1 = RobotDescription(
    name="go1",
    urdf=_asset("go1"),
    default_joint_angles=_per_side(hip_out=0.1, front_thigh=0.8, rear_thigh=1.0, calf=-1.5),
    joint_lower=_repeat(-0.863, -0.686, -2.818),
    joint_upper=_repeat(0.863, 4.501, -0.888),
    torque_limits=_repeat(23.7, 23.7, 35.55),
    kp=20.0,
    kd=0.5,
    action_scale=0.25,
    base_init_height=0.42,
    base_height_target=0.29,
    base_mass_kg=5.204,  # the trunk (base) link
)

# ANYbotics ANYmal C, the URDF shipped with genesis-world (BSD-3-Clause, ANYbotics). Its joints are
# {LF,RF,LH,RH}_{HAA,HFE,KFE}: RF -> FR, LF -> FL, RH -> RR, LH -> RL and HAA -> hip, HFE -> thigh,
# KFE -> calf (``joint_names``). In this URDF every HAA turns about +x (positive: left legs out, right
# legs in) and every HFE/KFE about +y (positive: the limb swings backwards), so the "X" stance of
# legged_gym's anymal_c config is HFE +0.4 / -0.4 and KFE -0.8 / +0.8 (front / hind), knees pointing
# inwards. Gains, action scale, spawn height (0.6) and height target (0.5) are that config's (kp 80,
# kd 2, 0.5). The URDF has no position limits: HAA uses ANYmal C's range (abduction 0.49, adduction
# 0.72 rad, as in MuJoCo Menagerie's model); HFE and KFE have none there either (+-3 pi), so go2bench
# bounds them to a working range, HFE +-1.5 and KFE from a straight knee (0) to 2.4 rad bent.
# Torque limit: the drives' 80 N m (the URDF's effort).
_ANYMAL_LEGS = {"FR": "RF", "FL": "LF", "RR": "RH", "RL": "LH"}
_ANYMAL_JOINTS = {"hip": "HAA", "thigh": "HFE", "calf": "KFE"}
ANYMAL_C_JOINT_NAMES = tuple(f"{_ANYMAL_LEGS[leg]}_{_ANYMAL_JOINTS[j]}" for leg in LEGS for j in LEG_JOINTS)
ANYMAL_C = RobotDescription(
    name="anymal_c",
    urdf="urdf/anymal_c/urdf/anymal_c.urdf",
    joint_names=ANYMAL_C_JOINT_NAMES,
    default_joint_angles={
        "RF_HAA": 0.0, "RF_HFE": 0.4, "RF_KFE": -0.8,
        "LF_HAA": 0.0, "LF_HFE": 0.4, "LF_KFE": -0.8,
        "RH_HAA": 0.0, "RH_HFE": -0.4, "RH_KFE": 0.8,
        "LH_HAA": 0.0, "LH_HFE": -0.4, "LH_KFE": 0.8,
    },
    #            FR (RF)            FL (LF)            RR (RH)            RL (LH)
    joint_lower=(-0.49, -1.5, -2.4, -0.72, -1.5, -2.4, -0.49, -1.5, 0.0, -0.72, -1.5, 0.0),
    joint_upper=(0.72, 1.5, 0.0, 0.49, 1.5, 0.0, 0.72, 1.5, 2.4, 0.49, 1.5, 2.4),
    torque_limits=_repeat(80.0, 80.0, 80.0),
    kp=80.0,
    kd=2.0,
    action_scale=0.5,
    base_init_height=0.6,
    base_height_target=0.5,
    base_mass_kg=26.37317,  # base 6.222 kg + shells, battery, sensors and the four HAA drives merged into it
)

ROBOTS: dict[str, RobotDescription] = {r.name: r for r in (GO2, MINI_CHEETAH, A1, GO1, ANYMAL_C)}


def get_robot(name: str) -> RobotDescription:
    """Look up a robot description by name, with a clear error for unknown names."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known robots: {sorted(ROBOTS)}") from None


def deg2rad(deg: float) -> float:
    return deg * math.pi / 180.0
