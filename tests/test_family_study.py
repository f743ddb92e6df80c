"""The issue-17 study driver (benchmarks/family_study.py): its statistics against the stored results and
scipy, its eval-mode detection against click's own parsing, the TrainConfig target it relies on, and (slow)
a micro study end to end on CPU: two tiny variants trained and evaluated, the table written and read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import trim_mean

from go2bench.cli import main as cli_main
from go2bench.testing import start_cli_here, write_synthetic_dataset
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
GPU_RESULTS = ROOT / "benchmarks/results/gpu_family_go2_velocity/family/results/velocity"


study = load_benchmark("family_study")


@pytest.mark.parametrize("agent", ["vintix", "teacher-blind"])
def test_scores_recomputed_from_trials_match_the_results_file_and_scipy(agent):
    res = json.loads((GPU_RESULTS / f"{agent}_Go2Walk-v0.json").read_text())
    got = study.scores(res)
    for name in ("zero_shot", "final", "auc"):  # the evaluator's own numbers, same bootstrap seed and reps
        assert got[name]["iqm"] == pytest.approx(res["family"][name]["iqm"], abs=1e-12)
        assert got[name]["ci95_thetas"] == pytest.approx(res["family"][name]["ci95_thetas"], abs=1e-12)
    per_trial = np.array([t["normalized"] for t in res["family"]["trials"]])
    rise = per_trial[:, -3:].mean(1) - per_trial[:, 0]
    assert got["rise"]["iqm"] == pytest.approx(trim_mean(rise, 0.25), abs=1e-12)
    lo, hi = got["rise"]["ci95_thetas"]
    assert lo <= got["rise"]["iqm"] <= hi and lo < hi


def test_table_rows_show_not_done_and_the_difference_from_the_baseline():
    m = {k: {"iqm": v, "ci95_thetas": [v - 0.1, v + 0.1]} for k, v in
         {"zero_shot": 0.5, "final": 0.8, "auc": 0.7, "rise": 0.3}.items()}
    rows = [{"name": "baseline", "status": "done", "steps": 10, "what": "b", "metrics": m, "final_minus_baseline": 0.0},
            {"name": "ctx8192", "status": "NOT DONE: training cut short at step 3 of 10", "steps": 3, "what": "c",
             "metrics": None, "final_minus_baseline": None}]
    lines = study.make_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2] == ("| baseline | done | 10 | 0.50 [0.40, 0.60] | 0.80 [0.70, 0.90] | 0.70 [0.60, 0.80] | "
                        "0.30 [0.20, 0.40] | +0.00 | b |")
    assert lines[3].startswith("| ctx8192 | NOT DONE: training cut short at step 3 of 10 | 3 | - | - | - | - | - |")


def test_eval_mode_detection_agrees_with_how_click_parses_two_agents():
    from go2bench.cli.eval import eval_command

    try:
        params = eval_command.make_context("eval", ["--agent", "random", "--agent", "teacher"]).params
        (name,) = [p.name for p in eval_command.params if "--agent" in p.opts]  # whatever its Python name
        parsed_both = params[name] in (("random", "teacher"), ["random", "teacher"])
    except Exception:  # noqa: BLE001 - a non-repeatable option may refuse the second one
        parsed_both = False
    assert study.eval_takes_several_agents() is parsed_both


@pytest.mark.slow
def test_train_target_reaches_the_dataset(tmp_path):
    """--target demonstrator_action on histories without it: refused by the window dataset, naming the key."""
    write_synthetic_dataset(tmp_path, "toy", n_histories=1, steps=200, obs_dim=4, act_dim=2, episode_len=50)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("toy: {type: default, path: toy, group: toy}\n")
    args = ["train", "--data_dir", str(tmp_path), "--dataset_config_paths", str(cfg), "--model", "tiny",
            "--context_len", "32", "--max_steps", "1", "--batch_size", "2", "--trajectory_sparsity", "8", "--device", "cpu", "--num_workers", "0",
            "--out_dir", str(tmp_path / "runs"), "--no_progress_bar"]
    bad = CliRunner().invoke(cli_main, [*args, "--target", "demonstrator_action"])
    assert bad.exit_code != 0 and "demonstrator_action" in bad.output and "Traceback" not in bad.output
    good = CliRunner().invoke(cli_main, [*args, "--target", "action", "--name", "ok"])
    assert good.exit_code == 0, good.output


def test_unknown_variant_and_dataset_without_metadata_are_one_line_errors(tmp_path):
    from go2bench.core.config import ConfigError

    with pytest.raises(ConfigError, match="no dataset metadata"):
        study.dataset_info(tmp_path, "velocity")
    d = write_synthetic_dataset(tmp_path, "go2_velocity", n_histories=1, steps=100, env_id="Go2Walk-v0")
    info = study.dataset_info(d, "velocity")
    # the collection's size is part of its identity (two GPU collections of one config differ in it)
    assert info["total_transitions"] == 1 * 100  # 1 history x 100 steps
    args = study.parse_args(["--dataset", str(d), "--budget-s", "1", "--variants", "baseline,huge"])
    with pytest.raises(ConfigError, match=r"--variants: unknown \['huge'\]"):
        study.plan(args, info, tmp_path / "work")


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_micro_study_on_cpu_trains_evaluates_and_writes_a_table(tmp_path, monkeypatch):
    """The study's train and eval commands run in this process (start_cli_here): the study's logic is under test,
    not a fresh interpreter's Genesis import; the commands it started are checked."""
    started = []
    monkeypatch.setattr(study, "start_process", start_cli_here(started))
    d = write_synthetic_dataset(tmp_path / "data", "go2_velocity", n_histories=2, steps=400, episode_len=20,
                                env_id="Go2Walk-v0", demonstrator=True)
    out = tmp_path / "out"
    args = ["--dataset", str(d), "--family", "velocity", "--preset", "cpu", "--variants", "baseline,dpt",
                       "--set", "model=tiny", "--set", "context_len=48", "--set", "batch_size=4",
                       "--set", "trajectory_sparsity=16", "--set", "num_workers=0", "--set", "device=cpu",
                       "--max-steps", "5", "--budget-s", "500", "--eval-reserve-s", "380", "--jobs", "2",
                       "--reference-agent", "random", "--trials", "2", "--seeds", "0", "--episodes", "3",
                       "--max-episode-steps", "20", "--reference-episodes", "1", "--eval-jobs", "2",
                       "--bootstrap-reps", "200", "--work", str(tmp_path / "work"), "--out-dir", str(out)]
    made = study.main(args)
    assert [p.cmd[3] for p in started] == ["train", "train", "eval"] and all(p.returncode == 0 for p in started)
    assert [[p.cmd[i + 1] for i, a in enumerate(p.cmd) if a == "--agent"] for p in started[2:]] == [
        [f"vintix:{tmp_path / 'work'}/runs/baseline/final.pt", f"vintix:{tmp_path / 'work'}/runs/dpt/final.pt",
         "random"]]
    back = study.load_study(out / "go2_velocity" / "study.json")
    assert back["rows"] == json.loads(json.dumps(made["rows"]))
    rows = {r["name"]: r for r in back["rows"]}
    assert list(rows) == ["baseline", "dpt", "random"]
    for name in ("baseline", "dpt"):
        r = rows[name]
        assert r["status"] == "done" and r["steps"] == 5, r
        assert r["train_config"]["target"] == ("demonstrator_action" if name == "dpt" else "action")
        res = json.loads(Path(r["results"]).read_text())
        assert res["agent_spec"].endswith(f"{name}/final.pt") and res["family"]["episodes"] == 3
        assert r["metrics"]["final"]["iqm"] == pytest.approx(
            trim_mean(np.array([t["normalized"] for t in res["family"]["trials"]])[:, -3:].mean(1), 0.25))
    assert rows["baseline"]["final_minus_baseline"] == 0.0
    assert rows["random"]["status"] == "reference" and rows["random"]["metrics"]["zero_shot"]["iqm"] is not None
    md = (out / "go2_velocity" / "study.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in md if line.startswith("| ") and "---" not in line][1:] == \
        ["baseline", "dpt", "random"]
    # run again into the same --work folder (a second device call): nothing is retrained, the table is the same
    started.clear()
    again = study.main(args[:args.index("--out-dir")] + ["--out-dir", str(tmp_path / "out2")])
    assert [p.cmd[3] for p in started] == ["eval"]
    assert [(r["name"], r["status"], r.get("steps")) for r in again["rows"]] == \
        [(r["name"], r["status"], r.get("steps")) for r in back["rows"]]
    # and with training seeds 0 and 1: seed 0's trainings are the ones above (plain names), only seed 1 trains
    started.clear()
    seeded = study.main(args[:args.index("--out-dir")] + ["--out-dir", str(tmp_path / "out3"), "--train-seeds", "0,1"])
    assert [p.cmd[3] for p in started] == ["train", "train", "eval"]
    assert [p.cmd[p.cmd.index("--name") + 1] for p in started[:2]] == ["baseline_s1", "dpt_s1"]
    assert len([a for a in started[2].cmd if a == "--agent"]) == 5  # every seed's agent in one eval process
    back3 = study.load_study(tmp_path / "out3/go2_velocity/study.json")
    assert seeded["format"] == back3["format"]  # what main returns is what it wrote
    assert back3["format"] == study.FORMAT_2 and [r["name"] for r in back3["rows"]] == ["baseline", "dpt", "random"]
    b3 = back3["rows"][0]
    assert b3["status"] == "done (s0, s1)" and [p["train_config"]["seed"] for p in b3["per_seed"]] == [0, 1]
    assert b3["per_seed"][0]["metrics"]["final"]["iqm"] == pytest.approx(rows["baseline"]["metrics"]["final"]["iqm"])
    finals = [np.mean(t["normalized"][-3:]) for p in b3["per_seed"]
              for t in json.loads(Path(p["results"]).read_text())["family"]["trials"]]
    assert b3["metrics"]["final"]["iqm"] == pytest.approx(trim_mean(finals, 0.25))


def test_plan_writes_each_variants_settings_and_the_collections_reward_scale(tmp_path):
    from go2bench.histories.dataset_config import load_dataset_configs
    from go2bench.histories.names import metadata_path

    d = write_synthetic_dataset(tmp_path, "go2_velocity", n_histories=1, steps=100, env_id="Go2Walk-v0")
    meta = json.loads(metadata_path(d).read_text())
    metadata_path(d).write_text(json.dumps({**meta, "family": "velocity", "reward_scale": 7.5, "collection": {"max_episode_steps": 500}}))
    args = study.parse_args(["--dataset", str(d), "--budget-s", "1", "--max-steps", "40",
                             "--alt-dataset", f"long={d}"])
    runs = {r["name"]: r for r in study.plan(args, study.dataset_info(d, None), tmp_path / "w")}
    assert list(runs) == [*study.VARIANTS, "baseline@long"]
    t = {n: r["train"] for n, r in runs.items()}
    assert (t["baseline"].model, t["baseline"].context_len, t["baseline"].target) == ("seed", 2048, "action")
    assert (t["ctx8192"].context_len, t["small"].model, t["dpt"].target) == (8192, "small", "demonstrator_action")
    assert (t["episodic"].context, t["episodic"].context_len) == ("episode", 500)
    assert all(c.max_steps == 40 and c.epochs >= 1000 for c in t.values())
    for name, sparsity in (("baseline", 1), ("sparse2", 2)):
        (spec,) = load_dataset_configs(t[name].dataset_config_paths, t[name].data_dir)
        assert (spec.dir, spec.entry.reward_scale, spec.entry.episode_sparsity) == (d.resolve(), 7.5, sparsity)
        assert spec.entry.group == "go2_walking_velocity"
    assert len({c.name for c in t.values()}) == len(t)


def test_plan_needs_only_the_studied_robots_and_familys_teachers(tmp_path, monkeypatch):
    """A study of Go2 `velocity` runs where another robot's or family's teachers are absent (a device call's trimmed
    carry once stopped a study there); its own robot's missing teacher is still a one-line error."""
    from types import SimpleNamespace

    import go2bench.pipeline.config as pc
    from go2bench.core.config import ConfigError
    from go2bench.histories.names import metadata_path

    d = write_synthetic_dataset(tmp_path, "go2_velocity", n_histories=1, steps=100, env_id="Go2Walk-v0")
    meta = json.loads(metadata_path(d).read_text())
    metadata_path(d).write_text(json.dumps({**meta, "family": "velocity", "collection": {"max_episode_steps": 500}}))
    args = study.parse_args(["--dataset", str(d), "--budget-s", "1", "--max-steps", "4", "--variants", "baseline"])
    real = pc.task_spec

    def zoo_without(*missing):
        def spec(env_id):
            return SimpleNamespace(zoo_dir=tmp_path / "empty") if env_id in missing else real(env_id)
        return spec

    monkeypatch.setattr(pc, "task_spec", zoo_without("MiniCheetahWalk-v0"))
    (run,) = study.plan(args, study.dataset_info(d, None), tmp_path / "w")
    assert run["name"] == "baseline"
    monkeypatch.setattr(pc, "task_spec", zoo_without("Go2Walk-v0"))
    with pytest.raises(ConfigError, match="Go2Walk-v0 has no shipped privileged teacher of the velocity family"):
        study.plan(args, study.dataset_info(d, None), tmp_path / "w2")


def test_a_work_folder_trained_on_another_dataset_is_an_error_not_reused(tmp_path):
    """Two studies into one --work folder (the device script's fixed folder did this once): the second found
    'baseline/final.pt' and kept the FIRST dataset's model. A run folder trained otherwise is now an error."""
    from dataclasses import replace

    from go2bench.core.config import ConfigError, to_dict

    d = write_synthetic_dataset(tmp_path, "go2_velocity", n_histories=1, steps=100, env_id="Go2Walk-v0")
    args = study.parse_args(["--dataset", str(d), "--budget-s", "1", "--variants", "baseline"])
    (run,) = study.plan(args, study.dataset_info(d, "velocity"), tmp_path / "w")
    run_dir = Path(run["train"].out_dir) / run["train"].name
    run_dir.mkdir(parents=True)
    config = run_dir / "config.json"
    # a continuation (other cap, resumed, other loader count) is the same training
    config.write_text(json.dumps({"train_config": to_dict(replace(run["train"], max_minutes=1.5, resume=True,
                                                                       num_workers=7))}))
    study._check_same_training(run)
    config.write_text(json.dumps({"train_config": to_dict(replace(run["train"], data_dir="/elsewhere/dynamics"))}))
    with pytest.raises(ConfigError, match=r"config\.json: baseline was trained with other data_dir "
                                          r"\(data_dir='/elsewhere/dynamics'\); give this study another --work"):
        study._check_same_training(run)


# ------------------------------------------------------------------------------------- training seeds
table = load_benchmark("family_study_table")
STUDIES = ROOT / "benchmarks/results"
REPLICATES = STUDIES / "family_study_replicates/mini_cheetah_velocity/study.json"


def _seed_row(name, seed, values, status="done", reference=False):
    """A per-seed row whose per-trial scores are ``values`` (eval seeds x thetas), one episode each."""
    N = np.asarray(values, dtype=float)[:, :, None]
    m = {k: {"iqm": float(trim_mean(x.reshape(-1), 0.25))} for k, x in table.metric_matrices(N).items()}
    return {"name": name, "seed": seed, "status": status, "what": name, "reference": reference, "steps": 10,
            "metrics": m, "trials": {"eval_seeds": list(range(N.shape[0])), "task_ids": [f"t{j}" for j in range(N.shape[1])],
                                     "normalized": N.tolist()}}


def test_pooled_iqm_and_interval_against_hand_computations():
    # pooled IQM: the 25% trimmed mean of the per-trial scores of both seeds together: {0.1, 0.2, 0.4, 0.9} -> 0.3
    (row,) = table.group_rows([_seed_row("v", 0, [[0.1, 0.9]]), _seed_row("v", 1, [[0.4, 0.2]])], reps=500)
    assert row["metrics"]["final"]["iqm"] == pytest.approx(0.3) and row["pooled_seeds"] == [0, 1]
    # seeds are resampled: seed a scores 0.2 everywhere, seed b 0.6; replicates {a,a}, {a,b}, {b,b} give 0.2, 0.4,
    # 0.6 with chances 1/4, 1/2, 1/4, so the 2.5% and 97.5% points are 0.2 and 0.6 (theta resampling alone: width 0)
    x = np.stack([np.full((1, 2), 0.2), np.full((1, 2), 0.6)])
    assert table.pooled_aggregate(x)["ci95_pooled"] == pytest.approx([0.2, 0.6])
    # one theta draw shared by the seeds (crossed): three identical seeds over thetas scoring 0 and 1 give 0 or 1
    # with chance 1/4 each (both thetas drawn alike); thetas drawn per seed would make that 1/64 and narrow it
    same = np.stack([[[0.0, 1.0]]] * 3)
    assert table.pooled_aggregate(same)["ci95_pooled"] == pytest.approx([0.0, 1.0])


def test_one_seed_pools_to_the_evaluators_own_interval():
    res = json.loads((GPU_RESULTS / "vintix_Go2Walk-v0.json").read_text())
    N = np.asarray(table.trial_scores(res)["normalized"])
    for name in ("zero_shot", "final", "auc"):
        got = table.pooled_aggregate(table.metric_matrices(N)[name][None])
        assert got["iqm"] == pytest.approx(res["family"][name]["iqm"], abs=1e-12)
        assert got["ci95_pooled"] == pytest.approx(res["family"][name]["ci95_thetas"], abs=1e-12)


def test_final_minus_baseline_pairs_seeds_and_a_missing_seed_is_marked():
    """Baseline seeds 0,1,2 score 0.5, 0.3, 0.1; the variant's 0 and 1 score 0.2 more each, its seed 2 was cut."""
    rows = [_seed_row("baseline", s, np.full((2, 2), b)) for s, b in ((0, 0.5), (1, 0.3), (2, 0.1))]
    rows += [_seed_row("v", 0, np.full((2, 2), 0.7)), _seed_row("v", 1, np.full((2, 2), 0.5)),
             _seed_row("v", 2, np.full((2, 2), 0.9), status="NOT DONE: training cut short at step 3 of 10"),
             _seed_row("teacher-blind", None, np.full((2, 2), 0.6), status="reference", reference=True)]
    base, v, ref = table.group_rows(rows, reps=300)
    assert v["pooled_seeds"] == [0, 1] and v["metrics"]["final"]["iqm"] == pytest.approx(0.6)
    d = v["final_minus_baseline"]  # 0.6 - 0.4 on seeds 0 and 1 (not 0.6 - 0.3 against all three baseline seeds)
    assert d["value"] == pytest.approx(0.2) and d["baseline_seeds"] == [0, 1]
    assert d["ci95_pooled"] == pytest.approx([0.2, 0.2])  # paired: every replicate draws the same seeds for both
    assert ref["final_minus_baseline"]["value"] == pytest.approx(0.6 - 0.3)
    assert ref["final_minus_baseline"]["baseline_seeds"] == [0, 1, 2]
    lines = table.make_seeds_table([base, v, ref]).splitlines()
    assert lines[2].startswith("| baseline | done (s0, s1, s2) | 10 | ") and "| 0.50 / 0.30 / 0.10 | +0.00 |" in lines[2]
    assert lines[3].startswith("| v | s0 done; s1 done; s2 NOT DONE: training cut short at step 3 of 10 | 10 | ")
    assert "| 0.70 / 0.50 / 0.90 (cut) | +0.20 [+0.20, +0.20] (s0, s1) |" in lines[3]
    lo, hi = ref["final_minus_baseline"]["ci95_pooled"]  # 0.6 minus a baseline drawn from 0.5, 0.3, 0.1 seeds
    assert 0.1 - 1e-12 <= lo < 0.3 < hi <= 0.5 + 1e-12
    assert lines[4].endswith(f"| - | +0.30 [{lo:+.2f}, {hi:+.2f}] (vs s0, s1, s2) | teacher-blind |")


@pytest.mark.parametrize("path", sorted(STUDIES.glob("family_study*/*/study.json")), ids=lambda p: p.parts[-3])
def test_committed_studies_load_and_render_as_written(path):
    """Each study's table, rendered again from its rows, is the Markdown written when it was measured."""
    data = table.load_study(path)
    assert table.render(data) == data["markdown"]
    if data["format"] == table.FORMAT_1:
        assert study.make_table(data["rows"]) == data["markdown"]


def test_replicate_table_is_its_sources_combined():
    """The committed replicate table: regenerated from its sources, and its baseline against a reading of the
    results files with scipy (per-trial final = mean of the last 3 episodes, all seeds' trials together)."""
    data = table.load_study(REPLICATES)
    again = table.combine_studies([ROOT / s["path"] for s in data["sources"]])
    assert json.loads(json.dumps(again["rows"])) == data["rows"] and again["train_seeds"] == [0, 1, 2]
    base = data["rows"][0]
    finals = []
    for p in base["per_seed"]:
        trials = json.loads((ROOT / p["results"]).read_text())["family"]["trials"]
        finals += [np.mean(t["normalized"][-3:]) for t in trials]
    assert base["metrics"]["final"]["iqm"] == pytest.approx(trim_mean(finals, 0.25), abs=1e-12)
    assert [p["seed"] for p in base["per_seed"]] == [0, 1, 2]
    assert {r["name"]: r["pooled_seeds"] for r in data["rows"][1:]} == {
        "episodic": [0], "baseline@noise-p0.3": [0], "baseline@hist-40k": [0], "teacher-blind": [None]}


def _write_study(folder: Path, seed: int, finals, **args):
    """A single-seed study (format 1) whose baseline row points at a results file of one eval seed x thetas."""
    folder.mkdir(parents=True)
    res = {"family": {"seeds": [0], "episodes": 1, "tasks": [{"id": f"t{j}"} for j in range(len(finals))],
                      "trials": [{"seed": 0, "task_id": f"t{j}", "normalized": [f]} for j, f in enumerate(finals)]}}
    (folder / "res.json").write_text(json.dumps(res))
    info = {"env_id": "MiniCheetahWalk-v0", "family": "velocity", "robot": "mini_cheetah"}
    row = {"name": "baseline", "status": "done", "what": "b", "reference": False, "steps": 10,
           "train_config": {"seed": seed, "lr": 3e-4, "name": "baseline", "out_dir": str(folder)},
           "results": str(folder / "res.json"), "metrics": study.scores(res, 50), "final_minus_baseline": 0.0}
    base_args = {"split": "test", "seeds": "0", "episodes": 1, "max_steps": 10, "set": [f"seed={seed}"],
                 "work": str(folder), "bootstrap_reps": 50}
    (folder / "study.json").write_text(json.dumps({"format": table.FORMAT_1, "dataset": str(folder),
                                                   "dataset_info": info, "rows": [row], "args": base_args | args}))
    return folder / "study.json"


def test_combine_refuses_mismatched_studies_in_one_line(tmp_path):
    a = _write_study(tmp_path / "a", 0, [0.1, 0.5])
    b = _write_study(tmp_path / "b", 1, [0.3, 0.7])  # training seed, --set seed and folders apart: replicates
    combined = study.main(["--combine", str(tmp_path / "out"), str(a), str(b)])
    assert combined["rows"][0]["pooled_seeds"] == [0, 1]
    assert combined["rows"][0]["metrics"]["final"]["iqm"] == pytest.approx((0.3 + 0.5) / 2)
    assert table.load_study(tmp_path / "out/mini_cheetah_velocity/study.json")["rows"] == json.loads(
        json.dumps(combined["rows"]))
    cases = {"episodes": (_write_study(tmp_path / "c", 1, [0.3, 0.7], episodes=2), r"differs from .* in episodes"),
             "twice": (_write_study(tmp_path / "d", 0, [0.3, 0.7]), r"baseline with training seed 0 is also in"),
             "set": (_write_study(tmp_path / "e", 1, [0.3, 0.7], set=["seed=1", "lr=0.1"]), r"differs from .* in set")}
    for name, (other, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            table.combine_studies([a, other])
    import subprocess
    import sys

    cli = subprocess.run([sys.executable, str(ROOT / "benchmarks/family_study.py"), "--combine", str(tmp_path / "x"),
                          str(a), str(cases["twice"][0])], capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr and not (tmp_path / "x").exists()
    assert cli.stderr.strip().count("\n") == 0 and cli.stderr.startswith("error: ") and "(variant, seed)" in cli.stderr
    f = _write_study(tmp_path / "f", 2, [0.3, 0.7])
    cfg = json.loads(f.read_text())
    cfg["rows"][0]["train_config"]["lr"] = 1e-3
    cfg["dataset_info"]["robot"] = "go2"
    f.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"differs from .* in dataset_info"):
        table.combine_studies([a, f])
    cfg["dataset_info"]["robot"] = "mini_cheetah"
    cfg["dataset_info"]["total_transitions"] = 5_248_092  # another collection of the same config
    f.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"differs from .* in dataset_info"):
        table.combine_studies([a, f])
    del cfg["dataset_info"]["total_transitions"]
    f.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"baseline was trained with other lr than in"):
        table.combine_studies([a, f])


def test_train_seeds_name_the_runs_and_keep_seed_0s_folder(tmp_path):
    from go2bench.core.config import ConfigError

    d = write_synthetic_dataset(tmp_path, "go2_velocity", n_histories=1, steps=100, env_id="Go2Walk-v0")
    info = study.dataset_info(d, "velocity")
    common = ["--dataset", str(d), "--budget-s", "1", "--variants", "baseline,dpt"]
    runs = study.plan(study.parse_args(common + ["--train-seeds", "0,2"]), info, tmp_path / "w")
    assert [(r["name"], r["seed"], r["train"].name, r["train"].seed) for r in runs] == [
        ("baseline", 0, "baseline", 0), ("baseline", 2, "baseline_s2", 2), ("dpt", 0, "dpt", 0), ("dpt", 2, "dpt_s2", 2)]
    today = study.plan(study.parse_args(common + ["--set", "seed=1"]), info, tmp_path / "w")  # no --train-seeds
    assert [(r["train"].name, r["train"].seed) for r in today] == [("baseline", 1), ("dpt", 1)]
    for bad, message in ((["--train-seeds", "0,1", "--set", "seed=1"], "--train-seeds only"),
                         (["--train-seeds", "0,x"], "comma-separated integers"), (["--train-seeds", "1,1"], "distinct")):
        with pytest.raises(ConfigError, match=message):
            study.plan(study.parse_args(common + bad), info, tmp_path / "w")


def test_docs_show_the_replicate_table_not_the_studies_it_combines():
    block = load_benchmark("readme_leaderboard")._family_studies()
    shown = [line.split("`")[-2] for line in block.splitlines() if line.startswith("**")]
    assert "benchmarks/results/family_study_replicates/mini_cheetah_velocity/study.json" in shown
    assert "benchmarks/results/family_study/mini_cheetah_velocity/study.json" in shown  # another collection: its own
    assert not [p for p in shown if "family_study_seed" in p or "family_study_datasets" in p]


def test_theta_breakdown_splits_trials_by_a_theta_component_as_scipy_does(tmp_path):
    """benchmarks/family_theta_breakdown.py: IQMs of the per-trial final (last 3 episodes) and episode 1 over the
    thetas below / at or above a threshold, recomputed here from the file's trials with scipy; the run's training
    seed read from its committed config; the JSON written."""
    tb = load_benchmark("family_theta_breakdown")
    path = GPU_RESULTS / "vintix_Go2Walk-v0.json"
    res = json.loads(path.read_text())
    got = tb.breakdown(res, "lin_vel_x", 0.4)
    theta = {t["id"]: t["theta"]["lin_vel_x"] for t in res["family"]["tasks"]}
    trials = res["family"]["trials"]
    hi = np.array([theta[t["task_id"]] >= 0.4 for t in trials])
    final = np.array([np.mean(t["normalized"][-3:]) for t in trials])
    first = np.array([t["normalized"][0] for t in trials])
    assert 0 < hi.sum() < len(hi)
    assert got["final_all"] == pytest.approx(res["family"]["final"]["iqm"], abs=1e-12)
    for key, x, m in (("final_below", final, ~hi), ("final_at_or_above", final, hi), ("zero_shot_below", first, ~hi),
                      ("zero_shot_at_or_above", first, hi)):
        assert got[key] == pytest.approx(trim_mean(x[m], 0.25), abs=1e-12), key
    assert tb._training_seed(path, res) == 0
    out = tmp_path / "b.json"
    assert tb.main(["--runs", str(path), str(path), "--reference", str(path), "--at", "0.4", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["training_seed"] for r in data["runs"]] == [0, 0] and data["reference"]["final_all"] == got["final_all"]
