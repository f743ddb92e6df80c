"""Typed configs, robot descriptions and the quaternion helpers, against hand-computed values."""

from __future__ import annotations

import math
import re

import pytest
import torch

from go2bench.core.config import ConfigError, load_yaml
from go2bench.envs.robots import GO2, JOINT_NAMES, MINI_CHEETAH, get_robot
from go2bench.envs.spaces import observation_dim, observation_layout
from go2bench.envs.walk_config import WalkConfig, make_walk_config
from go2bench.envs.walk_sim import quat_rotate_inverse, roll_pitch


def test_defaults_match_the_original_workflow():
    cfg = WalkConfig()
    assert cfg.max_episode_steps == 1000 and observation_dim(GO2, cfg.obs_mode) == 33
    assert cfg.commands.lin_vel_x == (0.5, 0.5) and cfg.commands.is_fixed
    # A perfect episode: (tracking_lin_vel + tracking_ang_vel) * dt * steps = 1.2 * 0.02 * 1000.
    perfect = (cfg.rewards.tracking_lin_vel + cfg.rewards.tracking_ang_vel) * cfg.dt * cfg.max_episode_steps
    assert perfect == pytest.approx(24.0)
    assert observation_dim(GO2, make_walk_config(obs_mode="full").obs_mode) == 45
    assert [n for n, _ in observation_layout(GO2, "full")][-1] == "last_action"


def test_yaml_config_loads_and_unknown_keys_are_rejected(tmp_path):
    good = tmp_path / "walk.yaml"
    good.write_text("obs_mode: full\ncommands:\n  lin_vel_x: [0.0, 1.0]\nrandomization:\n  friction_range: [0.5, 1.5]\n")
    cfg = load_yaml(WalkConfig, good)
    assert cfg.obs_mode == "full" and cfg.commands.lin_vel_x == (0.0, 1.0) and not cfg.commands.is_fixed
    assert cfg.randomization.friction_range == (0.5, 1.5)

    bad = tmp_path / "bad.yaml"
    bad.write_text("commands:\n  lin_vel_xx: [0.0, 1.0]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*commands.*lin_vel_xx"):
        load_yaml(WalkConfig, bad)
    with pytest.raises(ConfigError, match="obs_mode"):
        make_walk_config(obs_mode="leaky")
    with pytest.raises(ConfigError, match="unknown key"):
        make_walk_config(episode_len=3)
    with pytest.raises(ConfigError, match="expected a number"):
        make_walk_config({"dt": "fast"})
    with pytest.raises(ConfigError, match="lower bound"):
        make_walk_config({"commands": {"lin_vel_x": [1.0, 0.0]}})
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(WalkConfig, tmp_path / "missing.yaml")


def test_robot_descriptions_are_complete_and_named():
    assert len(JOINT_NAMES) == 12 and JOINT_NAMES[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert GO2.default_pose[:6] == (0.0, 0.8, -1.5, 0.0, 0.8, -1.5)
    assert GO2.default_pose[6:9] == (0.0, 1.0, -1.5)
    assert MINI_CHEETAH.default_pose[:3] == (0.0, -0.8, 1.5) and MINI_CHEETAH.kp == 20.0
    from go2bench.envs.registry import task_spec

    assert task_spec("Go2Walk-v0").task_name == "go2_walking_ad"
    assert task_spec("MiniCheetahWalk-v0").task_name == "minicheetah_walking_ad"
    with pytest.raises(ValueError, match="unknown robot"):
        get_robot("spot")


def test_action_bounds_come_from_each_robots_joint_limits():
    lo, hi = GO2.action_bounds()
    # Go2 calf: limits [-2.7227, -0.83776], default -1.5, scale 0.25.
    assert lo[2] == pytest.approx((-2.7227 + 1.5) / 0.25) and hi[2] == pytest.approx((-0.83776 + 1.5) / 0.25)
    # Go2 hip: limits +-1.0472 around 0; rear thigh default 1.0 with limits [-1.5708, 3.4907].
    assert (lo[0], hi[0]) == (pytest.approx(-4.1888), pytest.approx(4.1888))
    assert (lo[7], hi[7]) == (pytest.approx(-10.2832), pytest.approx(9.9628))
    # Mini Cheetah knee: limits +-2.6, default 1.5 -> [-16.4, 4.4].
    lo_mc, hi_mc = MINI_CHEETAH.action_bounds()
    assert (lo_mc[2], hi_mc[2]) == (pytest.approx(-16.4), pytest.approx(4.4))
    assert all(a < -1.0 and b > 1.0 for a, b in zip(lo + lo_mc, hi + hi_mc))


def test_quat_rotate_inverse_hand_computed():
    # 90 degrees yaw: q = (cos 45, 0, 0, sin 45). World +x seen from the body is -y.
    s = math.sqrt(0.5)
    q = torch.tensor([[s, 0.0, 0.0, s]])
    v = quat_rotate_inverse(q, torch.tensor([[1.0, 0.0, 0.0]]))
    assert torch.allclose(v, torch.tensor([[0.0, -1.0, 0.0]]), atol=1e-6)
    # 90 degrees roll about x: gravity (0, 0, -1) in the body frame is (0, -1, 0).
    qr = torch.tensor([[s, s, 0.0, 0.0]])
    g = quat_rotate_inverse(qr, torch.tensor([[0.0, 0.0, -1.0]]))
    assert torch.allclose(g, torch.tensor([[0.0, -1.0, 0.0]]), atol=1e-6)


def test_roll_pitch_hand_computed():
    a = math.radians(12.0)
    roll_q = torch.tensor([[math.cos(a / 2), math.sin(a / 2), 0.0, 0.0]])
    pitch_q = torch.tensor([[math.cos(a / 2), 0.0, math.sin(a / 2), 0.0]])
    r, p = roll_pitch(torch.cat([roll_q, pitch_q]))
    assert r[0].item() == pytest.approx(a, abs=1e-6) and p[0].item() == pytest.approx(0.0, abs=1e-6)
    assert r[1].item() == pytest.approx(0.0, abs=1e-6) and p[1].item() == pytest.approx(a, abs=1e-6)


def test_torch_threads_beside_simulation_sets_one_thread_on_cpu_and_restores():
    import torch

    from go2bench.envs.genesis_runtime import torch_threads_beside_simulation

    session = torch.get_num_threads()
    torch.set_num_threads(2)  # not the one thread the session runs on (conftest), so a missed restore shows
    before = torch.get_num_threads()
    with torch_threads_beside_simulation("cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads_beside_simulation(torch.device("cuda", 0)):  # the GPU path leaves torch alone
        assert torch.get_num_threads() == before
    try:
        with torch_threads_beside_simulation("cpu"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before == 2
    torch.set_num_threads(session)


def test_yaml_with_and_without_libyaml_gives_the_same_data_and_refusals(monkeypatch):
    """parse_yaml's libyaml path (fast) and its pure-Python fallback agree on data and on what they refuse."""
    from go2bench.core import config as C

    text = (C.Path(__file__).parent.parent / "go2bench" / "suites" / "velocity-v0.yaml").read_text()
    bad = {"a: &x [1, 2]\nb: *x\n": "YAML aliases (*x) are not allowed", "a: 1\na: 2\n": "duplicate key 'a'",
           "!!python/object/apply:os.system ['true']\n": "could not determine a constructor"}
    results = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(C, "_UniqueKeyCLoader", None)
        errors = {}
        for doc, expected in bad.items():
            with pytest.raises(C.ConfigError, match=re.escape(expected)) as e:
                C.parse_yaml(doc, "f.yaml")
            errors[doc] = str(e.value).splitlines()[0].startswith("f.yaml: not valid YAML:")
        results.append((C.parse_yaml(text), errors))
    assert results[0] == results[1] and all(results[0][1].values())


def test_deterministic_gpu_simulation_is_opt_in_through_the_environment(monkeypatch):
    from go2bench.envs.genesis_runtime import DETERMINISTIC_VARIABLE, init_options

    monkeypatch.delenv(DETERMINISTIC_VARIABLE, raising=False)
    assert init_options("gpu") == {"precision": "32", "logging_level": "warning", "performance_mode": True}
    assert init_options("cpu")["performance_mode"] is False and "use_deterministic_algorithms" not in init_options("cpu")
    monkeypatch.setenv(DETERMINISTIC_VARIABLE, "1")
    assert init_options("gpu")["use_deterministic_algorithms"] is True
    monkeypatch.setenv(DETERMINISTIC_VARIABLE, "yes")
    with pytest.raises(ValueError, match="GO2BENCH_DETERMINISTIC must be 0 or 1, got 'yes'"):
        init_options("gpu")
