"""The leave-one-robot-out split robots-v0 (issue 15): the split file, the pooled training set of a fold, the
agent checks and the normalised scores of its cold-start evaluation. No simulation here (fast); the end-to-end
micro run (train on two robots, evaluate a third) is tests/test_robot_split_micro.py (slow)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from go2bench.agents.vintix_agent import VintixAgent
from go2bench.cli import main
from go2bench.core.config import ConfigError
from go2bench.envs import robot_split as rs
from go2bench.envs.registry import TASKS
from go2bench.eval.reference import shipped_reference_scores
from go2bench.eval.results import ResultsError, build_results, load_results, save_results
from go2bench.eval.robot_split_protocol import prepare_agent
from go2bench.eval.robot_split_results import robot_split_block
from go2bench.histories.check import check_config
from go2bench.histories.dataset_config import load_dataset_configs
from go2bench.histories.reader import read_history
from go2bench.histories.robot_split_data import fold_training_set, write_fold_config
from go2bench.testing import write_synthetic_dataset

SPLIT = rs.load_robot_split("robots-v0")


# ------------------------------------------------------------------------------ the split file
def test_split_file_regenerates_byte_for_byte():
    path = rs.SUITES_DIR / "robots-v0.yaml"
    assert rs.generate_robot_split("robots-v0") == path.read_text()


def test_every_robot_is_held_out_once_and_never_trains_its_own_fold():
    assert set(SPLIT.robots) == {t.robot for t in TASKS.values()}  # all five registered robots
    for robot, fold in SPLIT.folds.items():
        assert fold.held_out == robot and robot not in fold.train
        assert sorted(fold.train + (robot,)) == sorted(SPLIT.robots)
        assert fold.env_id not in fold.train_env_ids and TASKS[fold.env_id].robot == robot
        assert fold.episodes >= 10 and len(fold.seeds) >= 2 and fold.max_episode_steps == 1000
    assert SPLIT.fold("MiniCheetahWalk-v0") is SPLIT.folds["mini_cheetah"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["folds"]["go2"]["train"].append("go2"), "folds.go2.train: the held-out robot 'go2' is among"),
    (lambda d: d["folds"]["a1"]["train"].pop(), "folds.a1.train: expected every other robot"),
    (lambda d: d["folds"]["go1"].update(episodes=3), "folds.go1.episodes: the protocol needs K >= 10"),
    (lambda d: d["folds"]["go1"].update(seeds=[1, 1]), "folds.go1.seeds: expected distinct seeds"),
    (lambda d: d.update(colour="red"), "unknown key(s) ['colour']"),
    (lambda d: d["folds"]["go2"].update(env="A1Walk-v0"), "folds.go2.env"),
])
def test_bad_split_files_are_one_clear_error(tmp_path, edit, message):
    data = yaml.safe_load(rs.generate_robot_split("robots-v0"))
    edit(data)
    path = tmp_path / "robots-v0.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        rs.load_robot_split(path=path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_unknown_robot_is_refused_with_one_line():
    with pytest.raises(ConfigError, match="unknown robot 'spot' to hold out; robots-v0 holds out one of: go2, "):
        SPLIT.fold("spot")
    runner = CliRunner()
    for args in (["eval", "--robots-split", "robots-v0", "--held-out", "spot"],
                 ["data", "robot-split", "--held-out", "spot", "--config", "x.yaml"]):
        r = runner.invoke(main, args)
        assert r.exit_code == 1, r.output
        assert r.output.strip().splitlines() == [
            "Error: unknown robot 'spot' to hold out; robots-v0 holds out one of: go2, mini_cheetah, a1, go1, anymal_c"]
    r = runner.invoke(main, ["eval", "--robots-split", "robots-v0"])
    assert r.exit_code == 2 and "--robots-split needs --held-out ROBOT" in r.output
    r = runner.invoke(main, ["eval", "--robots-split", "robots-v0", "--held-out", "go2", "--trials", "2"])
    assert r.exit_code == 2 and "--trials do not go with --robots-split (without --family)" in r.output


# ------------------------------------------------------------------------------ the training set of a fold
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Synthetic datasets of three robots (a1 will be held out) and a config listing all three."""
    root = tmp_path_factory.mktemp("robots")
    entries = {}
    for i, (name, env, steps) in enumerate([("go2_ad", "Go2Walk-v0", 300), ("mc_ad", "MiniCheetahWalk-v0", 500),
                                            ("a1_ad", "A1Walk-v0", 200)]):
        write_synthetic_dataset(root, name, n_histories=1 + (i == 1), steps=steps, env_id=env, episode_len=50,
                                seed=i, obs_scale=1.0 + i)
        entries[name] = {"type": "default", "path": name, "group": f"{name}_group", "reward_scale": 50.0}
    cfg = root / "all.yaml"
    cfg.write_text(yaml.safe_dump(entries))
    return root, cfg


def test_fold_training_set_pools_the_training_robots_only(data):
    root, cfg = data
    fold = SPLIT.fold("a1")
    with pytest.raises(ConfigError, match=r"no dataset of training robot\(s\) \['go1', 'anymal_c'\]"):
        fold_training_set(fold, cfg, root)
    with pytest.raises(ConfigError, match="a1 is the held-out robot of this robots-v0 fold"):
        fold_training_set(fold, cfg, root, ["go2", "a1"])
    ts = fold_training_set(fold, cfg, root, ["go2", "mini_cheetah"])
    assert ts.robots == ["go2", "mini_cheetah"] and ts.partial
    assert [(r, s.name) for r, s in ts.excluded] == [("a1", "a1_ad")]
    out = write_fold_config(ts)
    assert out == root / "robots-v0" / "robots-v0_heldout_a1.yaml"
    (spec,) = load_dataset_configs(out, root)  # read back by the training reader
    assert (spec.name, spec.entry.group, spec.entry.reward_scale) == ("robots-v0_heldout_a1", "quadruped_walking", 50.0)
    assert check_config([out], root) == ([], [])  # the data check that training runs first
    pooled = sorted(p.name for p in spec.dir.iterdir())
    assert pooled == ["robots-v0_heldout_a1.json"] + [f"trajectories_env_000{i}.{x}" for i in range(3)
                                                       for x in ("h5", "json")]
    # the pooled normalisation statistics are those of every step of the training robots (none of a1's)
    from go2bench.vintix.data import MultiTaskWindows

    ds = MultiTaskWindows([spec], context_len=20, trajectory_sparsity=10)
    assert ds.group_names == ["quadruped_walking"]
    obs = np.concatenate([read_history(root / d / "trajectories_env_000{}.h5".format(i))["proprio_observation"]
                          for d, i in (("go2_ad", 0), ("mc_ad", 0), ("mc_ad", 1))])
    g = ds.groups["quadruped_walking"]
    assert np.allclose(g["obs_mean"], obs.mean(0), atol=1e-5)
    assert np.allclose(g["obs_std"], obs.std(0), rtol=1e-4)
    assert g["env_id"] is None and g["robot"] is None and g["dataset"] == "robots-v0_heldout_a1"
    # written again with the same sources: the same folder, its stats cache kept
    cache = spec.dir / "vintix_stats.json"
    assert cache.exists()
    write_fold_config(ts)
    assert cache.exists()
    # other sources: the pool is rebuilt (old links and stale stats gone), the sources' files untouched
    write_fold_config(fold_training_set(fold, cfg, root, ["mini_cheetah"]))
    assert sorted(p.name for p in spec.dir.glob("*.h5")) == ["trajectories_env_0000.h5", "trajectories_env_0001.h5"]
    assert not cache.exists() and (root / "go2_ad" / "trajectories_env_0000.h5").is_file()
    assert [p.name for p in (root / "robots-v0").iterdir() if p.name.startswith(".")] == []


def test_pooling_never_replaces_a_real_dataset(data):
    root, cfg = data
    fold = SPLIT.fold("go1")
    real = root / "robots-v0" / fold.dataset
    write_synthetic_dataset(root / "robots-v0", fold.dataset, n_histories=1, steps=50, env_id="Go1Walk-v0")
    ts = fold_training_set(fold, cfg, root, ["go2"])
    with pytest.raises(ConfigError, match="exists and is not a pooled dataset folder"):
        write_fold_config(ts)
    assert (real / "trajectories_env_0000.h5").is_file() and not (real / "trajectories_env_0000.h5").is_symlink()


# ------------------------------------------------------------------------------ the agent never saw the robot
def _agent(groups):
    return VintixAgent(SimpleNamespace(groups=groups))


def test_checkpoints_that_saw_the_held_out_robot_are_refused():
    fold = SPLIT.fold("go2")
    pooled = {"env_id": None, "robot": None, "dataset": fold.dataset, "num_histories": 40}
    with pytest.raises(ValueError, match=r"group\(s\) \['go2_walking'\] were trained on go2 \(Go2Walk-v0\)"):
        prepare_agent(_agent({"quadruped_walking": pooled, "go2_walking": {"env_id": "Go2Walk-v0"}}), fold)
    with pytest.raises(ValueError, match="has no group 'quadruped_walking'"):
        prepare_agent(_agent({"a1_walking": {"env_id": "A1Walk-v0"}}), fold)
    with pytest.raises(ValueError, match="trained on dataset 'robots-v0_heldout_a1'"):
        prepare_agent(_agent({"quadruped_walking": {**pooled, "dataset": "robots-v0_heldout_a1"}}), fold)
    agent = _agent({"quadruped_walking": pooled})
    assert prepare_agent(agent, fold) == {"name": "quadruped_walking", "dataset": fold.dataset, "num_histories": 40}
    assert agent.pinned_group == "quadruped_walking"
    assert prepare_agent(SimpleNamespace(name="teacher"), fold) is None  # references run as they are


# ------------------------------------------------------------------------------ scores by hand
def _fake_results(fold, returns, seeds):
    """A results dict as evaluate_in_context builds it, for returns (seeds, envs, episodes)."""
    S_, E, K = returns.shape
    sim = SimpleNamespace(num_envs=E, backend="cpu", max_episode_steps=1000,
                          config=SimpleNamespace(obs_mode="noleak", to_dict=lambda: {}))
    per_seed = [{"seed": s, "returns": returns[i].tolist(), "lengths": np.full((E, K), 1000).tolist(),
                 "falls": np.zeros((E, K), bool).tolist(), "tracking_errors": np.zeros((E, K)).tolist(),
                 "diverged": 0, "env_steps": 1000 * K * E, "wall_s": 1.0} for i, s in enumerate(seeds)]
    res = build_results(SimpleNamespace(name="fake"), fold.env_id, sim, K, list(seeds), per_seed,
                        shipped_reference_scores(fold.env_id), {})
    res["config"].update(robots_split=fold.split, held_out=fold.held_out)
    return res


def test_normalised_scores_by_hand_and_the_results_round_trip(tmp_path):
    fold = SPLIT.fold("go2")
    refs = shipped_reference_scores("Go2Walk-v0")
    lo, hi = refs.random_score, refs.expert_score
    # 2 seeds x 4 envs x 4 episodes, given as normalised scores and mapped back to returns
    norm = np.array([[[0.0, 0.2, 0.4, 0.6], [0.1, 0.3, 0.5, 0.7], [-0.2, 0.0, 0.2, 0.4], [1.0, 1.0, 1.0, 1.0]],
                     [[0.0, 0.1, 0.2, 0.3], [0.5, 0.5, 0.5, 0.5], [0.2, 0.4, 0.6, 0.8], [0.3, 0.3, 0.6, 0.9]]])
    res = _fake_results(fold, lo + norm * (hi - lo), (0, 1))
    res["robot_split"] = block = robot_split_block(res, fold, as_split=False, bootstrap_reps=500)
    assert np.allclose(block["normalized"], norm)
    # IQM of 8 runs: drop the 2 lowest and the 2 highest, average the middle 4
    assert block["per_episode"]["iqm"][0] == pytest.approx(np.mean([0.0, 0.1, 0.2, 0.3]))
    assert block["zero_shot"]["iqm"] == pytest.approx(np.mean([0.0, 0.1, 0.2, 0.3]))
    finals = norm[:, :, 1:].mean(axis=2).reshape(-1)  # the last 3 of K = 4 episodes
    assert block["final"]["iqm"] == pytest.approx(np.sort(finals)[2:6].mean())
    assert block["auc"]["mean"] == pytest.approx(norm.mean())
    rise = (norm[:, :, 1:].mean(axis=2) - norm[:, :, 0]).reshape(-1)
    assert block["rise"]["iqm"] == pytest.approx(np.sort(rise)[2:6].mean())
    for name in ("zero_shot", "final", "auc", "rise"):
        lo_ci, hi_ci = block[name]["ci95"]
        assert lo_ci <= block[name]["iqm"] <= hi_ci
    assert block["target"]["final_met"] == (block["final"]["iqm"] >= 0.5)
    assert (block["references"]["random"], block["references"]["expert"]) == (lo, hi)
    path = tmp_path / "res.json"
    save_results(res, path)
    assert load_results(path)["robot_split"]["final"]["iqm"] == pytest.approx(block["final"]["iqm"])
    res["robot_split"]["normalized"][0][0][0] = 0.5
    with pytest.raises(ResultsError, match=r"robot_split.normalized' must be \(returns - random\)"):
        save_results(res, tmp_path / "bad.json")


def test_a_run_is_the_split_protocol_only_as_a_cold_start_with_the_folds_settings():
    from go2bench.eval.robot_split_protocol import is_split_protocol

    fold = SPLIT.fold("go2")
    defaults = {"episodes": None, "num_envs": None, "seeds": None, "max_episode_steps": None}
    assert is_split_protocol(fold, defaults)
    assert is_split_protocol(fold, {**defaults, "episodes": fold.episodes, "seeds": tuple(fold.seeds)})
    assert not is_split_protocol(fold, {**defaults, "episodes": fold.episodes + 1})
    assert not is_split_protocol(fold, defaults, warmup_steps=5000)  # a warm-up is no cold start
