"""Registration, import cost and the CLI group: checked in fresh interpreters where it matters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import go2bench
from go2bench.cli import main


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_is_cheap_and_registers_without_genesis():
    r = _run(
        "import sys, time, json; t = time.perf_counter(); import go2bench, gymnasium; "
        "dt = time.perf_counter() - t; "
        "print(json.dumps({'dt': dt, 'genesis': 'genesis' in sys.modules, 'torch': 'torch' in sys.modules, "
        "'ids': [i for i in ('Go2Walk-v0', 'MiniCheetahWalk-v0') if i in gymnasium.registry]}))"
    )
    assert r["ids"] == ["Go2Walk-v0", "MiniCheetahWalk-v0"]
    assert not r["genesis"] and not r["torch"]
    assert r["dt"] < 2.0


def test_module_prefixed_ids_resolve_in_a_fresh_interpreter():
    """gymnasium imports go2bench for a ``go2bench:`` id (make and make_vec look ids up this way); no scene built."""
    r = _run(
        "import json, sys, gymnasium; from gymnasium.envs.registration import _find_spec; "
        "assert 'go2bench' not in sys.modules; "
        "s = [_find_spec(f'go2bench:{i}') for i in ('Go2Walk-v0', 'MiniCheetahWalk-v0')]; "
        "print(json.dumps({'imported': 'go2bench' in sys.modules, 'ids': [x.id for x in s], "
        "'entry': [str(x.entry_point) for x in s], 'vector_entry': [str(x.vector_entry_point) for x in s], "
        "'steps': [x.max_episode_steps for x in s]}))"
    )
    assert r["imported"] and r["ids"] == ["Go2Walk-v0", "MiniCheetahWalk-v0"] and r["steps"] == [1000, 1000]
    assert all(e.endswith("WalkEnv") for e in r["entry"]) and all(e.endswith("WalkVectorEnv") for e in r["vector_entry"])


@pytest.mark.slow  # two scenes: a second after the session's first build, ~25 s alone
def test_module_prefixed_ids_work_for_make_and_make_vec():
    """The same ids through make and make_vec, in this process (scenes after the first build in a second)."""
    import gymnasium

    e = gymnasium.make("go2bench:Go2Walk-v0")
    v = gymnasium.make_vec("go2bench:MiniCheetahWalk-v0", num_envs=3)
    try:
        o, _ = e.reset(seed=0)
        ov, _ = v.reset(seed=0)
        r = {"single": type(e.unwrapped).__name__, "obs": list(o.shape), "vec": type(v.unwrapped).__name__,
             "vobs": list(ov.shape), "n": v.num_envs, "steps": e.spec.max_episode_steps,
             "mode": v.metadata["autoreset_mode"].name}
    finally:
        e.close()
        v.close()
    assert r == {
        "single": "WalkEnv",
        "obs": [33],
        "vec": "WalkVectorEnv",
        "vobs": [3, 33],
        "n": 3,
        "steps": 1000,
        "mode": "SAME_STEP",
    }


def test_cli_version_and_envs_listing():
    runner = CliRunner()
    v = runner.invoke(main, ["--version"])
    assert v.exit_code == 0 and go2bench.__version__ in v.output
    r = runner.invoke(main, ["envs"])
    assert r.exit_code == 0, r.output
    assert "Go2Walk-v0" in r.output and "MiniCheetahWalk-v0" in r.output
    assert "(33,)" in r.output and "(12,)" in r.output
    full = runner.invoke(main, ["envs", "--obs-mode", "full"])
    assert "(45,)" in full.output


def test_python_m_go2bench_cli_runs_the_command_with_every_subcommand():
    """The pipeline starts `python -m go2bench.cli collect|eval` processes where a backend or GPU needs them."""
    out = subprocess.run([sys.executable, "-m", "go2bench.cli", "--help"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    listed = {line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {"envs", "rollout", "teach", "collect", "data", "train", "eval", "leaderboard", "video", "pipeline",
                      "export"}
