"""The torch mode of the vector env (``array_api="torch"``) against its NumPy mode, on one scene.

Both modes step the same simulation here (``sim=``), reset with the same seed between rollouts: the
torch mode must give the NumPy mode's observations, rewards, flags and info, as tensors on the
simulation's device, and keep Gymnasium's vector API (autoreset modes, reset masks, errors).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from go2bench.envs.walk_vector_env import WalkVectorEnv


def _host(x):
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def rollout(env, actions: np.ndarray, seed: int = 5) -> list[tuple]:
    """Per step: obs, reward, terminated, truncated, info (everything as NumPy, for comparison)."""
    obs, info = env.reset(seed=seed)
    out = [(_host(obs), {k: _host(v) for k, v in info.items()})]
    for a in actions:
        a = torch.from_numpy(a) if env.array_api == "torch" else a
        obs, reward, term, trunc, info = env.step(a)
        out.append((_host(obs), _host(reward), _host(term), _host(trunc), {k: _host(v) for k, v in info.items()}))
    return out


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        assert len(x) == len(y)
        for u, v in zip(x[:-1], y[:-1]):
            np.testing.assert_array_equal(u, v, err_msg=f"step {t}")
        assert sorted(x[-1]) == sorted(y[-1]), f"step {t}: info keys"
        for k in x[-1]:
            np.testing.assert_array_equal(x[-1][k], y[-1][k], err_msg=f"step {t}: info[{k!r}]")


@pytest.fixture(scope="module")
def actions():
    # large enough that some robots fall; 25 steps cross the 20-step time limit of go2_vec4
    return np.random.default_rng(1).uniform(-2.5, 2.5, (25, 4, 12)).astype(np.float32)


@pytest.mark.parametrize("mode", ["same_step", "next_step"])
def test_torch_mode_gives_the_numpy_mode_results(go2_vec4, actions, mode):
    sim = go2_vec4.unwrapped.sim
    np_env = WalkVectorEnv(num_envs=4, sim=sim, autoreset_mode=mode)
    torch_env = WalkVectorEnv(num_envs=4, sim=sim, autoreset_mode=mode, array_api="torch")
    packed_env = WalkVectorEnv(num_envs=4, sim=sim, autoreset_mode=mode)
    packed_env._on_host = False  # the NumPy mode's GPU path (one packed device-to-host copy), run on the CPU
    ref = rollout(np_env, actions)
    got = rollout(torch_env, actions)
    assert_same(ref, got)
    assert_same(ref, rollout(packed_env, actions))
    done = np.array([s[2] | s[3] for s in ref[1:]])
    assert done[:, :].any(axis=0).all()  # every env ended an episode: the autoresets were exercised
    assert any(s[2].any() for s in ref[1:])  # a fall, not only time limits
    if mode == "same_step":
        assert any("final_obs" in s[-1] for s in ref[1:])
    torch_env.close()  # does not close the shared scene
    np_env.close()
    assert sim.scene is not None


def test_torch_mode_returns_device_tensors_and_keeps_the_vector_api(go2_vec4):
    sim = go2_vec4.unwrapped.sim
    env = WalkVectorEnv(num_envs=4, sim=sim, array_api="torch")
    obs, info = env.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.device == sim.device and obs.shape == (4, sim.obs_dim)
    assert env.metadata["autoreset_mode"].name == "SAME_STEP"
    a = torch.zeros((4, 12), device=sim.device)
    obs, reward, term, trunc, info = env.step(a)
    assert obs.dtype == torch.float32 and reward.dtype == torch.float32 and reward.shape == (4,)
    assert term.dtype == torch.bool and trunc.dtype == torch.bool
    terms = [info[f"reward_{k}"] for k in sim.reward_weights]
    assert all(isinstance(t, torch.Tensor) and t.shape == (4,) for t in terms)
    torch.testing.assert_close(sum(terms), reward, rtol=1e-5, atol=1e-7)
    # a partial reset with a torch mask: only env 2 starts over
    for _ in range(5):
        env.step(a)
    obs, _ = env.reset(options={"reset_mask": torch.tensor([False, False, True, False])})
    assert isinstance(obs, torch.Tensor) and sim.episode_step.tolist() == [6, 6, 0, 6]
    # a diverged env is reported on the device and reset in the same step
    sim.robot.set_dofs_velocity(torch.full((1, 12), 1e6, device=sim.device), sim.dofs_idx,
                                envs_idx=torch.tensor([False, True, False, False], device=sim.device))
    obs, reward, term, trunc, info = env.step(a)
    assert info["diverged"].tolist() == [False, True, False, False] and trunc[1] and not term[1]
    assert isinstance(info["final_obs"], torch.Tensor) and info["_final_obs"].tolist() == [False, True, False, False]
    assert bool(torch.isfinite(obs).all()) and int(sim.episode_step[1]) == 0


def test_torch_mode_rejects_bad_actions_and_arguments(go2_vec4):
    sim = go2_vec4.unwrapped.sim
    env = WalkVectorEnv(num_envs=4, sim=sim, array_api="torch")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros((4, 11)))
    bad = torch.zeros((4, 12))
    bad[2, 5] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \[2, 5\]\)"):
        env.step(bad)  # checked on the CPU, as in NumPy mode
    with pytest.raises(ValueError, match="array_api"):
        WalkVectorEnv(num_envs=4, sim=sim, array_api="jax")
    with pytest.raises(ValueError, match=r"num_envs=4 and leave out the scene's arguments \['obs_mode'\]"):
        WalkVectorEnv(num_envs=4, sim=sim, obs_mode="full")
    with pytest.raises(ValueError, match="num_envs=4"):
        WalkVectorEnv(num_envs=3, sim=sim)


def test_new_trial_option_takes_a_torch_mask():
    """``reset(options={"new_trial": mask})`` accepts the torch mode's tensors (checked like NumPy arrays)."""
    from go2bench.core.config import ConfigError
    from go2bench.envs.tasks import apply_reset_options

    class Sim:  # what apply_reset_options reads of a simulation
        num_envs, device, tasks = 3, torch.device("cpu"), object()
        all_envs = torch.ones(3, dtype=torch.bool)
        started: list = []

        def new_trial(self, mask):
            self.started.append(mask.tolist())

    sim = Sim()
    apply_reset_options(sim, {"new_trial": torch.tensor([True, False, True])}, None, seeded=False)
    apply_reset_options(sim, {"new_trial": np.array([False, True, False])}, None, seeded=False)
    assert sim.started == [[True, False, True], [False, True, False]]
    with pytest.raises(ConfigError, match="bool array of shape"):
        apply_reset_options(sim, {"new_trial": torch.tensor([1, 0, 1])}, None, seeded=False)
