"""Several agents in one `go2bench eval` call: each agent's results equal a call with it alone (bit-identical
returns), scenes are built once per kind, the --out folder holds one JSON per agent and an index.

Micro scale on the CPU (2 thetas or envs, 1-2 seeds, 2 episodes of 30 steps); every call builds its own
scenes, so the module is slow.
"""

from __future__ import annotations

import hashlib
import json
import re
import types

import numpy as np
import pytest
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.envs.suites import load_suite
from go2bench.eval import family_reference as fr
from go2bench.eval.agent_outputs import INDEX_FORMAT, INDEX_NAME, agent_label, read_index
from go2bench.eval.results import load_results


ENV = "Go2Walk-v0"
MICRO = ["--episodes", "2", "--max-episode-steps", "30", "--no-progress"]


def invoke(*args):
    r = CliRunner().invoke(main, ["eval", *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_agent_labels_are_file_names():
    assert agent_label("random") == "random"
    assert agent_label("vintix:runs/fam/vintix-episodic/final.pt") == "vintix_runs_fam_vintix-episodic_final.pt"
    assert agent_label("../x y") == "x_y"
    spec = "vintix:/" + "a" * 200 + "/final.pt"
    long = agent_label(spec)  # the end of the path and a hash of the whole spec
    assert len(long) <= 80 and long.endswith("_final.pt-" + hashlib.sha256(spec.encode()).hexdigest()[:8])
    assert long.startswith(spec.split(":")[0] + "_")  # the agent's name kept
    ckpt = "/work/experiments/benchmarks/results/gpu_family_new_robots/models/dynamics/vintix.pt"  # both too long
    a, b = agent_label(f"vintix:{ckpt}"), agent_label(f"vintix-nocontext:{ckpt}")
    assert a.startswith("vintix_") and b.startswith("vintix-nocontext_") and a != b  # (the name was cut off before)
    assert a.endswith("_models_dynamics_vintix.pt-" + hashlib.sha256(f"vintix:{ckpt}".encode()).hexdigest()[:8])
    assert max(len(a), len(b)) <= 80 and all(re.fullmatch(r"[A-Za-z0-9._-]+", x) for x in (a, b))


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_family_agents_in_one_call_equal_each_alone(tmp_path):
    """--sequential (side by side, the default, is tests/test_side_by_side_eval.py's)."""
    test = load_suite("velocity", "go2").test[:2]
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"format": fr.REFERENCE_FORMAT, "max_episode_steps": 30, "returns": {
        t.id: {"random": -0.5, "privileged": 1.0 + i} for i, t in enumerate(test)}}))
    fam = ["--env", ENV, "--family", "velocity", "--trials", "2", "--seeds", "0,1", "--references", str(refs),
           "--no-measure-references", *MICRO]
    folder = tmp_path / "all"
    # random (plain scene, built), the privileged teacher (privileged scene, built), the blind default-task
    # teacher (plain scene again, shared after the random agent fell and reset at other steps)
    out = invoke("--agent", "random", "--agent", "teacher-privileged", "--agent", "teacher", *fam, "--sequential",
                 "--out", str(folder))
    assert "agent 3/3: scene build" in out and "(shared)" in out
    alone = tmp_path / "teacher.json"
    invoke("--agent", "teacher", *fam, "--out", str(alone))

    files = read_index(folder)
    assert list(files) == ["random", "teacher-privileged", "teacher"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([INDEX_NAME, "random.json", "teacher-privileged.json",
                                                               "teacher.json"])
    index = json.loads((folder / INDEX_NAME).read_text())
    assert index["format"] == INDEX_FORMAT and index["mode"] == "family" and index["env"] == ENV
    res = {spec: load_results(path) for spec, path in files.items()}
    a, b = res["teacher"], load_results(alone)
    assert [t["returns"] for t in a["family"]["trials"]] == [t["returns"] for t in b["family"]["trials"]]
    assert a["returns"] == b["returns"] and a["lengths"] == b["lengths"]
    assert a["family"]["final"] == b["family"]["final"]
    # scene kinds: random and teacher share the plain scene, the privileged teacher has its own
    p = {spec: r["process"] for spec, r in res.items()}
    assert [p[s]["scene_built_for_this_agent"] for s in files] == [True, True, False]
    assert p["teacher"]["scene_build_s"] == p["random"]["scene_build_s"] > 0
    assert p["teacher"]["scene_builds_s"] == pytest.approx(p["random"]["scene_build_s"]
                                                           + p["teacher-privileged"]["scene_build_s"], abs=2e-3)
    assert res["teacher-privileged"]["config"]["privileged"] and not a["config"]["privileged"]
    assert all(r["process"]["eval_s"] > 0 and r["process"]["agents"] == 3 for r in res.values())
    assert "process" not in b or b["process"]["agents"] == 1


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_default_task_agents_in_one_call_equal_each_alone(tmp_path):
    args = ["--env", ENV, "--num-envs", "2", "--seeds", "0,1", *MICRO]
    folder = tmp_path / "runs"
    invoke("--agent", "random", "--agent", "teacher", *args, "--out", str(folder))
    invoke("--agent", "teacher", *args, "--out", str(tmp_path / "teacher.json"))
    a, b = load_results(folder / "teacher.json"), load_results(tmp_path / "teacher.json")
    assert a["per_seed"][1]["returns"] == b["per_seed"][1]["returns"] and a["returns"] == b["returns"]
    assert a["normalized_score"] == b["normalized_score"]
    assert not a["process"]["scene_built_for_this_agent"]
    assert (a["process"]["side_by_side"], a["process"]["scene_envs"], a["num_envs"]) == (True, 4, 2)  # the default


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_robot_split_agents_in_one_call_equal_each_alone(tmp_path):
    args = ["--robots-split", "robots-v0", "--held-out", "a1", "--num-envs", "2", "--seeds", "0",
            "--bootstrap-reps", "200", *MICRO]
    folder = tmp_path / "runs"
    invoke("--agent", "random", "--agent", "teacher", *args, "--out", str(folder))
    invoke("--agent", "teacher", *args, "--out", str(tmp_path / "teacher.json"))
    a, b = load_results(folder / "teacher.json"), load_results(tmp_path / "teacher.json")
    # side by side (the default) in a 4-env scene: A1's CPU simulation rounds differently with the scene's batch size
    # (about 5e-8 on a return between 2 and 4 envs of one agent alone), so equal to float32 rounding, not bitwise
    assert a["env"] == "A1Walk-v0" and a["process"]["side_by_side"] and a["process"]["scene_envs"] == 4
    np.testing.assert_allclose(a["returns"], b["returns"], rtol=1e-6)
    assert a["robot_split"]["final"]["iqm"] == pytest.approx(b["robot_split"]["final"]["iqm"], rel=1e-6)
    invoke("--agent", "random", "--agent", "teacher", *args, "--sequential", "--out", str(tmp_path / "seq"))
    assert load_results(tmp_path / "seq" / "teacher.json")["returns"] == b["returns"]  # one after the other: bitwise


@pytest.mark.parametrize("args, message", [
    (["--agent", "random", "--agent", "random"], "--agent random is given twice"),
    (["--agent", "random", "--agent", "teacher", "--out", "x.json"], "names a folder"),
    (["--agent", "random", "--agent", "teacher", "--video", "v.mp4"], "--video records one agent"),
    (["--agent", "a:b", "--agent", "a/b"], "would both be written to a_b.json"),
    (["--robots-split", "robots-v0", "--held-out", "a1", "--trials", "2"], "--trials do not go with --robots-split"),
])
def test_bad_several_agent_calls_are_one_line_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    if "a:b" in args:
        args = [*args, "--out", "folder"]
    r = CliRunner().invoke(main, ["eval", *args, "--no-progress"])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_pipeline_family_eval_runs_one_process_per_family_and_env(tmp_path, monkeypatch):
    """eval.jobs > 1: one `go2bench eval` process evaluates both agents of (velocity, Go2); their results land at
    the pipeline's usual paths, with the process's timing.  The process's command runs in this process
    (go2bench.testing.start_cli_here: no fresh Genesis import); the command line is what is checked."""
    from go2bench.pipeline import family as family_stage
    from go2bench.pipeline import pipeline_config
    from go2bench.pipeline.family import FAMILY_DIR, _eval
    from go2bench.pipeline.stages import CLI
    from go2bench.testing import start_cli_here

    started = []
    monkeypatch.setattr(family_stage, "start_process", start_cli_here(started))
    cfg = pipeline_config("cpu", ["eval.jobs=2", "family.trials=2", "family.seeds=[0]", "family.episodes=2",
                                  "family_collect.max_episode_steps=20"])
    test = load_suite("velocity", "go2").test[:2]
    sha = fr.walk_config_hash(None)
    cache = fr.cache_path(tmp_path / FAMILY_DIR / "references", ENV, "velocity-v0", 20, sha)
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"format": fr.REFERENCE_FORMAT, "max_episode_steps": 20, "walk_config_sha256": sha,
                                 "returns": {t.id: {"random": -0.5, "privileged": 1.0} for t in test}}))
    results = tmp_path / FAMILY_DIR / "results" / "velocity"
    jobs = [{"family": "velocity", "env": ENV, "agent": a, "spec": a, "path": results / f"{a}_{ENV}.json"}
            for a in ("random", "teacher")]
    _eval(cfg, tmp_path, jobs)
    (proc,) = started  # one process for (velocity, Go2), holding both agents
    assert proc.cmd[:len(CLI) + 1] == [*CLI, "eval"] and proc.returncode == 0
    assert [proc.cmd[i + 1] for i, a in enumerate(proc.cmd) if a == "--agent"] == ["random", "teacher"]
    assert (tmp_path / FAMILY_DIR / "eval.log").read_text().strip()  # the command's output went to the log
    assert not (results / f".eval-{ENV}").exists()  # the staging folder was emptied into the usual paths
    assert sorted(p.name for p in results.iterdir()) == [f"random_{ENV}.json", f"teacher_{ENV}.json"]
    res = [load_results(j["path"]) for j in jobs]
    assert [r["agent_spec"] for r in res] == ["random", "teacher"]
    assert [r["process"]["scene_built_for_this_agent"] for r in res] == [True, False]
    assert all(r["process"]["agents"] == 2 and len(r["family"]["trials"]) == 2 for r in res)
    # side by side in one scene of 2 agents x 2 trials
    assert all((r["process"]["side_by_side"], r["process"]["scene_envs"]) == (True, 4) for r in res)


def test_pipeline_eval_processes_hold_every_agent_of_an_env(tmp_path):
    """The eval stage's processes: one per env, all its agents, --out a folder (a file for a single agent)."""
    from go2bench.cli.eval import eval_command
    from go2bench.pipeline import pipeline_config
    from go2bench.pipeline.stages import _Evaluator, _Job, grouped

    cfg = pipeline_config("cpu", ["eval.jobs=2"])
    ev = _Evaluator(cfg, tmp_path)
    jobs = [_Job(a, a, env, tmp_path / "results" / f"{a}_{env}.json") for a in ("random", "teacher")
            for env in (ENV, "A1Walk-v0")]
    groups = grouped(jobs, lambda j: j.env)
    assert [[(j.agent, j.env) for j in g] for g in groups] == [[("random", ENV), ("teacher", ENV)],
                                                               [("random", "A1Walk-v0"), ("teacher", "A1Walk-v0")]]
    cmd = ev._command(groups[0])
    params = eval_command.make_context("eval", cmd[cmd.index("eval") + 1:]).params
    assert params["agent_specs"] == ("random", "teacher") and params["out"] == str(tmp_path / "results" / f".eval-{ENV}")
    # side by side (the command's default), normalised afterwards by the stage when references are measured
    assert not params["sequential"] and params["random_score"] is None and params["num_envs"] == cfg.eval.num_envs
    one = ev._command(groups[0][1:])
    assert one[one.index("--out") + 1] == str(jobs[2].path)


def test_start_process_runs_the_cli_in_a_child_with_its_log_and_gpu(tmp_path):
    """The real start_process (tests of the stages that start processes run the command here instead): a child
    interpreter running the CLI, output appended to the log file, CUDA_VISIBLE_DEVICES set for a GPU."""
    import sys

    from go2bench import __version__
    from go2bench.pipeline.stages import CLI, start_process, wait_all

    log = tmp_path / "eval.log"
    log.write_text("earlier\n")
    wait_all([("version", start_process([*CLI, "--version"], log))])
    gpu = [sys.executable, "-c", "import os; print('gpu', os.environ['CUDA_VISIBLE_DEVICES'])"]
    wait_all([("gpu", start_process(gpu, log, gpu=1))])
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier" and __version__ in lines[1] and lines[2] == "gpu 1"
    with pytest.raises(RuntimeError, match=r"failing \(exit 3\)"):
        wait_all([("failing", start_process([sys.executable, "-c", "raise SystemExit(3)"], log))])


def test_every_agent_is_made_before_any_scene_is_built():
    """A bad second agent fails before the first one's scene is built and evaluated (minutes on a GPU)."""
    from go2bench.eval.multi_agent import evaluate_agents

    calls = []

    def make(spec):
        calls.append(("make", spec))
        if spec == "bad":
            raise ValueError("unknown agent 'bad'")
        return spec

    def build(kind):
        calls.append(("build", kind))
        return types.SimpleNamespace(close=lambda: calls.append(("close", kind)))

    with pytest.raises(ValueError, match="unknown agent 'bad'"):
        evaluate_agents(["good", "bad"], make, lambda a: "k", build, lambda a, s, sim: {"agent": s})
    assert calls == [("make", "good"), ("make", "bad")]
    out = evaluate_agents(["a", "b"], make, lambda a: "k", build, lambda a, s, sim: {"agent": s})
    assert [r["agent"] for r in out] == ["a", "b"] and calls[2:] == [("make", "a"), ("make", "b"), ("build", "k"),
                                                                     ("close", "k")]
    assert [r["process"]["scene_built_for_this_agent"] for r in out] == [True, False]


def test_results_folder_is_made_at_the_first_result_only(tmp_path):
    """A run that fails before its first result leaves no empty --out folder; an impossible folder fails at once."""
    from go2bench.eval.agent_outputs import ResultsFolder

    out = tmp_path / "a" / "b"
    ResultsFolder(out, ["random", "teacher"], "default", "Go2Walk-v0")
    assert not (tmp_path / "a").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match="not a writable folder"):
        ResultsFolder(tmp_path / "afile" / "r", ["random", "teacher"], "default", "Go2Walk-v0")
