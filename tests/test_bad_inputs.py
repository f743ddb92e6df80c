"""Bad inputs get one clear error, early, naming what is wrong; nothing runs away with memory."""

from __future__ import annotations

import math
import time

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import go2bench  # noqa: F401  (registers the envs)
from go2bench.core.config import ConfigError, from_dict, load_yaml, parse_yaml
from go2bench.envs.walk_config import WalkConfig, make_walk_config

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


@pytest.fixture
def no_genesis(monkeypatch):
    """Fail the test if anything tries to initialise Genesis (i.e. build a scene)."""
    from go2bench.envs import genesis_runtime

    def refuse(*args, **kwargs):
        raise AssertionError("a Genesis scene was about to be built")

    monkeypatch.setattr(genesis_runtime, "init", refuse)


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)  # 9**9 = 387M leaves if expanded
    assert len(ALIAS_BOMB) < 600
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb.yaml: not valid YAML: YAML aliases \(\*a\) are not allowed"):
        load_yaml(WalkConfig, path)
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ConfigError, match="aliases"):
        make_walk_config(str(path))


def test_error_messages_do_not_echo_huge_values():
    with pytest.raises(ConfigError) as e:
        from_dict(WalkConfig, {"dt": list(range(100_000))})
    assert len(str(e.value)) < 300 and "list of 100000 items" in str(e.value)


@pytest.mark.parametrize("bad, message", [
    ({"commands": {"lin_vel_x": [float("nan"), 1.0]}}, r"commands.lin_vel_x\[0\]: expected a finite number, got nan"),
    ({"dt": float("inf")}, "dt: expected a finite number, got inf"),
    ({"tracking_sigma": 0.0}, "tracking_sigma must be positive"),
    ({"randomization": {"push_interval_s": -1.0}}, "push_interval_s must be positive"),
    ({"rewards": {"feet_air_time": 1.0}}, r"unknown key\(s\) \['feet_air_time'\]"),
])
def test_non_finite_or_out_of_range_task_values_fail_before_any_scene_is_built(bad, message, no_genesis):
    with pytest.raises(ConfigError, match=message):
        gym.make("Go2Walk-v0", **bad)


def test_yaml_nan_is_refused_too():
    with pytest.raises(ConfigError, match="finite"):
        from_dict(WalkConfig, parse_yaml("commands: {lin_vel_x: [.nan, 1.0]}"))


def test_a_scene_too_large_for_memory_is_refused_with_the_estimate(no_genesis):
    with pytest.raises(MemoryError, match=r"num_envs=1,000,000,000 needs about .* GB .* use at most about"):
        gym.make_vec("Go2Walk-v0", num_envs=10**9)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
_keys = st.sampled_from(["dt", "substeps", "obs_mode", "commands", "rewards", "randomization", "tracking_sigma",
                         "episode_length_s", "action_latency", "base_height_target", "obs_scales", "typo"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _values, max_size=4))
def test_fuzzed_task_configs_give_a_config_error_or_a_valid_finite_config(data):
    """Whatever the mapping, the loader answers with a WalkConfig or one ConfigError, never another exception."""
    try:
        cfg = from_dict(WalkConfig, data)
    except ConfigError as e:
        assert "\n" not in str(e) and len(str(e)) < 400
        return
    for lo, hi in (cfg.commands.lin_vel_x, cfg.commands.lin_vel_y, cfg.commands.ang_vel_yaw):
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi
    assert cfg.dt > 0 and cfg.tracking_sigma > 0


def test_env_used_after_close_raises_a_clear_error():
    env = gym.make("MiniCheetahWalk-v0")
    env.reset(seed=0)
    env.close()
    for call in (lambda: env.step(np.zeros(12, np.float32)), lambda: env.reset(seed=0)):
        with pytest.raises(RuntimeError, match="this env was closed"):
            call()


def test_every_config_reader_refuses_yaml_aliases(tmp_path):
    """Dataset configs (collect, train, data check), model configs and --set values share the safe loader."""
    from go2bench.histories.dataset_config import load_dataset_configs
    from go2bench.pipeline.config import pipeline_config
    from go2bench.vintix.config import make_model_config

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    for load in (lambda: load_dataset_configs(bomb), lambda: make_model_config(str(bomb))):
        with pytest.raises(ConfigError, match="aliases"):
            load()
    with pytest.raises(ConfigError, match="aliases"):
        pipeline_config("cpu", ["train.lr=*a"])


def test_duplicate_yaml_keys_are_refused():
    with pytest.raises(ConfigError, match="duplicate key 'dt'"):
        parse_yaml("dt: 0.02\ndt: 0.05", "w.yaml")


def test_an_output_path_that_cannot_be_written_fails_before_the_work(tmp_path, no_genesis):
    from click.testing import CliRunner

    from go2bench.cli import main

    blocker = tmp_path / "afile"
    blocker.write_text("")
    r = CliRunner().invoke(main, ["eval", "--agent", "random", "--out", str(blocker / "r.json")])
    assert r.exit_code == 1 and "cannot create its folder" in r.output and "Traceback" not in r.output
