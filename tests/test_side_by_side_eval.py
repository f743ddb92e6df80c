"""Agents side by side in one family scene: each agent's results equal its own evaluation's.

Go2, velocity family, 2 thetas x seeds (0, 1), 2 episodes of 30 steps; the payload is randomised at
every reset and the base pushed every 10 steps, so every env draws random numbers and a wrong stream
key (env ``a * n + i`` keyed as itself instead of as env i) changes its episodes. Two scenes are built
for the module: 4 envs (each agent alone) and 3 x 4 envs (random, blind teacher and the shipped Vintix
side by side). The CLI test builds two more small scenes (plain and privileged), the dynamics test three.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.envs.suites import load_suite
from go2bench.eval.family_protocol import (evaluate_family, evaluate_family_side_by_side, make_family_agent,
                                           make_family_sim)
from go2bench.eval.results import load_results
from go2bench.eval.side_by_side import SideBySideAgent

pytestmark = pytest.mark.slow  # builds its own Genesis scenes; the fast lane skips it

ENV, FAMILY, SPLIT = "Go2Walk-v0", "velocity", "test"
TRIALS, SEEDS, K, T = 2, (0, 1), 2, 30
N = TRIALS * len(SEEDS)
CONFIG = {"randomization": {"added_mass_range": [-1.0, 2.0], "push_interval_s": 0.2}}
SPECS = ["random", "teacher-blind", "vintix"]
REFS = {t.id: {"random": -0.5 + 0.1 * i, "privileged": 1.0 + 0.5 * i}
        for i, t in enumerate(load_suite(FAMILY, "go2").test[:TRIALS])}
ARGS = dict(trials=TRIALS, episodes=K, seeds=SEEDS, config=CONFIG, references=REFS, reference_cache=None,
            compute_references=False, progress=False, bootstrap_reps=200)


def sim_for(copies: int):
    return make_family_sim(ENV, FAMILY, SPLIT, TRIALS, SEEDS, config=CONFIG, max_episode_steps=T, copies=copies)


@pytest.fixture(scope="module")
def runs():
    """(alone, side by side): each agent's results evaluated alone and the three side by side."""
    alone_sim, shared_sim = sim_for(1), sim_for(len(SPECS))
    try:
        alone = [evaluate_family(make_family_agent(s, ENV, FAMILY), ENV, FAMILY, SPLIT, sim=alone_sim, agent_spec=s,
                                 **ARGS) for s in SPECS]
        beside = evaluate_family_side_by_side([make_family_agent(s, ENV, FAMILY) for s in SPECS], ENV, FAMILY, SPLIT,
                                              sim=shared_sim, agent_specs=SPECS, **ARGS)
        yield alone, beside, shared_sim
    finally:
        alone_sim.close()
        shared_sim.close()


def trial_arrays(res, key):
    return np.array([t[key] for t in res["family"]["trials"]])


def test_side_by_side_results_equal_each_agent_alone(runs):
    """Bitwise: the agents act on the same n rows as alone (fresh tensors) and the envs do not interact."""
    alone, beside, _ = runs
    for a, b, spec in zip(alone, beside, SPECS):
        assert b["agent_spec"] == spec
        for key in ("returns", "lengths", "falls", "normalized"):
            assert np.array_equal(trial_arrays(a, key), trial_arrays(b, key)), (spec, key)
        assert a["returns"] == b["returns"] and a["lengths"] == b["lengths"]
        assert a["env_steps"] == b["env_steps"]  # each agent's steps: those its own run took
        for m in ("zero_shot", "final", "auc"):
            assert a["family"][m] == b["family"][m]
    # the agents differ from one another (a test of slicing, not of three copies of one agent)
    assert len({tuple(trial_arrays(r, "returns").ravel()) for r in beside}) == len(SPECS)
    # falls and resets happened at different steps, so the envs' random draws were really keyed per env
    lengths = np.concatenate([trial_arrays(r, "lengths").ravel() for r in beside])
    assert lengths.min() < T == lengths.max()


def test_dynamics_family_side_by_side_equals_alone():
    """Per-env physics written from theta (payload, friction, per-leg strength, latency) lands on each agent's
    own envs: the dynamics family, 2 thetas x 1 seed, 2 agents, 2 episodes of 20 steps, pushes every 5 steps."""
    fam, config = "dynamics", {"randomization": {"push_interval_s": 0.1}}
    refs = {t.id: {"random": -1.0, "privileged": 1.0} for t in load_suite(fam, "go2").test[:2]}
    args = dict(trials=2, episodes=2, seeds=(3,), config=config, max_episode_steps=20, references=refs,
                reference_cache=None, compute_references=False, progress=False, bootstrap_reps=200)
    specs = ["random", "teacher-blind"]
    alone = [evaluate_family(make_family_agent(s, ENV, fam), ENV, fam, SPLIT, **args) for s in specs]
    beside = evaluate_family_side_by_side([make_family_agent(s, ENV, fam) for s in specs], ENV, fam, SPLIT, **args)
    for a, b in zip(alone, beside):
        assert np.array_equal(trial_arrays(a, "returns"), trial_arrays(b, "returns"))
        assert a["lengths"] == b["lengths"] and a["family"]["tasks"] == b["family"]["tasks"]
    assert not np.array_equal(trial_arrays(beside[0], "returns"), trial_arrays(beside[1], "returns"))


def test_stream_keys_of_the_tiled_scene_repeat_the_alone_scene(runs):
    """env a * n + i draws what env i draws alone: by hand on the shared scene, after seeding and setting keys."""
    _, _, sim = runs
    sim.seed(7)
    assert torch.equal(sim.env_index, torch.arange(3 * N))  # seed() resets the keys to the positions
    own = sim._uniform(0, 0.0, 1.0, 2)
    assert not torch.equal(own[:N], own[N:2 * N])
    sim.env_index = torch.arange(3 * N) % N
    tiled = sim._uniform(0, 0.0, 1.0, 2)
    assert torch.equal(tiled[:N], own[:N]) and torch.equal(tiled[N:2 * N], own[:N])
    assert torch.equal(sim._uniform(0, 0.0, 1.0, 2, envs_idx=torch.tensor([N + 1])), own[1:2])
    sim.seed(7)
    assert torch.equal(sim._uniform(0, 0.0, 1.0, 2), own)


def test_composite_agent_slices_and_names_the_failing_agent():
    class Rows:
        name = "rows"

        def __init__(self, value):
            self.value, self.seen = value, []

        def reset(self, num_envs, env_id, seed=None):
            self.seen.append(("reset", num_envs, seed))

        def act(self, obs, prev_reward, episode_start):
            assert obs.storage_offset() == 0  # a fresh tensor, as alone (an offset view may round differently)
            self.seen.append((obs[:, 0].tolist(), prev_reward.tolist(), episode_start.tolist()))
            return torch.full((obs.shape[0], 12), self.value)

    a, b = Rows(0.1), Rows(float("nan"))
    both = SideBySideAgent([a, Rows(0.2)], 2)
    with pytest.raises(ValueError, match="need 4 envs, got 6"):
        both.reset(6, ENV, 0)
    both.reset(4, ENV, 3)
    obs = torch.arange(4.0)[:, None].repeat(1, 5)
    out = both.act(obs, torch.tensor([1.0, 2, 3, 4]), torch.tensor([True, False, False, True]))
    assert out.shape == (4, 12) and out[:2].eq(0.1).all() and out[2:].eq(0.2).all()
    assert a.seen == [("reset", 2, 3), ([0.0, 1.0], [1.0, 2.0], [True, False])]
    bad = SideBySideAgent([a, b], 2)
    bad.reset(4, ENV, 0)
    from go2bench.agents.registry import AgentError
    with pytest.raises(AgentError, match="agent 'rows' failed in act\\(\\).*NaN"):
        bad.act(obs, torch.zeros(4), torch.ones(4, dtype=torch.bool))


def test_cli_mixed_kinds_side_by_side_by_default(runs, tmp_path):
    """The privileged teacher shares the scene: it is built privileged and the plain agents read the observation
    without the theta block; their results equal their runs alone in a plain scene, bit for bit."""
    alone, _, _ = runs
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps(REFS))
    cfg = tmp_path / "walk.yaml"
    cfg.write_text("randomization:\n  added_mass_range: [-1.0, 2.0]\n  push_interval_s: 0.2\n")
    folder = tmp_path / "all"
    r = CliRunner().invoke(__import__("go2bench.cli", fromlist=["main"]).main, [
        "eval", "--agent", "random", "--agent", "teacher-privileged", "--agent", "teacher-blind", "--env", ENV,
        "--family", FAMILY, "--trials", str(TRIALS), "--seeds", "0,1", "--episodes", str(K), "--max-episode-steps",
        str(T), "--config", str(cfg), "--references", str(refs), "--no-measure-references", "--bootstrap-reps", "200",
        "--no-progress", "--out", str(folder)])
    assert r.exit_code == 0, r.output
    assert "side by side with 2 other agent(s) in 12 envs" in r.output
    res = {s: load_results(folder / f"{s}.json") for s in ("random", "teacher-privileged", "teacher-blind")}
    for spec, a in zip(SPECS[:2], alone[:2]):
        assert np.array_equal(trial_arrays(a, "returns"), trial_arrays(res[spec], "returns")), spec
    p = {s: v["process"] for s, v in res.items()}
    assert (p["random"]["side_by_side"], p["random"]["scene_agents"], p["random"]["scene_envs"]) == (True, 3, 3 * N)
    assert p["random"]["scene_built_for_this_agent"] and not p["teacher-blind"]["scene_built_for_this_agent"]
    assert p["teacher-blind"]["scene_build_s"] == p["random"]["scene_build_s"] == p["teacher-privileged"]["scene_build_s"]
    assert (p["teacher-privileged"]["side_by_side"], p["teacher-privileged"]["scene_envs"]) == (True, 3 * N)
    assert res["teacher-privileged"]["config"]["privileged"] and not res["random"]["config"]["privileged"]
    assert [p[s]["agent_index"] for s in res] == [0, 1, 2] and all(v["agents"] == 3 for v in p.values())
    one = tmp_path / "privileged_alone.json"  # the privileged teacher alone in its own privileged scene
    r = CliRunner().invoke(__import__("go2bench.cli", fromlist=["main"]).main, [
        "eval", "--agent", "teacher-privileged", "--env", ENV, "--family", FAMILY, "--trials", str(TRIALS), "--seeds",
        "0,1", "--episodes", str(K), "--max-episode-steps", str(T), "--config", str(cfg), "--references", str(refs),
        "--no-measure-references", "--bootstrap-reps", "200", "--no-progress", "--out", str(one)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(trial_arrays(load_results(one), "returns"), trial_arrays(res["teacher-privileged"], "returns"))
