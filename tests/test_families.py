"""Task families (issue 14, env layer): hidden thetas held per trial, per-env draws, suites, bad thetas.

Two scenes for the whole module: four Go2s in the velocity family and four privileged Go2s in
the dynamics family; every test sets the tasks it needs through reset options.
"""

from __future__ import annotations

import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import go2bench  # noqa: F401  (registers the envs)
from go2bench.core.config import ConfigError
from go2bench.envs import streams, suites, tasks as T
from go2bench.envs.families import get_family, theta_layout
from go2bench.envs.robots import GO2, MINI_CHEETAH

pytestmark = pytest.mark.slow  # builds one scene per family; the fast lane skips it

VEL_TASKS = [{"lin_vel_x": 0.9}, {"lin_vel_x": 0.1, "lin_vel_y": 0.3}, ("test", 3), {}]


@pytest.fixture(scope="module")
def vel():
    env = gym.make_vec("Go2Walk-v0", num_envs=4, family="velocity", tasks=VEL_TASKS, max_episode_steps=15)
    yield env
    env.close()


@pytest.fixture(scope="module")
def dyn():
    env = gym.make_vec("Go2Walk-v0", num_envs=4, family="dynamics", privileged=True, max_episode_steps=200,
                       commands={"lin_vel_x": [0.0, 1.0]})
    yield env
    env.close()


@pytest.fixture
def no_genesis(monkeypatch):
    from go2bench.envs import genesis_runtime

    def refuse(*args, **kwargs):
        raise AssertionError("a Genesis scene was about to be built")

    monkeypatch.setattr(genesis_runtime, "init", refuse)


def gait(t: int, n: int) -> np.ndarray:
    """A trot-like joint pattern, the same for every env."""
    a = np.zeros((n, 12), dtype=np.float32)
    phase = 2 * math.pi * t / 16
    for leg, offset in enumerate((0.0, math.pi, math.pi, 0.0)):  # FR, FL, RR, RL
        a[:, 3 * leg + 1] = 1.2 * math.sin(phase + offset)
        a[:, 3 * leg + 2] = -1.2 * math.sin(phase + offset)
    return a


# ------------------------------------------------------------------------------ velocity
def test_velocity_theta_changes_rewards_only_and_is_hidden(vel):
    """Same seed and actions, two thetas: identical observations (command slots zero), different rewards."""
    sim = vel.unwrapped.sim
    runs = []
    for theta in ({"lin_vel_x": 0.9}, {"lin_vel_x": 0.1, "lin_vel_y": 0.3}):
        obs, info = vel.reset(seed=3, options={"task": theta})
        assert info["task"]["lin_vel_x"].tolist() == [theta["lin_vel_x"]] * 4
        traj, rews = [obs], []
        for t in range(12):
            obs, reward, _, _, info = vel.step(gait(t, 4))
            traj.append(obs)
            rews.append(reward)
            # the tracking term follows the hidden target, by hand
            v = sim.base_lin_vel[:, :2].numpy()
            target = np.array([theta["lin_vel_x"], theta.get("lin_vel_y", 0.0)])
            expected = 0.02 * np.exp(-((v - target) ** 2).sum(1) / 0.25)
            np.testing.assert_allclose(info["reward_tracking_lin_vel"], expected, rtol=1e-4)
        runs.append((np.array(traj), np.array(rews)))
    (obs_a, rew_a), (obs_b, rew_b) = runs
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not obs_a[:, :, 6:9].any()  # no observation slot carries the target
    assert np.abs(rew_a - rew_b).max() > 1e-3
    assert vel.single_observation_space.shape == (33,)


def test_per_env_thetas_in_one_scene_held_across_the_episodes_of_a_trial(vel):
    sim = vel.unwrapped.sim
    obs, info = vel.reset(seed=0, options={"tasks": VEL_TASKS})
    expected = {"lin_vel_x": [0.9, 0.1, 0.331, 0.5], "lin_vel_y": [0.0, 0.3, -0.22, 0.0],
                "ang_vel_yaw": [0.0, 0.0, -0.296, 0.0]}
    assert {k: v.tolist() for k, v in info["task"].items()} == expected
    assert info["task_id"].tolist() == ["", "", "velocity-v0/test/3", ""]
    assert dict(suites.load_suite("velocity", "go2").test[3].theta) == {k: v[2] for k, v in expected.items()}
    rng = np.random.default_rng(0)
    episodes = np.zeros(4, dtype=int)
    for _ in range(40):  # 15-step episodes with same-step autoreset: at least two resets per env
        obs, _, term, trunc, info = vel.step(rng.uniform(-0.5, 0.5, (4, 12)).astype(np.float32))
        episodes += term | trunc
        assert {k: v.tolist() for k, v in info["task"].items()} == expected
        np.testing.assert_allclose(sim.commands.numpy(), np.array(list(expected.values())).T, atol=1e-6)
        assert not obs[:, 6:9].any()
    assert episodes.min() >= 2
    # the tracking error of the last step, per axis, against the hidden target
    actual = torch.stack((sim.base_lin_vel[:, 0], sim.base_lin_vel[:, 1], sim.base_ang_vel[:, 2]), 1)
    torch.testing.assert_close(sim.tracking_error(), (sim.commands - actual).abs())


def test_single_env_takes_a_suite_task_or_a_mapping_and_reports_it():
    env = gym.make("Go2Walk-v0", family="velocity", task=("test", 3))
    try:
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset(seed=0)
        assert info == {"task": {"lin_vel_x": 0.331, "lin_vel_y": -0.22, "ang_vel_yaw": -0.296},
                        "task_id": "velocity-v0/test/3"}
        obs, info = env.reset(options={"task": {"lin_vel_x": 0.8}})
        assert info["task"] == {"lin_vel_x": 0.8, "lin_vel_y": 0.0, "ang_vel_yaw": 0.0} and info["task_id"] is None
        for _ in range(3):
            obs, reward, _, _, info = env.step(np.zeros(12, dtype=np.float32))
            assert info["task"]["lin_vel_x"] == 0.8 and not obs[6:9].any()
        assert env.unwrapped.sim.commands[0].tolist() == pytest.approx([0.8, 0.0, 0.0])
    finally:
        env.close()


def test_split_draws_are_seeded_per_trial_and_resampled_per_episode_on_request(vel):
    sim = vel.unwrapped.sim
    train = {t.id for t in suites.load_suite("velocity", "go2").train}
    _, a = vel.reset(seed=11, options={"tasks": "train"})
    _, b = vel.reset(seed=11, options={"tasks": "train"})
    _, c = vel.reset(seed=12, options={"tasks": "train"})
    assert a["task_id"].tolist() == b["task_id"].tolist() != c["task_id"].tolist()
    assert set(a["task_id"]) <= train
    held = [vel.reset()[1]["task_id"].tolist() for _ in range(2)]  # new episodes, same trial
    assert held == [c["task_id"].tolist()] * 2
    new = vel.reset(options={"new_trial": True})[1]["task_id"].tolist()  # a new trial draws again
    assert new != c["task_id"].tolist() and int(sim.trial[0]) == 1
    vel.reset(seed=11, options={"tasks": "train", "resample_tasks": "episode"})
    ids = [vel.reset()[1]["task_id"].tolist() for _ in range(3)]
    assert ids[0] != ids[1] != ids[2]


def test_reset_draws_do_not_depend_on_which_other_envs_reset(dyn):
    """Env 0's thetas and commands per episode are the same whether it resets alone or with others."""
    sim = dyn.unwrapped.sim
    opts = {"tasks": "train", "resample_tasks": "episode"}

    def env0_draws(masks):
        _, info = dyn.reset(seed=7, options=opts)
        seen = [(info["task_id"][0], tuple(sim.commands[0].tolist()))]
        for m in masks:
            _, info = dyn.reset(options={"reset_mask": np.array(m)})
            seen.append((info["task_id"][0], tuple(sim.commands[0].tolist())))
        return seen

    alone = env0_draws([[True, False, False, False]] * 3)
    together = env0_draws([[True, True, True, True], [True, False, True, False], [True, True, False, False]])
    assert alone == together
    assert len({s for s in alone}) == 4  # every episode drew a new theta and command
    # the counter-based draws themselves: a row does not depend on the other rows of the batch
    env, zero = torch.arange(5), torch.zeros(5, dtype=torch.int64)
    full = streams.uniform(3, streams.PUSH, env, zero, zero + 2, 4, 2)
    torch.testing.assert_close(streams.uniform(3, streams.PUSH, env[3:4], zero[:1], zero[:1] + 2, 4, 2), full[3:4])
    assert streams.mix32(12345) == int(streams.mix32(torch.tensor([12345]))[0])


# ------------------------------------------------------------------------------ dynamics
def test_low_ground_friction_changes_the_trajectory(dyn):
    """Friction is set on the ground and the robot, so a value below 1 changes the contact (defect a)."""
    sim = dyn.unwrapped.sim
    dyn.reset(seed=0, options={"tasks": [{"friction": 0.2}, {"friction": 1.25}, {"friction": 0.2}, {}]})
    ratio = sim.scene.rigid_solver.get_geoms_friction_ratio()  # (envs, geoms); geom 0 is the ground plane
    assert ratio[:, 0].tolist() == pytest.approx([0.2, 1.25, 0.2, 1.0])
    assert ratio[0, 1:].tolist() == pytest.approx([0.2] * (ratio.shape[1] - 1))
    start = sim.base_pos[:, :2].clone()
    for t in range(60):  # the simulation itself: no autoreset when the trot tilts the base past 10 degrees
        sim.step(torch.from_numpy(gait(t, 4)))
    moved = sim.base_pos[:, :2] - start
    assert float((moved[0] - moved[2]).abs().max()) < 1e-5  # same friction, same trajectory
    # the trot pushes the robot about 0.2 m on a normal floor; on a slippery one its feet slide
    assert float(moved[1].norm()) > 0.1 and float(moved[0].norm()) < 0.5 * float(moved[1].norm())


def test_dynamics_theta_reaches_the_physics_and_the_privileged_observation(dyn):
    sim = dyn.unwrapped.sim
    layout = theta_layout("dynamics", "go2")
    weak = {"added_mass": 3.0, "friction": 0.5, "strength_RL": 0.4, "latency_steps": 2}
    obs, info = dyn.reset(seed=0, options={"tasks": [weak, ("test", 0), {"latency_steps": 0}, {}]})
    assert dyn.single_observation_space.shape == (33 + 7,) and obs.shape == (4, 40)
    assert info["task"]["latency_steps"].tolist() == [2, int(info["task"]["latency_steps"][1]), 0, 1]
    assert sim.base_mass == pytest.approx(GO2.base_mass_kg, abs=1e-4)
    mass = sim.robot.get_links_mass([0])[:, 0]
    assert float(mass[0]) == pytest.approx(GO2.base_mass_kg + 3.0, abs=1e-4)
    assert float(mass[3]) == pytest.approx(GO2.base_mass_kg, abs=1e-4)
    kp = sim.robot.get_dofs_kp(sim.dofs_idx)
    np.testing.assert_allclose(kp[0].numpy(), [20.0] * 9 + [8.0] * 3, rtol=1e-6)  # RL joints are the last three
    lower, upper = sim.robot.get_dofs_force_range(sim.dofs_idx)
    np.testing.assert_allclose(upper[0, 9:].numpy(), 0.4 * np.array([23.7, 23.7, 35.55]), rtol=1e-6)
    assert sim.latency_steps.tolist()[::2] == [2, 0]
    # privileged block: theta normalised to [-1, 1] over the family's range, by hand for env 0
    lo, hi = np.array(layout.low), np.array(layout.high)
    theta0 = np.array(layout.vector(weak))
    np.testing.assert_allclose(obs[0, 33:], 2 * (theta0 - lo) / (hi - lo) - 1, atol=1e-6)
    assert obs[0, 33 + 6] == pytest.approx(1.0) and obs[3, 33 + 1] == pytest.approx(2 * 0.9 / 1.15 - 1, abs=1e-6)  # friction 1.0 in [0.1, 1.25]
    assert obs[:, 6].tolist() != [0.0] * 4  # the dynamics family keeps the command visible
    # latency 2 vs 0 with otherwise default dynamics: the first step already differs
    _, info = dyn.reset(seed=0, options={"tasks": [{"latency_steps": 2}, {"latency_steps": 0}, {}, {}]})
    for t in range(3):
        obs, *_ = dyn.step(np.full((4, 12), 0.8, dtype=np.float32))
    assert np.abs(obs[0, 12:33] - obs[1, 12:33]).max() > 1e-3


# ------------------------------------------------------------------------------ suites and bad inputs
@pytest.mark.parametrize("name", sorted(suites.SUITE_SPECS))
def test_suite_files_regenerate_identically_and_splits_are_disjoint(name):
    path = suites.SUITES_DIR / f"{name}.yaml"
    assert suites.generate_suite(name, suites.SUITE_SPECS[name].seed) == path.read_text()
    assert suites.generate_suite(name, 99) != path.read_text()
    family = suites.SUITE_SPECS[name].family
    for robot in (GO2, MINI_CHEETAH):
        suite = suites.load_suite(family, robot.name, name=name)
        assert len(suite.train) >= 64 and len(suite.test) >= 32
        train = {tuple(t.theta.values()) for t in suite.train}
        assert len(train) == len(suite.train) and not train & {tuple(t.theta.values()) for t in suite.test}
        bins = {t.bin.split(":")[0] for t in suite.test}
        assert bins == {"interpolation", "extrapolation"}
        g = suites.SUITE_SPECS[name].generator
        for t in suite.test:
            if t.bin.startswith("extrapolation:") and t.bin != "extrapolation:weak_leg":
                axis = t.bin.split(":")[1]
                lo, hi = g.train_ranges[axis]
                scale = robot.base_mass_kg if axis == "added_mass" else 1.0
                assert not lo * scale <= t.theta[axis] <= hi * scale
            if t.bin == "extrapolation:weak_leg":
                assert min(v for k, v in t.theta.items() if k.startswith("strength_")) < 0.55
        if family == "dynamics":  # the payload extrapolation band, in kg: above every train theta's
            (lo, hi), = g.extrapolation_bands["added_mass"]
            assert max(t.theta["added_mass"] for t in suite.test) <= hi * robot.base_mass_kg
            assert max(t.theta["added_mass"] for t in suite.test) > lo * robot.base_mass_kg
            assert max(t.theta["added_mass"] for t in suite.train) <= g.train_ranges["added_mass"][1] * robot.base_mass_kg


@pytest.mark.parametrize("kwargs, message", [
    ({"family": "velocity", "task": {"lin_vel_xx": 0.5}}, r"unknown key\(s\) \['lin_vel_xx'\]"),
    ({"family": "velocity", "task": {"lin_vel_x": 1.5}}, r"lin_vel_x: 1.5 is outside .* \[0, 1\]"),
    ({"family": "velocity", "task": {"lin_vel_x": float("nan")}}, "lin_vel_x: expected a finite number, got nan"),
    ({"family": "dynamics", "task": {"latency_steps": 1.5}}, "latency_steps: expected a whole number"),
    ({"family": "dynamics", "task": {"added_mass": 8.0}}, r"added_mass: 8.0 is outside .*\[-1.3846, 6.923\]"),
    ({"family": "velocity", "task": ("test", 32)}, "index 32 is outside the 32 'test' tasks"),
    ({"family": "velocity", "task": "validation"}, "unknown split 'validation'"),
    ({"family": "velocity", "task": {"lin_vel_x": 0.8}, "resample_tasks": "episode"}, "needs a split name"),
    ({"family": "walking"}, "unknown task family 'walking'"),
    ({"task": {"lin_vel_x": 0.8}}, "need a task family"),
    ({"privileged": True}, "need a task family"),
    ({"family": "velocity", "commands": {"lin_vel_x": [0.0, 1.0]}}, "velocity family sets the command"),
    ({"family": "dynamics", "randomization": {"friction_range": [0.5, 1.0]}}, "dynamics family sets"),
])
def test_bad_thetas_fail_with_one_config_error_before_any_scene(kwargs, message, no_genesis):
    with pytest.raises(ConfigError, match=message):
        gym.make("Go2Walk-v0", **kwargs)


def test_bad_per_env_specs_and_tampered_suite_files(no_genesis, tmp_path):
    with pytest.raises(ConfigError, match="3 task specs for 4 envs"):
        gym.make_vec("Go2Walk-v0", num_envs=4, family="velocity", tasks=[{}, {}, {}])
    with pytest.raises(ConfigError, match=r"task\[1\].lin_vel_y: -0.9 is outside"):
        gym.make_vec("Go2Walk-v0", num_envs=2, family="velocity", tasks=[{}, {"lin_vel_y": -0.9}])
    text = (suites.SUITES_DIR / "velocity-v0.yaml").read_text()
    first = text.split("  train:\n  - ")[1].split("\n")[0]
    for bad, message in [(text.replace("seed: 14", "seed: 14\nsplit_seed: 1"), r"unknown key\(s\) \['split_seed'\]"),
                         (text.replace(first, first.replace("lin_vel_x: ", "lin_vel_x: 7")), "outside"),
                         (text.replace(first, re.sub(r"lin_vel_y: [-0-9.]+", "lin_vel_y: .nan", first)), "finite"),
                         (text.replace("  test:\n  - {bin: 'interpolation', ", f"  test:\n  - {{bin: 'interpolation', "
                                       f"{first[1:-1]}}}\n  - {{bin: 'interpolation', "), "disjoint")]:
        path = tmp_path / "velocity-v9.yaml"
        path.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            suites.load_suite("velocity", "go2", path=path)


def test_theta_layouts_are_defined_once():
    vel, dyn = theta_layout("velocity", "go2"), theta_layout("dynamics", "mini_cheetah")
    assert vel.names == ("lin_vel_x", "lin_vel_y", "ang_vel_yaw") and get_family("velocity").hides_command
    assert dyn.names == ("added_mass", "friction", "strength_FR", "strength_FL", "strength_RR", "strength_RL",
                         "latency_steps")
    assert dyn.high[0] == pytest.approx(1.0 * MINI_CHEETAH.base_mass_kg) and dyn.integer[-1]
    np.testing.assert_allclose(vel.normalise(np.array([0.0, 0.5, 0.0])), [-1.0, 1.0, 0.0])
    a = T.resolve("velocity", GO2, [("test", 3), {"lin_vel_x": 0.25}], 2)
    assert a.ids == ("velocity-v0/test/3", None) and a.rows[1].tolist() == [0.25, 0.0, 0.0]


def test_per_leg_strength_follows_the_joint_order_for_every_robot_naming(monkeypatch):
    """ANYmal C names its joints RF_HAA, ...: each joint still gets its own leg's strength (by joint order)."""
    import types

    from go2bench.envs import sim_support, tasks
    from go2bench.envs.robots import get_robot

    layout = theta_layout("dynamics", "anymal_c")
    theta = torch.tensor([[0.0, 1.0, 0.11, 0.22, 0.33, 0.44, 0.0]])  # strengths FR, FL, RR, RL
    got = {}
    monkeypatch.setattr(sim_support, "set_added_mass", lambda *a: None)
    monkeypatch.setattr(sim_support, "set_contact_friction", lambda *a: None)
    monkeypatch.setattr(sim_support, "set_motor_strength", lambda sim, s, idx: got.setdefault("s", s))
    sim = types.SimpleNamespace(robot_description=get_robot("anymal_c"), set_latency=lambda *a: None)
    state = types.SimpleNamespace(sim=sim, layout=layout, theta=theta, applied=torch.zeros(1, dtype=torch.bool))
    tasks._apply_dynamics(state, torch.ones(1, dtype=torch.bool))
    expected = [0.11] * 3 + [0.22] * 3 + [0.33] * 3 + [0.44] * 3  # FR, FL, RR, RL legs of 3 joints each
    assert got["s"][0].tolist() == pytest.approx(expected)


def test_a_suite_file_is_parsed_once_for_every_robot(monkeypatch):
    import go2bench.envs.suites as suites

    reads = []
    real = suites.read_yaml
    monkeypatch.setattr(suites, "read_yaml", lambda p: reads.append(p) or real(p))
    suites._parse.cache_clear()
    suites._load.cache_clear()
    try:
        a = suites.load_suite("dynamics", "go2")
        b = suites.load_suite("dynamics", "mini_cheetah")
        assert a.robot == "go2" and b.robot == "mini_cheetah" and a.test != b.test
        assert len(reads) == 1
    finally:
        suites._parse.cache_clear()
        suites._load.cache_clear()
