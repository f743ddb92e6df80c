"""The robots added beside Go2 and Mini Cheetah (issue 15, envs layer): A1, Go1 and ANYmal C.

Each robot's scene is built once (one single env per robot, shared by every test here): standing
under zero action, joint mapping by URDF name, action bounds at the joint limits, Gymnasium's env
checker. The description-versus-URDF checks read the URDF files and build nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gymnasium.utils.env_checker import check_env

from go2bench.cli import main
from go2bench.envs import suites
from go2bench.envs.registry import TASKS, task_spec
from go2bench.envs.robots import JOINT_NAMES, ROBOTS, get_robot

pytestmark = pytest.mark.slow  # builds its own Genesis scenes; the fast lane skips it

NEW_ENVS = ("A1Walk-v0", "Go1Walk-v0", "AnymalCWalk-v0")
# total mass of the URDF as Genesis builds it (kg), and the legs' URDF names for FR, FL, RR, RL
TOTAL_MASS = {"a1": 13.74, "go1": 12.012, "anymal_c": 52.13485}
ANYMAL_NAMES = ("RF_HAA", "RF_HFE", "RF_KFE", "LF_HAA", "LF_HFE", "LF_KFE",
                "RH_HAA", "RH_HFE", "RH_KFE", "LH_HAA", "LH_HFE", "LH_KFE")


@pytest.fixture(scope="module")
def envs():
    """One env per new robot, built on first use and closed at the end of the module."""
    built: dict[str, gym.Env] = {}

    def get(env_id: str) -> gym.Env:
        if env_id not in built:
            built[env_id] = gym.make(env_id)
        return built[env_id]

    yield get
    for env in built.values():
        env.close()


def _zero(n: int = 12) -> torch.Tensor:
    return torch.zeros((1, n))


# ------------------------------------------------------------------------------ registry and descriptions
def test_new_envs_are_registered_with_their_names_and_listed_by_the_cli():
    assert list(TASKS)[:2] == ["Go2Walk-v0", "MiniCheetahWalk-v0"]  # existing ids keep their order
    expected = {"A1Walk-v0": ("a1", "a1_walking", "a1_walking_ad", "a1_ad"),
                "Go1Walk-v0": ("go1", "go1_walking", "go1_walking_ad", "go1_ad"),
                "AnymalCWalk-v0": ("anymal_c", "anymalc_walking", "anymalc_walking_ad", "anymalc_ad")}
    for env_id, (robot, group, task, dataset) in expected.items():
        spec = task_spec(env_id)
        assert (spec.robot, spec.group, spec.task_name, spec.dataset) == (robot, group, task, dataset)
        assert env_id in gym.registry and gym.registry[env_id].kwargs == {"robot": robot}
    r = CliRunner().invoke(main, ["envs"])
    assert r.exit_code == 0, r.output
    for env_id in TASKS:
        assert f"\n{env_id}\n" in f"\n{r.output}"
    assert len({s.task_name for s in TASKS.values()}) == len({s.group for s in TASKS.values()}) == len(TASKS)


@pytest.mark.parametrize("robot", ["a1", "go1"])
def test_own_urdfs_agree_with_the_descriptions(robot):
    """Our A1 and Go1 URDFs carry the description's limits and torques, by joint name; masses as documented."""
    rd = get_robot(robot)
    root = ET.parse(rd.urdf).getroot()
    joints = {j.get("name"): j for j in root.findall("joint")}
    for i, name in enumerate(rd.joint_names):
        limit = joints[name].find("limit")
        assert float(limit.get("lower")) == pytest.approx(rd.joint_lower[i], abs=1e-6), name
        assert float(limit.get("upper")) == pytest.approx(rd.joint_upper[i], abs=1e-6), name
        assert float(limit.get("effort")) == pytest.approx(rd.torque_limits[i]), name
    masses = {link.get("name"): float(link.find("inertial/mass").get("value")) for link in root.findall("link")}
    assert masses["base"] == rd.base_mass_kg
    assert sum(masses.values()) == pytest.approx(TOTAL_MASS[robot], abs=1e-6)
    for link in root.findall("link"):  # every inertia is physically valid (triangle inequality)
        i = link.find("inertial/inertia")
        ixx, iyy, izz = (float(i.get(k)) for k in ("ixx", "iyy", "izz"))
        assert min(ixx, iyy, izz) > 0 and ixx + iyy >= izz and iyy + izz >= ixx and ixx + izz >= iyy, link.get("name")
    readme = (Path(rd.urdf).parent / "README.md").read_text()
    assert "Source" in readme and "Licence" in readme


def test_anymal_c_maps_its_urdf_joint_names_onto_the_shared_order():
    rd = get_robot("anymal_c")
    assert rd.joint_names == ANYMAL_NAMES
    assert get_robot("a1").joint_names == get_robot("go1").joint_names == JOINT_NAMES
    # the "X" stance: front knees bent one way, hind knees the other; HAA limits mirror between sides
    pose = dict(zip(ANYMAL_NAMES, rd.default_pose))
    assert pose["LF_KFE"] == pose["RF_KFE"] == -pose["LH_KFE"] == -pose["RH_KFE"] == -0.8
    lower, upper = dict(zip(ANYMAL_NAMES, rd.joint_lower)), dict(zip(ANYMAL_NAMES, rd.joint_upper))
    assert (lower["LF_HAA"], upper["LF_HAA"]) == (-upper["RF_HAA"], -lower["RF_HAA"])


def test_dynamics_suite_has_every_robot_with_its_base_mass():
    for name in ("dynamics-v0", "dynamics-v1"):
        (_, top), = suites.SUITE_SPECS[name].generator.extrapolation_bands["added_mass"]
        for robot in ROBOTS.values():
            suite = suites.load_suite("dynamics", robot.name, name=name)
            assert len(suite.train) == 128 and len(suite.test) == 32
            assert max(t.theta["added_mass"] for t in suite.test) <= top * robot.base_mass_kg + 1e-9


def test_action_bounds_are_the_joint_limits_in_action_space():
    for robot in ("a1", "go1", "anymal_c"):
        rd = get_robot(robot)
        low, high = (np.array(b) for b in rd.action_bounds())
        default = np.array(rd.default_pose)
        np.testing.assert_allclose(default + rd.action_scale * low, rd.joint_lower, atol=1e-9)
        np.testing.assert_allclose(default + rd.action_scale * high, rd.joint_upper, atol=1e-9)
        assert (low < 0).all() and (high > 0).all()


# ------------------------------------------------------------------------------ built scenes
@pytest.mark.parametrize("env_id", NEW_ENVS)
def test_stands_under_zero_action_for_two_seconds(env_id, envs):
    env = envs(env_id)
    sim = env.unwrapped.sim
    rd = sim.robot_description
    assert sim.base_mass == pytest.approx(rd.base_mass_kg, abs=1e-4)
    assert float(sim.robot.get_links_mass().sum()) == pytest.approx(TOTAL_MASS[rd.name], abs=1e-3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (33,) and np.abs(obs[9:21]).max() < 1e-5  # joints start at the default pose
    for step in range(100):  # 2 s
        obs, _, term, trunc, _ = env.step(np.zeros(12, dtype=np.float32))
        assert not term and not trunc
        if step == 74:
            before = sim.base_pos[0].clone()
    height = float(sim.base_pos[0, 2])
    assert abs(height - rd.base_height_target) < 0.2 * rd.base_height_target, height
    np.testing.assert_allclose(obs[3:6], [0.0, 0.0, -1.0], atol=0.05)  # level, within 3 degrees
    # not falling, not walking off: the mean base velocity over the last 0.5 s (the base still rocks
    # a little on kp = 20 legs, +-0.06 m/s, as Go2's does)
    assert float((sim.base_pos[0] - before).norm()) / 0.5 < 0.05
    assert float((sim.dof_pos[0] - sim.default_dof_pos).abs().max()) < 0.4  # near the default pose


@pytest.mark.parametrize("env_id", NEW_ENVS)
def test_joint_mapping_by_urdf_name(env_id, envs):
    """An action on slot k moves the URDF joint named joint_names[k], read back by that name."""
    sim = envs(env_id).unwrapped.sim
    rd = sim.robot_description

    def positions(slot: int | None, steps: int = 10) -> tuple[np.ndarray, np.ndarray]:
        sim.reset()
        qpos = sim.robot.get_qpos()
        qpos[:, 2] += 1.0  # lifted 1 m: the legs move freely for the 0.2 s of free fall
        sim.robot.set_qpos(qpos, zero_velocity=True)
        action = _zero()
        if slot is not None:
            action[0, slot] = 0.3 / rd.action_scale  # target 0.3 rad above the default
        for _ in range(steps):
            sim.step(action)
        idx = [sim.robot.get_joint(name).dofs_idx_local[0] for name in rd.joint_names]  # by URDF name
        return sim.robot.get_dofs_position(idx)[0].cpu().numpy(), sim.observe()[0].cpu().numpy()

    base, _ = positions(None)
    np.testing.assert_allclose(base, rd.default_pose, atol=0.02)
    for slot in (1, 3, 8, 11):  # FR thigh, FL hip, RR calf, RL calf
        q, obs = positions(slot)
        moved = q - base
        assert 0.15 < moved[slot] < 0.6, (rd.joint_names[slot], moved)  # 0.3 rad, PD overshoot allowed
        assert int(np.argmax(np.abs(moved))) == slot, (rd.joint_names[slot], moved)
        # the observation's joint block is the URDF joints read by name, minus the default pose
        np.testing.assert_allclose(obs[9:21], q - np.array(rd.default_pose), atol=1e-5)


@pytest.mark.parametrize("env_id", NEW_ENVS)
def test_large_actions_saturate_at_the_joint_limits(env_id, envs):
    sim = envs(env_id).unwrapped.sim
    rd = sim.robot_description
    lower, upper = np.array(rd.joint_lower), np.array(rd.joint_upper)
    sim.reset()
    sim.step(torch.full((1, 12), 1e3))
    np.testing.assert_allclose(sim.actions[0].cpu().numpy(), sim.action_high.cpu().numpy())
    targets = sim.default_dof_pos + rd.action_scale * sim.actions[0]
    np.testing.assert_allclose(targets.cpu().numpy(), upper, atol=1e-5)
    # the FR calf driven far past either limit settles at that limit, not beyond
    for slot, limit, sign in ((2, lower[2], -1.0), (2, upper[2], 1.0)):
        sim.reset()
        action = _zero()
        action[0, slot] = sign * 1e3
        for _ in range(25):
            sim.step(action)
        q = float(sim.dof_pos[0, slot])
        assert abs(q - limit) < 0.1, (rd.joint_names[slot], q, limit)
        assert lower[slot] - 0.05 < q < upper[slot] + 0.05


@pytest.mark.parametrize("env_id", NEW_ENVS)
def test_gymnasium_env_checker_passes(env_id, envs):
    # The close check makes and closes a second env of the same class: robot-independent, covered by
    # test_envs for Go2 and Mini Cheetah, and ANYmal C's mesh-laden URDF takes 10-15 s to build again.
    check_env(envs(env_id).unwrapped, skip_render_check=True, skip_close_check=True)
