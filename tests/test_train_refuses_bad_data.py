"""`go2bench train` refuses broken datasets before its first step, naming file and group, like `data check`."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from go2bench.core.provenance import write_json_atomic
from go2bench.histories.check import DataProblems, check_dataset, dataset_report
from go2bench.testing import write_synthetic_dataset
from go2bench.vintix.config import TrainConfig
from go2bench.vintix.train import train

H0 = "trajectories_env_0000.h5"
H1 = "trajectories_env_0001.h5"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    write_synthetic_dataset(root, "ds", n_histories=2, steps=300, obs_dim=6, act_dim=3, episode_len=50,
                            group_size=100, env_id=None, task_name="toy", demonstrator=True)
    return root / "ds"


@pytest.fixture
def ds(pristine, tmp_path):
    """A fresh copy of a valid dataset (2 histories of groups 0-99, 100-199, 200-299) and its config."""
    d = tmp_path / "data" / "ds"
    shutil.copytree(pristine, d)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"ds": {"path": "ds", "group": "toy"}}))
    return d


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(tmp_path, **kw):
    base = dict(data_dir=str(tmp_path / "data"), dataset_config_paths=[str(tmp_path / "cfg.yaml")],
                out_dir=str(tmp_path / "runs"), name="run", model="tiny", context_len=16, batch_size=4,
                trajectory_sparsity=16, epochs=1, num_workers=0, progress_bar=False, device="cpu", max_steps=2)
    base.update(kw)
    return TrainConfig(**base)


def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


def _replace(f, key, value):
    del f[key]
    f[key] = value


BREAKS = {
    "overlapping groups": (H0, lambda f: f.copy("100-199", "50-149"), ["group 50-149", "overlaps"]),
    "step gap": (H1, lambda f: f.__delitem__("100-199"), ["group 200-299", "missing steps 100-199"]),
    "group not start-end": (H0, lambda f: f.move("200-299", "part_2"), ["'part_2'", "start-end"]),
    "float step_num": (H0, lambda f: _replace(f, "100-199/step_num", np.arange(100, dtype=np.float32) % 50),
                       ["100-199/step_num", "dtype float32", "integers"]),
    "garbage step_num": (H1, lambda f: _replace(f, "100-199/step_num", np.full(100, 7, np.int32)),
                         ["100-199/step_num", "episode step counter"]),
    "negative step_num": (H1, lambda f: _replace(f, "0-99/step_num", -np.arange(100, dtype=np.int32)),
                          ["0-99/step_num", "episode step counter", "row 1: -1, after 0"]),
    "history not starting at step 0": (H1, lambda f: _replace(f, "0-99/step_num", np.arange(100) % 50 + 3),
                                       ["0-99/step_num", "row 0: 3, the history's first row must be 0"]),
    "missing step_num": (H0, lambda f: f.__delitem__("0-99/step_num"), ["0-99/step_num", "dataset missing"]),
    "2-D reward": (H0, lambda f: _replace(f, "100-199/reward", np.zeros((100, 2), np.float32)),
                   ["100-199/reward", "expected 1-D"]),
    "NaN reward": (H1, lambda f: f["200-299/reward"].__setitem__(5, np.nan), ["200-299/reward", "NaN"]),
    "mismatched lengths": (H0, lambda f: _replace(f, "0-99/action", np.zeros((99, 3), np.float32)),
                           ["0-99/action", "99 rows"]),
    "string observations": (H0, lambda f: _replace(f, "0-99/proprio_observation", np.array([b"x"] * 100)),
                            ["0-99/proprio_observation", "dtype"]),
    "empty HDF5 file": (H1, lambda f: [f.__delitem__(k) for k in list(f)], ["no 'start-end' groups"]),
    "NaN demonstrator_action": (H0, lambda f: f["100-199/demonstrator_action"].__setitem__((3, 1), np.nan),
                                ["100-199/demonstrator_action", "NaN"]),
    "narrow demonstrator_action": (H1, lambda f: _replace(f, "0-99/demonstrator_action", np.zeros((100, 2), np.float32)),
                                   ["0-99/demonstrator_action", "width 2"]),
    "demonstrator_action in some groups": (H0, lambda f: f.__delitem__("200-299/demonstrator_action"),
                                           ["demonstrator_action: in 2 of 3 groups", "missing in 200-299"]),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_train_refuses_broken_history(ds, tmp_path, case):
    fname, edit, needles = BREAKS[case]
    _edit(ds / fname, edit)
    with pytest.raises(DataProblems) as e:
        train(_cfg(tmp_path))
    text = "\n".join(e.value.problems)
    for n in [str(ds / fname), *needles]:
        assert n in text, (case, text)
    assert e.value.problems == check_dataset(ds)  # one implementation: what `data check` reports
    assert not (tmp_path / "runs").exists()  # refused before any step, checkpoint or metrics line


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file", "truncated"])
def test_train_refuses_unreadable_files(ds, tmp_path, content):
    path = ds / H1
    if content == "truncated":
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(DataProblems, match="unreadable or truncated") as e:
        train(_cfg(tmp_path))
    assert all(str(path) in p for p in e.value.problems)
    assert not (tmp_path / "runs").exists()


def test_train_refuses_bad_metadata(ds, tmp_path):
    (ds / "ds.json").unlink()
    meta1 = json.loads((ds / "trajectories_env_0001.json").read_text())
    write_json_atomic(ds / "trajectories_env_0001.json", {**meta1, "observation_shape": {"proprio": [7]}})
    with pytest.raises(DataProblems) as e:
        train(_cfg(tmp_path))
    text = "\n".join(e.value.problems)
    assert f"{ds / 'ds.json'}: dataset metadata missing" in text
    assert f"{ds / H1}: 0-99/proprio_observation: width 6 disagrees with metadata observation_shape = 7" in text
    assert not (tmp_path / "runs").exists()


def test_check_per_history_json_disagreeing_with_dataset_json(ds):
    for name, change in (("trajectories_env_0000.json", {"task_name": "go2_walking_ad"}),
                         ("trajectories_env_0001.json", {"action_dim": 4})):
        meta = json.loads((ds / name).read_text())
        write_json_atomic(ds / name, {**meta, **change})
    problems = check_dataset(ds)
    assert any(p.startswith(str(ds / "trajectories_env_0000.json")) and "task_name = 'go2_walking_ad'" in p
               and "ds.json ('toy')" in p for p in problems), problems
    assert any(p.startswith(str(ds / "trajectories_env_0001.json")) and "action_dim = 4 disagrees" in p
               for p in problems), problems


def test_every_problem_is_listed_one_per_line_by_the_cli(ds, tmp_path):
    from go2bench.cli.train import train_command

    _edit(ds / H0, lambda f: _replace(f, "100-199/step_num", np.zeros(100, np.float64)))
    _edit(ds / H1, lambda f: f["0-99/proprio_observation"].__setitem__((3, 1), np.inf))
    r = CliRunner().invoke(train_command, [
        "--data_dir", str(tmp_path / "data"), "--dataset_config_paths", str(tmp_path / "cfg.yaml"),
        "--out_dir", str(tmp_path / "runs"), "--model", "tiny", "--context_len", "16", "--device", "cpu",
        "--num_workers", "0", "--no-progress-bar"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    errors = [x for x in r.output.splitlines() if x.startswith("error: ")]
    assert len(errors) == 2, r.output
    assert f"{ds / H0}: 100-199/step_num: dtype float64" in errors[0]
    assert f"{ds / H1}: 0-99/proprio_observation: contains NaN or inf" in errors[1]
    assert "refusing to train: 2 problem(s)" in r.output
    assert not (tmp_path / "runs").exists()


def test_warnings_stay_warnings(ds, tmp_path, capsys):
    """The original collector's T+1 observation rows are read correctly: train prints a warning and runs."""
    def add_row(f):
        obs = f["0-99/proprio_observation"][()]
        _replace(f, "0-99/proprio_observation", np.concatenate([obs, obs[-1:]]))

    _edit(ds / H0, add_row)
    problems, warnings = dataset_report(ds)
    assert problems == [] and len(warnings) == 1
    s = train(_cfg(tmp_path))
    assert s["step"] == 2
    assert "T+1" in capsys.readouterr().out


def test_check_streams_large_groups_in_chunks(tmp_path):
    """A problem past the first chunk of a group is still found (values are read a chunk at a time)."""
    from go2bench.histories.reader import scan_history

    write_synthetic_dataset(tmp_path, "big", n_histories=1, steps=3000, obs_dim=4, act_dim=2, episode_len=1000,
                            group_size=3000, task_name="big")
    path = tmp_path / "big" / H0
    assert scan_history(path, load=False, chunk=128)[0] == []
    _edit(path, lambda f: f["0-2999/step_num"].__setitem__(2500, 3))
    _edit(path, lambda f: f["0-2999/action"].__setitem__((2999, 1), np.nan))
    problems = scan_history(path, load=False, chunk=128)[0]
    assert len(problems) == 2, problems
    assert "0-2999/action: contains NaN" in problems[0]
    assert "2 row(s) break the episode step counter (row 2500: 3, after 499)" in problems[1]


def test_step_counter_is_followed_across_groups(ds):
    """A group that counts correctly on its own, but does not continue the previous group's episode."""
    _edit(ds / H0, lambda f: _replace(f, "100-199/step_num", (np.arange(100, dtype=np.int32) + 10) % 50))
    problems = check_dataset(ds)
    assert len(problems) == 1 and "100-199/step_num: 1 row(s)" in problems[0], problems
    assert "row 0: 10, after 49" in problems[0]
