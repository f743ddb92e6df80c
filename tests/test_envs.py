"""The Walk envs against physics facts, Gymnasium's contracts and hand-computed observations."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from go2bench.envs import genesis_runtime

G = 9.81


def reset_obs(sim) -> np.ndarray:
    """The observation of a freshly reset robot, written out by hand from the documented layout."""
    cmd = sim.config.commands
    s = sim.config.obs_scales
    obs = np.zeros(sim.obs_dim, dtype=np.float32)
    obs[5] = -1.0  # level base: gravity points down the body z axis
    obs[6:9] = [cmd.lin_vel_x[0] * s.lin_vel, cmd.lin_vel_y[0] * s.lin_vel, cmd.ang_vel_yaw[0] * s.ang_vel]
    return obs  # zero angular velocity, joints at the default pose, zero joint velocity (, zero last action)


def rollout(env, seed: int, steps: int = 40):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    traj = [obs]
    rewards = []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(rng.uniform(-0.5, 0.5, 12).astype(np.float32))
        traj.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.array(traj), np.array(rewards)


@pytest.mark.parametrize("env_name", ["go2_env", "cheetah_env"])
def test_gymnasium_env_checker_passes(env_name, request):
    env = request.getfixturevalue(env_name)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_name", ["go2_env", "cheetah_env"])
def test_zero_action_stands_still_at_target_height(env_name, request):
    env = request.getfixturevalue(env_name)
    sim = env.unwrapped.sim
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, reset_obs(sim), atol=1e-5)
    for _ in range(100):  # 2 s
        obs, _, term, trunc, _ = env.step(np.zeros(12, dtype=np.float32))
        assert not term and not trunc
    target = sim.robot_description.base_height_target
    assert abs(float(sim.base_pos[0, 2]) - target) < 0.2 * target
    np.testing.assert_allclose(obs[3:6], [0.0, 0.0, -1.0], atol=0.05)  # projected gravity, within 3 deg
    assert float(sim.base_lin_vel[0].norm()) < 0.05  # standing still
    # Standing still under a 0.5 m/s command: tracking term exp(-((0.5 - vx)^2 + vy^2) / 0.25), about exp(-1).
    vx, vy = (float(v) for v in sim.base_lin_vel[0, :2])
    tracking = float(sim.reward_terms()["tracking_lin_vel"][0])
    assert tracking == pytest.approx(math.exp(-((0.5 - vx) ** 2 + vy**2) / 0.25), rel=1e-4)
    assert tracking == pytest.approx(math.exp(-1.0), abs=0.1)


def test_first_step_is_free_fall_under_gravity(go2_env):
    sim = go2_env.unwrapped.sim
    go2_env.reset(seed=0)
    go2_env.step(np.zeros(12, dtype=np.float32))
    # Dropped from 0.42 m (feet in the air): after one 0.02 s step, v_z = -g * dt.
    assert float(sim.base_lin_vel[0, 2]) == pytest.approx(-G * 0.02, rel=0.1)


def test_forward_push_moves_the_base_forward(go2_vec4):
    sim = go2_vec4.unwrapped.sim
    go2_vec4.reset(seed=0)
    zero = np.zeros((4, 12), dtype=np.float32)
    for _ in range(12):  # land (episodes here are 20 steps long)
        go2_vec4.step(zero)
    x0 = sim.base_pos[:, 0].clone()
    push = torch.zeros((4, 2))
    push[0, 0] = 1.0  # 1 m/s forward, env 0 only
    sim.push(push.to(sim.device))
    for _ in range(6):
        go2_vec4.step(zero)
    dx = sim.base_pos[:, 0] - x0
    # 1 m/s, slowed by foot friction, over 0.12 s; the unpushed envs only settle (identically).
    assert float(dx[0] - dx[1:].max()) > 0.05
    assert float(dx[1:].max() - dx[1:].min()) < 1e-4


def test_same_seed_same_trajectory(go2_env):
    a_obs, a_rew = rollout(go2_env, seed=7)
    b_obs, b_rew = rollout(go2_env, seed=7)
    np.testing.assert_array_equal(a_obs, b_obs)
    np.testing.assert_array_equal(a_rew, b_rew)


@pytest.mark.slow  # builds a scene of its own
def test_widened_commands_are_seeded_and_within_range():
    env = gym.make("Go2Walk-v0", commands={"lin_vel_x": [-1.0, 1.0], "ang_vel_yaw": [-0.5, 0.5]})
    try:
        first = [env.reset(seed=s)[0][6:9].copy() for s in (1, 1, 2)]
        np.testing.assert_array_equal(first[0], first[1])
        assert not np.array_equal(first[0], first[2])
        vx, vy, yaw = first[0] / np.array([2.0, 2.0, 0.25])
        assert -1.0 <= vx <= 1.0 and vy == 0.0 and -0.5 <= yaw <= 0.5
    finally:
        env.close()


@pytest.mark.slow  # builds a scene of its own
def test_full_obs_mode_appends_the_clipped_last_action():
    env = gym.make("Go2Walk-v0", obs_mode="full")
    try:
        assert env.observation_space.shape == (45,)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (45,) and not obs[33:].any()
        action = np.linspace(-20.0, 20.0, 12).astype(np.float32)  # partly beyond the joint limits
        obs, *_ = env.step(action)
        space = env.action_space
        np.testing.assert_allclose(obs[33:], np.clip(action, space.low, space.high), atol=1e-6)
        # Clipped targets stay within the joint limits: default + 0.25 * bound == limit.
        go2 = env.unwrapped.robot_description
        np.testing.assert_allclose(np.array(go2.default_pose) + 0.25 * space.high, go2.joint_upper, atol=1e-5)
    finally:
        env.close()


def test_bad_actions_raise_clear_errors(go2_env, go2_vec4):
    go2_env.reset(seed=0)
    env = go2_env.unwrapped
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(11, dtype=np.float32))
    nan = np.zeros(12, dtype=np.float32)
    nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(nan)
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.full(12, np.inf, dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        go2_vec4.step(np.zeros(12, dtype=np.float32))
    with pytest.raises(ValueError, match="numeric"):
        env.step(["a"] * 12)


def test_bad_construction_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="backend"):
        genesis_runtime.init("tpu")
    with pytest.raises(RuntimeError, match="cannot switch"):
        genesis_runtime.init("gpu")  # this process already runs the CPU backend
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("Go2Walk-v0", render_mode="ansi")
    with pytest.raises(ValueError, match="autoreset_mode"):
        gym.make_vec("Go2Walk-v0", num_envs=2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="unknown robot"):
        gym.make("Go2Walk-v0", robot="spot")


def test_same_step_autoreset_returns_fresh_obs_and_final_obs(go2_vec4):
    env = go2_vec4
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    sim = env.unwrapped.sim
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for t in range(1, 21):
        actions = rng.uniform(-0.3, 0.3, (4, 12)).astype(np.float32)
        obs, reward, term, trunc, info = env.step(actions)
        done = term | trunc
        if t < 20:
            if done.any():  # a fall: only those envs were reset
                assert (info["_final_obs"] == done).all()
            continue
        assert done.all() and trunc[~term].all()  # the 20-step time limit
        assert (info["_final_obs"] == done).all()
        for i in range(4):
            np.testing.assert_allclose(obs[i], reset_obs(sim), atol=1e-5)  # fresh, not stale
            assert np.abs(info["final_obs"][i] - obs[i]).max() > 1e-3  # the terminal obs is the old episode's
        assert int(sim.episode_step.max()) == 0


@pytest.mark.slow  # builds a scene of its own
def test_next_step_autoreset_follows_gymnasium():
    env = gym.make_vec("Go2Walk-v0", num_envs=2, max_episode_steps=5, autoreset_mode="next_step")
    try:
        assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        sim = env.unwrapped.sim
        env.reset(seed=0)
        bend = np.full((2, 12), 0.5, dtype=np.float32)
        for _ in range(5):
            obs, reward, term, trunc, info = env.step(bend)
        assert trunc.all() and not term.any() and "final_obs" not in info
        terminal = obs.copy()
        obs, reward, term, trunc, info = env.step(bend)  # the autoreset step: action ignored, reward 0
        assert (reward == 0).all() and not term.any() and not trunc.any()
        for i in range(2):
            np.testing.assert_allclose(obs[i], reset_obs(sim), atol=1e-5)
            assert np.abs(terminal[i] - obs[i]).max() > 1e-2
        obs, reward, *_ = env.step(bend)  # the new episode runs on
        assert (reward != 0).all() and sim.episode_step.tolist() == [1, 1]
    finally:
        env.close()


def test_partial_reset_with_reset_mask(go2_vec4):
    sim = go2_vec4.unwrapped.sim
    go2_vec4.reset(seed=0)
    for _ in range(10):
        go2_vec4.step(np.full((4, 12), 0.2, dtype=np.float32))
    obs, _ = go2_vec4.reset(options={"reset_mask": np.array([False, True, False, False])})
    np.testing.assert_allclose(obs[1], reset_obs(sim), atol=1e-5)
    assert np.abs(obs[0] - reset_obs(sim)).max() > 1e-3  # the others keep running
    assert sim.episode_step.tolist() == [10, 0, 10, 10]
    with pytest.raises(ValueError, match="reset_mask"):
        go2_vec4.reset(options={"reset_mask": np.array([True, False])})


def test_diverged_simulation_is_reset_and_reported(go2_vec4):
    sim = go2_vec4.unwrapped.sim
    go2_vec4.reset(seed=0)
    zero = np.zeros((4, 12), dtype=np.float32)
    go2_vec4.step(zero)
    mask = torch.tensor([False, False, True, False], device=sim.device)
    sim.robot.set_dofs_velocity(torch.full((1, 12), 1e6, device=sim.device), sim.dofs_idx, envs_idx=mask)
    obs, reward, term, trunc, info = go2_vec4.step(zero)
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    assert info["diverged"].tolist() == [False, False, True, False]
    assert trunc[2] and not term[2]
    np.testing.assert_allclose(obs[2], reset_obs(sim), atol=1e-5)  # already reset (same-step)
    assert np.isfinite(info["final_obs"]).all()
    obs, *_ = go2_vec4.step(zero)
    assert np.isfinite(obs).all()


@pytest.mark.slow  # builds a scene of its own
def test_dynamics_randomization_is_seeded():
    rand = {
        "friction_range": [0.5, 1.25],
        "added_mass_range": [-0.5, 1.5],
        "motor_strength_range": [0.8, 1.2],
        "push_interval_s": 0.1,
    }
    env = gym.make_vec("Go2Walk-v0", num_envs=3, randomization=rand)
    try:
        sim = env.unwrapped.sim

        def run(seed):
            env.reset(seed=seed)
            for _ in range(20):
                obs, *_ = env.step(np.zeros((3, 12), dtype=np.float32))
            return obs, sim.robot.get_links_mass([0]).clone()

        (a, ma), (b, mb), (_, mc) = run(5), run(5), run(6)
        np.testing.assert_array_equal(a, b)
        assert torch.equal(ma, mb) and not torch.equal(ma, mc)
        assert not np.allclose(a[0], a[1])  # envs got different pushes and dynamics
    finally:
        env.close()


@pytest.mark.slow  # builds a scene of its own
def test_rgb_array_rendering_headless():
    env = gym.make("MiniCheetahWalk-v0", render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
        assert frame.std() > 5  # an actual image, not a blank buffer
    finally:
        env.close()


def test_reward_terms_in_info_sum_to_the_reward_and_match_hand_values(go2_vec4):
    """Each term's weighted value is in info; they add up to the reward; two are checked by hand."""
    venv = go2_vec4
    sim = venv.unwrapped.sim
    venv.reset(seed=3)
    actions = np.full((4, 12), 0.3, dtype=np.float32)
    _, reward, _, _, info = venv.step(actions)
    names = [f"reward_{k}" for k in ("tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "base_height",
                                     "action_rate", "similar_to_default")]
    assert all(n in info and info[n].shape == (4,) for n in names)
    np.testing.assert_allclose(sum(info[n] for n in names), reward, rtol=1e-5, atol=1e-7)
    dt = sim.config.dt
    # action_rate: the first action after a reset differs from the zero last action by 0.3 per joint
    np.testing.assert_allclose(info["reward_action_rate"], -0.005 * dt * 12 * 0.3**2, rtol=1e-5)
    z = sim.base_pos[:, 2].numpy()
    np.testing.assert_allclose(info["reward_base_height"], -50.0 * dt * (z - 0.3) ** 2, rtol=1e-4)


def test_reward_weight_without_a_computed_term_fails_when_the_env_is_built():
    """A reward weight nobody computes must not be silently ignored (checked when a simulation is built)."""
    import dataclasses

    from go2bench.envs import step_math, walk_sim

    step_math.check_reward_terms(walk_sim.REWARD_TERMS)  # the shipped weights and terms agree
    with pytest.raises(TypeError, match=r"weights without a computed term \['feet_air_time'\]"):
        step_math.check_reward_terms(walk_sim.REWARD_TERMS + ("feet_air_time",))
    with pytest.raises(TypeError, match=r"terms without a weight \['action_rate'\]"):
        step_math.check_reward_terms(tuple(t for t in walk_sim.REWARD_TERMS if t != "action_rate"))
    assert "feet_air_time" not in {f.name for f in dataclasses.fields(walk_sim.RewardScales)}
