"""In-context evaluation protocol, statistics, reference scores, agent protocol and registry, Vintix adapter.

One Go2 scene (4 envs, 100-step episodes) is built for the module and shared; the CLI test builds
one more small scene. The episode loop's bookkeeping is also checked on a fake simulation.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import textwrap
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.eval.protocol import evaluate_in_context, run_episodes
from go2bench.eval.reference import reference_scores, shipped_reference_scores
from go2bench.eval.results import load_results, save_results
from go2bench.eval.stats import halfwidth, mean_ci, normalized_score, summarize, t_quantile
from go2bench.agents.protocol import BatchedAgent, LegacyAgentAdapter, as_batched_agent
from go2bench.agents.registry import UnknownAgentError, available_agents, make_agent, parse_spec
from go2bench.agents.random import RandomAgent
from go2bench.agents.teacher import TeacherAgent
from go2bench.agents.vintix_agent import VintixAgent
from go2bench.envs.registry import task_spec
from go2bench.envs.walk_sim import make_walk_sim

ENV = "Go2Walk-v0"
N, T = 4, 100


@pytest.fixture(scope="module")
def sim():
    s = make_walk_sim(ENV, num_envs=N, max_episode_steps=T)
    yield s
    s.close()


# ---------------------------------------------------------------------------------- arithmetic
def test_t_quantile_matches_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-3)
    assert t_quantile(0.975, 3) == pytest.approx(3.1824, abs=1e-3)
    assert t_quantile(0.975, 9) == pytest.approx(2.2622, abs=1e-3)
    assert t_quantile(0.975, 29) == pytest.approx(2.0452, abs=1e-3)


def test_mean_ci_and_summary_by_hand():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.182446 * math.sqrt(5.0 / 3.0) / 2.0  # t(0.975, 3) * sd / sqrt(4)
    assert m == 2.5 and lo == pytest.approx(2.5 - half, abs=1e-5) and hi == pytest.approx(2.5 + half, abs=1e-5)
    assert mean_ci([3.0]) == (3.0, None, None)

    # returns (seeds=2, envs=2, episodes=2)
    R = np.array([[[1.0, 3.0], [2.0, 4.0]], [[0.0, 2.0], [5.0, 7.0]]])
    s = summarize(R, random_score=1.0, expert_score=5.0)
    # units: per-env means 2, 3, 1, 6 -> mean 3, sample variance 14/3
    half = 3.182446 * math.sqrt(14.0 / 3.0) / 2.0
    assert s["mean_return"] == pytest.approx(3.0) and s["ci_units"] == 4
    assert s["ci95"] == pytest.approx([3.0 - half, 3.0 + half], abs=1e-5)
    assert s["ci95_halfwidth"] == pytest.approx(half, abs=1e-5)
    assert s["normalized_score"] == pytest.approx(0.5)
    assert s["normalized_score_ci95"] == pytest.approx([0.5 - half / 4, 0.5 + half / 4], abs=1e-5)
    per = s["per_episode"]
    assert per["episode_index"] == [0, 1]
    assert per["mean_return"] == pytest.approx([2.0, 4.0])  # episode 0: 1,2,0,5; episode 1: 3,4,2,7
    assert per["normalized_score"] == pytest.approx([0.25, 0.75])
    half0 = 3.182446 * math.sqrt(14.0 / 3.0) / 2.0  # both episode columns have variance 14/3
    assert per["normalized_ci95_low"] == pytest.approx([0.25 - half0 / 4, 0.75 - half0 / 4], abs=1e-5)
    # no reference scores: no normalised numbers, still the raw statistics
    s = summarize(R, None, None)
    assert s["normalized_score"] is None and s["normalized_score_ci95"] == [None, None]
    assert normalized_score(3.0, 1.0, 5.0) == 0.5
    assert halfwidth([1.0, 4.0]) == 1.5 and halfwidth([None, None]) is None


def test_reference_scores_come_from_the_shipped_card_unless_given(tmp_path, monkeypatch):
    card = json.loads((task_spec(ENV).zoo_dir / "model_card.json").read_text())
    shipped = reference_scores(ENV)
    assert shipped == shipped_reference_scores(ENV)
    assert (shipped.random_score, shipped.expert_score) == (card["random_score"], card["expert_score"])
    assert shipped.source == f"go2bench/zoo/{ENV}/model_card.json" and "1000-step" in shipped.note
    given = reference_scores(ENV, 1.0, 2.0)
    assert (given.random_score, given.expert_score, given.source) == (1.0, 2.0, "arguments")
    assert "caller" in given.note
    half = reference_scores(ENV, random_score=1.0)
    assert (half.random_score, half.expert_score) == (1.0, card["expert_score"])
    assert half.source == f"arguments + {shipped.source}"
    import go2bench.envs.registry as registry_module

    monkeypatch.setattr(registry_module, "ZOO_DIR", tmp_path / "zoo")  # no shipped card: no scores
    none = reference_scores(ENV)
    assert (none.random_score, none.expert_score, none.source) == (None, None, None)


# ---------------------------------------------------------------------------------- protocol
class RecordingAgent:
    """Zero actions (the robot stands until the time limit); records what the evaluator passes."""

    name = "recorder"

    def __init__(self):
        self.resets, self.calls = [], []

    def reset(self, num_envs, env_id, seed=None):
        self.resets.append((num_envs, env_id, seed))

    def act(self, obs, prev_reward, episode_start):
        self.calls.append((obs.clone(), prev_reward.clone(), episode_start.clone()))
        return torch.zeros(obs.shape[0], 12)


def test_agents_satisfy_the_protocol():
    assert isinstance(RandomAgent(0), BatchedAgent)
    assert as_batched_agent(RandomAgent(0)).__class__ is RandomAgent
    x = RandomAgent(3).act(torch.zeros(2, 33), torch.zeros(2), torch.ones(2, dtype=torch.bool))
    assert x.shape == (2, 12)
    assert list(inspect.signature(TeacherAgent.act).parameters) == ["self", "obs", "prev_reward", "episode_start"]

    class Old:
        name = "old"
        obs_dim = 33

        def __init__(self):
            self.seeds = []

        def reset(self, seed=None):
            self.seeds.append(seed)

        def act(self, obs):
            return np.ones((obs.shape[0], 12), np.float32)

    old = Old()
    wrapped = as_batched_agent(old)
    assert isinstance(wrapped, LegacyAgentAdapter) and wrapped.obs_dim == 33 and wrapped.name == "old"
    wrapped.reset(4, ENV, 7)
    assert old.seeds == [7]
    assert wrapped.act(torch.zeros(3, 33), torch.zeros(3), torch.ones(3, dtype=torch.bool)).shape == (3, 12)


def test_in_context_protocol_episodes_prev_reward_and_episode_start(sim, tmp_path):
    agent = RecordingAgent()
    K = 3
    res = evaluate_in_context(agent, ENV, episodes=K, seeds=[5, 6], sim=sim, progress=False,
                              random_score=0.0, expert_score=1.0)
    assert agent.resets == [(N, ENV, 5), (N, ENV, 6)]  # one cold start per seed, never between episodes
    assert len(agent.calls) == 2 * K * T  # standing: every episode reaches the time limit
    for seed_i in range(2):
        calls = agent.calls[seed_i * K * T:(seed_i + 1) * K * T]
        for t, (obs, prev_reward, start) in enumerate(calls):
            assert bool(start.all()) == (t % T == 0) and bool(start.any()) == (t % T == 0)
            if t == 0:
                assert (prev_reward == 0).all()  # cold start
            else:
                assert (prev_reward != 0).all()  # the reward stream runs on across episodes
    assert res["format"] == "go2bench.eval/1" and res["agent"] == "recorder" and res["env"] == ENV
    assert "family" not in res
    assert res["config"]["seeds"] == [5, 6] and res["config"]["episodes"] == K and res["config"]["num_envs"] == N
    assert res["episodes"] == 2 * N * K and len(res["returns"]) == 2 * N * K
    assert res["max_episode_steps"] == T and res["reference_scores_source"] == "arguments"
    for s in res["per_seed"]:
        assert np.array(s["returns"]).shape == (N, K) and np.array(s["lengths"]).tolist() == [[T] * K] * N
        assert not np.array(s["falls"]).any()
    R = np.array([s["returns"] for s in res["per_seed"]])
    assert res["mean_return"] == pytest.approx(R.mean())
    assert res["normalized_score"] == pytest.approx(R.mean())  # references 0 and 1
    assert len(res["per_episode"]["normalized_score"]) == K
    assert "unit" in res["ci_unit"] and res["ci_units"] == 2 * N
    for key in ("go2bench", "torch", "genesis-world", "gymnasium"):
        assert key in res["versions"]
    # per reward term, its mean episode sum; the terms add up to the return
    if res["reward_terms"]:
        assert sum(res["reward_terms"].values()) == pytest.approx(res["mean_return"], rel=1e-4, abs=1e-4)
    # the results follow the schema: saved, loaded back unchanged
    save_results(res, tmp_path / "res.json")
    assert load_results(tmp_path / "res.json") == json.loads(json.dumps(res))
    # same seeds, same tasks: deterministic on CPU
    again = evaluate_in_context(RecordingAgent(), ENV, episodes=K, seeds=[5, 6], sim=sim, progress=False)
    assert again["returns"] == res["returns"]


def test_random_near_zero_and_teacher_near_one(sim):
    """Shipped checkpoints, 100-step episodes. The model-card references are 1000-step returns, so
    both are scaled by T/1000 (per-step rates); the teacher's start-up transient costs ~8% at T=100."""
    refs = shipped_reference_scores(ENV)
    rs, es = refs.random_score, refs.expert_score
    scale = T / 1000
    out = {}
    for spec in ("random", "teacher"):
        res = evaluate_in_context(make_agent(spec, ENV), ENV, episodes=2, seeds=[0], sim=sim, progress=False,
                                  random_score=rs * scale, expert_score=es * scale)
        out[spec] = res
    assert abs(out["random"]["normalized_score"]) < 0.15
    assert 0.8 < out["teacher"]["normalized_score"] < 1.05
    assert out["teacher"]["fall_rate"] == 0.0 and out["random"]["fall_rate"] > 0.2
    assert out["teacher"]["checkpoint_sha256"] and len(out["teacher"]["checkpoint_sha256"]) == 64
    assert out["random"]["checkpoint_sha256"] is None


class FakeSim:
    """The part of WalkSimulation the episode loop uses: 3 joints, two reward terms, env i's episodes
    last i + 2 steps; each step's reward is 1 (term "a" 0.75, term "b" 0.25); env 0 falls."""

    def __init__(self, num_envs=3, terms=True):
        self.num_envs, self.device, self.obs_dim, self.max_episode_steps = num_envs, torch.device("cpu"), 5, 10
        self.config = types.SimpleNamespace(obs_mode="noleak")
        self.robot_description = types.SimpleNamespace(num_joints=3)
        self.commands = torch.zeros(num_envs, 3)
        self.base_lin_vel = torch.zeros(num_envs, 3)
        self.terms, self.t = terms, torch.zeros(num_envs, dtype=torch.int64)
        self.actions_seen = []

    def seed(self, seed):
        pass

    def reset(self, mask=None):
        self.t[mask if mask is not None else slice(None)] = 0
        return torch.zeros(self.num_envs, self.obs_dim)

    def step(self, actions):
        self.actions_seen.append(actions.shape)
        self.t += 1
        self.base_lin_vel[:, 0] = 0.5  # tracking error 0.5 per step
        n = self.num_envs
        end = self.t >= torch.arange(n) + 2
        fell = end & (torch.arange(n) == 0)
        terms = {"a": torch.full((n,), 0.75), "b": torch.full((n,), 0.25)} if self.terms else {}
        return types.SimpleNamespace(obs=torch.zeros(n, self.obs_dim), reward=torch.ones(n), terminated=fell,
                                     truncated=end & ~fell, diverged=torch.zeros(n, dtype=torch.bool),
                                     reward_terms=terms, tracking_error=torch.tensor([[0.5, 0.25, 2.0]]).expand(n, 3))


class ThreeJointAgent:
    name = "three"

    def reset(self, num_envs, env_id, seed=None):
        pass

    def act(self, obs, prev_reward, episode_start):
        return torch.zeros(obs.shape[0], 3)


def test_episode_loop_counts_quotas_and_sums_reward_terms():
    sim = FakeSim()
    run = run_episodes(ThreeJointAgent(), ENV, sim, [2, 1, 3], seed=0)
    assert set(sim.actions_seen) == {(3, 3)}  # the action shape is the simulation's joint count
    recs = run["records"]
    assert [(r.env, r.episode) for r in recs] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    assert [r.length for r in recs] == [2, 2, 3, 4, 4, 4] and [r.ret for r in recs] == [2, 2, 3, 4, 4, 4]
    assert [r.fell for r in recs] == [True, True, False, False, False, False]
    assert [r.tracking_error_sum for r in recs] == [0.5 * r.length for r in recs]
    assert [r.tracking_error_xyz for r in recs] == [(0.5 * r.length, 0.25 * r.length, 2.0 * r.length) for r in recs]
    assert all(r.task is None for r in recs)  # no task family
    assert run["reward_term_names"] == ["a", "b"]
    assert all(r.reward_terms == (0.75 * r.length, 0.25 * r.length) for r in recs)
    assert run["steps"] == 12  # env 2 counts its third episode at step 12
    # without reward terms in the step result, none are reported
    run = run_episodes(ThreeJointAgent(), ENV, FakeSim(terms=False), [1, 1, 1], seed=0)
    assert run["reward_term_names"] == [] and all(r.reward_terms == () for r in run["records"])


# ---------------------------------------------------------------------------------- Vintix adapter
class FakeVintixPolicy:
    """The VintixPolicy inference API, recording calls; acts with zeros."""

    loaded_from: list = []

    def __init__(self):
        self.groups = {"go2_walk": {"obs_dim": 33, "act_dim": 12, "env_id": ENV, "task_name": "walk"}}
        self.log: list = []

    @classmethod
    def load(cls, path, device="cpu", cuda_graph=None):
        cls.loaded_from.append((path, device))
        return cls()

    def group_for_env(self, env_id):
        assert env_id == ENV
        return "go2_walk"

    def reset(self, num_envs, group):
        self.log.append(("reset", num_envs, group))

    def clear_context(self, mask):
        self.log.append(("clear", mask.clone()))

    def act(self, obs, prev_reward, episode_start):
        self.log.append(("act", episode_start.clone()))
        return torch.zeros(obs.shape[0], 12)


def test_vintix_and_nocontext_share_one_code_path(sim):
    K = 2
    logs = {}
    for no_context in (False, True):
        policy = FakeVintixPolicy()
        agent = VintixAgent(policy, no_context=no_context)
        res = evaluate_in_context(agent, ENV, episodes=K, seeds=[0], sim=sim, progress=False)
        logs[no_context] = (policy.log, res)
    ctx_log, ctx_res = logs[False]
    abl_log, abl_res = logs[True]
    assert ctx_res["agent"] == "vintix" and abl_res["agent"] == "vintix-nocontext"
    assert ctx_log[0] == ("reset", N, "go2_walk") and abl_log[0] == ("reset", N, "go2_walk")
    assert not [e for e in ctx_log if e[0] == "clear"]  # the in-context agent never forgets
    # the ablation clears exactly the envs whose episode starts, right before acting on them
    clears = 0
    for i, e in enumerate(abl_log):
        if e[0] == "act" and bool(e[1].any()):
            assert abl_log[i - 1][0] == "clear" and torch.equal(abl_log[i - 1][1], e[1])
            clears += 1
    assert clears == K and len([e for e in abl_log if e[0] == "clear"]) == K
    # everything else is the same code path: the same act calls and the same returns
    ctx_acts = [e[1] for e in ctx_log if e[0] == "act"]
    abl_acts = [e[1] for e in abl_log if e[0] == "act"]
    assert len(ctx_acts) == len(abl_acts) == K * T
    assert all(torch.equal(a, b) for a, b in zip(ctx_acts, abl_acts))
    assert ctx_res["returns"] == abl_res["returns"]


def test_vintix_agents_load_through_the_registry(tmp_path, monkeypatch):
    import go2bench.agents.vintix_agent as va

    fake_module = types.ModuleType("go2bench.vintix.inference")
    fake_module.VintixPolicy = FakeVintixPolicy
    monkeypatch.setitem(sys.modules, "go2bench.vintix.inference", fake_module)
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"fake")
    a = make_agent(f"vintix:{ckpt}", ENV)
    b = make_agent(f"vintix-nocontext:{ckpt}", ENV, device="cpu")
    assert isinstance(a, VintixAgent) and not a.no_context and a.checkpoint == str(ckpt)
    assert isinstance(b, VintixAgent) and b.no_context and b.name == "vintix-nocontext"
    assert FakeVintixPolicy.loaded_from[-1] == (str(ckpt), "cpu")
    # no checkpoint: the shipped one, else a clear error
    monkeypatch.setattr(va, "DEFAULT_CHECKPOINT", tmp_path / "zoo" / "vintix" / "vintix.pt")
    with pytest.raises(FileNotFoundError, match="vintix:PATH"):
        make_agent("vintix", ENV)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_agent(f"vintix:{tmp_path / 'missing.pt'}", ENV)


# ---------------------------------------------------------------------------------- registry
AGENT_MODULE = '''
import torch


class ConstantAgent:
    name = "constant"
    value = 0.1

    def __init__(self, env_id, checkpoint, device, seed):
        self.args = (env_id, checkpoint, device, seed)

    def reset(self, num_envs, env_id, seed=None):
        self.num_envs = num_envs

    def act(self, obs, prev_reward, episode_start):
        return torch.full((obs.shape[0], 12), self.value)


def make(env_id, checkpoint, device, seed):
    if checkpoint == "raise":
        raise KeyError("weights missing")
    agent = ConstantAgent(env_id, checkpoint, device, seed)
    if checkpoint == "nan":
        agent.value = float("nan")
    return agent
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A third-party package with a 'go2bench.agents' entry point, installed on sys.path as a dist-info."""
    (tmp_path / "g2b_third_party_agent.py").write_text(textwrap.dedent(AGENT_MODULE))
    info = tmp_path / "g2b_third_party_agent-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: g2b-third-party-agent\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[go2bench.agents]\nconstant = g2b_third_party_agent:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("g2b_third_party_agent", None)


def test_third_party_agent_is_found_by_name(third_party):
    agents = available_agents()
    assert agents["constant"] == "g2b_third_party_agent:make"
    for name in ("random", "teacher", "vintix", "vintix-nocontext"):
        assert agents[name] == "built-in"
    agent = make_agent("constant:some/ckpt", ENV, device="cpu", seed=3)
    assert type(agent).__name__ == "ConstantAgent" and agent.args == (ENV, "some/ckpt", "cpu", 3)
    assert parse_spec("constant") == ("constant", None)


def test_unknown_agent_is_a_clear_error():
    with pytest.raises(UnknownAgentError, match="known agents: .*random.*teacher"):
        make_agent("nosuchagent", ENV)
    with pytest.raises(ValueError, match="no checkpoint"):
        make_agent("random:x.pt", ENV)
    assert parse_spec("teacher") == ("teacher", None)
    assert parse_spec("vintix:a/b.pt") == ("vintix", "a/b.pt")


def test_agent_code_failures_name_the_agent(third_party):
    from go2bench.agents.registry import AgentError

    with pytest.raises(AgentError, match=r"agent 'constant': its factory raised KeyError: 'weights missing'"):
        make_agent("constant:raise", ENV)
    agent = make_agent("constant:nan", ENV)
    sim = FakeSim()
    sim.robot_description.num_joints = 12
    with pytest.raises(AgentError, match=r"agent 'constant:nan' failed in act\(\): ValueError: actions contain NaN"):
        run_episodes(agent, ENV, sim, [1, 1, 1], seed=0)


def test_cli_agent_failure_is_one_line_and_debug_shows_the_traceback(third_party, monkeypatch):
    from go2bench.cli import main
    from go2bench.cli.errors import TRACEBACK_VARIABLE

    monkeypatch.setenv(TRACEBACK_VARIABLE, "")  # restored after the test: --debug sets it

    r = CliRunner().invoke(main, ["eval", "--agent", "constant:raise", "--env", ENV])
    assert r.exit_code == 1 and r.output.strip().splitlines() == [
        "Error: agent 'constant': its factory raised KeyError: 'weights missing'"]
    r = CliRunner().invoke(main, ["--debug", "eval", "--agent", "constant:raise", "--env", ENV])
    assert r.exit_code == 1 and isinstance(r.exception, Exception) and "weights missing" in str(r.exception)


def test_cli_eval_with_a_third_party_agent_and_leaderboard(third_party, tmp_path):
    from go2bench.cli import main

    out = tmp_path / "constant.json"
    r = CliRunner().invoke(main, ["eval", "--agent", "constant", "--env", ENV, "--episodes", "2", "--num-envs", "2",
                                  "--seeds", "0,1", "--max-episode-steps", "20", "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["agent"] == "constant" and res["config"]["agent"] == "constant" and res["config"]["seeds"] == [0, 1]
    assert res["episodes"] == 2 * 2 * 2 and max(res["lengths"]) <= 20
    assert "normalized score" in r.output
    r = CliRunner().invoke(main, ["eval", "--agent", "nosuchagent", "--env", ENV])
    assert r.exit_code != 0 and "unknown agent" in r.output
    r = CliRunner().invoke(main, ["eval", "--agent", "random", "--seeds", "0,x"])
    assert r.exit_code != 0 and "comma-separated" in r.output
    r = CliRunner().invoke(main, ["leaderboard", str(out), "--out", str(tmp_path / "lb")])
    assert r.exit_code == 0, r.output
    assert "| Go2Walk-v0 | constant |" in r.output and (tmp_path / "lb" / "in_context.png").exists()


def test_a_fixed_command_reset_sets_what_the_hash_draw_would_to_the_bit(sim):
    import go2bench.envs.streams as streams

    assert sim._fixed_commands  # the default task: a fixed command
    drawn = sim._uniform(streams.COMMAND, sim._cmd_low, sim._cmd_high, 3, 0)  # what reset drew before the shortcut
    sim.commands = torch.full_like(sim.commands, 7.0)
    mask = torch.arange(sim.num_envs) % 2 == 0
    sim._resample_commands(mask, 0)
    assert torch.equal(sim.commands[mask], drawn[mask]) and (sim.commands[~mask] == 7.0).all()
    assert torch.equal(sim.commands[mask].view(torch.int32), drawn[mask].view(torch.int32))  # the bits, -0.0 too
    sim.reset()
    assert torch.equal(sim.commands, drawn)
