"""Leave-one-robot-out on a task family (issue 17): a fold's family training set (the training robots' velocity
histories pooled as one group, named apart from the default-task fold's), the refusals of data that would mix
kinds, families or leak test thetas, the cold-start checks of `go2bench eval --family F --robots-split S --held-out
R`, and (slow: one A1 scene) that evaluation at micro scale through the CLI, read back by the results loader, the
leaderboard and the pooled reader. Synthetic histories of Go2 and Mini Cheetah train; A1 is held out."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from go2bench.agents.vintix_agent import VintixAgent
from go2bench.cli import main
from go2bench.core.config import ConfigError
from go2bench.envs.robot_split import load_robot_split
from go2bench.envs.suites import load_suite
from go2bench.eval.robot_split_protocol import prepare_agent
from go2bench.histories.dataset_config import load_dataset_configs
from go2bench.histories.reader import read_metadata
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.config import TrainConfig
from go2bench.vintix.inference import load_checkpoint
from go2bench.vintix.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPLIT = load_robot_split("robots-v0")
TRAIN = "go2,mini_cheetah"  # a subset of the a1 fold's training robots (the CPU tests have no go1 / anymal_c data)
DATASETS = {  # name: (env, family, theta split); None: the default task
    "go2_velocity": ("Go2Walk-v0", "velocity", "train"), "mc_velocity": ("MiniCheetahWalk-v0", "velocity", "train"),
    "a1_velocity": ("A1Walk-v0", "velocity", "train"), "go2_velocity_test": ("Go2Walk-v0", "velocity", "test"),
    "mc_dynamics": ("MiniCheetahWalk-v0", "dynamics", "train"), "go2_ad": ("Go2Walk-v0", None, None),
    "mc_ad": ("MiniCheetahWalk-v0", None, None), "a1_ad": ("A1Walk-v0", None, None)}


def _config(root, path, names):
    path = root / path
    path.write_text(yaml.safe_dump({n: {"type": "default", "path": n, "group": f"{n}_group", "reward_scale": 50.0}
                                    for n in names}))
    return path


def _robot_split(root, config):
    return CliRunner().invoke(main, ["data", "robot-split", "--held-out", "a1", "--config", str(config),
                                     "--data-dir", str(root), "--train-robots", TRAIN])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("family_folds")
    for i, (name, (env, family, split)) in enumerate(DATASETS.items()):
        write_synthetic_dataset(root, name, n_histories=1, steps=300, env_id=env, episode_len=30, seed=i,
                                family=family, family_split=split or "train")
    return root


# ------------------------------------------------------------------------------ names
def test_family_folds_are_named_apart_from_default_task_folds():
    fold = SPLIT.fold("go2")
    fam = fold.for_family("velocity")
    assert (fold.dataset, fold.group, fold.family) == ("robots-v0_heldout_go2", "quadruped_walking", None)
    assert (fam.dataset, fam.group, fam.family) == ("robots-v0_heldout_go2_velocity", "quadruped_walking_velocity",
                                                    "velocity")
    assert (fam.held_out, fam.env_id, fam.train) == (fold.held_out, fold.env_id, fold.train)
    assert fam.for_family("velocity") is fam
    with pytest.raises(ConfigError, match="already the velocity family's"):
        fam.for_family("dynamics")
    with pytest.raises(ConfigError, match="unknown task family 'robot'"):
        fold.for_family("robot")


# ------------------------------------------------------------------------------ the training set
def test_the_velocity_fold_pools_the_training_robots_velocity_histories(data):
    r = _robot_split(data, _config(data, "velocity.yaml", ["go2_velocity", "mc_velocity", "a1_velocity"]))
    assert r.exit_code == 0, r.output
    assert "group 'quadruped_walking_velocity', 2 velocity family (velocity-v0, train thetas) training" in r.output
    assert "left out: a1_velocity (a1: the held-out robot)" in r.output
    assert "go2bench eval --agent vintix:runs/robots-v0-a1-velocity/final.pt --family velocity --robots-split" in r.output
    config = data / "robots-v0" / "robots-v0_heldout_a1_velocity.yaml"
    (spec,) = load_dataset_configs(config, data)  # read back by the training reader
    assert (spec.name, spec.entry.group) == ("robots-v0_heldout_a1_velocity", "quadruped_walking_velocity")
    meta = read_metadata(spec.dir)
    assert (meta["family"], meta["family_suite"], meta["family_split"]) == ("velocity", "velocity-v0", "train")
    assert (meta["held_out"], meta["group"], meta["robots"]) == ("a1", "quadruped_walking_velocity",
                                                                ["go2", "mini_cheetah"])
    assert [s["dataset"] for s in meta["sources"]] == ["go2_velocity", "mc_velocity"]
    # the default-task fold of the same robot is another folder and group, side by side in one data dir
    r = _robot_split(data, _config(data, "default.yaml", ["go2_ad", "mc_ad", "a1_ad"]))
    assert r.exit_code == 0, r.output
    (default,) = load_dataset_configs(data / "robots-v0" / "robots-v0_heldout_a1.yaml", data)
    assert (default.entry.group, default.dir.name) == ("quadruped_walking", "robots-v0_heldout_a1")
    assert "family" not in read_metadata(default.dir) and read_metadata(spec.dir)["family"] == "velocity"


@pytest.mark.parametrize("names, message", [
    (["go2_velocity_test", "mc_velocity"], "dataset(s) go2_velocity_test (split 'test') do not hold the train thetas "
                                           "only: pooling them would train on thetas the fold is evaluated on"),
    (["go2_velocity", "mc_dynamics"], "the training datasets are of different task families or suites "
                                      "(go2_velocity: velocity/velocity-v0, mc_dynamics: dynamics/dynamics-v1)"),
    (["go2_ad", "mc_velocity"], "the training datasets mix task-family histories (mc_velocity) and default-task ones "
                                "(go2_ad); a fold pools one kind"),
])
def test_data_that_would_mix_or_leak_is_refused_in_one_line(data, names, message):
    r = _robot_split(data, _config(data, "bad.yaml", names))
    assert r.exit_code == 1 and r.output.startswith(f"Error: {message}") and r.output.count("\n") == 1, r.output
    assert not (data / "robots-v0" / "robots-v0_heldout_a1_dynamics").exists()


# ------------------------------------------------------------------------------ the agent checks
def test_a_family_folds_agent_must_be_trained_on_its_family_training_set():
    fold = SPLIT.fold("a1").for_family("velocity")
    default = {"env_id": None, "robot": None, "dataset": "robots-v0_heldout_a1", "num_histories": 4}
    with pytest.raises(ValueError) as e:
        prepare_agent(VintixAgent(SimpleNamespace(groups={"quadruped_walking": default})), fold)
    assert ("has no group 'quadruped_walking_velocity' (it has ['quadruped_walking']); not trained on this velocity "
            "fold's training set: pool the training robots' velocity histories with `go2bench data robot-split "
            "--split robots-v0 --held-out a1 --config") in str(e.value)
    with pytest.raises(ValueError, match=r"group\(s\) \['a1_velocity_group'\] were trained on a1 \(A1Walk-v0\)"):
        prepare_agent(VintixAgent(SimpleNamespace(groups={"a1_velocity_group": {"env_id": "A1Walk-v0"}})), fold)
    pooled = {**default, "dataset": fold.dataset}
    agent = VintixAgent(SimpleNamespace(groups={"quadruped_walking_velocity": pooled}))
    assert prepare_agent(agent, fold)["dataset"] == "robots-v0_heldout_a1_velocity"
    assert agent.pinned_group == "quadruped_walking_velocity"


def _train(data, tmp, config, name):
    train(TrainConfig(data_dir=str(data), dataset_config_paths=[str(config)], out_dir=str(tmp / "runs"), name=name,
                      model="tiny", context_len=32, batch_size=4, trajectory_sparsity=16, epochs=1, max_steps=3,
                      num_workers=0, progress_bar=False, device="cpu"))
    return tmp / "runs" / name / "final.pt"


@pytest.fixture(scope="module")
def checkpoints(data, tmp_path_factory):
    """Tiny Vintix models: the velocity fold's, the default-task fold's, and one trained on A1 itself."""
    tmp = tmp_path_factory.mktemp("ckpts")
    folds = {"velocity": ["go2_velocity", "mc_velocity"], "default": ["go2_ad", "mc_ad"]}
    for kind, names in folds.items():
        assert _robot_split(data, _config(data, f"{kind}_fold.yaml", names)).exit_code == 0
    return {"fold": _train(data, tmp, data / "robots-v0" / "robots-v0_heldout_a1_velocity.yaml", "fold"),
            "default": _train(data, tmp, data / "robots-v0" / "robots-v0_heldout_a1.yaml", "default"),
            "a1": _train(data, tmp, _config(data, "a1.yaml", ["a1_velocity"]), "a1")}


def _eval(*args):
    return CliRunner().invoke(main, ["eval", "--family", "velocity", "--robots-split", "robots-v0", "--held-out", "a1",
                                     "--trials", "2", "--episodes", "2", "--seeds", "0", "--max-episode-steps", "20",
                                     "--no-progress", *args])


def test_cold_start_checks_refuse_before_any_scene(checkpoints):
    r = _eval("--agent", f"vintix:{checkpoints['a1']}", "--agent", "random")
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "group(s) ['a1_velocity_group'] were trained on a1 (A1Walk-v0), the held-out robot" in r.output
    r = _eval("--agent", f"vintix:{checkpoints['default']}")
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "has no group 'quadruped_walking_velocity' (it has ['quadruped_walking'])" in r.output
    assert "pool the training robots' velocity histories with `go2bench data robot-split" in r.output
    assert list(load_checkpoint(checkpoints["fold"])["groups"]) == ["quadruped_walking_velocity"]


@pytest.mark.parametrize("args, message", [
    (["--num-envs", "3"], "--num-envs do not go with --family"),
    (["--random-score", "0", "--expert-score", "1"], "--random-score, --expert-score do not go with --family"),
    (["--env", "Go2Walk-v0"], "--env Go2Walk-v0 is not the env of the held-out robot a1 (A1Walk-v0)"),
])
def test_options_that_make_no_sense_here_are_one_line_errors(args, message):
    r = _eval("--agent", "random", *args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output


# ------------------------------------------------------------------------------ the evaluation (one A1 scene)
@pytest.mark.slow
def test_a_velocity_fold_is_evaluated_on_the_held_out_robots_test_thetas(checkpoints, tmp_path):
    from go2bench.eval import family_reference as fr
    from go2bench.eval.leaderboard import make_leaderboard
    from go2bench.eval.pooled import trial_scores
    from go2bench.eval.results import ResultsError, load_results, save_results

    tests = load_suite("velocity", "a1").test[:2]
    refs = {t.id: {"random": -1.0 - i, "privileged": 2.0 + i} for i, t in enumerate(tests)}
    ref_file = tmp_path / "refs.json"
    ref_file.write_text(json.dumps({"format": fr.REFERENCE_FORMAT, "max_episode_steps": 20, "returns": refs}))
    ckpt = checkpoints["fold"]
    out = tmp_path / "eval"
    r = _eval("--agent", f"vintix:{ckpt}", "--agent", f"vintix-nocontext:{ckpt}", "--agent", "random",
              "--references", str(ref_file), "--no-measure-references", "--reference-cache", str(tmp_path / "cache"),
              "--bootstrap-reps", "200", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "robots-v0 held out a1 (A1Walk-v0), velocity fold trained on go2, mini_cheetah, go1, anymal_c; agent " \
           "pinned to group 'quadruped_walking_velocity'" in r.output
    files = [p for p in sorted(out.glob("*.json")) if p.name != "index.json"]
    by_agent = {load_results(p)["agent"]: load_results(p) for p in files}
    assert set(by_agent) == {"vintix", "vintix-nocontext", "random"}
    for name, res in by_agent.items():
        fam, rs = res["family"], res["robot_split"]
        assert (res["env"], fam["robot"], fam["name"], fam["split"]) == ("A1Walk-v0", "a1", "velocity", "test")
        assert [t["id"] for t in fam["tasks"]] == [t.id for t in tests] and fam["episodes"] == 2
        assert (res["config"]["robots_split"], res["config"]["held_out"]) == ("robots-v0", "a1")
        assert {k: rs[k] for k in ("split", "held_out", "env", "group", "dataset", "family")} == {
            "split": "robots-v0", "held_out": "a1", "env": "A1Walk-v0", "group": "quadruped_walking_velocity",
            "dataset": "robots-v0_heldout_a1_velocity", "family": "velocity"}
        assert "a1" not in rs["train_robots"]
        for t in fam["trials"]:  # normalised by A1's references of its theta
            lo, hi = refs[t["task_id"]]["random"], refs[t["task_id"]]["privileged"]
            assert t["normalized"] == pytest.approx([(x - lo) / (hi - lo) for x in t["returns"]])
        assert len(trial_scores(res)["normalized"][0]) == 2  # the pooled reader reads it
    assert by_agent["vintix"]["robot_split"]["agent_group"] == {
        "name": "quadruped_walking_velocity", "dataset": "robots-v0_heldout_a1_velocity", "num_histories": 2}
    assert by_agent["random"]["robot_split"]["agent_group"] is None
    made = make_leaderboard(files, tmp_path / "lb")
    assert "## velocity family, A1Walk-v0" in made["markdown"]
    assert "random [held-out robot, robots-v0]" in made["markdown"]
    bad = dict(by_agent["vintix"])
    bad["robot_split"] = {**bad["robot_split"], "dataset": "robots-v0_heldout_a1"}  # a default-task fold's
    with pytest.raises(ResultsError, match="robot_split.dataset' must be the velocity fold's training set"):
        save_results(bad, tmp_path / "bad.json")


# ------------------------------------------------------------------------------ results readers (no simulation)
def test_fold_results_are_read_back_labelled_and_never_pooled_with_plain_runs(tmp_path):
    """A family results file (the real builder, Go2 velocity) marked as the go2 velocity fold's: validated on load,
    labelled on the leaderboard, and refused by the pooled reader beside the same agent's plain family run."""
    from test_pooled_leaderboard import family_file

    from go2bench.eval.family_leaderboard import family_rows, pools_by_agent
    from go2bench.eval.leaderboard import load_result
    from go2bench.eval.pooled import PoolError, pool_runs
    from go2bench.eval.results import ResultsError, save_results
    from go2bench.eval.robot_split_results import add_family_fold_record

    N = [[[0.1, 0.5], [0.2, 0.6]], [[0.3, 0.7], [0.0, 0.4]]]
    plain = load_result(family_file(tmp_path / "plain", "vintix:runs/a/final.pt", N))
    res = load_result(family_file(tmp_path / "fold", "vintix:runs/b/final.pt", N))
    fold = SPLIT.fold("go2").for_family("velocity")
    with pytest.raises(ValueError, match="not of the dynamics fold"):
        add_family_fold_record(dict(res), SPLIT.fold("go2").for_family("dynamics"))
    add_family_fold_record(res, fold, {"name": fold.group, "dataset": fold.dataset, "num_histories": 8})
    save_results({k: v for k, v in res.items() if k != "_path"}, tmp_path / "fold.json")
    back = load_result(tmp_path / "fold.json")
    assert back["robot_split"]["dataset"] == "robots-v0_heldout_go2_velocity" and back["config"]["held_out"] == "go2"
    rows = family_rows([plain, back])
    assert sorted(r["agent"] for r in rows) == ["vintix:runs/a/final.pt",
                                                "vintix:runs/b/final.pt [held-out robot, robots-v0]"]
    assert [name for name, _ in pools_by_agent([plain, back])] == []  # one run of each: nothing pooled together
    with pytest.raises(PoolError, match=r"in robot_split \(a held-out robot's fold\)"):
        pool_runs([plain, back], "mixed")
    for field, value, message in (("family", "dynamics", "robot_split.family' must be family.name"),
                                  ("dataset", "robots-v0_heldout_go2", "must be the velocity fold's training set")):
        bad = {**back, "robot_split": {**back["robot_split"], field: value}}
        with pytest.raises(ResultsError, match=message):
            save_results(bad, tmp_path / "bad.json")
