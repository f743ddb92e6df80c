"""`go2bench data export-minari`: a family-shaped synthetic dataset exported, read back by minari and h5py.

The expectations are built from the HDF5 read with h5py directly (episodes split where
step_num is 0) and from hand-written values (a linear noise schedule, the zoo card's JSON), not
from the exporter's helpers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.core.provenance import write_json_atomic
from go2bench.histories.names import history_h5, history_json, metadata_path
from go2bench.testing import write_synthetic_dataset

minari = pytest.importorskip("minari")

ZOO = Path(__file__).resolve().parent.parent / "go2bench" / "zoo"
TASK_IDS = ["velocity-v0/train/3", "velocity-v0/train/7"]
THETAS = [{"lin_vel_x": 0.25, "lin_vel_y": -0.1, "ang_vel_yaw": 0.3},
          {"lin_vel_x": 0.8, "lin_vel_y": 0.2, "ang_vel_yaw": 0.0}]
MAX_STEPS = 1000  # as in the zoo cards: their scores count only for episodes of this length
N = 1000  # rows per history; noise: p 1, f 0.5, max_perf 0.9 -> eps(n) = max(1 - n / 500, 0.1)


def family_dataset(root: Path) -> Path:
    """Two histories (episodes of 100, 1 and 57 rows, cycled) with demonstrator_action, thetas and a noise schedule."""
    d = write_synthetic_dataset(root, "ad", n_histories=2, steps=N, obs_dim=5, act_dim=3, episode_len=[100, 1, 57],
                                group_size=300, demonstrator=True, env_id="Go2Walk-v0", seed=3)
    meta = json.loads(metadata_path(d).read_text())
    meta.update(robot="go2", family="velocity", noise={"p": 1.0, "f": 0.5, "max_perf": 0.9, "steps_per_history": N},
                collection={"max_episode_steps": MAX_STEPS, "split": "train", "family": "velocity"},
                tasks={str(i): {"task": THETAS[i], "task_id": TASK_IDS[i]} for i in range(2)})
    write_json_atomic(metadata_path(d), meta)
    for i in range(2):
        hj = json.loads(history_json(d, i).read_text())
        hj.update(family="velocity", split="train", task=THETAS[i], task_id=TASK_IDS[i])
        write_json_atomic(history_json(d, i), hj)
    return d


def h5_columns(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        names = sorted(f.keys(), key=lambda g: int(g.split("-")[0]))
        return {k: np.concatenate([f[g][k][()] for g in names]) for k in f[names[0]].keys()}


def export(d: Path, out: Path, *args: str):
    return CliRunner().invoke(main, ["data", "export-minari", str(d), "--out", str(out), *args])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    d = family_dataset(root)
    r = export(d, root / "export")
    assert r.exit_code == 0, r.output
    return d, root / "export", r.output


def test_episodes_match_the_hdf5(exported, monkeypatch):
    d, out, output = exported
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
    ds = minari.load_dataset("go2bench/go2-velocity/ad-v0")
    episodes = list(ds.iterate_episodes())
    metas = list(ds.storage.get_episode_metadata(range(ds.total_episodes)))
    expected, skipped = [], 0
    for i in range(2):
        cols = h5_columns(history_h5(d, i))
        starts = list(np.flatnonzero(cols["step_num"] == 0)) + [N]
        for k, (s, e) in enumerate(zip(starts[:-1], starts[1:])):
            if e - s == 1:
                skipped += 1
            else:
                expected.append((i, k, s, e, cols))
    assert len(episodes) == len(expected) == ds.total_episodes
    # 6 full cycles of 100 + 1 + 57 rows and a last 52-row episode, per history
    assert len(expected) == 2 * 13 and skipped == 2 * 6
    assert ds.total_steps == sum(e - s - 1 for _, _, s, e, _ in expected) == 2 * (N - 6) - 2 * 13
    for ep, m, (i, k, s, e, cols) in zip(episodes, metas, expected):
        n = e - s
        assert ep.observations.shape == (n, 5) and ep.actions.shape == (n - 1, 3)  # T + 1 observations
        np.testing.assert_array_equal(ep.observations, cols["proprio_observation"][s:e])
        np.testing.assert_array_equal(ep.actions, cols["action"][s:e - 1])
        np.testing.assert_array_equal(ep.rewards, cols["reward"][s:e - 1])
        np.testing.assert_array_equal(ep.infos["demonstrator_action"], cols["demonstrator_action"][s:e])
        np.testing.assert_allclose(ep.infos["noise_eps"], np.maximum(1 - np.arange(s, e) / 500, 0.1), rtol=1e-6)
        assert not ep.terminations.any() and ep.truncations.tolist() == [False] * (n - 2) + [True]
        assert (m["history"], m["episode_in_history"], m["source_first_row"], m["source_rows"]) == (i, k, s, n)
        assert m["source_return"] == pytest.approx(float(cols["reward"][s:e].astype(np.float64).sum()))
        assert m["source_end"] == "before_time_limit"  # the collector ends a history with a whole episode
        assert m["noise_eps_first"] == pytest.approx(max(1 - s / 500, 0.1), rel=1e-6)
        assert m["noise_eps_last"] == pytest.approx(max(1 - (e - 2) / 500, 0.1), rel=1e-6)
        assert m["task_id"] == TASK_IDS[i] and m["task"] == pytest.approx(THETAS[i])
    assert "26 final steps without a next observation dropped, 12 one-row episodes skipped" in output


def test_reference_scores_are_the_family_leaderboards(exported, monkeypatch):
    """Per theta: the privileged card's random / teacher returns; the dataset's: their means over its histories."""
    _, out, _ = exported
    card = json.loads((ZOO / "Go2Walk-v0" / "velocity" / "privileged" / "model_card.json").read_text())
    rnd = [card["per_task_returns"]["random"][t] for t in TASK_IDS]
    exp = [card["per_task_returns"]["teacher"][t] for t in TASK_IDS]
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
    ds = minari.load_dataset("go2bench/go2-velocity/ad-v0")
    meta = ds.storage.metadata
    assert meta["ref_min_score"] == pytest.approx(np.mean(rnd)) and meta["ref_max_score"] == pytest.approx(np.mean(exp))
    assert minari.get_normalized_score(ds, np.array(meta["ref_max_score"])) == pytest.approx(1.0)
    for m in ds.storage.get_episode_metadata(range(ds.total_episodes)):
        j = TASK_IDS.index(m["task_id"])
        assert (m["ref_min_score"], m["ref_max_score"]) == pytest.approx((rnd[j], exp[j]))
    g = meta["go2bench"]
    assert (g["dropped_final_steps"], g["skipped_one_row_episodes"], g["source_transitions"]) == (26, 12, 2 * N)
    assert g["family"] == "velocity" and g["split"] == "train" and "dropped" in g["final_step_rule"]


def test_default_task_takes_the_shipped_cards_scores_and_given_ones_win(tmp_path, monkeypatch):
    d = write_synthetic_dataset(tmp_path, "plain", n_histories=1, steps=120, obs_dim=4, act_dim=2, env_id="Go2Walk-v0")
    card = json.loads((ZOO / "Go2Walk-v0" / "model_card.json").read_text())
    (tmp_path / "a").mkdir()  # an empty --out is fine
    assert export(d, tmp_path / "a", "--dataset-id", "mine/plain-v2").exit_code == 0
    assert export(d, tmp_path / "b", "--ref-min-score", "-1", "--ref-max-score", "3").exit_code == 0
    for out, dataset_id, refs in ((tmp_path / "a", "mine/plain-v2", (card["random_score"], card["expert_score"])),
                                  (tmp_path / "b", "go2bench/go2-walk/plain-v0", (-1.0, 3.0))):
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
        meta = minari.load_dataset(dataset_id).storage.metadata
        assert (meta["ref_min_score"], meta["ref_max_score"]) == pytest.approx(refs)
        assert meta["go2bench"]["infos"]["noise_eps"] is None  # no schedule in this dataset's metadata
    ds = minari.load_dataset("go2bench/go2-walk/plain-v0")
    ep = ds[1]  # rows 100-119: the history's cut last episode
    assert len(ep) == 19 and ep.truncations[-1] and not ep.terminations.any()
    assert [m["source_end"] for m in ds.storage.get_episode_metadata([0, 1])] == ["episode_end", "history_end"]


def test_episode_ends_and_no_scores_for_other_episode_lengths(tmp_path, monkeypatch):
    """Collected with 100-step episodes: time limits are known, the zoo's 1000-step scores do not apply."""
    d = write_synthetic_dataset(tmp_path, "short", n_histories=1, steps=170, obs_dim=4, act_dim=2, env_id="Go2Walk-v0")
    meta = json.loads(metadata_path(d).read_text())
    write_json_atomic(metadata_path(d), {**meta, "collection": {"max_episode_steps": 100}})
    r = export(d, tmp_path / "out")
    assert r.exit_code == 0 and "no ref scores" in r.output, r.output
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "out"))
    ds = minari.load_dataset("go2bench/go2-walk/short-v0")
    assert "ref_min_score" not in ds.storage.metadata and "1000-step" in ds.storage.metadata["go2bench"][
        "reference_scores_source"]
    ends = [m["source_end"] for m in ds.storage.get_episode_metadata([0, 1])]
    assert ends == ["time_limit", "before_time_limit"]  # 100 rows, then 70 (the collector finishes episodes)


def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path, monkeypatch):
    d = write_synthetic_dataset(tmp_path, "ds", n_histories=2, steps=50, obs_dim=3, act_dim=2)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    cases = [
        (tmp_path / "nothing", tmp_path / "o1", [], "not a valid learning-history dataset"),
        (d, busy, [], "not empty"),
        (d, tmp_path / "o2", ["--dataset-id", "no version"], "expected (namespace/)name-vN"),
        (d, tmp_path / "o3", ["--ref-min-score", "1"], "--ref-max-score"),
    ]
    for src, out, args, message in cases:
        r = export(src, out, *args)
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output
        lines = r.output.strip().splitlines()  # one error line (after click's usage lines for a usage error)
        assert lines[-1].startswith("Error: ") and sum(line.startswith("Error") for line in lines) == 1
    assert (busy / "keep.txt").read_text() == "x" and sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    assert not [n for o in ("o1", "o2", "o3") for n in _leftovers(tmp_path, o)]

    raw = history_h5(d, 1).read_bytes()
    history_h5(d, 1).write_bytes(raw[: len(raw) // 2])  # a truncated (corrupt) history file
    r = export(d, tmp_path / "o4")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "trajectories_env_0001.h5" in r.output
    assert not _leftovers(tmp_path, "o4")
    history_h5(d, 1).write_bytes(raw)

    monkeypatch.setitem(sys.modules, "minari", None)  # as if minari were not installed
    r = export(d, tmp_path / "o5")
    assert r.exit_code == 1 and 'pip install "go2bench[minari]"' in r.output and not _leftovers(tmp_path, "o5")


def test_a_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    import go2bench.collect.minari_export as mx

    d = write_synthetic_dataset(tmp_path, "ds", n_histories=3, steps=60, obs_dim=3, act_dim=2, episode_len=20)
    real, calls = mx.read_history, []

    def flaky(path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(f"{path}: disk gone")
        return real(path)

    monkeypatch.setattr(mx, "read_history", flaky)
    r = export(d, tmp_path / "out")
    assert r.exit_code == 1 and "disk gone" in r.output and len(calls) == 2
    assert not _leftovers(tmp_path, "out")
    monkeypatch.setattr(mx, "read_history", real)
    r = export(d, tmp_path / "out")  # the same --out works afterwards
    assert r.exit_code == 0 and "3 histories" in r.output, r.output
