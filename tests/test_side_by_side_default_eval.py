"""Agents side by side under the default in-context protocol: each agent's results equal its own evaluation's.

Fast part: a scene without physics (KeyedSim) whose every episode length and reward is a function of the
seed, the env's stream key and the episode, so the expected lengths and batch steps are computed by hand
here, and a wrong key (env ``a * n + i`` keyed as itself instead of as i) changes them.

Slow part (real Go2 scenes, module-scoped): random, the shipped teacher and the shipped Vintix alone on 2 envs
and side by side on 3 x 2 envs, 2 seeds x 2 episodes of 30 steps, payload randomised at every reset and the
base pushed every 10 steps (so every env draws random numbers); the CLI (side by side and --sequential) and
the pipeline's default eval stage, each building one more small scene.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.agents.registry import make_agent
from go2bench.eval.protocol import evaluate_in_context, evaluate_in_context_side_by_side
from go2bench.eval.results import load_results
from go2bench.eval.side_by_side import run_side_by_side

ENV = "Go2Walk-v0"


# ------------------------------------------------------------------------------------- without physics
class KeyedSim:
    """n envs; env i's episode e under seed s lasts ``3 + (s + key + e) % 4`` steps (``key = env_index[i]``), ends
    by a fall when the key is odd, and pays the mean action plus key / 10 per step; the frame is the step count."""

    backend = "cpu"

    def __init__(self, n: int) -> None:
        self.num_envs, self.device, self.obs_dim, self.max_episode_steps = n, torch.device("cpu"), 3, 8
        self.robot_description = types.SimpleNamespace(name="go2", num_joints=12)
        self.config = types.SimpleNamespace(obs_mode="noleak", to_dict=lambda: {"keyed": True})
        self.commands = torch.zeros(n, 3)
        self.base_lin_vel = torch.zeros(n, 3)

    def seed(self, seed: int) -> None:
        self._seed, self.env_index = seed, torch.arange(self.num_envs)
        self.episode = torch.zeros(self.num_envs, dtype=torch.int64)

    def _obs(self) -> torch.Tensor:
        return torch.stack((self.env_index, self.episode, self.t), 1).float()

    def reset(self, mask=None) -> torch.Tensor:
        if mask is None:
            self.t = torch.zeros(self.num_envs, dtype=torch.int64)
        else:
            self.t[mask] = 0
            self.episode[mask] += 1
        return self._obs()

    def step(self, actions: torch.Tensor):
        self.t += 1
        end = self.t >= 3 + (self._seed + self.env_index + self.episode) % 4
        fell = end & (self.env_index % 2 == 1)
        reward = actions.mean(1) + self.env_index.float() / 10
        return types.SimpleNamespace(obs=self._obs(), reward=reward, terminated=fell, truncated=end & ~fell,
                                     diverged=torch.zeros_like(end))

    def render(self) -> np.ndarray:
        return np.full((16, 16, 3), 40 * int(self.t[0]), np.uint8)

    def close(self) -> None:
        pass


class Reinforced:
    """Acts from its own context: each env's reward sum so far (never reset between episodes) times ``gain``."""

    def __init__(self, gain: float, name: str = "reinforced") -> None:
        self.gain, self.name = gain, name

    def reset(self, num_envs, env_id, seed=None):
        self.total = torch.zeros(num_envs)

    def act(self, obs, prev_reward, episode_start):
        self.total += prev_reward
        return torch.tanh(self.gain * self.total + 0.01 * obs[:, 2])[:, None].repeat(1, 12)


def fast_agents():
    return [Reinforced(0.3), make_agent("random", ENV), Reinforced(-0.2, "anti")]


N, K, SEEDS = 3, 3, (0, 5)


def expected_lengths(seed: int) -> np.ndarray:
    """(N, K) episode lengths of env i keyed i: by the formula, not by the loop."""
    return np.array([[3 + (seed + i + e) % 4 for e in range(K)] for i in range(N)])


def test_side_by_side_equals_alone_without_physics():
    kw = dict(episodes=K, seeds=SEEDS, progress=False, random_score=0.0, expert_score=1.0)
    alone = [evaluate_in_context(a, ENV, sim=KeyedSim(N), **kw) for a in fast_agents()]
    beside = evaluate_in_context_side_by_side(fast_agents(), ENV, sim=KeyedSim(3 * N), **kw)
    for a, b in zip(alone, beside):
        for sa, sb in zip(a["per_seed"], b["per_seed"]):
            assert {k: v for k, v in sa.items() if k != "wall_s"} == {k: v for k, v in sb.items() if k != "wall_s"}
        for key in ("returns", "lengths", "num_envs", "config", "normalized_score", "per_episode", "env_steps",
                    "fall_rate", "agent"):
            assert a[key] == b[key], key
        assert b["num_envs"] == N and b["config"]["num_envs"] == N
        for s, seed in zip(b["per_seed"], SEEDS):
            lengths = expected_lengths(seed)
            assert np.array_equal(s["lengths"], lengths)  # every agent's env i was keyed i
            assert s["env_steps"] == lengths.sum(1).max() * N  # the batch steps of its own run, times its envs
            assert np.array_equal(s["falls"], np.broadcast_to((np.arange(N) % 2 == 1)[:, None], (N, K)))
    assert len({tuple(r["returns"]) for r in beside}) == 3  # three different agents, each on its own rows


def test_video_of_one_agent_and_refused_side_by_side(tmp_path):
    import av  # PyAV: a reader independent of the Pillow writer

    clip = tmp_path / "one.gif"
    res = evaluate_in_context(Reinforced(0.3), ENV, episodes=2, seeds=[0, 1], sim=KeyedSim(2), progress=False,
                              video=clip, video_max_frames=6)
    assert res["video"] == str(clip)
    with av.open(str(clip)) as c:
        grey = [int(f.to_ndarray(format="rgb24")[0, 0, 0]) for f in c.decode(video=0)]
    # env 0 of seed 0: episode 0 lasts 3 steps (states 0..2, then the reset), episode 1 lasts 4
    assert grey == [0, 40, 80, 0, 40, 80]
    with pytest.raises(ValueError, match="video is recorded for one agent only"):
        evaluate_in_context_side_by_side(fast_agents()[:2], ENV, episodes=1, sim=KeyedSim(4), progress=False,
                                         video=tmp_path / "two.gif")
    assert not (tmp_path / "two.gif").exists()
    with pytest.raises(ValueError, match="frames are recorded for one agent only"):
        run_side_by_side(fast_agents()[:2], ENV, KeyedSim(4), 1, 0, frames=[])


def test_side_by_side_bad_layouts_are_clear_errors():
    with pytest.raises(ValueError, match="5 envs cannot be shared equally by 2 agents"):
        evaluate_in_context_side_by_side(fast_agents()[:2], ENV, episodes=1, sim=KeyedSim(5), progress=False)
    full, plain = Reinforced(1.0), Reinforced(1.0, "plain")
    full.model_card, plain.model_card = {"obs_mode": "full"}, {"obs_mode": "noleak"}
    with pytest.raises(ValueError, match=r"must share one obs_mode; got \['full', 'noleak'\]"):
        evaluate_in_context_side_by_side([full, plain], ENV, episodes=1, progress=False)  # before any scene


# ------------------------------------------------------------------------------------- real Go2 scenes (slow)
RN, RK, RT, RSEEDS = 2, 2, 30, (0, 1)
CONFIG = {"randomization": {"added_mass_range": [-1.0, 2.0], "push_interval_s": 0.2}}
SPECS = ["random", "teacher", "vintix"]


@pytest.fixture(scope="module")
def real_runs():
    """(alone, side by side): each agent evaluated alone on 2 envs, and the three side by side on 6."""
    from go2bench.envs.walk_sim import make_walk_sim

    alone_sim = make_walk_sim(ENV, RN, config=CONFIG, max_episode_steps=RT)
    shared_sim = make_walk_sim(ENV, len(SPECS) * RN, config=CONFIG, max_episode_steps=RT)
    kw = dict(episodes=RK, seeds=RSEEDS, progress=False)
    try:
        alone = [evaluate_in_context(make_agent(s, ENV), ENV, sim=alone_sim, agent_spec=s, **kw) for s in SPECS]
        beside = evaluate_in_context_side_by_side([make_agent(s, ENV) for s in SPECS], ENV, sim=shared_sim,
                                                  agent_specs=SPECS, **kw)
        yield alone, beside
    finally:
        alone_sim.close()
        shared_sim.close()


@pytest.mark.slow
def test_real_side_by_side_equals_each_agent_alone(real_runs):
    """Bitwise, Vintix and the teacher included: per seed every episode's return, length, fall, tracking error."""
    alone, beside = real_runs
    for a, b, spec in zip(alone, beside, SPECS):
        assert b["agent_spec"] == spec and b["num_envs"] == RN
        for sa, sb in zip(a["per_seed"], b["per_seed"]):
            for key in ("returns", "lengths", "falls", "tracking_errors", "diverged", "env_steps"):
                assert sa[key] == sb[key], (spec, key)
        for key in ("mean_return", "normalized_score", "ci95", "per_episode", "reward_terms", "mean_tracking_error"):
            assert a[key] == b[key], (spec, key)
    assert len({tuple(r["returns"]) for r in beside}) == len(SPECS)
    # the envs of an agent differ (pushes and payloads were drawn per env) and episodes ended at different steps
    returns = np.array(beside[1]["per_seed"][0]["returns"])
    assert not np.array_equal(returns[0], returns[1])
    lengths = np.concatenate([r["lengths"] for r in beside])
    assert lengths.min() < RT == lengths.max()


@pytest.mark.slow
def test_real_cli_side_by_side_by_default_and_sequential(real_runs, tmp_path):
    from go2bench.cli import main

    alone, _ = real_runs
    cfg = tmp_path / "walk.yaml"
    cfg.write_text("randomization:\n  added_mass_range: [-1.0, 2.0]\n  push_interval_s: 0.2\n")
    args = ["eval", "--agent", "random", "--agent", "teacher", "--env", ENV, "--num-envs", str(RN), "--seeds", "0,1",
            "--episodes", str(RK), "--max-episode-steps", str(RT), "--config", str(cfg), "--no-progress"]
    for extra, side_by_side, scene_envs in (([], True, 2 * RN), (["--sequential"], False, RN)):
        folder = tmp_path / ("sequential" if extra else "side")
        r = CliRunner().invoke(main, [*args, *extra, "--out", str(folder)])
        assert r.exit_code == 0, r.output
        assert ("side by side with 1 other agent(s) in 4 envs" in r.output) == side_by_side
        for spec, a in zip(SPECS[:2], alone[:2]):
            res = load_results(folder / f"{spec}.json")
            assert res["per_seed"][1]["returns"] == a["per_seed"][1]["returns"] and res["returns"] == a["returns"]
            p = res["process"]
            assert (p["side_by_side"], p["scene_envs"], p["agents"]) == (side_by_side, scene_envs, 2)
            assert p["scene_agents"] == (2 if side_by_side else 1) and res["num_envs"] == RN


@pytest.mark.slow
def test_pipeline_default_eval_stage_runs_an_env_side_by_side(tmp_path):
    """random, teacher and the zoo's Vintix of Go2 in one scene of 3 x 2 envs; measured references normalise all
    three afterwards; a second call finds every result and rewrites none."""
    from go2bench.eval.reference import MEASURED_NOTE
    from go2bench.pipeline import pipeline_config
    from go2bench.pipeline.stages import eval_stage

    cfg = pipeline_config("cpu", [f"envs=[{ENV}]", "eval.num_envs=2", "eval.episodes=2", "eval.max_episode_steps=30",
                                  "eval.agents=[random, teacher, vintix-zoo]"])
    paths = eval_stage(cfg, tmp_path, None)
    assert [p.name for p in paths] == [f"{a}_{ENV}.json" for a in ("random", "teacher", "vintix-zoo")]
    res = [load_results(p) for p in paths]
    for r in res:
        p = r["process"]
        assert (p["side_by_side"], p["scene_agents"], p["scene_envs"], p["agents"]) == (True, 3, 6, 3)
        assert r["num_envs"] == 2 and len(r["returns"]) == 2 * 2
    rs, es = res[0]["mean_return"], res[1]["mean_return"]
    assert res[0]["normalized_score"] == pytest.approx(0.0, abs=1e-12)
    assert res[1]["normalized_score"] == pytest.approx(1.0, abs=1e-12)
    v = res[2]
    assert (v["random_score"], v["expert_score"], v["reference_scores_note"]) == (rs, es, MEASURED_NOTE)
    assert v["normalized_score"] == pytest.approx((v["mean_return"] - rs) / (es - rs))
    stamp = [p.stat().st_mtime_ns for p in paths]
    assert eval_stage(cfg, tmp_path, None) == paths and [p.stat().st_mtime_ns for p in paths] == stamp
    assert json.loads(paths[2].read_text())["process"]["scene_agents"] == 3
