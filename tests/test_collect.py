"""The collector end to end: real histories from the shipped teachers, read back with plain h5py.

One small collection (3 Go2 histories, 1,000 steps each, 100-step episodes) is made once per
module and checked against independent expectations: the noise hash against a pure-Python
implementation, the first action against the pure noise, the noise-free tail against the
teacher, every row against a replay in a fresh simulation, rising returns, resume after kill -9,
subsets of histories, and `go2bench data check|fix` on it.  Collections in task families:
tests/test_collect_family.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.collect.collector import collect
from go2bench.collect.config import CollectConfig, dataset_collect_configs, parse_env_ids
from go2bench.collect.noise import hash32, history_seed, uniform_noise
from go2bench.collect.schedule import NoiseSchedule, blend_actions
from go2bench.envs.robots import GO2

pytestmark = pytest.mark.slow  # collects real histories in its own scenes; the fast lane skips it

N, GROUP = 1000, 128  # steps per history (about 10 episodes), rows per HDF5 group
CFG = CollectConfig(env="Go2Walk-v0", num_histories=3, steps_per_history=N, max_episode_steps=100,
                    group_size=GROUP, chunk_steps=64, seed=7)
CLI_ARGS = ["--env", "Go2Walk-v0", "--num-histories", "3", "--steps-per-history", str(N), "--max-episode-steps",
            "100", "--group-size", str(GROUP), "--seed", "7"]


def _read(path):
    """Independent reader: every group's datasets concatenated in step order."""
    with h5py.File(path, "r") as f:
        names = sorted(f.keys(), key=lambda k: int(k.split("-")[0]))
        out = {k: np.concatenate([f[n][k][()] for n in names]) for k in
               ("proprio_observation", "action", "reward", "step_num")}
        if all("demonstrator_action" in f[n] for n in names):
            out["demonstrator_action"] = np.concatenate([f[n]["demonstrator_action"][()] for n in names])
        out["groups"] = names
    return out


KILL_TEST = "test_resume_after_kill_9_equals_uninterrupted_run"

# Runs `go2bench collect` as its child and kills it with SIGKILL once history 0 holds 3 groups; prints what happened.
KILLER = """
import json, signal, subprocess, sys, time
import h5py
out, h5 = sys.argv[1], sys.argv[2]
proc = subprocess.Popen([sys.executable, "-m", "go2bench.cli", "collect", *sys.argv[3:], "--out", out,
                         "--no-progress-bar"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline, groups = time.time() + 240, 0
try:
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(h5, "r", locking=False) as f:
                groups = sum(not k.startswith("_") for k in f.keys())
            if groups >= 3:
                break
        except OSError:
            pass
        time.sleep(0.05)
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
finally:
    if proc.poll() is None:
        proc.kill()
print(json.dumps({"finished_before_the_kill": finished, "groups": groups, "returncode": proc.returncode}))
"""


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """The `go2bench collect` run that the kill -9 test kills, started as the module begins and killed by a
    watcher process: its Genesis import and first scene build (~20 s in a new process) run beside the rest of
    the module instead of before that one test."""
    killed = tmp_path_factory.mktemp("killed") / "data_go2"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(killed), str(killed / "trajectories_env_0000.h5"),
                             *CLI_ARGS], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    yield killed, proc
    if proc.poll() is None:  # the test did not read its report: end the watcher and the collection (its group)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, request):
    if any(item.name == KILL_TEST for item in request.session.items):
        request.getfixturevalue("interrupted")  # starts first, to overlap with this collection and the tests
    out = tmp_path_factory.mktemp("collect") / "data_go2"
    summary = collect(out, CFG, progress=False)
    return out, summary


# ------------------------------------------------------------------------------- noise and schedule


def _lowbias32(x: int) -> int:
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_hash_matches_pure_python_reference():
    xs = [0, 1, 2, 12345, 0x7FFFFFFF, 0xFFFFFFFF, 987654321]
    got = hash32(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [_lowbias32(x) for x in xs]
    assert _lowbias32(0) == 0 and _lowbias32(1) != 1


def test_noise_is_uniform_deterministic_and_independent_of_batching():
    keys = history_seed(7, torch.arange(4))
    steps = torch.arange(5000, dtype=torch.int64)[:, None].expand(5000, 4)
    u = uniform_noise(keys[None, :], steps, 12)
    assert u.shape == (5000, 4, 12) and u.dtype == torch.float32
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.005 and abs(float(u.var()) - 1 / 12) < 0.002
    # one history alone gives the same numbers as inside a batch
    alone = uniform_noise(history_seed(7, torch.tensor([2])), torch.arange(5000)[:, None], 12)
    assert torch.equal(alone[:, 0], u[:, 2])
    assert not torch.equal(u[:, 0], u[:, 1])  # histories differ
    assert not torch.equal(uniform_noise(history_seed(8, torch.arange(4))[None], steps, 12), u)  # seeds differ
    c = np.corrcoef(u[:-1, 0, 0].numpy(), u[1:, 0, 0].numpy())[0, 1]
    assert abs(c) < 0.05  # consecutive steps uncorrelated


def test_parse_env_ids():
    assert parse_env_ids("0-2,5", 10) == [0, 1, 2, 5]
    assert parse_env_ids(None, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="outside 0-9"):
        parse_env_ids("8-12", 10)
    with pytest.raises(ValueError, match="cannot parse"):
        parse_env_ids("a-b", 10)


def test_collect_config_rejects_bad_values():
    with pytest.raises(ValueError, match="num_histories"):
        CollectConfig(num_histories=0)
    with pytest.raises(ValueError, match="max_perf"):
        CollectConfig(max_perf=1.5)
    with pytest.raises(ValueError, match="unknown env"):
        CollectConfig(env="Cartpole-v1")


# ------------------------------------------------------------------------------- the dataset


def test_layout_and_metadata(dataset):
    out, summary = dataset
    assert summary["status"] == "complete" and summary["complete_histories"] == 3
    meta = json.loads((out / "data_go2.json").read_text())
    assert meta["task_name"] == "go2_walking_ad" and meta["env_id"] == "Go2Walk-v0" and meta["robot"] == "go2"
    assert meta["observation_shape"] == {"proprio": [33]} and meta["action_dim"] == 12
    assert meta["noise"] == {"p": 0.6, "f": 0.05, "max_perf": 1.0, "steps_per_history": N}
    assert meta["teacher"]["expert_score"] and len(meta["teacher"]["sha256"]) == 64
    assert meta["status"] == "complete" and (out / "learning_curves.png").stat().st_size > 5000
    total = 0
    for i in range(3):
        d = _read(out / f"trajectories_env_{i:04d}.h5")
        rec = json.loads((out / f"trajectories_env_{i:04d}.json").read_text())
        t = len(d["reward"])
        assert N <= t < N + 100  # finishes the episode that crosses N
        assert d["groups"][0] == f"0-{GROUP - 1}" and d["groups"][-1].endswith(f"-{t - 1}")
        assert d["proprio_observation"].shape == (t, 33) and d["action"].shape == (t, 12)
        assert d["proprio_observation"].dtype == np.float32 and d["step_num"].dtype == np.int32
        s = d["step_num"]
        starts = np.flatnonzero(s == 0)
        assert starts[0] == 0 and np.all(s[1:][s[1:] != 0] == s[:-1][s[1:] != 0] + 1)  # counts up within episodes
        assert s.max() == 99
        lengths = np.diff(np.append(starts, t))
        assert rec["episode_lengths"] == lengths.tolist() and rec["total_transitions"] == t
        np.testing.assert_allclose(rec["episode_returns"], np.add.reduceat(d["reward"].astype(np.float64), starts),
                                   atol=1e-5)
        np.testing.assert_allclose(rec["obs_mean"], d["proprio_observation"].mean(0), atol=1e-5)
        np.testing.assert_allclose(rec["acs_std"], d["action"].std(0), rtol=1e-4, atol=1e-6)
        assert rec["task_name"] == "go2_walking_ad" and rec["history_index"] == i
        total += t
    assert meta["total_transitions"] == total


def test_first_action_is_pure_noise_and_tail_is_the_teacher(dataset):
    from go2bench.agents.teacher import load_teacher

    out, _ = dataset
    low, high = (torch.tensor(b) for b in GO2.action_bounds())
    teacher = load_teacher("Go2Walk-v0")
    sched = NoiseSchedule(0.6, 0.05, 1.0, N)
    for i in range(3):
        d = _read(out / f"trajectories_env_{i:04d}.h5")
        u0 = low + (high - low) * uniform_noise(history_seed(7, torch.tensor(i)), torch.tensor(0), 12)
        np.testing.assert_allclose(d["action"][0], u0.numpy(), atol=1e-6)  # eps(0) = 1
        tail = np.arange(950, len(d["reward"]))  # n >= (1 - f) N: eps = 0
        assert float(sched.eps(950)) == 0.0 and float(sched.eps(949)) > 0.0
        np.testing.assert_allclose(d["action"][tail], teacher.act(d["proprio_observation"][tail]), atol=1e-5)
        # the teacher's clean action on every row; the executed one equals it where eps = 0
        np.testing.assert_allclose(d["demonstrator_action"], teacher.act(d["proprio_observation"]), atol=1e-5)
        np.testing.assert_array_equal(d["action"][tail], d["demonstrator_action"][tail])
        # in between: a convex blend, inside the joint-limit bounds
        assert np.all(d["action"] >= low.numpy() - 1e-6) and np.all(d["action"] <= high.numpy() + 1e-6)
    a = torch.tensor([[0.1] * 12]), torch.full((1, 12), 0.3)
    ref = blend_actions(torch.tensor([0.25]), a[0], a[1], low, high)
    u = low + (high - low) * a[1]
    assert torch.allclose(ref, torch.clamp(0.25 * u + 0.75 * a[0], low, high))


def test_rows_replay_in_a_fresh_simulation(dataset):
    """Row i = obs at step i, the action taken there, its reward: replaying the actions reproduces the rows."""
    from go2bench.envs.walk_sim import make_walk_sim

    out, _ = dataset
    d = _read(out / "trajectories_env_0001.h5")
    starts = np.flatnonzero(d["step_num"] == 0)
    a, b = starts[5], starts[6]  # a whole episode, which may cross a group boundary
    # Same batch size as the collection: Genesis' batched solver is exact per env only at equal batch
    # sizes (a 1-env scene drifts by ~1e-4 within 15 steps), so 3 envs replay the same actions.
    sim = make_walk_sim("Go2Walk-v0", 3, "cpu", max_episode_steps=100)
    try:
        obs = sim.reset()
        for t in range(a, b):
            np.testing.assert_allclose(obs[0].numpy(), d["proprio_observation"][t], atol=1e-6)
            np.testing.assert_array_equal(obs[2].numpy(), obs[0].numpy())
            r = sim.step(torch.from_numpy(d["action"][t : t + 1]).repeat(3, 1))
            assert abs(float(r.reward[0]) - float(d["reward"][t])) < 1e-5
            obs = r.obs
        assert bool(r.terminated[0] | r.truncated[0])  # the episode ends where the next one starts
    finally:
        sim.close()


def test_returns_rise_over_the_history(dataset):
    out, _ = dataset
    for i in range(3):
        rets = json.loads((out / f"trajectories_env_{i:04d}.json").read_text())["episode_returns"]
        first, last = np.mean(rets[:3]), np.mean(rets[-3:])
        assert first < 0.5 and last > 1.5, (first, last)  # noise: falls; teacher: ~2.1 per 100 steps
        assert last > first + 1.0


def test_subset_of_histories(dataset, tmp_path):
    """--env-ids: the same noise stream as in the full run (the physics of a smaller batch may differ
    in the last float digits, so later rows are not bitwise equal), a valid history, an incomplete dataset."""
    out, _ = dataset
    sub = tmp_path / "data_go2"
    collect(sub, CFG, env_ids="2", progress=False)
    assert not (sub / "trajectories_env_0000.h5").exists()
    a, b = _read(out / "trajectories_env_0002.h5"), _read(sub / "trajectories_env_0002.h5")
    np.testing.assert_array_equal(a["action"][0], b["action"][0])
    np.testing.assert_array_equal(a["proprio_observation"][0], b["proprio_observation"][0])
    assert len(b["reward"]) >= N and b["step_num"][0] == 0
    assert json.loads((sub / "data_go2.json").read_text())["status"] == "incomplete"  # 1 of 3 histories


def test_writer_processes_write_the_same_bytes(dataset, tmp_path):
    """collect.writer_processes: the histories sharded over two writer processes give every file byte for byte
    (HDF5 and JSON; read back by h5py too) as the writer thread did, in a real Genesis collection."""
    import dataclasses

    out, _ = dataset
    procs = tmp_path / "data_go2"
    summary = collect(procs, dataclasses.replace(CFG, writer_processes=2), progress=False, plot=False)
    assert summary["complete_histories"] == 3
    for i in range(3):
        for suffix in ("h5", "json"):
            name = f"trajectories_env_{i:04d}.{suffix}"
            assert (procs / name).read_bytes() == (out / name).read_bytes(), name
        a, b = _read(out / f"trajectories_env_{i:04d}.h5"), _read(procs / f"trajectories_env_{i:04d}.h5")
        assert all(np.array_equal(a[k], b[k]) for k in a if k != "groups") and a["groups"] == b["groups"]


def test_existing_output_needs_resume_and_same_settings(dataset, tmp_path):
    out, _ = dataset
    with pytest.raises(FileExistsError, match="--resume"):
        collect(out, CFG, progress=False)
    with pytest.raises(ValueError, match="collection.p"):
        collect(out, CollectConfig(**{**CFG.__dict__, "p": 0.5}), resume=True, progress=False)
    r = CliRunner().invoke(main, ["collect", "--env", "Go2Walk-v0"])
    assert r.exit_code != 0 and "--out" in r.output


def test_resume_checks_happen_before_any_scene_is_built(dataset, tmp_path, monkeypatch):
    """Renamed folder, changed settings, unwritable output, stale temp files: settled without Genesis."""
    import shutil

    import go2bench.envs.walk_sim as walk_sim

    def no_scene(*a, **k):
        raise AssertionError("a scene was built")

    monkeypatch.setattr(walk_sim, "make_walk_sim", no_scene)
    out, _ = dataset
    renamed = tmp_path / "renamed_go2"
    shutil.copytree(out, renamed)
    (renamed / ".renamed_go2.json.x1y2.tmp").write_text("{")  # left by a kill inside an atomic write
    with pytest.raises(ValueError, match=r"data_go2\.json: cannot resume: collection.p is 0.6 on disk but 0.5"):
        collect(renamed, CollectConfig(**{**CFG.__dict__, "p": 0.5}), resume=True, progress=False)
    assert not list(renamed.glob(".*.tmp"))
    done = collect(renamed, CFG, resume=True, progress=False)  # complete: nothing to collect, so no scene
    assert done["status"] == "complete" and done["complete_histories"] == 3 and done["rows_written"] == 0
    from go2bench.histories.names import history_json

    history_json(renamed, 1).unlink()  # history 1 no longer finished: a scene is needed, after the checks
    with pytest.raises(AssertionError, match="a scene was built"):  # same settings: passes the checks
        collect(renamed, CFG, resume=True, progress=False)
    assert (renamed / "renamed_go2.json").exists() and not (renamed / "data_go2.json").exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError):
        collect(blocker / "data", CFG, progress=False)


def test_resume_after_kill_9_equals_uninterrupted_run(dataset, interrupted):
    out, _ = dataset
    killed, watcher = interrupted
    report = json.loads(watcher.communicate(timeout=300)[0].strip().splitlines()[-1])
    assert not report["finished_before_the_kill"], f"the collection finished before it could be killed: {report}"
    assert report["groups"] >= 3 and report["returncode"] == -signal.SIGKILL, report
    assert not (killed / "trajectories_env_0000.json").exists()  # interrupted
    summary = collect(killed, CFG, resume=True, progress=False)
    assert summary["resumed_histories"] >= 1 and summary["status"] == "complete"
    for i in range(3):
        a, b = _read(out / f"trajectories_env_{i:04d}.h5"), _read(killed / f"trajectories_env_{i:04d}.h5")
        assert a["groups"] == b["groups"]
        for k in ("proprio_observation", "action", "reward", "step_num", "demonstrator_action"):
            np.testing.assert_array_equal(a[k], b[k])


def test_resuming_an_old_layout_dataset_keeps_its_layout(dataset, tmp_path):
    """A dataset collected before demonstrator_action existed is continued without it, and stays valid."""
    from go2bench.histories.check import dataset_report

    out, _ = dataset
    old = tmp_path / "data_go2"
    shutil.copytree(out, old)
    for i in range(3):
        with h5py.File(old / f"trajectories_env_{i:04d}.h5", "a") as f:
            for name in list(f):
                del f[name]["demonstrator_action"]
            if i == 1:
                for name in sorted(f, key=lambda k: int(k.split("-")[0]))[-3:]:
                    del f[name]  # as killed: only complete groups are left
    (old / "trajectories_env_0001.json").unlink()
    meta = json.loads((old / "data_go2.json").read_text())
    meta = {k: v for k, v in meta.items() if k not in ("dataset_keys", "family")}
    meta["format"] = "go2bench-learning-histories/1"
    meta["collection"] = {k: v for k, v in meta["collection"].items() if k not in ("family", "split")}
    (old / "data_go2.json").write_text(json.dumps(meta))
    summary = collect(old, CFG, resume=True, progress=False, plot=False)
    assert summary["resumed_histories"] == 1 and summary["status"] == "complete"
    a, b = _read(out / "trajectories_env_0001.h5"), _read(old / "trajectories_env_0001.h5")
    assert "demonstrator_action" not in b and a["groups"] == b["groups"]
    for k in ("proprio_observation", "action", "reward", "step_num"):
        np.testing.assert_array_equal(a[k], b[k])
    meta = json.loads((old / "data_go2.json").read_text())
    assert "demonstrator_action" not in meta["dataset_keys"] and meta["format"].endswith("/1")
    assert dataset_report(old) == ([], [])


# ------------------------------------------------------------------------------- data check / fix


def test_data_check_passes_then_fix_repairs_broken_metadata(dataset, tmp_path):
    out, _ = dataset
    runner = CliRunner()
    r = runner.invoke(main, ["data", "check", str(out)])
    assert r.exit_code == 0, r.output
    broken = tmp_path / "minicheetah_ad"
    shutil.copytree(out, broken)
    (broken / "data_go2.json").unlink()  # wrong name for this folder: its <name>.json is missing
    r = runner.invoke(main, ["data", "check", str(broken)])
    assert r.exit_code == 1 and "minicheetah_ad.json: dataset metadata missing" in r.output
    r = runner.invoke(main, ["data", "fix", str(broken), "--task-name", "mini_cheetah"])
    assert r.exit_code == 0, r.output
    assert "wrote missing dataset metadata" in r.output and "'go2_walking_ad' -> 'minicheetah_walking_ad'" in r.output
    assert json.loads((broken / "minicheetah_ad.json").read_text())["task_name"] == "minicheetah_walking_ad"
    assert runner.invoke(main, ["data", "check", str(broken)]).exit_code == 0
    # data untouched
    np.testing.assert_array_equal(_read(out / "trajectories_env_0000.h5")["action"],
                                  _read(broken / "trajectories_env_0000.h5")["action"])


def test_data_check_config_finds_task_name_collision(dataset, tmp_path):
    out, _ = dataset
    root = tmp_path / "data"
    shutil.copytree(out, root / "go2_trajectories" / "data_go2")
    shutil.copytree(out, root / "mc" / "mc_ad")
    (root / "mc" / "mc_ad" / "data_go2.json").rename(root / "mc" / "mc_ad" / "mc_ad.json")
    cfg = tmp_path / "multi.yaml"
    cfg.write_text("a:\n  path: go2_trajectories/data_go2\n  group: go2\n"
                   "b:\n  path: mc/mc_ad\n  group: mc\n")
    runner = CliRunner()
    r = runner.invoke(main, ["data", "check", "--config", str(cfg), "--data-dir", str(root)])
    assert r.exit_code == 1 and "task_name 'go2_walking_ad' is also the task_name of dataset 'a'" in r.output
    r = runner.invoke(main, ["data", "fix", str(root / "mc" / "mc_ad"), "--task-name", "MiniCheetahWalk-v0"])
    assert r.exit_code == 0
    r = runner.invoke(main, ["data", "check", "--config", str(cfg), "--data-dir", str(root)])
    assert r.exit_code == 0, r.output
    cfg.write_text("a:\n  path: go2_trajectories/data_go2\n  group: go2\n  reward_scle: 2\n")
    r = runner.invoke(main, ["data", "check", "--config", str(cfg), "--data-dir", str(root)])
    assert r.exit_code == 1 and "reward_scle" in r.output and "multi.yaml" in r.output
    cfg.write_text("a:\n  path: go2_trajectories/data_go2\n  group: go2\n"
                   "b:\n  path: mc/mc_ad\n  group: go2\n")
    r = runner.invoke(main, ["data", "check", "--config", str(cfg), "--data-dir", str(root)])
    assert r.exit_code == 1 and "group names must differ" in r.output


def test_shipped_dataset_configs_load():
    from go2bench.histories.dataset_config import load_dataset_config

    multi = load_dataset_config("multitask_go2_minicheetah_config")
    assert [e.group for e in multi.values()] == ["go2_walking", "minicheetah_walking"]
    jobs = {spec.name: cfg for spec, cfg in dataset_collect_configs("multitask_go2_minicheetah_config")}
    assert jobs["minicheetah_ad"].env == "MiniCheetahWalk-v0"
    [(spec, go2)] = dataset_collect_configs("go2_dataset_config.yaml")
    assert spec.name == "data_1M" and spec.entry.path == "go2_trajectories/data_1M"
    assert go2.steps_per_history == 1_000_000 and go2.p == 0.6 and go2.f == 0.05 and go2.max_perf == 1.0


def test_collect_section_errors_name_file_dataset_and_key(tmp_path):
    from go2bench.core.config import ConfigError

    cfg = tmp_path / "bad_collect.yaml"
    cfg.write_text("d:\n  path: d\n  group: g\n  collect:\n    env: Go2Walk-v0\n    num_historys: 3\n")
    with pytest.raises(ConfigError, match=r"bad_collect\.yaml: d\.collect: unknown key.*num_historys"):
        dataset_collect_configs(cfg)
    cfg.write_text("d:\n  path: d\n  group: g\n  collect:\n    env: Go2Walk-v0\n    p: -1\n")
    with pytest.raises(ConfigError, match=r"bad_collect\.yaml: d\.collect: .*p must be > 0"):
        dataset_collect_configs(cfg)
