"""The faults family (dynamics fields + joint zero offsets + reversed legs): layout, suite, physics.

Fast tests need no scene; the physics tests share one batched scene of four Go2s (slow lane).
Expectations are independent of the code under test: a reversed leg driven by a moves like a normal
leg driven by -a; a zero offset of d is the same joint target as d / action_scale more action.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from go2bench.core.config import ConfigError
from go2bench.envs import suites, tasks as T
from go2bench.envs.families import FAMILIES, joint_columns, theta_layout
from go2bench.envs.robots import GO2, LEGS, ROBOTS, get_robot

V1 = ("added_mass", "friction", "strength_FR", "strength_FL", "strength_RR", "strength_RL", "latency_steps")
NEW = tuple(f"offset_{j}_{leg}" for j in ("thigh", "calf") for leg in LEGS) + tuple(f"flip_{leg}" for leg in LEGS)


# ------------------------------------------------------------------------------ layout (no scene)
def test_faults_layout_is_dynamics_then_offsets_and_flips_and_round_trips():
    assert theta_layout("dynamics", "mini_cheetah").names == V1  # the shipped dynamics teachers read 7 fields
    assert FAMILIES["faults"].fields[:7] == FAMILIES["dynamics"].fields and FAMILIES["faults"].physics
    lay = theta_layout("faults", "mini_cheetah")
    assert lay.names == V1 + NEW and lay.units[7:15] == ("rad",) * 8 and lay.integer[15:] == (True,) * 4
    spec = {"offset_calf_FR": 0.2, "offset_thigh_RL": -0.35, "flip_FL": 1, "strength_RR": 0.3}
    vec = lay.vector(spec)
    back = lay.as_dict(vec)
    assert lay.vector(back) == vec and back["flip_FL"] == 1 and isinstance(back["flip_FL"], int)
    assert {k: back[k] for k in spec} == spec and back["flip_FR"] == 0 and back["offset_calf_RR"] == 0.0
    norm = lay.normalise(np.array(vec))  # offsets over [-0.4, 0.4], flips over [0, 1], by hand
    np.testing.assert_allclose(norm[[11, 10, 15, 16]], [0.5, -0.875, -1.0, 1.0])


@pytest.mark.parametrize("task, message", [
    ({"flip_FR": 0.5}, r"theta.flip_FR: expected a whole number, got 0.5"),
    ({"flip_RR": 2}, r"flip_RR: 2.0 is outside the faults family's range \[0, 1\]"),
    ({"offset_calf_FL": 0.5}, r"offset_calf_FL: 0.5 is outside the faults family's range \[-0.4, 0.4\]"),
    ({"offset_hip_FL": 0.1}, r"unknown key\(s\) \['offset_hip_FL'\]"),
    ({"offset_thigh_RL": float("inf")}, "offset_thigh_RL: expected a finite number, got inf"),
])
def test_bad_fault_values_are_one_line_config_errors(task, message):
    with pytest.raises(ConfigError, match=message) as e:
        T.resolve("faults", GO2, [task], 1, where="theta")
    assert "\n" not in str(e.value)


def test_joint_columns_go_by_joint_order_not_names():
    lay = theta_layout("faults", "anymal_c")
    assert get_robot("anymal_c").joint_names[0] == "RF_HAA"  # its names would not give the leg "FR"
    assert joint_columns(lay, "strength_") == [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3
    assert joint_columns(lay, "offset_calf_", ("calf",)) == [None, None, 11, None, None, 12, None, None, 13,
                                                             None, None, 14]
    assert joint_columns(theta_layout("dynamics", "anymal_c"), "flip_") == [None] * 12  # a field it lacks


# ------------------------------------------------------------------------------ suite (no scene)
def test_faults_suite_regenerates_and_holds_the_new_axes():
    path = suites.SUITES_DIR / "faults-v0.yaml"
    assert suites.generate_suite("faults-v0") == path.read_text()
    assert suites.CURRENT_SUITE == {"velocity": "velocity-v0", "dynamics": "dynamics-v1", "faults": "faults-v0"}
    g = suites.SUITE_SPECS["faults-v0"].generator
    text = path.read_text()
    assert all(f"\n  {r}:\n    base_mass_kg: {ROBOTS[r].base_mass_kg!r}\n" in text for r in ROBOTS)
    for robot in ("go2", "mini_cheetah"):  # the family teachers' robots (loading all five takes 8 s)
        suite = suites.load_suite("faults", robot)
        assert (suite.name, len(suite.train), len(suite.test)) == ("faults-v0", 128, 32)
        for t in suite.train + suite.test:
            th = t.theta
            assert sum(th[f"flip_{leg}"] for leg in LEGS) <= 1
            beyond = [n for n in NEW[:8] if not -0.25 <= th[n] <= 0.25]  # only an offset bin leaves train
            assert beyond == ([t.bin.split(":")[1]] if t.bin.startswith("extrapolation:offset_") else [])
            assert all(0.3 <= abs(th[n]) <= 0.4 for n in beyond)
        flipped = [sum(t.theta[f"flip_{leg}"] for leg in LEGS) for t in suite.train]
        assert 0.35 < np.mean(flipped) < 0.65  # flip_probability 0.5 over 128 draws
        assert any(sum(t.theta[f"flip_{leg}"] for leg in LEGS) for t in suite.test)
        bins = [t.bin for t in suite.test]  # 16 extrapolation thetas over 5 axes, in turn
        assert (bins.count("extrapolation:offset_thigh_FL"), bins.count("extrapolation:offset_calf_RR")) == (3, 3)
    assert g.flip_probability == 0.5


def test_dynamics_suites_stay_as_they_were_and_refuse_fault_fields(tmp_path):
    for name in ("dynamics-v0", "dynamics-v1"):
        text = (suites.SUITES_DIR / f"{name}.yaml").read_text()
        assert "flip_probability" not in text and "offset_" not in text  # regenerated in test_families.py
        t = suites.load_suite("dynamics", "go2", name=name).test[5]
        assert tuple(t.theta) == V1 and t.id == f"{name}/go2/test/5"
    text = (suites.SUITES_DIR / "dynamics-v1.yaml").read_text()
    bad = tmp_path / "dynamics-v9.yaml"
    first = text.split("    train:\n    - ")[1].split("\n")[0]
    bad.write_text(text.replace(first, first[:-1] + ", flip_FR: 1}"))  # a faults field in a dynamics suite
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['flip_FR'\]"):
        suites.load_suite("dynamics", "go2", path=bad)
    with pytest.raises(ConfigError, match="a suite of the faults family, not dynamics"):
        suites.load_suite("dynamics", "go2", path=suites.SUITES_DIR / "faults-v0.yaml")


def test_one_apply_path_writes_fault_rows_only_for_a_layout_that_has_them(monkeypatch):
    """A recording stand-in of the simulation (no scene): the faults layout gives per-env joint-target rows
    (by joint order, ANYmal C names its joints RF_HAA, ...); the dynamics layout leaves the shared row alone."""
    import types

    from go2bench.envs import sim_support

    for name in ("set_added_mass", "set_contact_friction", "set_motor_strength"):
        monkeypatch.setattr(sim_support, name, lambda *a: None)
    robot = get_robot("anymal_c")
    default = torch.arange(12, dtype=torch.float32) / 10
    for family in ("dynamics", "faults"):
        lay = theta_layout(family, robot)
        sim = types.SimpleNamespace(robot_description=robot, set_latency=lambda *a: None, num_envs=2,
                                    default_dof_pos=default, target_base=default, target_gain=torch.tensor(0.5))
        theta = torch.tensor([lay.vector({}), lay.vector({"flip_RR": 1, "offset_calf_FL": 0.2,
                                                          "offset_thigh_RL": -0.1} if family == "faults" else {})],
                             dtype=torch.float32)  # as TaskState holds it
        state = types.SimpleNamespace(sim=sim, layout=lay, theta=theta, applied=torch.tensor([True, False]))
        T._apply_dynamics(state, torch.ones(2, dtype=torch.bool))  # env 0 already applied: only env 1 is written
        if family == "dynamics":
            assert sim.target_base is default and sim.target_gain.dim() == 0
            continue
        offset = [0.0] * 12
        offset[5], offset[10] = 0.2, -0.1  # FL calf (leg 1, joint 2), RL thigh (leg 3, joint 1)
        gain = [0.5] * 6 + [-0.5] * 3 + [0.5] * 3  # RR is the third leg
        torch.testing.assert_close(sim.target_base, torch.stack([default, default + torch.tensor(offset)]))
        assert sim.target_gain.tolist() == [[0.5] * 12, gain]


# ------------------------------------------------------------------------------ physics (one scene)
@pytest.fixture(scope="module")
def sim():
    from go2bench.envs.walk_sim import make_walk_sim

    s = make_walk_sim("Go2Walk-v0", num_envs=4, family="faults", max_episode_steps=1000,
                      tasks=[{"latency_steps": 0}] * 4)
    yield s
    s.close()


def _run(sim, thetas, actions, steps):
    """Set thetas, reset, drive ``actions`` (4, 12) for ``steps`` steps; joint positions and velocities per step."""
    sim.tasks.set(np.array([theta_layout("faults", "go2").vector({"latency_steps": 0, **t}) for t in thetas]))
    sim.seed(0)
    sim.reset()
    pos, vel = [], []
    for _ in range(steps):
        sim.step(torch.as_tensor(actions, dtype=torch.float32))
        pos.append(sim.dof_pos.clone())
        vel.append(sim.dof_vel.clone())
    return torch.stack(pos), torch.stack(vel)


@pytest.mark.slow
def test_a_reversed_leg_moves_its_joints_the_other_way(sim):
    a = np.zeros((4, 12), dtype=np.float32)
    a[:, 0:3] = [0.8, 0.8, -0.8]  # FR hip, thigh, calf (the robot starts in the air: the leg is unloaded)
    a[3, 0:3] *= -1  # env 3: a normal leg given the negated action
    pos, vel = _run(sim, [{}, {"flip_FR": 1}, {"flip_RL": 1}, {}], a, 20)
    v = vel[1]  # after two steps
    assert (v[0, :3].abs() > 0.3).all()
    assert torch.equal(torch.sign(v[1, :3]), -torch.sign(v[0, :3]))
    # the reversed leg driven by a == a normal leg driven by -a, for the whole rollout
    torch.testing.assert_close(pos[:, 1], pos[:, 3], atol=1e-5, rtol=0)
    # a reversed leg that gets zero action holds the default pose like a normal one
    torch.testing.assert_close(pos[:4, 2, 9:], pos[:4, 0, 9:], atol=1e-5, rtol=0)
    assert sim.target_gain[:, 0].tolist() == [0.25, -0.25, 0.25, 0.25]
    assert sim.target_gain[:, 9].tolist() == [0.25, 0.25, -0.25, 0.25]


@pytest.mark.slow
def test_a_zero_offset_is_the_same_target_as_more_action(sim):
    d = 0.125  # exact in binary, and so is d / action_scale = 0.5: the targets are bit-identical
    a = np.zeros((4, 12), dtype=np.float32)
    a[3, 2] += d / GO2.action_scale  # FR calf
    a[3, 10] -= d / GO2.action_scale  # RL thigh
    faults = {"offset_calf_FR": d, "offset_thigh_RL": -d}
    pos, _ = _run(sim, [{}, faults, {**faults, "flip_FR": 1}, {}], a, 60)
    torch.testing.assert_close(pos[:, 1], pos[:, 3], atol=1e-5, rtol=0)
    torch.testing.assert_close(pos[:, 2], pos[:, 3], atol=1e-5, rtol=0)  # zero action: the flip does not matter
    assert float((pos[-1, 1, 2] - pos[-1, 0, 2]).abs()) > 0.05  # and the offset did move the standing robot
    base = sim.target_base - sim.default_dof_pos
    assert base[1, 2].item() == d and base[1, 10].item() == -d and int((base[1] != 0).sum()) == 2
    # back to no faults: the env's row is the default pose and action_scale again
    _run(sim, [{}] * 4, np.zeros((4, 12), dtype=np.float32), 1)
    assert torch.equal(sim.target_base, sim.default_dof_pos.expand(4, -1))
    assert (sim.target_gain == GO2.action_scale).all()
