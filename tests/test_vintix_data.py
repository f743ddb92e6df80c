"""Vintix data pipeline: episode/window index, lazy reads across HDF5 groups, padding, stats, configs."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from go2bench.core.config import ConfigError
from go2bench.core.provenance import write_json_atomic
from go2bench.histories.dataset_config import load_dataset_configs
from go2bench.histories.reader import read_history
from go2bench.histories.writer import HistoryWriter
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.data import (
    STATS_FILE,
    STATS_VERSION,
    MultiTaskWindows,
    episode_segments,
    load_or_compute_stats,
    window_starts,
)

LENS = [5, 7, 4, 6, 3]  # episodes of 40 steps: 5 7 4 6 3 5 7 3(cut) -> rows 0,5,12,16,22,25,30,37


def _write_known(root, name="known", obs_dim=3, act_dim=2, steps=40, group_size=8, n_hist=1):
    d = root / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for h in range(n_hist):
        step_num, k = [], 0
        while len(step_num) < steps:
            step_num += list(range(LENS[k % len(LENS)]))
            k += 1
        step_num = np.array(step_num[:steps])
        obs = rng.normal(size=(steps, obs_dim)).astype(np.float32) * 3 + 1
        act = rng.normal(size=(steps, act_dim)).astype(np.float32)
        rew = np.arange(steps, dtype=np.float32) / 10
        with HistoryWriter(d / f"trajectories_env_{h:04d}.h5", obs_dim, act_dim, group_size=group_size) as w:
            w.append(obs, act, rew, step_num)
    write_json_atomic(d / f"{name}.json", {"task_name": "t", "observation_shape": {"proprio": [obs_dim]},
                                           "action_dim": act_dim})
    return d


def _cfg(tmp_path, entries: dict, fname="cfg.yaml"):
    import yaml

    p = tmp_path / fname
    p.write_text(yaml.safe_dump(entries))
    return p


def test_episode_segments_and_window_starts():
    step_num = np.concatenate([np.arange(n) for n in [5, 7, 4, 6, 3, 5, 7, 3]])
    seg = episode_segments(step_num, 1)
    assert seg[:, 0].tolist() == [0, 5, 12, 16, 22, 25, 30, 37]
    seg2 = episode_segments(step_num, 2)
    assert seg2.tolist() == [[0, 5], [12, 4], [22, 3], [30, 7]]  # episodes 0, 2, 4, 6
    assert episode_segments(np.array([3, 4, 0, 1]), 1).tolist() == [[0, 2], [2, 2]]  # starts mid-episode
    assert window_starts(19, 6, 4).tolist() == [0, 4, 8, 12]
    assert window_starts(5, 6, 1).tolist() == []


def test_windows_with_episode_sparsity_cross_group_boundaries(tmp_path):
    d = _write_known(tmp_path)
    cfg = _cfg(tmp_path, {"k": {"type": "default", "path": "known", "group": "g", "reward_scale": 2.0,
                                "episode_sparsity": 2}})
    ds = MultiTaskWindows(load_dataset_configs([cfg], tmp_path), context_len=6, trajectory_sparsity=4)
    # kept stream: rows 0-4, 12-15, 22-24, 30-36 -> 19 steps -> windows at 0, 4, 8, 12
    assert ds.sample_start.tolist() == [0, 4, 8, 12] and len(ds) == 4
    full = read_history(d / "trajectories_env_0000.h5")
    rows = [4, 12, 13, 14, 15, 22]  # window 1 (stream 4..9): crosses HDF5 groups 0-7, 8-15, 16-23
    raw = ds.raw_window(1)
    with h5py.File(d / "trajectories_env_0000.h5", "r") as f:
        direct = np.concatenate([f["0-7"]["proprio_observation"][4:5], f["8-15"]["proprio_observation"][4:8],
                                 f["16-23"]["proprio_observation"][6:7]])
    np.testing.assert_array_equal(raw["proprio_observation"], direct)
    np.testing.assert_array_equal(raw["proprio_observation"], full["proprio_observation"][rows])
    np.testing.assert_array_equal(raw["action"], full["action"][rows])
    np.testing.assert_array_equal(raw["step_num"], [4, 0, 1, 2, 3, 0])
    # normalised sample: prev action/reward are the previous stream row's, zero at step_num 0
    s = ds[1]
    g = ds.groups["g"]
    om, osd = np.array(g["obs_mean"]), np.array(g["obs_std"])
    am, asd = np.array(g["act_mean"]), np.array(g["act_std"])
    np.testing.assert_allclose(s["obs"].numpy(), (full["proprio_observation"][rows] - om) / osd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["target"].numpy(), (full["action"][rows] - am) / asd, rtol=1e-5, atol=1e-6)
    prev_rows = [3, None, 12, 13, 14, None]
    for i, r in enumerate(prev_rows):
        if r is None:
            assert torch.all(s["prev_action"][i] == 0) and s["prev_reward"][i] == 0
        else:
            np.testing.assert_allclose(s["prev_action"][i].numpy(), (full["action"][r] - am) / asd, rtol=1e-5, atol=1e-6)
            assert s["prev_reward"][i].item() == pytest.approx(full["reward"][r] * 2.0)
    # window 0 starts the stream (row 0, step 0): padded
    s0 = ds[0]
    assert torch.all(s0["prev_action"][0] == 0) and s0["prev_reward"][0] == 0
    # DataLoader worker processes open their own files and give the same samples
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    torch.testing.assert_close(batches[0]["obs"][1], s["obs"])
    assert batches[1]["group"].tolist() == [0, 0]


def test_original_t_plus_one_layout(tmp_path):
    from go2bench.testing import write_original_layout_history

    rng = np.random.default_rng(1)
    obs = rng.normal(size=(20, 4)).astype(np.float32)
    act = rng.normal(size=(20, 2)).astype(np.float32)
    step_num = np.array(list(range(12)) + list(range(8)), np.int32)
    extra = rng.normal(size=(2, 4)).astype(np.float32) * 1000  # each group's T+1-th observation row
    write_original_layout_history(tmp_path / "orig" / "trajectories_env_0000.h5", obs, act, np.ones(20, np.float32),
                                  step_num, [(0, 10), (10, 20)], extra)
    cfg = _cfg(tmp_path, {"o": {"path": "orig", "group": "orig"}})  # no metadata JSON, no env_id
    ds = MultiTaskWindows(load_dataset_configs([cfg], tmp_path), context_len=15, trajectory_sparsity=5)
    assert ds.sample_start.tolist() == [0, 5]
    np.testing.assert_array_equal(ds.raw_window(1)["proprio_observation"], obs[5:20])
    np.testing.assert_allclose(ds.groups["orig"]["obs_mean"], obs.astype(np.float64).mean(0), atol=1e-6)
    assert ds.groups["orig"]["env_id"] is None


def test_stats_match_numpy_and_cache(tmp_path):
    d = write_synthetic_dataset(tmp_path, "syn", n_histories=3, steps=700, obs_dim=7, act_dim=3,
                                episode_len=[50, 70], group_size=128, obs_scale=4.0)
    # a constant dim (like a fixed command) gets the std floor
    stats, hit = load_or_compute_stats(d)
    assert not hit
    allobs = np.concatenate([read_history(p)["proprio_observation"] for p in sorted(d.glob("*.h5"))]).astype(np.float64)
    allact = np.concatenate([read_history(p)["action"] for p in sorted(d.glob("*.h5"))]).astype(np.float64)
    np.testing.assert_allclose(stats["obs_mean"], allobs.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(stats["obs_std"], allobs.std(0), rtol=1e-9)
    np.testing.assert_allclose(stats["act_std"], allact.std(0), rtol=1e-9)
    assert stats["steps"] == 2100
    stats2, hit2 = load_or_compute_stats(d)
    assert hit2 and stats2 == stats
    # a new history changes the content hash: recomputed
    write_synthetic_dataset(tmp_path / "more", "syn", n_histories=1, steps=300, obs_dim=7, act_dim=3, seed=5)
    (tmp_path / "more" / "syn" / "trajectories_env_0000.h5").rename(d / "trajectories_env_0003.h5")
    stats3, hit3 = load_or_compute_stats(d)
    assert not hit3 and stats3["steps"] == 2400
    assert load_or_compute_stats(d)[1]


def test_std_floor_and_two_widths(tmp_path):
    write_synthetic_dataset(tmp_path, "go2", n_histories=1, steps=200, obs_dim=45, act_dim=12, env_id="Go2Walk-v0")
    write_synthetic_dataset(tmp_path, "mc", n_histories=2, steps=200, obs_dim=33, act_dim=12)
    with h5py.File(tmp_path / "mc" / "trajectories_env_0000.h5", "r+") as f:
        f["0-199"]["proprio_observation"][:, 6] = 1.0  # a constant command dim
    with h5py.File(tmp_path / "mc" / "trajectories_env_0001.h5", "r+") as f:
        f["0-199"]["proprio_observation"][:, 6] = 1.0
    cfg = _cfg(tmp_path, {"go2": {"path": "go2", "group": "go2_walking", "reward_scale": 50.0},
                          "mc": {"path": "mc", "group": "mc_walking"}})
    ds = MultiTaskWindows(load_dataset_configs([str(cfg)], tmp_path), context_len=100, trajectory_sparsity=50)
    assert ds.group_names == ["go2_walking", "mc_walking"]
    assert ds.samples_per_group() == {"go2_walking": 3, "mc_walking": 6}
    assert ds.groups["mc_walking"]["obs_std"][6] == 1.0  # constant: centred only (normaliser_std)
    assert ds.groups["go2_walking"]["env_id"] == "Go2Walk-v0"
    batch = torch.utils.data.default_collate([ds[0], ds[5]])
    assert batch["obs"].shape == (2, 100, 45) and batch["group"].tolist() == [0, 1]
    assert torch.all(batch["obs"][1, :, 33:] == 0)


def test_config_errors(tmp_path, monkeypatch):
    ok = {"path": "a", "group": "g1"}
    c1 = _cfg(tmp_path, {"a": ok}, "one.yaml")
    c2 = _cfg(tmp_path, {"b": {"path": "b", "group": "g1"}}, "two.yaml")
    with pytest.raises(ConfigError, match="group 'g1' is already used"):
        load_dataset_configs([c1, c2], tmp_path)
    assert len(load_dataset_configs([c1, c1], tmp_path)) == 1  # the same entry twice is one dataset
    bad = _cfg(tmp_path, {"a": {**ok, "episode_sparsty": 2}}, "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*episode_sparsty"):
        load_dataset_configs([bad], tmp_path)
    typ = _cfg(tmp_path, {"a": {**ok, "type": "fancy"}}, "typ.yaml")
    with pytest.raises(ConfigError, match=r"typ\.yaml.*'fancy'.*only 'default'"):
        load_dataset_configs([typ], tmp_path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_dataset_configs(["no_such_config"], tmp_path)
    # bare names resolve in go2bench/configs
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    _cfg(shipped, {"a": ok}, "mine_config.yaml")
    import go2bench.histories.dataset_config as dcfg

    monkeypatch.setattr(dcfg, "CONFIG_DIR", shipped)
    specs = load_dataset_configs(["mine_config"], tmp_path / "data")
    assert specs[0].dir == (tmp_path / "data" / "a").resolve() and specs[0].entry.group == "g1"
    assert load_dataset_configs(["mine_config.yaml"], tmp_path)[0].name == "a"
    json.dumps([s.name for s in specs])


def test_histories_shorter_than_the_context_warn_or_fail(tmp_path):
    write_synthetic_dataset(tmp_path, "a", n_histories=1, steps=200, obs_dim=33, act_dim=12)
    write_synthetic_dataset(tmp_path / "b_root", "b", n_histories=1, steps=50, obs_dim=33, act_dim=12)
    (tmp_path / "b").symlink_to(tmp_path / "b_root" / "b")
    write_synthetic_dataset(tmp_path / "mixed_root", "mixed", n_histories=1, steps=200, obs_dim=33, act_dim=12)
    short = write_synthetic_dataset(tmp_path, "tmp_short", n_histories=1, steps=50, obs_dim=33, act_dim=12)
    (short / "trajectories_env_0000.h5").rename(tmp_path / "mixed_root" / "mixed" / "trajectories_env_0001.h5")
    cfg = _cfg(tmp_path, {"a": {"path": "a", "group": "a"}, "b": {"path": "b", "group": "b"}})
    with pytest.raises(ValueError, match=r"no history has 100 steps.*longest: 50"):
        MultiTaskWindows(load_dataset_configs([str(cfg)], tmp_path), context_len=100, trajectory_sparsity=50)
    cfg = _cfg(tmp_path, {"m": {"path": "mixed_root/mixed", "group": "m"}}, "m.yaml")
    with pytest.warns(UserWarning, match=r"1 of 2 histories are shorter than context_len 100.*trajectories_env_0001"):
        ds = MultiTaskWindows(load_dataset_configs([str(cfg)], tmp_path), context_len=100, trajectory_sparsity=50)
    assert len(ds) == 3  # windows at 0, 50, 100 of the 200-step history only


def test_history_and_pooled_stats_match_numpy(tmp_path):
    """One mean/std implementation for the per-history JSON, the dataset JSON and training."""
    from go2bench.histories.stats import compute_stats, history_stats, pooled_stats

    d = write_synthetic_dataset(tmp_path, "syn", n_histories=3, steps=500, obs_dim=5, act_dim=2,
                                episode_len=[40, 60], group_size=64, obs_scale=3.0)
    files = sorted(d.glob("*.h5"))
    records = [history_stats(p) for p in files]
    data = [read_history(p) for p in files]
    rec, h = records[0], data[0]
    np.testing.assert_allclose(rec["obs_std"], h["proprio_observation"].astype(np.float64).std(0), rtol=1e-12)
    assert rec["reward_mean"] == pytest.approx(h["reward"].astype(np.float64).mean(), rel=1e-12)
    assert rec["episode_lengths"][:3] == [40, 60, 40] and rec["total_transitions"] == 500
    allobs = np.concatenate([x["proprio_observation"] for x in data]).astype(np.float64)
    allrew = np.concatenate([x["reward"] for x in data]).astype(np.float64)
    pooled = pooled_stats(records)
    np.testing.assert_allclose(pooled["obs_mean"], allobs.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pooled["obs_std"], allobs.std(0), rtol=1e-12)
    assert pooled["reward_std"] == pytest.approx(allrew.std(), rel=1e-12) and pooled["total_transitions"] == 1500
    whole = compute_stats(d, chunk=7)  # chunks, groups and histories merge to the same moments
    np.testing.assert_allclose(whole["obs_std"], pooled["obs_std"], rtol=1e-12)
    assert whole["steps"] == 1500 and whole["reward_mean"] == pytest.approx(pooled["reward_mean"], rel=1e-12)


def test_constant_slot_shifted_at_evaluation_stays_a_small_input(tmp_path):
    """Defect (c): a slot constant in the data (a command) gets divisor 1, not a 0.01 floor."""
    from go2bench.histories.stats import CONSTANT_STD, normaliser_std
    from go2bench.vintix.config import make_model_config
    from go2bench.vintix.inference import VintixPolicy
    from go2bench.vintix.model import VintixModel

    d = write_synthetic_dataset(tmp_path, "c", n_histories=2, steps=200, obs_dim=9, act_dim=3)
    for h in range(2):
        with h5py.File(d / f"trajectories_env_{h:04d}.h5", "r+") as f:
            f["0-199"]["proprio_observation"][:, 6] = 1.0  # the scaled forward command, fixed at 0.5 m/s
            f["0-199"]["proprio_observation"][:, 7] = 0.0  # a zero command slot
            obs = f["0-199"]["proprio_observation"][()]
            obs[:, 8] = 0.3 + 0.02 * np.sign(np.arange(200) % 2 - 0.5)  # varies: std 0.02 >= CONSTANT_STD
            f["0-199"]["proprio_observation"][()] = obs
    cfg = _cfg(tmp_path, {"c": {"path": "c", "group": "c"}})
    ds = MultiTaskWindows(load_dataset_configs([str(cfg)], tmp_path), context_len=50, trajectory_sparsity=50)
    g = ds.groups["c"]
    mean, std = np.array(g["obs_mean"]), np.array(g["obs_std"])
    assert std[6] == 1.0 and std[7] == 1.0 and std[8] == pytest.approx(0.02, rel=1e-4)  # informative: unchanged
    for slot, value in ((6, 1.0), (7, 0.0)):
        for shift in (0.5, -0.5, 0.6):  # 0.6 = a command of 0.8 instead of 0.5 m/s after the x2 scale
            z = (value + shift - mean[slot]) / std[slot]
            assert abs(z) <= 5, (slot, shift, z)
            assert abs(z) == pytest.approx(abs(shift), abs=1e-6)
    # the normalised training input of a constant slot is 0 ...
    x = ds[0]["obs"]
    assert torch.all(x[:, 6] == 0) and torch.all(x[:, 7] == 0)
    # ... and the evaluation-time normaliser (a policy built on these groups, as a checkpoint stores them)
    pol = VintixPolicy(VintixModel(make_model_config("tiny"), ds.groups), ds.groups, context_len=50)
    pol.reset(1, "c")
    shifted = torch.tensor(mean, dtype=torch.float32)[None].clone()
    shifted[0, 6] += 0.6
    shifted[0, 7] -= 0.5
    z = pol.normalize_obs(shifted)[0]
    assert float(z[6]) == pytest.approx(0.6, abs=1e-6) and float(z[7]) == pytest.approx(-0.5, abs=1e-6)
    assert float(z.abs().max()) <= 5  # with the old 0.01 floor: 60 and 50 sigma
    # idempotent on a checkpoint's divisors (1, or stds floored at 0.01 by old runs: kept as trained)
    np.testing.assert_array_equal(normaliser_std([1.0, 0.01, 0.5, 0.0, np.nan]), [1.0, 0.01, 0.5, 1.0, 1.0])
    assert CONSTANT_STD == 0.01
    resumed = MultiTaskWindows(load_dataset_configs([str(cfg)], tmp_path), context_len=50, trajectory_sparsity=50,
                               stats={"c": g})
    assert resumed.groups["c"]["obs_std"] == g["obs_std"]


def test_stats_cache_of_version_1_is_recomputed(tmp_path):
    d = write_synthetic_dataset(tmp_path, "v", n_histories=1, steps=100, obs_dim=4, act_dim=2)
    stats, hit = load_or_compute_stats(d)
    assert not hit and stats["std_rule"] == "std<0.01->1" and len(stats["obs_norm_std"]) == 4
    cache = json.loads((d / STATS_FILE).read_text())
    assert cache["version"] == STATS_VERSION == 2
    cache["version"] = 1
    (d / STATS_FILE).write_text(json.dumps(cache))
    assert load_or_compute_stats(d)[1] is False  # old cache: recomputed
    assert load_or_compute_stats(d)[1] is True


def test_windows_on_demonstrator_targets(tmp_path):
    """target='demonstrator_action' reads the clean actions, normalised with the action statistics."""
    write_synthetic_dataset(tmp_path, "dm", n_histories=2, steps=120, obs_dim=5, act_dim=2, episode_len=30,
                            group_size=32, demonstrator=True)
    write_synthetic_dataset(tmp_path, "old", n_histories=1, steps=120, obs_dim=5, act_dim=2)
    cfg = _cfg(tmp_path, {"dm": {"path": "dm", "group": "dm"}})
    specs = load_dataset_configs([str(cfg)], tmp_path)
    a = MultiTaskWindows(specs, context_len=40, trajectory_sparsity=40)
    b = MultiTaskWindows(specs, context_len=40, trajectory_sparsity=40, target="demonstrator_action")
    raw = b.raw_window(1)
    g = b.groups["dm"]
    want = (raw["demonstrator_action"] - np.array(g["act_mean"], np.float32)) / np.array(g["act_std"], np.float32)
    np.testing.assert_allclose(b[1]["target"].numpy(), want, rtol=1e-6)
    assert not np.allclose(raw["demonstrator_action"], raw["action"])
    np.testing.assert_array_equal(a[1]["prev_action"].numpy(), b[1]["prev_action"].numpy())  # inputs: executed
    np.testing.assert_array_equal(a[1]["obs"].numpy(), b[1]["obs"].numpy())
    old = load_dataset_configs([str(_cfg(tmp_path, {"o": {"path": "old", "group": "o"}}, "o.yaml"))], tmp_path)
    assert "demonstrator_action" not in MultiTaskWindows(old, 40, 40).raw_window(0)
    with pytest.raises(ValueError, match=r"trajectories_env_0000\.h5: no demonstrator_action"):
        MultiTaskWindows(old, 40, 40, target="demonstrator_action")
    with pytest.raises(ValueError, match="target must be one of"):
        MultiTaskWindows(old, 40, 40, target="teacher")
