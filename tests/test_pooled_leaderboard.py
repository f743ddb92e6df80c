"""Training runs pooled on the leaderboard (go2bench.eval.pooled, ``go2bench leaderboard --pool``): the pooled row
against hand computations and scipy, the committed Mini Cheetah replicates against the study table written when
they were measured, the CLI's files read back, and the refusals."""

from __future__ import annotations

import csv
import json
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import trim_mean

from go2bench.cli import main as cli_main
from go2bench.eval.leaderboard import LeaderboardError, load_result, make_leaderboard
from go2bench.eval.pooled import PoolError, pool_runs

ROOT = Path(__file__).resolve().parents[1]
RUNS = "mini_cheetah_velocity/run/results/all"
MC_RUNS = [ROOT / "benchmarks/results" / f"{study}/{RUNS}/vintix_runs_{name}_minicheetah_velocity_runs_baseline_final.pt.json"
           for study, name in (("family_study_datasets", "family_study"), ("family_study_seed1", "family_study_seed1"),
                               ("family_study_seed2", "family_study_seed2"))]
MC_STUDY = ROOT / "benchmarks/results/family_study_replicates/mini_cheetah_velocity/study.json"


def family_file(folder: Path, spec: str, N, split: str = "test", first_theta: int = 0, steps: int = 100) -> Path:
    """A family results file of agent ``spec`` built by the real builder; normalised scores ``N`` (seeds, thetas,
    episodes): references random 0 and privileged 10 on every theta, returns 10 N."""
    from go2bench.envs.suites import load_suite
    from go2bench.eval.family_reference import FamilyReferences
    from go2bench.eval.family_results import FamilyRun, build_family_results
    from go2bench.eval.results import save_results

    N = np.asarray(N, dtype=float)
    S, M, K = N.shape
    tasks = load_suite("velocity", "go2").split(split)[first_theta:first_theta + M]
    refs = FamilyReferences(steps)
    for t in tasks:
        refs.put(t.id, "random", 0.0, "fixture")
        refs.put(t.id, "privileged", 10.0, "fixture")
    meta = {"backend": "cpu", "device": "cpu", "max_episode_steps": steps, "obs_mode": "noleak", "walk_config": {},
            "privileged": False, "steps": K * steps, "wall_s": 1.0, "suite": "velocity-v0", "robot": "go2"}
    z = np.zeros((S, M, K))
    name = spec.split(":")[0]
    run = FamilyRun(types.SimpleNamespace(name=name), spec, "Go2Walk-v0", "velocity", split, tasks, list(range(S)), K,
                    refs, meta, 10 * N, z + steps, z.astype(bool), z.astype(bool), np.zeros((S, M, K, 3)),
                    {"tracking_lin_vel": 10 * N})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.replace(':', '_').replace('/', '_')}_{split}.json"
    save_results(build_family_results(run, bootstrap_reps=200), path)
    return path


def test_pooled_row_against_a_hand_computation(tmp_path):
    """Run a scores 0.2 on every trial, run b 0.6 (2 seeds x 2 thetas each): the pooled IQM is that of four 0.2s
    and four 0.6s, 0.4; replicates draw runs {a,a}, {a,b}, {b,b} with chances 1/4, 1/2, 1/4, giving 0.2, 0.4, 0.6,
    so the 2.5% and 97.5% points are 0.2 and 0.6 (resampling thetas and seeds alone would give zero width)."""
    a = family_file(tmp_path, "vintix:runs/a/final.pt", np.full((2, 2, 3), 0.2))
    b = family_file(tmp_path, "vintix:runs/b/final.pt", np.full((2, 2, 3), 0.6))
    p = pool_runs([load_result(a), load_result(b)], "v")
    for m in ("zero_shot", "final", "auc"):
        assert p[m]["iqm"] == pytest.approx(0.4) and p[m]["ci95_pooled"] == pytest.approx([0.2, 0.6])
    assert p["rise"]["iqm"] == pytest.approx(0.0) and p["finals_by_run"] == pytest.approx([0.2, 0.6])
    assert (p["runs"], p["thetas"], p["eval_seeds"], p["episodes"]) == (2, 2, [0, 1], 3)
    assert p["per_episode"]["iqm"] == pytest.approx([0.4] * 3)
    made = make_leaderboard([], tmp_path / "lb", pools=[("vintix-pooled", [a, b])])
    (row,) = [ln for ln in made["markdown"].splitlines() if ln.startswith("| vintix-pooled |")]
    cells = row.strip("| ").split(" | ")
    assert cells[2:8] == ["-"] * 3 + ["0.400 [0.200, 0.600]"] * 3
    assert cells[-2:] == ["- / 2", "0.200 / 0.600"] and cells[8] == "- / 2 x 2"


def test_pooled_iqm_is_the_trimmed_mean_of_every_runs_trials(tmp_path):
    rng = np.random.default_rng(3)
    N = rng.uniform(-0.2, 1.0, size=(3, 2, 4, 5))  # runs x eval seeds x thetas x episodes
    runs = [load_result(family_file(tmp_path, f"vintix:runs/s{i}/final.pt", N[i])) for i in range(3)]
    p = pool_runs(runs, "v", reps=300)
    final = N[..., -3:].mean(-1)
    assert p["final"]["iqm"] == pytest.approx(trim_mean(final.reshape(-1), 0.25), abs=1e-12)
    assert p["zero_shot"]["iqm"] == pytest.approx(trim_mean(N[..., 0].reshape(-1), 0.25), abs=1e-12)
    assert p["rise"]["iqm"] == pytest.approx(trim_mean((final - N[..., 0]).reshape(-1), 0.25), abs=1e-12)
    assert p["per_episode"]["iqm"] == pytest.approx([trim_mean(N[..., k].reshape(-1), 0.25) for k in range(5)])
    assert p["finals_by_run"] == pytest.approx([r["family"]["final"]["iqm"] for r in runs], abs=1e-12)
    lo, hi = p["final"]["ci95_pooled"]
    assert lo < p["final"]["iqm"] < hi


def test_committed_mini_cheetah_runs_pool_to_the_replicate_study():
    """The three trainings (seeds 0, 1, 2) of the MC velocity baseline: the leaderboard's pooled row is the
    replicate table's baseline row (family_study.py --combine, the same statistics and draws)."""
    study = json.loads(MC_STUDY.read_text())
    base = study["rows"][0]
    assert base["name"] == "baseline" and [ROOT / p["results"] for p in base["per_seed"]] == MC_RUNS
    p = pool_runs([load_result(f) for f in MC_RUNS], "vintix-mc", reps=study["args"]["bootstrap_reps"])
    for m in ("zero_shot", "final", "auc", "rise"):
        assert p[m]["iqm"] == pytest.approx(base["metrics"][m]["iqm"], abs=1e-12)
        assert p[m]["ci95_pooled"] == pytest.approx(base["metrics"][m]["ci95_pooled"], abs=1e-12)
    assert p["finals_by_run"] == pytest.approx([s["metrics"]["final"]["iqm"] for s in base["per_seed"]], abs=1e-12)
    assert p["runs"] == 3 and len(set(p["checkpoints"])) == 3


def test_cli_writes_pooled_rows_and_reads_back(tmp_path):
    N = np.random.default_rng(0).uniform(0, 1, size=(3, 2, 3, 4))
    runs = [family_file(tmp_path / "r", f"vintix:runs/s{i}/final.pt", N[i]) for i in range(3)]
    train = [family_file(tmp_path / "r", f"vintix:runs/s{i}/final.pt", N[i][:, :2], split="train") for i in range(2)]
    blind = family_file(tmp_path / "r", "teacher-blind", np.full((2, 3, 4), 0.5))
    out = tmp_path / "lb"
    args = ["leaderboard", str(blind), "--pool", "vintix-s=" + ",".join(map(str, runs)),
            "--pool", f"vintix-s={train[0]},{train[1]}", "--out", str(out)]
    got = CliRunner().invoke(cli_main, args)
    assert got.exit_code == 0, got.output
    back = json.loads((out / "leaderboard_pooled.json").read_text())
    assert back["format"] == "go2bench.leaderboard-pooled/1" and "go2bench" in back["versions"]
    assert [(r["agent"], r["split"], r["runs"]) for r in back["rows"]] == [("vintix-s", "test", 3),
                                                                           ("vintix-s", "train", 2)]
    for r, files in zip(back["rows"], (runs, train)):
        assert r["sources"] == [str(f) for f in files] and r["agent_specs"][0] == "vintix:runs/s0/final.pt"
        fresh = pool_runs([load_result(f) for f in files], "vintix-s")
        for k in r["final"]:  # (pytest 9.2's approx takes no nested containers)
            assert r["final"][k] == pytest.approx(fresh["final"][k]), k
        for k in fresh["per_episode"]:
            assert r["per_episode"][k] == pytest.approx(fresh["per_episode"][k]), k
    with open(out / "leaderboard_families.csv") as f:
        rows = {(r["agent"], r["split"]): r for r in csv.DictReader(f)}
    assert set(rows) == {("vintix-s", "test"), ("vintix-s", "train"), ("teacher-blind", "test")}
    t = rows[("vintix-s", "test")]
    assert float(t["final_ci95_pooled_low"]) == pytest.approx(back["rows"][0]["final"]["ci95_pooled"][0])
    assert t["runs"] == "3" and t["final_ci95_thetas_low"] == "" and rows[("teacher-blind", "test")]["runs"] == "1"
    assert [float(x) for x in t["finals_by_run"].split()] == pytest.approx(back["rows"][0]["finals_by_run"])
    (row,) = [ln for ln in (out / "leaderboard.md").read_text().splitlines() if ln.startswith("| vintix-s |")]
    assert row.split(" | ")[-2:] == ["2 / 3", "train: " + " / ".join(f"{x:.3f}" for x in back["rows"][1]["finals_by_run"])
                                     + "; test: " + " / ".join(f"{x:.3f}" for x in back["rows"][0]["finals_by_run"]) + " |"]
    # --pool-by agent: the same test row, named after the agent; the single teacher stays as it was
    by = CliRunner().invoke(cli_main, ["leaderboard", str(blind), *map(str, runs), "--pool-by", "agent",
                                       "--out", str(tmp_path / "lb2")])
    assert by.exit_code == 0, by.output
    again = json.loads((tmp_path / "lb2/leaderboard_pooled.json").read_text())["rows"]
    assert [(r["agent"], r["runs"]) for r in again] == [("vintix", 3)] and again[0]["final"] == back["rows"][0]["final"]
    plain = make_leaderboard([blind, *runs], tmp_path / "lb3")  # unpooled: a row per run, no pooled file or columns
    assert not (tmp_path / "lb3/leaderboard_pooled.json").exists() and "runs (train / test)" not in plain["markdown"]
    assert len(plain["family_rows"]) == 4

    def blind_cells(md: str) -> list[str]:  # agent, role, the six metric cells, trials, episodes, steps
        return next(ln for ln in md.splitlines() if ln.startswith("| teacher-blind |")).strip("| ").split(" | ")[:11]

    assert blind_cells((out / "leaderboard.md").read_text()) == blind_cells(plain["markdown"])


def test_runs_that_cannot_pool_are_refused_in_one_line(tmp_path):
    x = np.full((1, 2, 3), 0.5)
    a = family_file(tmp_path / "a", "vintix:runs/a/final.pt", x)
    bad = {
        "family.episodes": family_file(tmp_path / "k", "vintix:runs/b/final.pt", np.full((1, 2, 4), 0.5)),
        "family.split": family_file(tmp_path / "s", "vintix:runs/b/final.pt", x, split="train"),
        r"family.tasks \(the thetas\)": family_file(tmp_path / "t", "vintix:runs/b/final.pt", x, first_theta=1),
        "max_episode_steps": family_file(tmp_path / "m", "vintix:runs/b/final.pt", x, steps=50),
        "agent": family_file(tmp_path / "g", "vintix-episodic:runs/b/final.pt", x),
        r"family.seeds \(evaluation seeds\)": family_file(tmp_path / "e", "vintix:runs/b/final.pt",
                                                          np.full((2, 2, 3), 0.5)),
    }
    for field, other in bad.items():
        with pytest.raises(PoolError, match=rf"pool v: {other} differs from {a} in {field}"):
            make_leaderboard([], tmp_path / "lb", pools=[("v", [a, other])])
    with pytest.raises(PoolError, match="evaluate the same model"):
        pool_runs([load_result(a), load_result(a)], "v")
    with pytest.raises(PoolError, match="pooling needs two or more"):
        pool_runs([load_result(a)], "v")
    b = family_file(tmp_path / "b", "vintix:runs/b/final.pt", x)
    c = family_file(tmp_path / "c", "vintix:runs/c/final.pt", x)
    with pytest.raises(LeaderboardError, match="in pool 'v' and pool 'w'"):
        make_leaderboard([], tmp_path / "lb", pools=[("v", [a, b]), ("w", [b, c])])
    with pytest.raises(LeaderboardError, match="name the pool apart from the agents"):
        make_leaderboard([c], tmp_path / "lb", pools=[("vintix:runs/c/final.pt", [a, b])])
    ep = bad["agent"]
    got = CliRunner().invoke(cli_main, ["leaderboard", "--pool", f"v={a},{ep}", "--out", str(tmp_path / "cli")])
    assert got.exit_code == 1 and "Traceback" not in got.output and not (tmp_path / "cli").exists()
    assert got.output.strip() == (f"Error: pool v: {ep} differs from {a} in agent ('vintix' vs 'vintix-episodic'): "
                                  "only runs of one agent on one env, family, split and protocol pool")
