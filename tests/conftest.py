"""Shared fixtures: Genesis scenes are expensive to build, so each is built once per test session."""

from __future__ import annotations

import gymnasium as gym
import pytest

import go2bench  # noqa: F401  (registers the envs)


@pytest.fixture(scope="session")
def go2_env():
    env = gym.make("Go2Walk-v0")
    yield env
    env.close()


@pytest.fixture(scope="session")
def cheetah_env():
    env = gym.make("MiniCheetahWalk-v0")
    yield env
    env.close()


@pytest.fixture(scope="session")
def go2_vec4():
    """Four Go2s with short episodes (20 steps) so that time limits are reached quickly."""
    env = gym.make_vec("Go2Walk-v0", num_envs=4, max_episode_steps=20)
    yield env
    env.close()


@pytest.fixture(scope="session", autouse=True)
def _torch_on_one_thread():
    """Every test runs torch on one thread.  On 2 cores, torch's intra-op threads compete with Genesis' CPU
    workers while a scene steps (envs.genesis_runtime.torch_threads_beside_simulation does the same in the
    library) and with any other load: with the machine at load ~4, the two-iteration PPO fixture of
    test_agents took 14.6 s on 2 threads and 3.0 s on one (unloaded: 2.8 s and 3.0 s).  Tests of thread
    handling set their own count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_torch_thread():
    """Training tests run torch on one thread (deterministic and not fighting Genesis for the 2 cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
