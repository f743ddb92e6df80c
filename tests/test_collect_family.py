"""Collection in a task family: one theta per history, privileged teacher, demonstrator actions.

One micro collection in the velocity family (3 Go2 histories x 400 steps, 50-step episodes) by a
stand-in privileged teacher (the shipped teacher with extra theta inputs,
:func:`go2bench.testing.write_privileged_teacher`) is made once per module through the CLI, and
checked: the theta recorded per history is the suite's and is what the simulation used for the
whole history (a replay of its first and last episodes recomputes rewards and observations), the
rows hold the agent's observation (no theta block, zero command slots), ``demonstrator_action``
is the privileged teacher's action on obs + theta and ``action`` exactly its blend with the noise,
resume is bitwise exact, and `data check` passes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.collect.collector import collect
from go2bench.collect.config import CollectConfig, dataset_collect_configs
from go2bench.collect.noise import history_seed, uniform_noise
from go2bench.collect.schedule import blend_actions
from go2bench.envs.robots import GO2

pytestmark = pytest.mark.slow  # builds its own Genesis scenes; the fast lane skips it

KEYS = ("proprio_observation", "action", "reward", "step_num", "demonstrator_action")


def _read(path):
    """Independent reader: every group's datasets concatenated in step order."""
    with h5py.File(path, "r") as f:
        names = sorted(f.keys(), key=lambda k: int(k.split("-")[0]))
        out = {k: np.concatenate([f[n][k][()] for n in names]) for k in KEYS}
        out["groups"] = names
    return out


FAM = CollectConfig(env="Go2Walk-v0", num_histories=3, steps_per_history=400, max_episode_steps=50, group_size=64,
                    chunk_steps=32, seed=5, family="velocity")


@pytest.fixture(scope="module")
def privileged_teacher(tmp_path_factory):
    from go2bench.testing import write_privileged_teacher

    return write_privileged_teacher(tmp_path_factory.mktemp("teacher") / "velocity", "Go2Walk-v0", "velocity")


@pytest.fixture(scope="module")
def family_dataset(tmp_path_factory, privileged_teacher):
    """Collected through the CLI: `go2bench collect --family velocity --teacher PATH ...`."""
    out = tmp_path_factory.mktemp("family") / "vel"
    r = CliRunner().invoke(main, [
        "collect", "--env", "Go2Walk-v0", "--family", "velocity", "--teacher", str(privileged_teacher),
        "--num-histories", "3", "--steps-per-history", "400", "--max-episode-steps", "50", "--group-size", "64",
        "--chunk-steps", "32", "--seed", "5", "--out", str(out), "--no-progress-bar"])
    assert r.exit_code == 0, r.output
    return out, dataclasses.replace(FAM, teacher=str(privileged_teacher))


def test_family_one_theta_per_history_recorded(family_dataset):
    from go2bench.envs.suites import load_suite

    out, _ = family_dataset
    train = load_suite("velocity", "go2").train
    meta = json.loads((out / "vel.json").read_text())
    assert meta["family"] == "velocity" and meta["collection"]["split"] == "train"
    assert meta["task_layout"]["names"] == ["lin_vel_x", "lin_vel_y", "ang_vel_yaw"]
    assert meta["teacher"]["privileged"] is True and meta["teacher"]["family"] == "velocity"
    assert meta["dataset_keys"][-1] == "demonstrator_action"
    for i in range(3):
        rec = json.loads((out / f"trajectories_env_{i:04d}.json").read_text())
        assert rec["task"] == train[i].theta and rec["task_id"] == f"velocity-v0/train/{i}" == train[i].id
        assert meta["tasks"][str(i)] == {"task": rec["task"], "task_id": rec["task_id"]}
        assert meta["histories"][str(i)]["task_id"] == rec["task_id"] and rec["family"] == "velocity"
    assert len({json.dumps(meta["tasks"][str(i)]["task"]) for i in range(3)}) == 3


def test_segmented_family_histories_hold_their_theta_in_every_segment(family_dataset, tmp_path):
    """--segments 2: both segments of history i run its theta (the collector checks every env's theta against the
    plan), the joined record carries it, and the second segment starts from a reset at row 200."""
    out, cfg = family_dataset
    seg = tmp_path / "vel"
    r = CliRunner().invoke(main, [
        "collect", "--env", "Go2Walk-v0", "--family", "velocity", "--teacher", cfg.teacher, "--num-histories", "3",
        "--steps-per-history", "400", "--max-episode-steps", "50", "--group-size", "64", "--chunk-steps", "32",
        "--seed", "5", "--segments", "2", "--out", str(seg), "--no-progress-bar"])
    assert r.exit_code == 0, r.output
    meta = json.loads((seg / "vel.json").read_text())
    assert meta["status"] == "complete" and meta["collection"]["segments"] == 2
    for i in range(3):
        a = json.loads((out / f"trajectories_env_{i:04d}.json").read_text())
        b = json.loads((seg / f"trajectories_env_{i:04d}.json").read_text())
        assert (b["task"], b["task_id"], b["history_key"]) == (a["task"], a["task_id"], a["history_key"])
        d = _read(seg / f"trajectories_env_{i:04d}.h5")
        assert d["step_num"][200] == 0 and len(d["step_num"]) >= 400


def test_family_rows_hold_the_agents_observation(family_dataset):
    out, _ = family_dataset
    meta = json.loads((out / "vel.json").read_text())
    assert meta["observation_shape"] == {"proprio": [33]}
    assert [b["name"] for b in meta["observation_layout"]][-1] == "dof_vel"  # no "task" block
    assert meta["teacher_observation_layout"][-1] == {"name": "task", "start": 33, "size": 3}
    for i in range(3):
        d = _read(out / f"trajectories_env_{i:04d}.h5")
        assert d["proprio_observation"].shape[1] == 33 and d["demonstrator_action"].shape[1] == 12
        assert np.all(d["proprio_observation"][:, 6:9] == 0)  # the velocity family hides the command


def test_family_demonstrator_action_is_the_privileged_teachers_and_action_its_blend(family_dataset):
    """demonstrator_action = teacher(obs + theta); action = clip(lerp(demo, u, eps)) bitwise; equal where eps = 0."""
    from go2bench.agents.teacher import load_teacher
    from go2bench.envs.families import theta_layout

    out, cfg = family_dataset
    teacher = load_teacher(cfg.teacher)
    layout = theta_layout("velocity", "go2")
    low, high = (torch.tensor(b) for b in GO2.action_bounds())
    sched = cfg.schedule
    for i in range(3):
        d = _read(out / f"trajectories_env_{i:04d}.h5")
        theta = json.loads((out / f"trajectories_env_{i:04d}.json").read_text())["task"]
        t = len(d["reward"])
        norm = layout.normalise(np.array([theta[n] for n in layout.names]))
        priv = np.concatenate([d["proprio_observation"], np.tile(norm, (t, 1)).astype(np.float32)], 1)
        np.testing.assert_allclose(d["demonstrator_action"], teacher.act(priv), atol=1e-5)
        wrong = priv.copy()
        wrong[:, 33:] = -norm
        assert np.abs(teacher.act(wrong) - d["demonstrator_action"]).max() > 1e-3  # the teacher did see theta
        rows = torch.arange(t, dtype=torch.int64)
        eps = sched.eps(rows).to(torch.float32)
        u = uniform_noise(history_seed(cfg.seed, torch.tensor(i)), rows, 12)
        blended = blend_actions(eps, torch.from_numpy(d["demonstrator_action"]), u, low, high).numpy()
        np.testing.assert_array_equal(d["action"], blended)
        zero = (eps == 0).numpy()
        assert zero.sum() >= 20 and (~zero).sum() >= 350
        np.testing.assert_array_equal(d["action"][zero], d["demonstrator_action"][zero])
        assert np.all(np.abs(d["action"][~zero] - d["demonstrator_action"][~zero]).max(1) > 0)


def _replay(sim, data, starts, lens, tol=1e-5):
    """Step each env j through rows starts[j].. of history j in lockstep; (rewards, obs) per env."""
    obs = sim.reset()
    rew = [[] for _ in data]
    seen = [[] for _ in data]
    for t in range(max(lens)):
        act = torch.zeros((len(data), 12))
        for j, d in enumerate(data):
            if t < lens[j]:
                act[j] = torch.from_numpy(d["action"][starts[j] + t])
                seen[j].append(obs[j].numpy().copy())
        r = sim.step(act)
        for j in range(len(data)):
            if t < lens[j]:
                rew[j].append(float(r.reward[j]))
        obs = r.obs
    return [np.array(x) for x in rew], [np.array(x) for x in seen]


def test_family_theta_held_for_the_whole_history_rewards_recompute(family_dataset):
    """Replaying the first and the last episode under the recorded thetas gives the stored rewards and
    observations; the same actions under other thetas give the same observations and other rewards."""
    from go2bench.envs.walk_sim import make_walk_sim

    out, _ = family_dataset
    data = [_read(out / f"trajectories_env_{i:04d}.h5") for i in range(3)]
    tasks = [json.loads((out / f"trajectories_env_{i:04d}.json").read_text())["task"] for i in range(3)]
    sim = make_walk_sim("Go2Walk-v0", 3, "cpu", max_episode_steps=50, family="velocity", tasks=tasks)
    try:
        for which in (0, -1):  # the first episode (noisy) and the last one (the teacher's)
            starts, lens = [], []
            for d in data:
                s0 = np.flatnonzero(d["step_num"] == 0)
                ends = np.append(s0[1:], len(d["step_num"]))
                starts.append(int(s0[which]))
                lens.append(int(ends[which] - s0[which]))
            rew, seen = _replay(sim, data, starts, lens)
            for j, d in enumerate(data):
                a, n = starts[j], lens[j]
                np.testing.assert_allclose(seen[j], d["proprio_observation"][a:a + n], atol=1e-5)
                np.testing.assert_allclose(rew[j], d["reward"][a:a + n], atol=1e-5)
        assert lens[0] == 50 and sum(rew[0]) > 0.5  # the last episode: the teacher stands it through
        rolled = np.roll(sim.tasks.host, 1, axis=0)
        sim.tasks.set(rolled)
        rew2, seen2 = _replay(sim, data, starts, lens)
        for j in range(3):
            np.testing.assert_allclose(seen2[j], seen[j], atol=1e-5)  # theta is hidden from the observation
            assert np.abs(rew2[j] - rew[j]).max() > 1e-3
    finally:
        sim.close()


def test_family_resume_is_bitwise_exact(family_dataset, tmp_path):
    """Cut the histories back to complete groups as a kill would (one to nothing), resume: identical files."""
    out, cfg = family_dataset
    cut = tmp_path / "vel"
    shutil.copytree(out, cut)
    for i, keep in ((0, 3), (1, 1), (2, 0)):
        with h5py.File(cut / f"trajectories_env_{i:04d}.h5", "a") as f:
            for name in sorted(f, key=lambda k: int(k.split("-")[0]))[keep:]:
                del f[name]
        (cut / f"trajectories_env_{i:04d}.json").unlink()
    summary = collect(cut, cfg, resume=True, progress=False, plot=False)
    assert summary["status"] == "complete" and summary["resumed_histories"] == 2
    for i in range(3):
        a, b = _read(out / f"trajectories_env_{i:04d}.h5"), _read(cut / f"trajectories_env_{i:04d}.h5")
        assert a["groups"] == b["groups"]
        for k in KEYS:
            np.testing.assert_array_equal(a[k], b[k])
        ja, jb = (json.loads((d / f"trajectories_env_{i:04d}.json").read_text()) for d in (out, cut))
        assert ja["task"] == jb["task"] and ja["episode_returns"] == jb["episode_returns"]
    with pytest.raises(ValueError, match="collection.split"):
        collect(cut, dataclasses.replace(cfg, split="test"), resume=True, progress=False)


def test_family_data_check_passes(family_dataset, tmp_path):
    out, _ = family_dataset
    r = CliRunner().invoke(main, ["data", "check", str(out)])
    assert r.exit_code == 0 and r.output.startswith("ok"), r.output
    bad = tmp_path / "vel"
    shutil.copytree(out, bad)
    with h5py.File(bad / "trajectories_env_0002.h5", "a") as f:
        f["64-127/demonstrator_action"][5, 0] = np.nan
    r = CliRunner().invoke(main, ["data", "check", str(bad)])
    assert r.exit_code == 1 and "64-127/demonstrator_action: contains NaN or inf" in r.output


def test_family_teacher_is_checked_before_any_scene(privileged_teacher, tmp_path, monkeypatch):
    import go2bench.envs.walk_sim as walk_sim
    from go2bench.agents.teacher import resolve_teacher_path

    def no_scene(*a, **k):
        raise AssertionError("a scene was built")

    monkeypatch.setattr(walk_sim, "make_walk_sim", no_scene)
    blind = dataclasses.replace(FAM, teacher=str(resolve_teacher_path("Go2Walk-v0")))
    with pytest.raises(ValueError, match="needs that family's privileged teacher"):
        collect(tmp_path / "a", blind, progress=False)
    with pytest.raises(ValueError, match="is a privileged teacher.*--family"):
        collect(tmp_path / "b", dataclasses.replace(FAM, family=None, teacher=str(privileged_teacher)),
                progress=False)
    with pytest.raises(ValueError, match="dynamics collection needs that family's privileged teacher"):
        collect(tmp_path / "c", dataclasses.replace(FAM, family="dynamics", teacher=str(privileged_teacher)),
                progress=False)
    with pytest.raises(ValueError, match="collect.family: unknown task family"):
        CollectConfig(family="gravity")
    with pytest.raises(ValueError, match="collect.split"):
        CollectConfig(family="velocity", split="validation")


def test_collect_section_takes_family_and_split(tmp_path):
    cfg = tmp_path / "fam.yaml"
    cfg.write_text("d:\n  path: d\n  group: g\n  collect:\n    env: Go2Walk-v0\n    family: dynamics\n"
                   "    split: test\n")
    [(spec, c)] = dataset_collect_configs(cfg)
    assert c.family == "dynamics" and c.split == "test"
