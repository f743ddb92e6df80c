"""Evaluation warm-up (``warmup_steps``): unscored episodes until each env has taken S steps, then the K counted
ones; an in-context agent keeps the warm-up in its context (benchmarks/RESULTS.md, "Held-out robots")."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from go2bench.agents.teacher import load_teacher
from go2bench.cli import main as cli_main
from go2bench.envs.walk_sim import make_walk_sim
from go2bench.eval.episodes import run_episodes
from go2bench.eval.protocol import evaluate_in_context

pytestmark = pytest.mark.slow  # builds a Genesis scene

ENV, T = "Go2Walk-v0", 50


class Counter:
    """A memoryful agent: standing still, it counts the steps it has seen since its cold start (its 'context')."""

    name = "counter"

    def reset(self, num_envs, env_id, seed=None):
        self.seen = np.zeros(num_envs, dtype=np.int64)

    def act(self, obs, prev_reward, episode_start):
        self.seen += 1
        return np.zeros((len(self.seen), 12), dtype=np.float32)


@pytest.fixture(scope="module")
def sim():
    s = make_walk_sim(ENV, 2, "cpu", max_episode_steps=T)
    yield s
    s.close()


def test_warmup_episodes_are_played_in_context_but_not_counted(sim):
    teacher = load_teacher(ENV)  # walks through every 50-step episode: warm-up of 120 steps = 3 episodes (0, 50, 100)
    plain = run_episodes(teacher, ENV, sim, np.full(2, 5), seed=0)
    warm = run_episodes(teacher, ENV, sim, np.full(2, 2), seed=0, warmup_steps=120)
    assert warm["warmup_episodes"].tolist() == [3, 3] and warm["warmup_steps_taken"].tolist() == [150, 150]
    # the counted episodes are episodes 4 and 5 of the plain run, bit for bit, renumbered 0 and 1
    tail = [(r.env, r.episode - 3, r.ret, r.length) for r in plain["records"] if r.episode >= 3]
    assert [(r.env, r.episode, r.ret, r.length) for r in warm["records"]] == tail
    agent = Counter()
    run_episodes(agent, ENV, sim, np.full(2, 1), seed=0, warmup_steps=1)  # warm-up: the first episode (starts at 0)
    assert agent.seen.min() >= 2 * T  # its context holds the warm-up episode and the counted one
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        run_episodes(teacher, ENV, sim, np.full(2, 1), seed=0, warmup_steps=-1)


def test_protocol_and_cli_record_the_warmup(sim, tmp_path):
    res = evaluate_in_context(load_teacher(ENV), ENV, episodes=2, num_envs=2, sim=sim, warmup_steps=120,
                              progress=False)
    assert res["config"]["warmup_steps"] == 120 and res["per_seed"][0]["warmup_episodes"] == [3, 3]
    out = tmp_path / "r.json"
    r = CliRunner().invoke(cli_main, ["eval", "--agent", "random", "--env", ENV, "--episodes", "1", "--num-envs", "2",
                                      "--max-episode-steps", str(T), "--warmup-steps", "60", "--no-progress",
                                      "--out", str(out)])
    assert r.exit_code == 0, r.output
    import json

    data = json.loads(out.read_text())  # read back by json, not by the results module
    assert data["config"]["warmup_steps"] == 60
    assert all(w >= 2 for w in data["per_seed"][0]["warmup_episodes"])  # 50-step episodes: 60 steps need two
    bad = CliRunner().invoke(cli_main, ["eval", "--agent", "random", "--warmup-steps", "-5"])
    assert bad.exit_code != 0 and "warmup-steps" in bad.output
