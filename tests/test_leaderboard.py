"""Leaderboard tables and plots from fixture result files (no simulation)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from go2bench.eval.results import (
    FAMILY_RESULTS_FORMAT,
    RESULTS_FORMAT,
    ResultsError,
    load_results,
    renormalize_results,
    save_results,
    validate_results,
)
from go2bench.eval.leaderboard import (
    LeaderboardError,
    load_dataset_curves,
    load_result,
    make_leaderboard,
    markdown_table,
    table_rows,
)

FIXTURES = Path(__file__).parent / "fixtures" / "results"
FILES = sorted(FIXTURES.glob("*.json"))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def make_dataset(folder: Path, histories: int = 2) -> Path:
    folder.mkdir(parents=True)
    (folder / f"{folder.name}.json").write_text(json.dumps({"name": folder.name}))
    for i in range(histories):
        (folder / f"trajectories_env_{i:04d}.json").write_text(json.dumps({
            "episode_returns": [1.0 + i, 5.0, 12.0 + i], "episode_lengths": [100, 400, 1000],
        }))
    return folder


def test_fixtures_are_consistent():
    """The fixtures' summaries agree with their per-seed returns (so the table test checks real numbers)."""
    for f in FILES:
        res = fixture(f.name)
        R = np.array([s["returns"] for s in res["per_seed"]])
        assert res["mean_return"] == pytest.approx(R.mean())
        rs, es = res["random_score"], res["expert_score"]
        assert res["normalized_score"] == pytest.approx((R.mean() - rs) / (es - rs))


def test_tables_match_the_fixtures(tmp_path):
    made = make_leaderboard(FILES, tmp_path / "lb", datasets=[make_dataset(tmp_path / "ds_a")])
    names = {Path(p).name for p in made["files"]}
    assert names == {"leaderboard.md", "leaderboard.csv", "in_context.png", "learning_curves.png"}
    for p in made["files"]:
        assert Path(p).stat().st_size > 0
    assert (tmp_path / "lb" / "in_context.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with open(tmp_path / "lb" / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    by_key = {(r["task"], r["agent"]): r for r in rows}
    assert set(by_key) == {("Go2Walk-v0", "random"), ("Go2Walk-v0", "teacher"), ("Go2Walk-v0", "vintix:runs/v1/ckpt_final.pt"),
                           ("MiniCheetahWalk-v0", "teacher")}
    # sorted by task, best normalised score first
    assert [r["agent"] for r in rows[:3]] == ["teacher", "vintix:runs/v1/ckpt_final.pt", "random"]
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert md == made["markdown"]
    for f in FILES:
        res = fixture(f.name)
        label = "vintix:runs/v1/ckpt_final.pt" if res["agent"] == "vintix" else res["agent"]
        row = by_key[(res["env"], label)]
        lo, hi = res["normalized_score_ci95"]
        assert float(row["normalized_score"]) == pytest.approx(res["normalized_score"])
        assert float(row["normalized_ci95_halfwidth"]) == pytest.approx((hi - lo) / 2)
        assert float(row["mean_return"]) == pytest.approx(res["mean_return"])
        assert int(row["episodes"]) == res["episodes"] == len(res["returns"])
        assert row["seeds"] == ",".join(map(str, res["config"]["seeds"]))
        # the Markdown row shows the same numbers, rounded
        cell = f"{res['normalized_score']:.3f} ± {(hi - lo) / 2:.3f}"
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {res['env']} | {label} |"))
        assert cell in line and f"{res['mean_return']:.2f} ±" in line
        assert f"| {res['config']['num_envs']} x {res['config']['episodes']} |" in line


def test_cli_leaderboard_prints_the_table(tmp_path):
    from go2bench.cli import main

    ds = make_dataset(tmp_path / "ds_b", histories=3)
    r = CliRunner().invoke(main, ["leaderboard", *map(str, FILES), "--out", str(tmp_path / "lb"),
                                  "--datasets", str(ds)])
    assert r.exit_code == 0, r.output
    assert "| MiniCheetahWalk-v0 | teacher |" in r.output and "learning_curves.png" in r.output
    assert (tmp_path / "lb" / "learning_curves.png").exists()


def test_dataset_curves_cumulative_steps(tmp_path):
    curves = load_dataset_curves(make_dataset(tmp_path / "ds"))
    assert curves["name"] == "ds" and len(curves["histories"]) == 2
    h = curves["histories"][1]
    assert h["file"] == "trajectories_env_0001.json" and h["steps"] == [100, 500, 1500]
    assert h["returns"] == [2.0, 5.0, 13.0]


def test_bad_inputs_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LeaderboardError, match=r"bad\.json: not a JSON file"):
        load_result(bad)
    res = fixture(FILES[0].name)
    del res["per_episode"]["normalized_score"]
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(res))
    with pytest.raises(LeaderboardError, match=r"missing\.json: missing field 'per_episode\.normalized_score'"):
        load_result(missing)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"agent": "random", "env": "Go2Walk-v0", "mean_return": 0.7}))
    with pytest.raises(LeaderboardError, match=r"old\.json: missing field 'format'"):
        load_result(old)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**fixture(FILES[0].name), "format": "go2bench.eval/3"}))
    with pytest.raises(LeaderboardError, match=r"future\.json: field 'format' is 'go2bench\.eval/3'"):
        load_result(future)
    # a default-task file announced as a family file lacks the family fields
    fam = tmp_path / "fam.json"
    fam.write_text(json.dumps({**fixture(FILES[0].name), "format": "go2bench.eval/2"}))
    with pytest.raises(LeaderboardError, match=r"fam\.json: missing field 'config\.family'"):
        load_result(fam)
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(LeaderboardError, match="list.json: not a go2bench eval results file"):
        load_result(lst)
    # the same agent and task twice
    dup = tmp_path / "dup.json"
    shutil.copy(FILES[0], dup)
    with pytest.raises(LeaderboardError, match="already in"):
        table_rows([load_result(FILES[0]), load_result(dup)])
    # datasets
    ds = make_dataset(tmp_path / "ds")
    (ds / "trajectories_env_0001.json").write_text(json.dumps({"episode_returns": [1.0]}))
    with pytest.raises(LeaderboardError, match=r"trajectories_env_0001\.json: missing field 'episode_lengths'"):
        load_dataset_curves(ds)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LeaderboardError, match="no trajectories_env_XXXX.json"):
        load_dataset_curves(tmp_path / "empty")
    # through the CLI: exit code and the named file, nothing written
    from go2bench.cli import main

    r = CliRunner().invoke(main, ["leaderboard", str(FILES[0]), str(missing), "--out", str(tmp_path / "lb")])
    assert r.exit_code != 0 and "missing.json" in r.output and "per_episode.normalized_score" in r.output
    assert not (tmp_path / "lb").exists()


COMMITTED = sorted((Path(__file__).parent.parent / "benchmarks" / "results").glob("*/results/*.json")) + sorted(
    (Path(__file__).parent.parent / "benchmarks" / "results" / "eval").glob("*.json"))


def test_committed_results_follow_the_schema():
    assert len(COMMITTED) >= 8
    for path in COMMITTED + FILES:
        res = load_results(path)
        assert res["format"] == (FAMILY_RESULTS_FORMAT if "family" in res else RESULTS_FORMAT)
        assert len(res["returns"]) == res["episodes"]


@pytest.mark.parametrize("field, value, message", [
    ("config.seeds", "0,1", r"field 'config\.seeds' must be a list, each item an integer, got '0,1'"),
    ("mean_return", float("nan"), r"field 'mean_return' must be a finite number"),
    ("returns", [1.0], r"field 'returns' must be a list of \d+ values"),
    ("normalized_score_ci95", [0.1], r"field 'normalized_score_ci95' must be \[low, high\]"),
    ("per_seed", [], r"field 'per_seed' must be a list of \d+ entries"),
    ("reward_terms", {"a": "x"}, r"field 'reward_terms' must be an object of finite numbers"),
])
def test_schema_errors_name_the_file_and_the_field(tmp_path, field, value, message):
    res = fixture(FILES[0].name)
    *parents, key = field.split(".")
    target = res
    for part in parents:
        target = target[part]
    target[key] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(res))
    with pytest.raises(ResultsError, match="^" + re.escape(f"{path}: ") + message):
        load_results(path)
    with pytest.raises(ResultsError, match=message):
        save_results(res, tmp_path / "never.json")  # nothing off-schema is written
    assert not (tmp_path / "never.json").exists()


def test_renormalize_uses_the_shared_statistics():
    res = fixture(FILES[0].name)
    R = np.array([s["returns"] for s in res["per_seed"]])
    renormalize_results(res, 0.0, 10.0)
    assert res["normalized_score"] == pytest.approx(R.mean() / 10.0)
    assert res["normalized_score_ci95"] == pytest.approx([x / 10.0 for x in res["ci95"]])
    assert res["reference_scores_source"] == "arguments" and "measured" in res["reference_scores_note"]
    validate_results(res)


def test_markdown_without_reference_scores():
    res = load_result(FILES[0])
    res["normalized_score"] = None
    res["normalized_score_ci95"] = [None, None]
    md = markdown_table(table_rows([res]))
    assert "| n/a |" in md


def test_agent_names_cannot_break_the_markdown_table():
    res = fixture(FILES[0].name)
    res["agent"] = "evil|agent\nnext line"
    res["agent_spec"] = res["config"]["agent"] = res["agent"]
    res["_path"] = "evil.json"
    md = markdown_table(table_rows([res]))
    row = [line for line in md.splitlines() if "evil" in line]
    assert len(row) == 1
    header = md.splitlines()[0]
    unescaped = re.sub(r"\\\|", "", row[0])
    assert unescaped.count("|") == header.count("|")  # same number of cells as the header
    assert "evil\\|agent next line" in row[0]


def test_labels_keep_a_shipped_and_a_run_checkpoint_apart():
    from go2bench.eval.leaderboard import agent_label

    res = fixture(FILES[0].name)
    shipped = {**res, "agent": "vintix", "agent_spec": "vintix:/x/go2bench/zoo/vintix/vintix.pt"}
    run = {**res, "agent": "vintix", "agent_spec": "vintix:runs/pipeline_cpu/runs/vintix/final.pt"}
    assert agent_label(shipped) == "vintix:zoo/vintix/vintix.pt"
    assert agent_label(run) == "vintix:runs/vintix/final.pt"


# ---------------------------------------------------------------------------------- task families
def family_result(folder: Path, agent: str, split: str, level: float, slope: float, seed: int = 0) -> Path:
    """A family results file built by the real builder from synthetic returns (2 seeds x 4 thetas x 5 episodes):
    references random 0 and privileged 10 on every theta, so the normalised score is return / 10."""
    import types

    from go2bench.envs.suites import load_suite
    from go2bench.eval.family_reference import FamilyReferences
    from go2bench.eval.family_results import FamilyRun, build_family_results

    tasks = load_suite("velocity", "go2").split(split)[:4]
    S, M, K = 2, len(tasks), 5
    rng = np.random.default_rng(seed)
    R = 10 * (level + slope * np.arange(K)[None, None, :] + 0.05 * rng.normal(size=(S, M, K)))
    refs = FamilyReferences(100)
    for t in tasks:
        refs.put(t.id, "random", 0.0, "fixture")
        refs.put(t.id, "privileged", 10.0, "fixture")
    meta = {"backend": "cpu", "device": "cpu", "max_episode_steps": 100, "obs_mode": "noleak", "walk_config": {},
            "privileged": agent == "teacher-privileged", "steps": 500, "wall_s": 1.0, "suite": "velocity-v0",
            "robot": "go2"}
    zeros = np.zeros((S, M, K))
    run = FamilyRun(types.SimpleNamespace(name=agent), agent, "Go2Walk-v0", "velocity", split, tasks, [0, 1], K,
                    refs, meta, R, zeros + 100, zeros.astype(bool), zeros.astype(bool), np.zeros((S, M, K, 3)),
                    {"tracking_lin_vel": R})
    path = folder / f"{agent}_{split}.json"
    save_results(build_family_results(run, bootstrap_reps=300), path)
    return path


@pytest.fixture
def family_files(tmp_path):
    specs = {"random": (0.0, 0.0), "teacher-privileged": (1.0, 0.0), "teacher-blind": (0.5, 0.0),
             "vintix": (0.4, 0.08), "vintix-nocontext": (0.9, 0.0)}
    return [family_result(tmp_path, agent, split, *ab, seed=i) for i, (agent, ab) in enumerate(specs.items())
            for split in ("train", "test")]


def test_family_tables_columns_and_curves(tmp_path, family_files):
    made = make_leaderboard(family_files + FILES, tmp_path / "lb")
    names = {Path(p).name for p in made["files"]}
    assert names == {"leaderboard.md", "leaderboard.csv", "in_context.png", "leaderboard_families.csv",
                     "curves_velocity.png"}
    assert (tmp_path / "lb" / "curves_velocity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = made["markdown"]
    assert len(made["rows"]) == 4  # the default-task table is unchanged by the family results
    lines = md.splitlines()
    head = lines.index("## velocity family, Go2Walk-v0") + 2
    assert lines[head] == ("| agent | role | train zero-shot | train final | train AUC | test zero-shot | test final | "
                           "test AUC | trials (train / test) | episodes/trial | steps/episode |")
    body = [ln for ln in lines[head + 2:] if ln.startswith("|")]
    assert len(body) == 5
    agents = [ln.split(" | ")[0][2:] for ln in body]
    assert agents[-1] == "vintix-nocontext" and "diagnostic" in body[-1]  # the old ablation: labelled, last
    assert agents[:4] == ["teacher-privileged", "vintix", "teacher-blind", "random"]  # best test final first
    assert "reference: privileged teacher" in body[0] and "baseline: blind teacher" in body[2]
    for path in family_files:
        res = load_results(path)
        fam = res["family"]
        row = body[agents.index(res["agent"])].split(" | ")
        col = {"train": 2, "test": 5}[fam["split"]]
        for k, m in enumerate(("zero_shot", "final", "auc")):
            lo, hi = fam[m]["ci95_thetas"]
            assert row[col + k] == f"{fam[m]['iqm']:.3f} [{lo:.3f}, {hi:.3f}]"
        assert row[8] == "4 x 2 / 4 x 2" and row[9] == "5"
        # the numbers are the IQMs of the normalised scores (return / 10 here)
        N = np.array([t["normalized"] for t in fam["trials"]])
        assert N == pytest.approx(np.array([t["returns"] for t in fam["trials"]]) / 10)
        assert fam["final"]["iqm"] == pytest.approx(float(np.sort(N[:, -3:].mean(1))[2:6].mean()))
    with open(tmp_path / "lb" / "leaderboard_families.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 10 and {r["split"] for r in csv_rows} == {"train", "test"}
    vin = next(r for r in csv_rows if r["agent"] == "vintix" and r["split"] == "test")
    res = load_results(next(p for p in family_files if p.name == "vintix_test.json"))
    assert float(vin["final_iqm"]) == pytest.approx(res["family"]["final"]["iqm"])
    assert float(vin["auc_ci95_thetas_high"]) == pytest.approx(res["family"]["auc"]["ci95_thetas"][1])
    # only family results: no default-task table or plot
    only = make_leaderboard(family_files[:2], tmp_path / "lb2")
    assert {Path(p).name for p in only["files"]} == {"leaderboard.md", "leaderboard_families.csv",
                                                     "curves_velocity.png"}
    # an agent and split twice is an error; odd agent names stay inside their cell
    with pytest.raises(LeaderboardError, match="already in"):
        make_leaderboard([family_files[0], family_files[0]], tmp_path / "lb3")
    evil = json.loads(family_files[0].read_text())
    evil["agent"] = evil["agent_spec"] = evil["config"]["agent"] = "evil|agent\nx"
    (tmp_path / "evil.json").write_text(json.dumps(evil))
    md = make_leaderboard([tmp_path / "evil.json"], tmp_path / "lb4")["markdown"]
    row = next(ln for ln in md.splitlines() if "evil" in ln)
    header = next(ln for ln in md.splitlines() if ln.startswith("| agent |"))
    assert re.sub(r"\\\|", "", row).count("|") == header.count("|")
