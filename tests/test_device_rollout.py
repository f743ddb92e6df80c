"""Issue 16: PPO rollouts on the simulation's device (DeviceRolloutBuffer, DeviceRolloutPPO, --rollout).

Checked against SB3's own code on the same data: its RolloutBuffer's GAE, and its
``collect_rollouts`` through the numpy adapter (same seed: the same transitions). The rollout tests
use the session's 4-env Go2 scene (conftest ``go2_vec4``) with T-step episodes; the CLI test builds
its own.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer

from go2bench.envs.walk_sim import StepResult
from go2bench.teachers.device_buffer import DeviceRolloutBuffer
from go2bench.teachers.device_ppo import DeviceRolloutPPO, resolve_rollout
from go2bench.teachers.ppo import PPOConfig, make_ppo
from go2bench.teachers.sb3_vec_env import WalkSB3VecEnv

N, T, STEPS = 4, 6, 16  # envs, steps per episode, rollout steps per env (two time limits in one rollout)
GAMMA = 0.99


# ---------------------------------------------------------------------------------- the buffer alone
def _random_transitions(rng, n_steps, n_envs, obs_dim=5, act_dim=3):
    for _ in range(n_steps):
        yield (rng.normal(size=(n_envs, obs_dim)).astype(np.float32),
               rng.normal(size=(n_envs, act_dim)).astype(np.float32),
               rng.normal(size=n_envs).astype(np.float32),
               (rng.random(n_envs) < 0.25).astype(np.float32),  # episode starts
               torch.tensor(rng.normal(size=(n_envs, 1)), dtype=torch.float32),  # values
               torch.tensor(rng.normal(size=n_envs), dtype=torch.float32))  # log-probs


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 1.0), (1.0, 0.0)])
def test_gae_equals_sb3_rollout_buffer(gamma, lam):
    obs_space, act_space = spaces.Box(-1, 1, (5,), np.float32), spaces.Box(-1, 1, (3,), np.float32)
    sb3 = RolloutBuffer(24, obs_space, act_space, "cpu", gae_lambda=lam, gamma=gamma, n_envs=16)
    dev = DeviceRolloutBuffer(24, obs_space, act_space, "cpu", gae_lambda=lam, gamma=gamma, n_envs=16)
    rng = np.random.default_rng(1)
    for args in _random_transitions(rng, 24, 16):
        sb3.add(*args)
        dev.add(*args)
    last_values = torch.tensor(rng.normal(size=(16, 1)), dtype=torch.float32)
    dones = rng.random(16) < 0.5
    sb3.compute_returns_and_advantage(last_values, dones)
    dev.compute_returns_and_advantage(last_values, torch.as_tensor(dones))
    np.testing.assert_allclose(dev.advantages.numpy(), sb3.advantages, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dev.returns, sb3.returns, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(dev.values, sb3.values)  # numpy copies, what PPO.train logs from


def test_gae_by_hand_one_env():
    """Two steps, the second starting a new episode: the first step's advantage is its TD error alone."""
    s = spaces.Box(-1, 1, (1,), np.float32)
    buf = DeviceRolloutBuffer(2, s, s, "cpu", gae_lambda=0.5, gamma=0.9, n_envs=1)
    buf.add([[0.0]], [[0.0]], [1.0], [1.0], torch.tensor([[2.0]]), torch.tensor([0.0]))
    buf.add([[0.0]], [[0.0]], [3.0], [1.0], torch.tensor([[4.0]]), torch.tensor([0.0]))
    buf.compute_returns_and_advantage(torch.tensor([[10.0]]), np.array([False]))
    adv2 = 3.0 + 0.9 * 10.0 - 4.0  # 8.0, bootstrapped from the last value
    adv1 = 1.0 - 2.0  # episode ended after step 1: no bootstrap, no trace from step 2
    np.testing.assert_allclose(buf.advantages.numpy().ravel(), [adv1, adv2], atol=1e-6)
    np.testing.assert_allclose(buf.returns.ravel(), [adv1 + 2.0, adv2 + 4.0], atol=1e-6)


def test_minibatches_are_a_permutation_of_the_rollout():
    obs_space, act_space = spaces.Box(-1, 1, (5,), np.float32), spaces.Box(-1, 1, (3,), np.float32)
    buf = DeviceRolloutBuffer(4, obs_space, act_space, "cpu", n_envs=6)
    for args in _random_transitions(np.random.default_rng(2), 4, 6):
        buf.add(*args)
    with pytest.raises(RuntimeError, match="already holds 4 steps"):
        buf.add(*next(_random_transitions(np.random.default_rng(3), 1, 6)))
    buf.compute_returns_and_advantage(torch.zeros(6), np.zeros(6, bool))
    batches = list(buf.get(5))
    assert [len(b.observations) for b in batches] == [5, 5, 5, 5, 4]
    obs = torch.cat([b.observations for b in batches])
    rows = {tuple(r) for r in buf.observations.reshape(24, 5).tolist()}
    assert {tuple(r) for r in obs.tolist()} == rows and len(rows) == 24
    flat_obs = buf.observations.reshape(24, 5)
    for b in batches:  # every field of a row comes from the same transition
        i = [int((flat_obs == o).all(1).nonzero()) for o in b.observations]
        torch.testing.assert_close(b.actions, buf.actions.reshape(24, 3)[i])
        torch.testing.assert_close(b.old_log_prob, buf.log_probs.reshape(24)[i])
        torch.testing.assert_close(b.returns, torch.from_numpy(buf.returns.reshape(24)[i]))


def test_rollout_mode_resolution():
    assert resolve_rollout("auto", "cuda", "gpu") == "device"
    assert resolve_rollout("auto", "cuda:1", "gpu") == "device"
    assert resolve_rollout("auto", "cpu", "gpu") == "host" and resolve_rollout("auto", "cuda", "cpu") == "host"
    assert resolve_rollout("device", "cpu", "cpu") == "device"
    with pytest.raises(ValueError, match="--rollout must be one of auto, host, device"):
        resolve_rollout("gpu", "cpu", "cpu")


# ---------------------------------------------------------------------------------- on the simulation
@pytest.fixture(scope="module")
def venv(go2_vec4):
    """The shared 4-env scene as an SB3 adapter; its time limit is T steps while this module runs."""
    sim = go2_vec4.unwrapped.sim
    limit, sim.max_episode_steps = sim.max_episode_steps, T
    yield WalkSB3VecEnv("Go2Walk-v0", sim=sim, seed=0)
    sim.max_episode_steps = limit
    sim.reset()


def _tilt(sim, envs, angle=0.5):
    """Roll the bases of ``envs`` beyond the termination limit: they fall at the next step."""
    q = torch.tensor([[math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0]]).repeat(len(envs), 1)
    sim.robot.set_quat(q, envs_idx=torch.tensor(envs))


def _one_rollout(venv, rollout, tilt=(), step_hook=None, snapshots=None):
    """A fresh PPO (seed 0) on ``venv``: SB3's learn setup (reset), then collect_rollouts.

    With a list ``snapshots``: first one more rollout whose buffer arrays are appended to it (the
    second rollout then continues the first's episodes).
    """
    cfg = PPOConfig(n_steps=STEPS, n_minibatches=2, gamma=GAMMA)
    model = make_ppo(venv, cfg, device="cpu", seed=0, tensorboard_log=None, verbose=0, rollout=rollout)
    _, callback = model._setup_learn(10**6, None, True, "test", False)
    if tilt:
        _tilt(venv.sim, list(tilt))
    real_step = venv.sim.step
    if step_hook is not None:
        venv.sim.step = step_hook(real_step)
    try:
        if snapshots is not None:
            assert model.collect_rollouts(model.env, callback, model.rollout_buffer, STEPS)
            snapshots.append({k: v.copy() for k, v in _arrays(model.rollout_buffer).items()})
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, STEPS)
    finally:
        venv.sim.step = real_step
    return model


def _arrays(buf):
    host = lambda v: v.numpy() if isinstance(v, torch.Tensor) else v  # noqa: E731
    return {k: np.array(host(getattr(buf, k))).reshape(STEPS, N, -1)
            for k in ("observations", "actions", "rewards", "episode_starts", "values", "log_probs", "advantages",
                      "returns")}


def test_device_rollout_collects_the_host_rollouts_transitions(venv, one_torch_thread):
    """Two consecutive rollouts (no update between), episodes running across the rollouts' boundary."""
    first_h, first_d = [], []
    host = _one_rollout(venv, "host", tilt=(0, 2), snapshots=first_h)
    device = _one_rollout(venv, "device", tilt=(0, 2), snapshots=first_d)
    assert type(device) is DeviceRolloutPPO and type(host) is not DeviceRolloutPPO
    starts = first_h[0]["episode_starts"][..., 0]
    assert starts[0].all() and starts[1, [0, 2]].all() and not starts[1, [1, 3]].any()  # the tilted envs fell
    assert starts[T, [1, 3]].all() and starts[T + 1, [0, 2]].all()  # time limits inside the rollout
    for h, d in ((first_h[0], first_d[0]), (_arrays(host.rollout_buffer), _arrays(device.rollout_buffer))):
        for key in ("observations", "episode_starts", "actions"):
            np.testing.assert_array_equal(d[key], h[key], err_msg=key)
        for key in ("rewards", "values", "log_probs", "advantages", "returns"):
            np.testing.assert_allclose(d[key], h[key], rtol=0, atol=1e-5, err_msg=key)
    eps = lambda m: np.array([(e["r"], e["l"]) for e in m.ep_info_buffer])  # noqa: E731
    assert len(host.ep_info_buffer) >= 4 * N and set(eps(host)[:, 1]) == {1, T}  # falls at step 1, time limits
    np.testing.assert_allclose(eps(device), eps(host), rtol=0, atol=1e-5)
    assert host.num_timesteps == device.num_timesteps == 2 * STEPS * N


def test_learning_equals_sb3s_own_loop_over_three_iterations(venv, one_torch_thread):
    """SB3's PPO (its collect_rollouts) fed into the device buffer vs DeviceRolloutPPO: the same policy after
    three iterations (rollout + SB3's unchanged update); both draw minibatches from torch's generator."""
    cfg = PPOConfig(n_steps=STEPS, n_minibatches=2, gamma=GAMMA)
    host = make_ppo(venv, cfg, device="cpu", seed=0, tensorboard_log=None, verbose=0, rollout="host")
    host.rollout_buffer = DeviceRolloutBuffer(STEPS, host.observation_space, host.action_space, "cpu",
                                              gae_lambda=cfg.gae_lambda, gamma=GAMMA, n_envs=N)
    host.learn(3 * STEPS * N)
    device = make_ppo(venv, cfg, device="cpu", seed=0, tensorboard_log=None, verbose=0, rollout="device")
    device.learn(3 * STEPS * N)
    h, d = host.policy.state_dict(), device.policy.state_dict()
    assert h.keys() == d.keys()
    for k in h:
        torch.testing.assert_close(d[k], h[k], rtol=0, atol=1e-4, msg=k)
    start = make_ppo(venv, cfg, device="cpu", seed=0, tensorboard_log=None, verbose=0).policy.state_dict()
    moved = max((h[k] - start[k]).abs().max().item() for k in h)
    assert moved > 1e-3  # three updates did change the policy
    assert [e["l"] for e in device.ep_info_buffer] == [e["l"] for e in host.ep_info_buffer]
    np.testing.assert_allclose([e["r"] for e in device.ep_info_buffer], [e["r"] for e in host.ep_info_buffer],
                               rtol=0, atol=1e-5)
    assert host._n_updates == device._n_updates == 3 * cfg.n_epochs


def test_timeout_bootstrap_by_hand(venv, one_torch_thread):
    """reward += gamma * V(terminal obs) exactly where an episode hit its time limit without falling or diverging.

    At the time-limit step (index T-1): env 0 falls as well (tilted just before: no bootstrap), env 1
    only times out (bootstrap), env 2 diverges (no bootstrap). Env 3 diverges mid-episode (step 2).
    """
    seen: list[StepResult] = []

    def hook(real_step):
        def step(actions):
            k = len(seen)
            if k == T - 1:
                _tilt(venv.sim, [0])
            r = real_step(actions)
            diverge = {T - 1: [2], 2: [3]}.get(k, [])
            if diverge:  # the simulation's contract for a diverged env: truncated, not terminated, reward 0
                mask = torch.zeros(N, dtype=torch.bool)
                mask[diverge] = True
                r = StepResult(r.obs, torch.where(mask, 0.0, r.reward), r.terminated & ~mask, r.truncated | mask,
                               r.diverged | mask, r.reward_terms, r.tracking_error)
            seen.append(r)
            return r
        return step

    validating = torch.distributions.Distribution._validate_args
    model = _one_rollout(venv, "device", step_hook=hook)
    assert len(seen) == STEPS
    assert torch.distributions.Distribution._validate_args == validating  # switched off only inside the rollout
    raw = torch.stack([r.reward for r in seen])
    rewards = model.rollout_buffer.rewards
    k = T - 1
    assert bool(seen[k].terminated[0]) and bool(seen[k].truncated[0])
    with torch.no_grad():
        v1 = model.policy.predict_values(seen[k].obs[1:2]).item()
    assert rewards[k, 1].item() == pytest.approx(raw[k, 1].item() + GAMMA * v1, abs=1e-5)
    assert abs(v1) > 1e-3  # the correction is visible
    for env in (0, 2):
        assert rewards[k, env].item() == pytest.approx(raw[k, env].item(), abs=1e-7)
    assert rewards[2, 3].item() == 0.0
    expected = raw.clone()
    timeouts = torch.stack([r.truncated & ~r.terminated & ~r.diverged for r in seen])
    for t, e in timeouts.nonzero().tolist():
        with torch.no_grad():
            expected[t, e] += GAMMA * model.policy.predict_values(seen[t].obs[e:e + 1]).item()
    torch.testing.assert_close(rewards, expected, rtol=0, atol=1e-5)
    assert timeouts[k].sum() == N - 3 and not timeouts[k, [0, 2, 3]].any()  # env 3 restarted at step 3
    # the episode statistics are undiscounted sums of the raw rewards, never bootstrapped
    ep = list(model.ep_info_buffer)
    env3 = [e for e in ep if e["l"] == 3]
    assert len(env3) == 1 and env3[0]["r"] == pytest.approx(raw[:3, 3].sum().item(), abs=1e-5)
    env1_first = raw[:T, 1].sum().item()
    assert any(e["l"] == T and e["r"] == pytest.approx(env1_first, abs=1e-5) for e in ep)


@pytest.mark.slow  # builds its own scene
def test_privileged_family_teacher_sees_the_host_paths_observations(one_torch_thread):
    """A privileged velocity teacher (theta block, a new train theta at every episode start): same transitions."""
    env = WalkSB3VecEnv("Go2Walk-v0", num_envs=N, backend="cpu", seed=0, max_episode_steps=T, family="velocity",
                        privileged=True, tasks="train", resample_tasks="episode")
    try:
        host, device = _one_rollout(env, "host"), _one_rollout(env, "device")
    finally:
        env.close()
    h, d = _arrays(host.rollout_buffer), _arrays(device.rollout_buffer)
    assert h["observations"].shape[-1] == 36  # 33 + the velocity theta (vx, vy, yaw rate)
    theta = h["observations"][..., 33:]
    assert (np.abs(theta - theta[T - 1]) > 1e-3).any(axis=-1)[T].all()  # new thetas after the time limit
    for key in ("observations", "episode_starts", "actions"):
        np.testing.assert_array_equal(d[key], h[key], err_msg=key)
    for key in ("rewards", "values", "log_probs", "advantages", "returns"):
        np.testing.assert_allclose(d[key], h[key], rtol=0, atol=1e-5, err_msg=key)


@pytest.mark.slow  # builds its own scene and trains two PPO iterations
def test_cli_teach_with_device_rollouts_records_the_mode(tmp_path):
    from go2bench.agents.teacher import load_teacher
    from go2bench.cli import main

    out = tmp_path / "dev"
    n = 8
    r = CliRunner().invoke(main, [
        "teach", "--env", "Go2Walk-v0", "--num-envs", str(n), "--max-episode-steps", "20", "--rollout", "device",
        "--total-steps", str(2 * n * 24), "--checkpoint-every", str(n * 24), "--device", "cpu", "--backend", "cpu",
        "--out", str(out), "--eval-episodes", str(n), "--quiet", "--no-progress-bar"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["rollout"] == "device" and "(device rollouts)" in r.output
    assert card["training_steps"] == 2 * n * 24 and card["final_training_return"] is not None
    assert sorted(p.name for p in (out / "checkpoints").glob("*.zip")) == [f"ppo_{n * 24}_steps.zip",
                                                                           f"ppo_{2 * n * 24}_steps.zip"]
    assert math.isfinite(card["expert_score"]) and card["evaluated_episodes"] == n
    obs = np.random.default_rng(0).normal(size=(n, 33)).astype(np.float32)
    assert load_teacher(out, device="cpu").act(obs).shape == (n, 12)
