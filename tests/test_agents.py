"""Issue 4: the SB3 VecEnv adapter, PPO teacher training, teacher loading, random agent, evaluation.

One small Go2 scene (8 envs, 20-step episodes) is built per module and shared; tests reset it.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gymnasium import spaces

from go2bench.eval.protocol import evaluate_in_context
from go2bench.eval.stats import normalized_score
from go2bench.teachers.ppo import PPOConfig, latest_checkpoint, train_teacher
from go2bench.teachers.sb3_vec_env import WalkSB3VecEnv
from go2bench.envs.walk_sim import make_walk_sim
from go2bench.agents.random import RandomAgent
from go2bench.agents.teacher import TeacherAgent, export_teacher, load_teacher, zoo_path
from go2bench.envs.robots import GO2

N, T = 8, 20  # envs, steps per episode


@pytest.fixture(scope="module")
def venv():
    env = WalkSB3VecEnv("Go2Walk-v0", num_envs=N, backend="cpu", seed=0, max_episode_steps=T)
    yield env
    env.close()


def zeros():
    return np.zeros((N, 12), dtype=np.float32)


def tilt(venv, envs: list[int], angle: float = 0.5) -> None:
    """Roll the bases of ``envs`` by ``angle`` rad (beyond the 10 degree termination limit)."""
    q = torch.tensor([[math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0]]).repeat(len(envs), 1)
    venv.sim.robot.set_quat(q, envs_idx=torch.tensor(envs))


# ---------------------------------------------------------------------------------- adapter
def test_reset_step_shapes_and_dtypes(venv):
    obs = venv.reset()
    assert obs.shape == (N, 33) and obs.dtype == np.float32
    obs, rew, done, infos = venv.step(zeros())
    assert obs.shape == (N, 33) and obs.dtype == np.float32 and obs.flags.c_contiguous
    assert rew.shape == (N,) and rew.dtype == np.float32
    assert done.shape == (N,) and done.dtype == np.bool_
    assert isinstance(infos, list) and len(infos) == N and all(isinstance(i, dict) for i in infos)
    assert len({id(i) for i in infos}) == N  # distinct dicts, safe to mutate
    assert not done.any()


def test_env_checker_style_checks(venv):
    from stable_baselines3.common.env_checker import _check_obs, _check_spaces, _check_unsupported_spaces
    from stable_baselines3.common.vec_env import VecCheckNan

    _check_spaces(venv)
    assert venv.observation_space == spaces.Box(-np.inf, np.inf, (33,), np.float32)
    low, high = GO2.action_bounds()  # the joint limits in action units, float32
    assert venv.action_space == spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not _check_unsupported_spaces(venv, venv.observation_space, venv.action_space)
    checked = VecCheckNan(venv, raise_exception=True)
    obs = checked.reset()
    for row in obs:
        _check_obs(row, venv.observation_space, "reset")
        assert venv.observation_space.contains(row)
    rng = np.random.default_rng(0)
    for _ in range(2 * T):  # crosses resets
        obs, rew, done, infos = checked.step(rng.uniform(-1, 1, (N, 12)).astype(np.float32))
        for row in obs:
            _check_obs(row, venv.observation_space, "step")
        for i in np.flatnonzero(done):
            assert venv.observation_space.contains(infos[i]["terminal_observation"])


def test_truncation_reports_timelimit_and_terminal_observation(venv):
    venv.reset()
    rewards = np.zeros(N)
    for t in range(T):
        obs, rew, done, infos = venv.step(zeros())
        rewards += rew
        if t < T - 1:
            assert not done.any()
    assert done.all()  # zero actions stand: every env hits the time limit
    for i in range(N):
        info = infos[i]
        assert info["TimeLimit.truncated"] is True
        term = info["terminal_observation"]
        assert term.shape == (33,) and term.dtype == np.float32
        assert not np.allclose(term, obs[i])  # the returned obs is the new episode's first
        assert info["episode"]["l"] == T
        assert info["episode"]["r"] == pytest.approx(rewards[i], abs=1e-4)
    assert (venv.sim.episode_step == 0).all()
    np.testing.assert_allclose(obs, venv.sim.observe().numpy(), atol=1e-6)


def test_terminated_envs_are_not_truncated(venv):
    venv.reset()
    venv.step(zeros())
    tilt(venv, [0])
    _, _, done, infos = venv.step(zeros())
    assert done[0] and not done[1:].any()
    assert infos[0]["TimeLimit.truncated"] is False and "terminal_observation" in infos[0]
    assert infos[0]["episode"]["l"] == 2
    # Falling on the time-limit step is a termination, not a truncation.
    for _ in range(T - 3):
        assert not venv.step(zeros())[2][1:].any()
    tilt(venv, [3])
    _, _, done, infos = venv.step(zeros())
    assert done[1:].all()
    assert infos[3]["TimeLimit.truncated"] is False
    assert all(infos[i]["TimeLimit.truncated"] for i in range(1, N) if i != 3)


def test_attributes_methods_and_seeding(venv):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import VecNormalize

    assert venv.get_attr("render_mode") == [None] * N
    assert venv.get_attr("max_episode_steps", [0, 1]) == [T, T]
    rows = venv.get_attr("commands", [2, 5])
    assert len(rows) == 2 and rows[0].shape == (3,)
    with pytest.raises(ValueError, match="shared"):
        venv.set_attr("max_episode_steps", 5, indices=[0])
    assert len(venv.env_method("observe", indices=[1, 2])) == 2
    assert venv.env_is_wrapped(Monitor) == [True] * N  # episode stats are Monitor's
    assert venv.env_is_wrapped(VecNormalize) == [False] * N
    assert venv.has_attr("sim")

    def run(seed):
        venv.seed(seed)
        venv.reset()
        rng = np.random.default_rng(1)
        return np.stack([venv.step(rng.uniform(-1, 1, (N, 12)).astype(np.float32))[0] for _ in range(5)])

    np.testing.assert_array_equal(run(3), run(3))
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((N, 11), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        venv.step(np.full((N, 12), np.nan, np.float32))


def test_other_robot_and_obs_mode():
    sim = make_walk_sim("MiniCheetahWalk-v0", num_envs=2, obs_mode="full", max_episode_steps=5)
    env = WalkSB3VecEnv("MiniCheetahWalk-v0", sim=sim, seed=1)
    assert env.observation_space.shape == (45,) and env.reset().shape == (2, 45)
    assert env.robot_description.name == "mini_cheetah"
    env.close()
    sim.close()


# ---------------------------------------------------------------------------------- PPO
@pytest.fixture(scope="module")
def trained(venv, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    steps = 2 * N * 24  # two PPO iterations
    model, card = train_teacher(
        "Go2Walk-v0", total_steps=steps, device="cpu", out=out, seed=0, venv=venv,
        checkpoint_every=N * 24, eval_episodes=N, progress_bar=False, verbose=0,
    )
    return out, model, card


@pytest.mark.slow  # trains PPO
def test_ppo_trains_saves_and_reloads_identically(venv, trained):
    out, model, card = trained
    assert (out / "final.zip").exists() and (out / "model_card.json").exists()
    assert list((out / "tb").iterdir())  # TensorBoard events
    assert json.loads((out / "model_card.json").read_text()) == card
    for key in ("env_id", "obs_mode", "training_steps", "wall_time_s", "hardware", "versions", "seed", "ppo"):
        assert key in card
    assert card["env_id"] == "Go2Walk-v0" and card["obs_mode"] == "noleak" and card["training_steps"] == 2 * N * 24
    assert card["ppo"]["batch_size"] == N * 24 // 4 and card["ppo"]["net_arch"] == [512, 256, 128]
    assert card["evaluated_episodes"] == N and card["random_score"] is not None and card["expert_score"] is not None
    assert 1e-5 <= card["final_learning_rate"] <= 1e-2
    for versions in ("torch", "stable_baselines3", "genesis-world"):
        assert card["versions"][versions] != "missing"

    obs = np.random.default_rng(0).normal(size=(N, 33)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    agent = load_teacher(out, device="cpu")
    assert agent.model_card["env_id"] == "Go2Walk-v0"
    actions = agent.act(obs)
    assert actions.shape == (N, 12) and actions.dtype == np.float32
    np.testing.assert_array_equal(actions, expected)
    np.testing.assert_array_equal(agent.act(torch.from_numpy(obs)), expected)
    np.testing.assert_array_equal(load_teacher(out / "final.zip").act(obs), expected)

    shipped = export_teacher(out, out / "zoo" / "Go2Walk-v0")
    assert shipped.name == "policy.pt" and shipped.stat().st_size < (out / "final.zip").stat().st_size / 2
    torch.load(shipped, weights_only=True)  # tensors only
    exported = load_teacher(shipped.parent)
    np.testing.assert_array_equal(exported.act(obs), expected)
    assert exported.model_card["expert_score"] == card["expert_score"]


@pytest.mark.slow  # trains PPO
def test_ppo_resume_continues_from_latest_checkpoint(venv, trained):
    out, _, _ = trained
    ckpt = latest_checkpoint(out)
    assert ckpt is not None and ckpt.name == f"ppo_{2 * N * 24}_steps.zip"
    _, card = train_teacher(
        "Go2Walk-v0", total_steps=3 * N * 24, device="cpu", out=out, venv=venv, resume=True,
        checkpoint_every=N * 24, eval_episodes=0, progress_bar=False, verbose=0,
    )
    assert card["resumed_from"] == str(ckpt) and card["training_steps"] == 3 * N * 24
    assert latest_checkpoint(out).name == f"ppo_{3 * N * 24}_steps.zip"
    with pytest.raises(ValueError, match=r"--resume with settings that differ .*n_epochs: 5 -> 2"):
        train_teacher("Go2Walk-v0", total_steps=4 * N * 24, device="cpu", out=out, venv=venv, resume=True,
                      ppo=PPOConfig(n_epochs=2), eval_episodes=0, progress_bar=False, verbose=0)


@pytest.mark.slow  # trains PPO
def test_a_checkpoint_with_a_pickle_payload_never_runs_its_code(trained, tmp_path):
    """A zip whose data entry carries cloudpickle code: refused without a card, tensors only with one."""
    import base64
    import pickle
    import shutil
    import zipfile

    out, _, _ = trained
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil" / "final.zip"
    evil.parent.mkdir()
    with zipfile.ZipFile(out / "final.zip") as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "data":
                d = json.loads(data)
                d["policy_class"] = {":type:": "x", ":serialized:": base64.b64encode(pickle.dumps(Payload())).decode()}
                data = json.dumps(d).encode()
            dst.writestr(item, data)
    from go2bench.agents.sb3_checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no model_card.json beside it.*--trust-checkpoint"):
        load_teacher(evil)
    assert not marker.exists()
    shutil.copy(out / "model_card.json", evil.parent / "model_card.json")
    obs = np.random.default_rng(1).normal(size=(4, 33)).astype(np.float32)
    np.testing.assert_array_equal(load_teacher(evil).act(obs), load_teacher(out / "final.zip").act(obs))
    assert not marker.exists()


def test_adapter_works_with_another_sb3_algorithm(venv):
    from stable_baselines3 import A2C

    model = A2C("MlpPolicy", venv, n_steps=5, device="cpu", seed=0, policy_kwargs=dict(net_arch=[16]))
    model.learn(total_timesteps=4 * 5 * N)
    assert model.num_timesteps == 4 * 5 * N


def test_ppo_config_defaults_match_the_recipe():
    cfg = PPOConfig()
    assert (cfg.n_steps, cfg.n_epochs, cfg.learning_rate, cfg.clip_range, cfg.ent_coef) == (24, 5, 1e-3, 0.2, 0.01)
    assert (cfg.gamma, cfg.gae_lambda, cfg.log_std_init, cfg.activation) == (0.99, 0.95, 0.0, "elu")
    assert cfg.resolved_batch_size(4096) == 24576


# ---------------------------------------------------------------------------------- agents and evaluation
def test_random_agent_is_seeded():
    obs = np.zeros((5, 33), np.float32)
    a, b, c = RandomAgent(seed=7), RandomAgent(seed=7), RandomAgent(seed=8)
    x = a.act(obs)
    assert x.shape == (5, 12) and x.dtype == np.float32 and np.abs(x).max() <= 1.0
    np.testing.assert_array_equal(x, b.act(torch.from_numpy(obs)))
    assert not np.array_equal(x, c.act(obs))
    a.reset()
    np.testing.assert_array_equal(a.act(obs), x)


def test_missing_zoo_teacher_is_a_clear_error(tmp_path, monkeypatch):
    import go2bench.envs.registry as registry_module

    monkeypatch.setattr(registry_module, "ZOO_DIR", tmp_path / "zoo")
    with pytest.raises(FileNotFoundError, match="go2bench teach") as e:
        load_teacher("Go2Walk-v0")
    assert str(zoo_path("Go2Walk-v0") / "policy.pt") in str(e.value)
    with pytest.raises(FileNotFoundError):
        load_teacher("/nonexistent/checkpoint.zip")


def test_normalized_score_arithmetic():
    assert normalized_score(10.0, 2.0, 22.0) == pytest.approx(0.4)
    assert normalized_score(-1.0, 1.0, 21.0) == pytest.approx(-0.1)
    assert normalized_score(5.0, None, 21.0) is None
    with pytest.raises(ValueError):
        normalized_score(5.0, 1.0, 1.0)


def test_evaluate_random_agent(venv):
    K = 2
    res = evaluate_in_context(RandomAgent(0), "Go2Walk-v0", episodes=K, seeds=[4], sim=venv.sim, progress=False,
                              random_score=0.5, expert_score=2.5)
    assert res["episodes"] == N * K and len(res["returns"]) == len(res["lengths"]) == N * K
    (seed,) = res["per_seed"]
    assert np.array(seed["returns"]).shape == np.array(seed["falls"]).shape == (N, K)  # K episodes per env
    assert all(1 <= length <= T for length in res["lengths"])
    assert res["mean_return"] == pytest.approx(np.mean(res["returns"]))
    assert res["normalized_score"] == pytest.approx((res["mean_return"] - 0.5) / 2.0)
    assert res["fall_rate"] == pytest.approx(np.mean(seed["falls"]))
    assert 0.0 <= res["mean_tracking_error"] < 5.0
    again = evaluate_in_context(RandomAgent(0), "Go2Walk-v0", episodes=K, seeds=[4], sim=venv.sim, progress=False)
    assert again["returns"] == res["returns"]
    venv.reset()


def test_teacher_agent_obs_dim_mismatch_is_an_error(venv, trained):
    _, model, _ = trained
    agent = TeacherAgent(model.policy)
    with pytest.raises(ValueError, match="obs"):
        agent.act(np.zeros((2, 45), np.float32))


def test_cli_eval_writes_json(trained, tmp_path, monkeypatch):
    from go2bench.cli import main

    out, _, _ = trained
    path = tmp_path / "results.json"
    r = CliRunner().invoke(main, ["eval", "--agent", f"teacher:{out}", "--env", "Go2Walk-v0", "--episodes", "2",
                                  "--num-envs", "2", "--seeds", "1", "--max-episode-steps", "30",
                                  "--out", str(path)])
    assert r.exit_code == 0, r.output
    res = json.loads(path.read_text())
    for key in ("agent", "env", "returns", "lengths", "mean_return", "normalized_score", "config", "versions"):
        assert key in res
    # --episodes is per env: 2 envs x 2 episodes
    assert res["env"] == "Go2Walk-v0" and len(res["returns"]) == 4 and res["config"]["num_envs"] == 2
    assert res["agent"] == "teacher" and res["config"]["seeds"] == [1]
    assert res["max_episode_steps"] == 30 and max(res["lengths"]) <= 30
    import go2bench.envs.registry as registry_module

    monkeypatch.setattr(registry_module, "ZOO_DIR", tmp_path / "zoo")  # no shipped teacher: a clear error
    r = CliRunner().invoke(main, ["eval", "--agent", "teacher", "--env", "MiniCheetahWalk-v0"])
    assert r.exit_code != 0 and "go2bench teach" in r.output


# ---------------------------------------------------------------------------------- task-family teachers
VEL_BLOCK = slice(33, 36)  # the privileged "task" block of a velocity Go2 observation (3 dims)


@pytest.fixture(scope="module")
def priv_venv():
    env = WalkSB3VecEnv("Go2Walk-v0", num_envs=N, backend="cpu", seed=0, max_episode_steps=T, family="velocity",
                        privileged=True, tasks="train", resample_tasks="episode")
    yield env
    env.close()


@pytest.fixture(scope="module")
def priv_trained(priv_venv, tmp_path_factory):
    out = tmp_path_factory.mktemp("privileged")
    model, card = train_teacher(
        total_steps=2 * N * 24, device="cpu", out=out, seed=0, venv=priv_venv, checkpoint_every=N * 24,
        progress_bar=False, verbose=0, task_eval_episodes=1, task_eval_train=2,
    )
    return out, model, card


@pytest.fixture(scope="module")
def blind_trained(tmp_path_factory):
    """The blind teacher, through the CLI (its own scene: a velocity family without the task block)."""
    from go2bench.cli import main

    out = tmp_path_factory.mktemp("blind")
    r = CliRunner().invoke(main, [
        "teach", "--env", "Go2Walk-v0", "--family", "velocity", "--tasks", "train", "--num-envs", str(N),
        "--max-episode-steps", str(T), "--total-steps", str(N * 24), "--checkpoint-every", str(N * 24),
        "--device", "cpu", "--out", str(out), "--task-eval-episodes", "1", "--task-eval-train", "0",
        "--quiet", "--no-progress-bar"])
    assert r.exit_code == 0, r.output
    return out, json.loads((out / "model_card.json").read_text()), r.output


def test_privileged_obs_has_the_task_block_and_a_train_theta_per_episode(priv_venv):
    sim = priv_venv.sim
    obs = priv_venv.reset()
    assert obs.shape == (N, 36) and priv_venv.observation_space.shape == (36,)
    np.testing.assert_allclose(obs[:, VEL_BLOCK], sim.tasks.normalised.numpy(), atol=1e-6)
    assert np.abs(obs[:, VEL_BLOCK]).max() <= 1.0 and (obs[:, 6:9] == 0).all()  # command slots hidden
    first = list(sim.tasks.ids)
    assert all(i.startswith("velocity-v0/train/") for i in first)
    theta_before = obs[:, VEL_BLOCK].copy()
    for _ in range(T):
        obs, _, done, infos = priv_venv.step(zeros())
    assert done.all()  # every env starts a new episode with a new train theta
    second = list(sim.tasks.ids)
    assert all(i.startswith("velocity-v0/train/") for i in second) and second != first
    np.testing.assert_allclose(obs[:, VEL_BLOCK], sim.tasks.normalised.numpy(), atol=1e-6)
    for i in range(N):  # the terminal observation still carries the finished episode's theta
        np.testing.assert_allclose(infos[i]["terminal_observation"][VEL_BLOCK], theta_before[i], atol=1e-6)


def test_privileged_teacher_card_caches_per_theta_returns(priv_venv, priv_trained):
    from go2bench.envs.suites import load_suite

    out, _, card = priv_trained
    assert json.loads((out / "model_card.json").read_text()) == card
    assert card["family"] == "velocity" and card["privileged"] is True and card["obs_dim"] == 36
    assert card["obs_layout"][-1] == ["task", 3] and [n for n, _ in card["obs_layout"]][2] == "commands"
    assert card["suite"]["name"] == "velocity-v0" and len(card["suite"]["sha256"]) == 64
    assert card["theta_layout"]["names"] == ["lin_vel_x", "lin_vel_y", "ang_vel_yaw"]
    assert card["training_tasks"] == "train" and card["resample_tasks"] == "episode"
    assert card["training_steps"] == 2 * N * 24 and card["final_training_return"] is not None
    suite = load_suite("velocity", "go2")
    test_ids = {t.id for t in suite.test}
    train_ids = {suite.train[0].id, suite.train[-1].id}  # 2 train thetas: both ends of the split
    for agent in ("teacher", "random"):
        returns = card["per_task_returns"][agent]
        assert set(returns) == test_ids | train_ids and len(test_ids) == 32
        assert all(math.isfinite(r) for r in returns.values())
        assert set(card["per_task_fall_rate"][agent]) == set(returns)
    assert card["per_task_returns"]["teacher"] != card["per_task_returns"]["random"]
    ev = card["per_task_eval"]
    assert ev["splits"] == {"test": 32, "train": 2} and ev["episodes_per_task_min"] >= 1
    assert ev["max_episode_steps"] == T and ev["rounds"] == math.ceil(2 * 34 / N)
    test = card["family_scores"]["test"]
    assert test["tasks"] == 32 and set(test["by_bin"]) >= {"interpolation", "extrapolation:lin_vel_x"}
    mean_test = np.mean([card["per_task_returns"]["teacher"][i] for i in test_ids])
    assert card["expert_score"] == pytest.approx(test["teacher_mean_return"]) == pytest.approx(mean_test, abs=1e-3)
    assert card["random_score"] == pytest.approx(test["random_mean_return"])
    # training's thetas are back on the adapter: train split, drawn per episode
    assert priv_venv.sim.tasks.resample == "episode" and priv_venv.sim.tasks.pool is not None
    assert json.loads((out / "ppo_config.json").read_text())["task"] == {
        "family": "velocity", "privileged": True, "tasks": "train", "resample_tasks": "episode"}


def test_privileged_teacher_reloads_from_the_zoo_layout_and_acts_identically(priv_venv, priv_trained, tmp_path,
                                                                             monkeypatch):
    import go2bench.envs.registry as registry_module
    from go2bench.agents.registry import make_agent
    from go2bench.agents.sb3_checkpoint import CheckpointError

    out, model, card = priv_trained
    shipped = export_teacher(out, zoo_root=tmp_path / "zoo")
    assert shipped == tmp_path / "zoo" / "Go2Walk-v0" / "velocity" / "privileged" / "policy.pt"
    assert set(torch.load(shipped, weights_only=True)) and (shipped.parent / "model_card.json").exists()
    monkeypatch.setattr(registry_module, "ZOO_DIR", tmp_path / "zoo")
    agent = load_teacher("Go2Walk-v0", family="velocity", privileged=True)
    assert agent.source == str(shipped) and agent.model_card["per_task_returns"] == card["per_task_returns"]
    assert (agent.privileged_family, agent.family, agent.obs_dim, agent.task_dim) == ("velocity", "velocity", 36, 3)
    obs = priv_venv.reset()
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(agent.act(obs), expected)
    with pytest.raises(ValueError, match="privileged=True"):
        agent.act(obs[:, :33])  # the blind observation: the error says which env it needs
    agent.use_task_source(lambda: priv_venv.sim.tasks.normalised)  # theta from the sim, not the observation
    assert agent.obs_dim == 33
    np.testing.assert_array_equal(agent.act(obs[:, :33]), expected)
    agent.use_task_source(None)
    # the evaluator's loop runs it on the privileged simulation (obs-dim check included)
    from go2bench.eval.protocol import run_episodes

    assert len(run_episodes(agent, "Go2Walk-v0", priv_venv.sim, np.ones(N, np.int64), seed=3)["records"]) == N
    priv_venv.reset()
    # registry: teacher-privileged takes the family from the evaluation
    reg = make_agent("teacher-privileged", "Go2Walk-v0", family="velocity")
    np.testing.assert_array_equal(reg.act(obs), expected)
    assert reg.name == "teacher" and reg.spec == "teacher-privileged"
    np.testing.assert_array_equal(make_agent(f"teacher-privileged:{out}", "Go2Walk-v0").act(obs), expected)
    with pytest.raises(ValueError, match="needs|evaluate with a family"):
        make_agent("teacher-privileged", "Go2Walk-v0")
    with pytest.raises(FileNotFoundError, match="go2bench teach --env Go2Walk-v0 --family velocity --out"):
        make_agent("teacher-blind", "Go2Walk-v0", family="velocity")  # not exported here
    with pytest.raises(CheckpointError, match="a privileged teacher, not a blind one"):
        make_agent(f"teacher-blind:{out}", "Go2Walk-v0", family="velocity")
    with pytest.raises(ValueError, match="'velocity' family, not 'dynamics'"):
        make_agent(f"teacher:{out}", "Go2Walk-v0", family="dynamics")
    with pytest.raises(CheckpointError, match="not of the 'dynamics' family"):
        load_teacher(shipped.parent, family="dynamics")
    with pytest.raises(ValueError, match="privileged=True or False"):
        load_teacher("Go2Walk-v0", family="velocity")


def test_blind_teacher_has_no_task_block(blind_trained, priv_trained, tmp_path):
    from go2bench.teachers.task_eval import compare_teachers

    out, card, output = blind_trained
    assert card["family"] == "velocity" and card["privileged"] is False and card["obs_dim"] == 33
    assert "task" not in [name for name, _ in card["obs_layout"]]
    assert card["theta_layout"]["privileged_block"] is None
    assert len(card["per_task_returns"]["teacher"]) == 32 and card["per_task_eval"]["splits"] == {"test": 32}
    assert "velocity blind" in output and "test thetas (32)" in output
    shipped = export_teacher(out, zoo_root=tmp_path / "zoo")
    assert shipped == tmp_path / "zoo" / "Go2Walk-v0" / "velocity" / "blind" / "policy.pt"
    agent = load_teacher(shipped.parent, family="velocity", privileged=False)
    assert agent.privileged_family is None and agent.obs_dim == 33
    with pytest.raises(ValueError, match="only a privileged teacher"):
        agent.use_task_source(lambda: None)
    # per-theta normalisation of the blind teacher by the privileged card's references, by hand
    priv = priv_trained[2]
    cmp = compare_teachers(priv, card)
    ref, rnd, blind = (priv["per_task_returns"]["teacher"], priv["per_task_returns"]["random"],
                       card["per_task_returns"]["teacher"])
    ids = sorted(card["per_task_returns"]["teacher"])
    by_hand = {i: (blind[i] - rnd[i]) / (ref[i] - rnd[i]) for i in ids}
    assert cmp["tasks"] + len(cmp["skipped"]) == 32
    for i, score in cmp["per_task"].items():
        assert score == pytest.approx(by_hand[i], abs=1e-3)
    x = np.sort(list(cmp["per_task"].values()))
    q = len(x) // 4
    assert cmp["blind_normalised_iqm"] == pytest.approx(x[q:len(x) - q].mean(), abs=1e-3)
    assert cmp["gap"] == pytest.approx(1 - x.mean(), abs=1e-3)
    with pytest.raises(ValueError, match="privileged teacher's card first"):
        compare_teachers(card, priv)
    # the device script's summary table reads the zoo layout
    from go2bench.teachers.task_eval import family_teachers_table

    export_teacher(priv_trained[0], zoo_root=tmp_path / "zoo")
    # a family-trained Vintix beside the teachers (the zoo's layout) is not a teacher: no row for it
    vintix_card = next((tmp_path / "zoo").glob("*/*/privileged/model_card.json")).parent.parent / "vintix"
    vintix_card.mkdir()
    (vintix_card / "model_card.json").write_text(json.dumps({"env_id": card["env_id"], "family": card["family"]}))
    rows = family_teachers_table(tmp_path / "zoo").splitlines()
    assert len(rows) == 4 and "| blind |" in rows[2] and "| privileged |" in rows[3]
    assert f"| {cmp['gap']:.2f} |" in rows[2] and "1.00 (by definition)" in rows[3]


def test_task_eval_slots_and_subsamples():
    from go2bench.teachers.task_eval import _rounds, train_subsample

    assert _rounds(3, 8) == [[0, 1, 2, 0, 1, 2, 0, 1]]
    assert _rounds(5, 3) == [[0, 1, 2], [3, 4, 3]]
    assert train_subsample(128, None) == list(range(128)) and train_subsample(128, 0) == []
    assert train_subsample(128, 3) == [0, 64, 127] and train_subsample(4, 10) == [0, 1, 2, 3]


def test_stop_at_in_the_past_learns_nothing_and_cli_choices_match_the_families(venv, tmp_path):
    import time

    from go2bench.cli.teach import FAMILY_CHOICES
    from go2bench.envs.families import FAMILIES

    assert sorted(FAMILY_CHOICES) == sorted(FAMILIES)
    _, card = train_teacher(total_steps=N * 24, device="cpu", out=tmp_path, venv=venv, eval_episodes=0,
                            stop_at=time.time() - 1, progress_bar=False, verbose=0)
    assert card["training_steps"] == 0 and card["final_training_return"] is None and card["family"] is None
    assert card["privileged"] is False and (tmp_path / "final.zip").exists()
