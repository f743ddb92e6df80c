"""Initial joint noise (``randomization.init_joint_noise``): off, every reset is the exact default pose; on, each
joint starts at default + u * noise, u drawn per (seed, env, trial, episode, joint) by the counter-based streams.

Expected poses are recomputed here from ``streams.python_uniform`` (plain Python integers, not the torch code the
simulation runs) and compared with the joint positions read back from Genesis.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from go2bench.collect.collector import collect
from go2bench.collect.config import CollectConfig
from go2bench.core.config import ConfigError, load_yaml
from go2bench.envs import spaces, streams
from go2bench.envs.robots import get_robot
from go2bench.envs.walk_config import Randomization, WalkConfig, make_walk_config
from go2bench.eval.family_reference import walk_config_hash

NOISE = 0.8  # large enough that some calves are clipped at their upper limit (Go2: default -1.5, limit -0.8378)
N = 4
GO2 = get_robot("go2")
_LAYOUT = spaces.observation_layout(GO2, "noleak")
_START = sum(size for name, size in _LAYOUT[:[n for n, _ in _LAYOUT].index("dof_pos")])
DOF_POS = slice(_START, _START + GO2.num_joints)  # the observation's joint offsets (scale 1)
ZOO_REFERENCES = Path(__file__).resolve().parents[1] / "go2bench" / "zoo" / "Go2Walk-v0" / "velocity" / "references"


# ------------------------------------------------------------------ config (no scene)
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), "0.1", True, [0.1]])
def test_invalid_noise_is_a_one_line_config_error(value):
    with pytest.raises(ConfigError) as e:
        make_walk_config(randomization={"init_joint_noise": value})
    msg = str(e.value)
    assert "randomization.init_joint_noise" in msg and "\n" not in msg


def test_negative_noise_in_the_dataclass_names_the_field():
    with pytest.raises(ValueError, match=r"^randomization.init_joint_noise must be >= 0 radians, got -0.5$"):
        Randomization(init_joint_noise=-0.5)


def test_the_default_config_and_its_hash_are_those_of_the_shipped_files(tmp_path):
    d = make_walk_config().to_dict()
    assert "init_joint_noise" not in d["randomization"]  # left out at its default: old files' dicts stay equal
    assert not Randomization().any_enabled and Randomization(init_joint_noise=0.0).any_enabled
    # the shipped reference returns are found by the default config's hash in their file name
    sha = walk_config_hash(None)[:12]
    assert (ZOO_REFERENCES / f"velocity-v0-T500-{sha}.json").is_file(), sorted(p.name for p in ZOO_REFERENCES.iterdir())
    # set, it is recorded (results JSON: ``walk_config``), changes the hash, and round-trips through YAML
    on = make_walk_config(randomization={"init_joint_noise": 0.05})
    assert on.to_dict()["randomization"]["init_joint_noise"] == 0.05 and walk_config_hash(on)[:12] != sha
    path = tmp_path / "walk.yaml"
    path.write_text("randomization:\n  init_joint_noise: 0.05\n")
    assert load_yaml(WalkConfig, path) == on == make_walk_config(on.to_dict())


# ------------------------------------------------------------------ scenes
def expected_pose(seed: int, env: int, trial: int, episode: int) -> np.ndarray:
    """Default + u * NOISE with u = 2 * unit - 1 from the pure-Python stream, clipped to the robot's limits."""
    q = []
    for j, d in enumerate(GO2.default_pose):
        unit = streams.python_uniform(seed, streams.INIT_POSE, env, trial, episode, 0, j)
        q.append(min(max(d + (-NOISE + 2 * NOISE * unit), GO2.joint_lower[j]), GO2.joint_upper[j]))
    return np.array(q)


def joints(sim) -> np.ndarray:
    """Joint positions read back from Genesis (not the simulation's cached state)."""
    return sim.robot.get_dofs_position(sim.dofs_idx).cpu().numpy().astype(np.float64)


@pytest.fixture(scope="module")
def noisy():
    env = gym.make_vec("Go2Walk-v0", num_envs=N, randomization={"init_joint_noise": NOISE})
    yield env
    env.close()


@pytest.mark.slow  # one scene build (the default one is the session's go2_env)
def test_without_noise_every_reset_is_the_exact_default_pose(go2_env):
    sim = go2_env.unwrapped.sim
    default = np.array(GO2.default_pose, dtype=np.float32)
    for seed in (0, 1):
        obs, _ = go2_env.reset(seed=seed)
        assert np.array_equal(joints(sim)[0].astype(np.float32), default)
        assert not obs[DOF_POS].any()  # the dof_pos block: offsets from the default pose
        for _ in range(5):
            go2_env.step(np.full(GO2.num_joints, 0.5, np.float32))
        assert not np.array_equal(joints(sim)[0].astype(np.float32), default)


@pytest.mark.slow
def test_noisy_reset_draws_each_joint_from_its_own_key_within_noise_and_limits(noisy):
    sim = noisy.sim
    obs, _ = noisy.reset(seed=7)
    q = joints(sim)
    want = np.stack([expected_pose(7, i, 0, 0) for i in range(N)])
    np.testing.assert_allclose(q, want, rtol=0, atol=1e-6)
    off = q - np.array(GO2.default_pose)
    assert (np.abs(off) <= NOISE + 1e-6).all() and (np.abs(off) > 0).any(axis=1).all()
    assert (q >= np.array(GO2.joint_lower) - 1e-6).all() and (q <= np.array(GO2.joint_upper) + 1e-6).all()
    assert np.isclose(q, GO2.joint_upper, rtol=0, atol=1e-6).any()  # clipping happened (seed 7 has such a draw)
    np.testing.assert_allclose(obs[:, DOF_POS], off, rtol=0, atol=1e-6)  # the observation sees the pose
    assert len({tuple(row) for row in np.round(q, 6)}) == N  # every env its own pose


@pytest.mark.slow
def test_same_seed_same_poses_other_seed_other_poses(noisy):
    sim = noisy.sim
    noisy.reset(seed=7)
    a = joints(sim)
    for _ in range(3):
        noisy.step(np.zeros(noisy.action_space.shape, np.float32))
    noisy.reset(seed=7)
    assert np.array_equal(joints(sim), a)
    noisy.reset(seed=8)
    b = joints(sim)
    assert (~np.isclose(a, b, rtol=0, atol=1e-6)).any(axis=1).all()  # every env moved (clipped joints may not)
    np.testing.assert_allclose(b, np.stack([expected_pose(8, i, 0, 0) for i in range(N)]), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_an_env_reset_alone_draws_what_it_draws_with_all_envs_and_others_are_untouched(noisy):
    sim = noisy.sim
    sim.seed(11)
    sim.reset()
    together = joints(sim)
    for _ in range(5):
        sim.step(torch.full((N, GO2.num_joints), 0.5))
    moved = joints(sim)
    sim.seed(11)  # episode counters back to the start: env 2's next reset is its episode 0 again
    alone = torch.tensor([False, False, True, False])
    sim.reset(alone)
    q = joints(sim)
    assert np.array_equal(q[2], together[2])
    assert np.array_equal(q[[0, 1, 3]], moved[[0, 1, 3]])
    sim.reset(alone)  # its episode 1: a new draw
    np.testing.assert_allclose(joints(sim)[2], expected_pose(11, 2, 0, 1), rtol=0, atol=1e-6)
    assert not np.allclose(joints(sim)[2], together[2])


@pytest.mark.slow
def test_draws_are_keyed_by_env_index_and_trial_as_the_family_protocol_sets_them(noisy):
    sim = noisy.sim
    sim.seed(5)  # the family protocol: one env per (theta, seed), its trial counter keyed by the seed
    sim.env_index = torch.tensor([0, 0, 1, 1])
    sim.trial = torch.tensor([3, 3, 3, 4])
    sim.reset()
    q = joints(sim)
    assert np.array_equal(q[0], q[1])  # same keys, same pose
    np.testing.assert_allclose(q[2], expected_pose(5, 1, 3, 0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(q[3], expected_pose(5, 1, 4, 0), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_the_collector_refuses_a_noisy_simulation_before_writing(noisy, tmp_path):
    cfg = CollectConfig(env="Go2Walk-v0", num_histories=N, steps_per_history=250, max_episode_steps=1000)
    with pytest.raises(ValueError, match="no randomisation or initial joint noise") as e:
        collect(tmp_path / "ds", cfg, sim=noisy.sim, progress=False, plot=False)
    assert "\n" not in str(e.value) and not (tmp_path / "ds").exists()


@pytest.mark.slow
def test_eval_flag_makes_seeds_vary_a_deterministic_agents_trials(tmp_path):
    """`go2bench eval --init-joint-noise`: without it the deterministic teacher's trial is the same on every seed
    (the defect it fixes); with it the seeds' returns differ, and the results record the noise."""
    import json

    from click.testing import CliRunner

    from go2bench.cli import main

    base = ["eval", "--agent", "teacher", "--env", "Go2Walk-v0", "--num-envs", "2", "--episodes", "1",
            "--max-episode-steps", "30", "--seeds", "0,1", "--no-progress", "--out"]
    runs = {}
    for name, extra in (("plain", []), ("noisy", ["--init-joint-noise", "0.1"])):
        r = CliRunner().invoke(main, base + [str(tmp_path / f"{name}.json")] + extra)
        assert r.exit_code == 0, r.output
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    plain, noisy = ([s["returns"] for s in runs[k]["per_seed"]] for k in ("plain", "noisy"))
    assert plain[0] == plain[1]
    assert noisy[0] != noisy[1] and noisy[0] != plain[0]
    assert runs["noisy"]["config"]["walk_config"]["randomization"]["init_joint_noise"] == 0.1
    assert "init_joint_noise" not in runs["plain"]["config"]["walk_config"]["randomization"]
    r = CliRunner().invoke(main, base[:-1] + ["--init-joint-noise", "-1"])
    assert r.exit_code != 0 and "--init-joint-noise" in r.output
