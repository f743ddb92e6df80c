"""The task-family evaluation protocol: per-theta normalisation, IQM and stratified bootstrap, common
random numbers, theta held within a trial, reference returns, the results schema and the CLI.

One Go2 scene of the velocity family (2 thetas x 2 seeds, 60-step episodes, payload randomised at
every reset so that resets draw numbers) is built for the module; the CLI test builds two more
small scenes (2 envs, 30-step episodes).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.agents.random import RandomAgent
from go2bench.envs import sim_support
from go2bench.envs.suites import load_suite
from go2bench.envs.walk_sim import make_walk_sim
from go2bench.eval import family_reference as fr
from go2bench.eval.family_protocol import evaluate_family, trial_layout, wants_privileged
from go2bench.eval.iqm import aggregate, bootstrap_distribution, iqm, percentile_interval
from go2bench.eval.results import FAMILY_RESULTS_FORMAT, ResultsError, load_results, save_results, validate_results
from go2bench.eval.stats import normalize_per_theta

pytestmark = pytest.mark.slow  # builds its own Genesis scenes; the fast lane skips it

ENV, FAMILY = "Go2Walk-v0", "velocity"
T, K = 60, 3
SEEDS = (0, 1)
CONFIG = {"randomization": {"added_mass_range": [-1.0, 2.0]}}
SUITE = load_suite(FAMILY, "go2")
TEST = SUITE.test[:2]
REFS = {t.id: {"random": -0.5 + 0.1 * i, "privileged": 1.0 + 0.5 * i} for i, t in enumerate(SUITE.test[:4])}


@pytest.fixture(scope="module")
def sim():
    specs = [("test", j) for j in trial_layout(len(TEST), SEEDS)[0]]
    s = make_walk_sim(ENV, num_envs=len(specs), max_episode_steps=T, config=CONFIG, family=FAMILY, tasks=specs)
    yield s
    s.close()


class StandAgent:
    """Zero actions: the robot stands until the time limit."""

    name = "stand"

    def reset(self, num_envs, env_id, seed=None):
        pass

    def act(self, obs, prev_reward, episode_start):
        return torch.zeros(obs.shape[0], 12)


def run(agent, sim, **kw):
    kw = {"trials": len(TEST), "episodes": K, "seeds": SEEDS, "config": CONFIG, "references": REFS,
          "reference_cache": None, "progress": False, "bootstrap_reps": 500, **kw}
    return evaluate_family(agent, ENV, FAMILY, "test", sim=sim, **kw)


# ---------------------------------------------------------------------------------- arithmetic
def test_per_theta_normalisation_by_hand():
    R = np.array([[[1.0, 3.0], [10.0, 20.0]], [[-1.0, 2.0], [30.0, 40.0]]])  # (seeds, thetas, episodes)
    N = normalize_per_theta(R, random_returns=[1.0, 10.0], privileged_returns=[3.0, 50.0])
    # theta 0: (r - 1) / 2; theta 1: (r - 10) / 40
    assert N.tolist() == [[[0.0, 1.0], [0.0, 0.25]], [[-1.0, 0.5], [0.5, 0.75]]]
    with pytest.raises(ValueError, match="theta 1: the privileged return 10.0 does not exceed"):
        normalize_per_theta(R, [1.0, 10.0], [3.0, 10.0])
    with pytest.raises(ValueError, match="one random and one privileged return per theta"):
        normalize_per_theta(R, [1.0], [3.0])


def test_iqm_by_hand():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # drops 1, 2 and 7, 8
    assert iqm([100, -50, 0, 1, 2, 3, 4, 5, 6, 7]) == pytest.approx((1 + 2 + 3 + 4 + 5 + 6) / 6)  # n=10: drops 2 each end
    assert iqm([5, 1, 9]) == 5.0  # int(0.75) = 0 dropped: the mean
    assert iqm(np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 8.0]]), axis=1).tolist() == [2.5, 0.0]
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(3).normal(size=(7, 11))
    assert iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25, axis=None))


def test_stratified_bootstrap_by_hand():
    # strata (thetas) A = {0, 4} and B = {8, 12}, two runs (seeds) each. A resample keeps both strata:
    # IQM of {a1, a2, b1, b2} = (max a + min b) / 2, so it is 4 (p 3/16), 6 (p 10/16) or 8 (p 3/16).
    scores = np.array([[0.0, 8.0], [4.0, 12.0]])
    dist = bootstrap_distribution(scores, reps=4000, seed=1)
    values, counts = np.unique(dist, return_counts=True)
    assert values.tolist() == [4.0, 6.0, 8.0]
    assert counts / 4000 == pytest.approx([3 / 16, 10 / 16, 3 / 16], abs=0.03)
    assert percentile_interval(dist) == (4.0, 8.0)
    out = aggregate(scores, reps=4000, seed=1)
    assert out["iqm"] == 6.0 and out["ci95"] == [4.0, 8.0] and out["mean"] == 6.0
    # seeded: the same seed gives the same interval
    assert aggregate(scores, reps=300, seed=7) == aggregate(scores, reps=300, seed=7)
    # one run per stratum: nothing to resample within a theta (zero width); resampling the thetas
    # gives IQM (= mean of 2) in {0, 5, 10} with p 1/4, 1/2, 1/4: the interval is [0, 10]
    one = aggregate(np.array([[0.0, 10.0]]), reps=4000, seed=2)
    assert one["ci95"] == [5.0, 5.0] and one["ci95_thetas"] == [0.0, 10.0]
    with pytest.raises(ValueError, match="finite"):
        aggregate(np.array([[np.nan, 1.0]]))


def test_bootstrap_agrees_with_rliable():
    """rliable (IQM with stratified bootstrap) as the reference implementation, when it is installed."""
    library = pytest.importorskip("rliable.library")
    metrics = pytest.importorskip("rliable.metrics")
    scores = np.random.default_rng(0).gamma(2.0, 0.4, size=(5, 12))  # (seeds, thetas)
    reps = 20000
    for task_bootstrap, key in ((False, "ci95"), (True, "ci95_thetas")):
        np.random.seed(0)  # rliable draws its resamples from NumPy's global generator
        point, interval = library.get_interval_estimates(
            {"a": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps, task_bootstrap=task_bootstrap,
            random_state=np.random.RandomState(0))  # (newer arch versions refuse random_state=None)
        ours = aggregate(scores, reps=reps, seed=0)
        assert ours["iqm"] == pytest.approx(float(point["a"][0]), abs=1e-12)
        lo, hi = interval["a"][:, 0]
        width = hi - lo
        assert ours[key][0] == pytest.approx(lo, abs=0.03 * width) and ours[key][1] == pytest.approx(hi, abs=0.03 * width)


# ---------------------------------------------------------------------------------- protocol
def test_agents_share_reset_draws_after_different_falls(sim, monkeypatch):
    """Two agents, different falls (so different envs reset together at different steps), identical
    per-env draws: every reset draws env i's payload from (seed, env, trial, episode) only."""
    draws: dict[int, list[float]] = {}
    original = sim_support.set_added_mass

    def spy(s, added_kg, envs_idx):
        for i, kg in zip(envs_idx.tolist(), added_kg.reshape(-1).tolist()):
            draws.setdefault(i, []).append(kg)
        return original(s, added_kg, envs_idx)

    monkeypatch.setattr(sim_support, "set_added_mass", spy)
    seen = {}
    for agent in (RandomAgent(0), StandAgent()):
        draws.clear()
        res = run(agent, sim)
        seen[agent.name] = ({i: d[:K] for i, d in draws.items()}, res)
    (rand_draws, rand_res), (stand_draws, stand_res) = seen["random"], seen["stand"]
    rand_len = np.array([t["lengths"] for t in rand_res["family"]["trials"]])
    stand_len = np.array([t["lengths"] for t in stand_res["family"]["trials"]])
    assert (stand_len == T).all() and (rand_len < T).any()  # the random agent falls, the standing one never
    assert sorted(rand_draws) == sorted(stand_draws) == list(range(len(TEST) * len(SEEDS)))
    for i in rand_draws:
        assert len(rand_draws[i]) == len(stand_draws[i]) == K and rand_draws[i] == stand_draws[i]
    flat = [kg for i in sorted(rand_draws) for kg in rand_draws[i]]
    assert len(set(flat)) == len(flat)  # fresh draws per env, seed and episode
    # the same (theta, seed) trial keeps its draws in a later run of the same layout
    draws.clear()
    run(RandomAgent(5), sim)
    assert {i: d[:K] for i, d in draws.items()} == rand_draws


def test_theta_is_held_across_the_episodes_of_a_trial(sim, monkeypatch):
    record: list[tuple[list[int], np.ndarray, list]] = []
    original = sim.reset

    def reset(mask=None):
        obs = original(mask)
        m = sim.all_envs if mask is None else mask
        record.append((m.nonzero().flatten().tolist(), sim.tasks.host.copy(), list(sim.tasks.ids)))
        return obs

    monkeypatch.setattr(sim, "reset", reset)
    res = run(RandomAgent(1), sim)
    layout = sim.tasks.layout
    per_env: dict[int, list] = {}
    for envs, host, ids in record:
        for i in envs:
            per_env.setdefault(i, []).append((ids[i], tuple(host[i])))
    thetas, seeds = trial_layout(len(TEST), SEEDS)
    for i, starts in per_env.items():
        task = TEST[thetas[i]]
        assert len(starts) >= K and set(starts) == {(task.id, task.vector(layout))}
    trials = res["family"]["trials"]
    assert [(t["task_id"], t["seed"], t["env"]) for t in trials] == [
        (TEST[j].id, s, i) for i, (j, s) in enumerate(zip(thetas, seeds))]
    assert res["format"] == FAMILY_RESULTS_FORMAT and res["config"]["family"] == FAMILY
    # the protocol itself refuses a run in which theta changes within a trial
    monkeypatch.setattr(sim, "reset", original)

    class Switcher(StandAgent):
        steps = 0

        def act(self, obs, prev_reward, episode_start):
            self.steps += 1
            if self.steps == T + 5:  # during every env's second episode
                sim.tasks.set(np.tile(layout.vector({"lin_vel_x": 0.05}), (sim.num_envs, 1)))
            return super().act(obs, prev_reward, episode_start)

    with pytest.raises(RuntimeError, match="theta was not held"):
        run(Switcher(), sim)


def test_results_schema_numbers_and_tracking(sim, tmp_path):
    res = run(StandAgent(), sim)
    fam = res["family"]
    R = np.array([t["returns"] for t in fam["trials"]])
    rand = np.array([REFS[t["task_id"]]["random"] for t in fam["trials"]])[:, None]
    priv = np.array([REFS[t["task_id"]]["privileged"] for t in fam["trials"]])[:, None]
    N = (R - rand) / (priv - rand)
    assert np.array([t["normalized"] for t in fam["trials"]]) == pytest.approx(N)
    by_seed = N.reshape(len(SEEDS), len(TEST), K)
    assert fam["zero_shot"]["iqm"] == pytest.approx(iqm(N[:, 0]))
    assert fam["final"]["iqm"] == pytest.approx(iqm(by_seed[:, :, -3:].mean(axis=2)))
    assert fam["auc"]["iqm"] == pytest.approx(iqm(N.mean(axis=1)))
    assert fam["per_episode"]["iqm"] == pytest.approx([iqm(N[:, k]) for k in range(K)])
    for m in ("zero_shot", "final", "auc"):
        lo, hi = fam[m]["ci95"]
        assert lo <= fam[m]["iqm"] + 1e-9 and fam[m]["iqm"] <= hi + 1e-9
    # the velocity target is theta: standing still, the x tracking error is |lin_vel_x| of the theta
    vx = np.array([TEST[j].theta["lin_vel_x"] for j in trial_layout(len(TEST), SEEDS)[0]])
    te = np.array([t["tracking_error"]["x"] for t in fam["trials"]])
    # (up to the sway of a robot settling with its random payload: |target - v| >= target - |v|)
    assert (te > 0.5 * vx[:, None]).all() and (te < vx[:, None] + 0.15).all()
    assert set(fam["tracking_error"]) == {"x", "y", "yaw"} and "tracking_lin_vel" in fam["reward_terms"]
    assert fam["references"]["returns"][TEST[0].id] == REFS[TEST[0].id]
    # saved and loaded through the schema; tampering is caught
    save_results(res, tmp_path / "r.json")
    assert load_results(tmp_path / "r.json") == json.loads(json.dumps(res))
    bad = json.loads(json.dumps(res))
    bad["family"]["trials"][1]["normalized"][0] += 0.5
    with pytest.raises(ResultsError, match=r"family\.trials\[1\]\.normalized"):
        validate_results(bad, "bad.json")
    bad = json.loads(json.dumps(res))
    bad["family"]["references"]["max_episode_steps"] = 1000
    with pytest.raises(ResultsError, match="same episode length"):
        validate_results(bad, "bad.json")


def test_unusable_references_stop_the_evaluation_before_it_runs(sim):
    class Never(StandAgent):
        def act(self, obs, prev_reward, episode_start):
            raise AssertionError("the agent ran")

    bad = {**REFS, TEST[1].id: {"random": 2.0, "privileged": 2.0}}
    with pytest.raises(ValueError, match=f"{TEST[1].id}: the privileged teacher's reference return 2.0 does not "
                                         r".*privileged teacher fails on it \(retrain it: docs/teachers.md\)"):
        run(Never(), sim, references=bad)
    with pytest.raises(ValueError, match="no reference returns for 2 task"):
        run(Never(), sim, references={}, compute_references=False)


def test_reference_returns_cache_cards_and_measurement(sim, tmp_path, monkeypatch):
    ids = [t.id for t in SUITE.test[:4]]
    specs = [("test", t.index) for t in SUITE.test[:4]]
    assert sim.num_envs == 4
    monkeypatch.setattr(fr, "load_privileged_teacher", lambda env_id, family, device="cpu": StandAgent())
    monkeypatch.setattr("go2bench.envs.walk_sim.make_walk_sim", lambda *a, **k: sim)
    monkeypatch.setattr(sim, "close", lambda: None)
    # one given value, the rest measured (privileged = the standing agent here) and cached
    given = {ids[0]: {"privileged": 99.0}}
    refs = fr.resolve_family_references(ENV, FAMILY, SUITE.name, ids, specs, T, config=CONFIG, given=given,
                                        cache_dir=tmp_path, episodes=1)
    assert refs.returns[ids[0]]["privileged"] == 99.0 and refs.sources[ids[0]]["privileged"] == "references given"
    assert all(refs.sources[t]["random"].startswith("measured") for t in ids)
    cache = fr.cache_path(tmp_path, ENV, SUITE.name, T, fr.walk_config_hash(CONFIG))
    stored = json.loads(cache.read_text())
    assert stored["max_episode_steps"] == T and set(stored["returns"]) == set(ids)
    assert "privileged" not in stored["returns"][ids[0]]  # given values are not cached
    again = fr.resolve_family_references(ENV, FAMILY, SUITE.name, ids[1:], specs[1:], T, config=CONFIG,
                                         cache_dir=tmp_path, compute=False)
    assert {t: again.returns[t] for t in ids[1:]} == {t: refs.returns[t] for t in ids[1:]}
    # another episode length or config: not the same references
    with pytest.raises(ValueError, match="no reference returns for 3 task"):
        fr.resolve_family_references(ENV, FAMILY, SUITE.name, ids[1:], specs[1:], T + 1, config=CONFIG,
                                     cache_dir=tmp_path, compute=False)
    with pytest.raises(ValueError, match="reference returns of 60-step episodes"):
        fr.read_reference_file(cache, max_episode_steps=1000)
    # model cards of the zoo (default config only), in the layouts the teachers may write
    import go2bench.envs.registry as registry

    monkeypatch.setattr(registry, "ZOO_DIR", tmp_path / "zoo")
    card = tmp_path / "zoo" / ENV / FAMILY / "privileged" / "model_card.json"
    card.parent.mkdir(parents=True)
    # what go2bench.teachers.task_eval writes: {"teacher": {...}, "random": {...}} and per_task_eval
    from go2bench.envs.walk_config import WalkConfig

    card.write_text(json.dumps({"max_episode_steps": 1000, "walk_config": WalkConfig().to_dict(),
                                "per_task_returns": {"teacher": {t: 7.0 for t in ids}, "random": {t: 0.5 for t in ids}},
                                "per_task_eval": {"max_episode_steps": T}}))
    from_card = fr.resolve_family_references(ENV, FAMILY, SUITE.name, ids, specs, T, cache_dir=None, compute=False)
    assert from_card.arrays(ids)[0].tolist() == [0.5] * 4 and from_card.arrays(ids)[1].tolist() == [7.0] * 4
    assert from_card.sources[ids[0]]["privileged"] == f"go2bench/zoo/{ENV}/{FAMILY}/privileged/model_card.json"
    assert fr.card_returns({"per_task_returns": {"teacher": {"a": 2.0}, "random": {"a": 1.0}}}, "privileged") == \
        fr.card_returns({"per_task_returns": {"a": {"random": 1.0, "privileged": 2.0}}}, "blind") == \
        {"random": {"a": 1.0}, "privileged": {"a": 2.0}}
    # a card measured in other episodes, or with another WalkConfig, is not used
    with pytest.raises(ValueError, match="no reference returns"):
        fr.resolve_family_references(ENV, FAMILY, SUITE.name, ids, specs, T + 1, cache_dir=None, compute=False)
    with pytest.raises(ValueError, match="no reference returns"):
        fr.resolve_family_references(ENV, FAMILY, SUITE.name, ids, specs, T, config=CONFIG, cache_dir=None,
                                     compute=False)


def test_privileged_agents_are_recognised_by_observation_size():
    class Obs:
        def __init__(self, dim):
            self.obs_dim = dim

    assert wants_privileged(Obs(33 + 3), ENV, "velocity", "noleak")
    assert not wants_privileged(Obs(33), ENV, "velocity", "noleak")
    assert not wants_privileged(RandomAgent(0), ENV, "velocity", "noleak")


# ---------------------------------------------------------------------------------- CLI
def test_cli_family_eval_micro_run(tmp_path):
    from go2bench.cli import main
    from go2bench.eval.leaderboard import make_leaderboard

    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"format": fr.REFERENCE_FORMAT, "max_episode_steps": 30, "returns": REFS}))
    out = {}
    for agent in ("random", "teacher"):
        out[agent] = tmp_path / f"{agent}.json"
        r = CliRunner().invoke(main, [
            "eval", "--agent", agent, "--env", ENV, "--family", FAMILY, "--split", "test", "--trials", "2",
            "--episodes", "2", "--seeds", "0", "--max-episode-steps", "30", "--references", str(refs),
            "--reference-cache", str(tmp_path / "cache"), "--no-measure-references", "--no-progress",
            "--out", str(out[agent])])
        assert r.exit_code == 0, r.output
        assert "zero-shot" in r.output and "IQM by episode" in r.output
    for agent, path in out.items():
        res = load_results(path)
        fam = res["family"]
        assert res["agent"] == agent and res["config"]["split"] == "test" and fam["episodes"] == 2
        assert [t["task_id"] for t in fam["trials"]] == [t.id for t in TEST] and fam["seeds"] == [0]
        for t in fam["trials"]:
            ref = REFS[t["task_id"]]
            assert t["normalized"] == pytest.approx(
                [(x - ref["random"]) / (ref["privileged"] - ref["random"]) for x in t["returns"]])
            assert t["lengths"][0] <= 30
        assert fam["references"]["sources"][TEST[0].id]["random"] == str(refs)
    assert load_results(out["teacher"])["checkpoint"].endswith(f"{ENV}/policy.pt")  # the default-task teacher
    made = make_leaderboard(out.values(), tmp_path / "lb")
    assert "## velocity family, Go2Walk-v0" in made["markdown"] and (tmp_path / "lb" / "curves_velocity.png").exists()
    # flags of the other protocol are refused
    r = CliRunner().invoke(main, ["eval", "--family", FAMILY, "--num-envs", "3"])
    assert r.exit_code != 0 and "--num-envs do not go with --family" in r.output
    r = CliRunner().invoke(main, ["eval", "--trials", "3"])
    assert r.exit_code != 0 and "--trials go only with --family" in r.output


def test_the_cli_prints_the_interval_over_thetas_not_the_seeds_only_one(capsys):
    """With deterministic envs two seeds give the same trials: the seeds-only interval is zero-wide (it printed
    'final 0.989 [0.989, 0.989]' for a Vintix whose thetas spread from 0.85 to 0.99); the tables use ci95_thetas."""
    from go2bench.cli.eval import _show_family

    def m(v, lo, hi):
        return {"iqm": v, "ci95": [v, v], "ci95_thetas": [lo, hi]}

    res = {"env": "MiniCheetahWalk-v0", "fall_rate": 0.25, "config": {"split": "test", "seeds": [0, 1], "episodes": 10},
           "family": {"name": "dynamics", "trials_per_seed": 32, "zero_shot": m(0.043, 0.034, 0.25),
                      "final": m(0.989, 0.852, 0.992), "auc": m(0.794, 0.7, 0.8),
                      "tracking_error": {"x": 0.05, "y": 0.03, "yaw": 0.08}, "per_episode": {"iqm": [0.04, 0.99]}}}
    _show_family("vintix", res)
    out = capsys.readouterr().out
    assert "final 0.989 [0.852, 0.992]" in out and "zero-shot 0.043 [0.034, 0.250]" in out
    assert "[0.989, 0.989]" not in out and "over thetas and seeds" in out
