"""The shipped PPO teachers: they load on CPU and walk at the commanded speed; a random agent does not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from go2bench.agents.random import RandomAgent
from go2bench.agents.teacher import load_teacher, zoo_path
from go2bench.envs.spaces import to_action_tensor
from go2bench.envs.walk_sim import make_walk_sim
from go2bench.eval.reference import shipped_reference_scores

pytestmark = pytest.mark.slow  # rolls the shipped teachers out for full episodes; the fast lane skips it

ENV_IDS = ["Go2Walk-v0", "MiniCheetahWalk-v0"]
N, STEPS = 8, 150  # 3 s of walking


@pytest.fixture(scope="module")
def sims():
    """One scene of N envs per robot, shared by the teacher and the random agent (each run seeds and resets it)."""
    built = {}

    def sim_for(env_id: str):
        if env_id not in built:
            built[env_id] = make_walk_sim(env_id, N)
        return built[env_id]

    yield sim_for
    for sim in built.values():
        sim.close()


def run(agent, sim, env_id: str):
    """Roll ``agent`` for STEPS steps from a seeded reset: (falls, mean forward velocity over the last second)."""
    sim.seed(0)
    agent.reset(N, env_id, 0)
    obs = sim.reset()
    falls = torch.zeros(N, dtype=torch.bool)
    vx = []
    for t in range(STEPS):
        actions = to_action_tensor(agent.act(obs.numpy()), (N, sim.robot_description.num_joints), sim.device)
        r = sim.step(actions)
        falls |= r.terminated
        obs = r.obs
        if t >= STEPS - 50:
            vx.append(sim.base_lin_vel[:, 0].clone())
    return falls, torch.stack(vx).mean(0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_shipped_teacher_walks_at_the_command(env_id, sims):
    card = json.loads((zoo_path(env_id) / "model_card.json").read_text())
    assert card["env_id"] == env_id and card["obs_mode"] == "noleak"
    refs = shipped_reference_scores(env_id)  # what `go2bench eval` normalises with
    assert (refs.random_score, refs.expert_score) == (card["random_score"], card["expert_score"])
    assert card["expert_score"] >= 21.0 and card["fall_rate"] <= 0.05 and card["mean_tracking_error"] <= 0.1
    falls, vx = run(load_teacher(env_id), sims(env_id), env_id)
    assert not falls.any()
    np.testing.assert_allclose(vx.numpy(), 0.5, atol=0.1)  # tracks the 0.5 m/s forward command


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_random_agent_does_not_walk(env_id, sims):
    falls, vx = run(RandomAgent(seed=0), sims(env_id), env_id)
    walking = (~falls) & ((vx - 0.5).abs() < 0.1)
    assert falls.any() and not walking.any()
