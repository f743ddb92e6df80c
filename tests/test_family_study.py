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
