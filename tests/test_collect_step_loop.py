"""The collector's step loop in few ops: the teacher as bare ``addmm``s, a chunk's rows and flags, and a real
collection against a plain step-by-step loop written here from the definitions.

``go2bench.collect.teacher_mlp`` must give SB3's deterministic action to the last bit, and
``go2bench.collect.chunk_loop.step_chunk`` must record exactly the rows the per-step loop recorded
(which rows, which histories end, what each row holds), checked on a scripted stand-in simulation
against hand-worked flags; then a real Genesis collection is compared bitwise with a plain loop that
uses SB3's own ``_predict`` and the public ``blend_actions`` step by step.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from go2bench.collect.chunk_loop import step_chunk
from go2bench.collect.teacher_mlp import teacher_mlp


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.__name__.split(".")[0]] += 1
        return func(*args, **(kwargs or {}))


def _sb3_policy(activation, obs_dim=7, act_dim=3, arch=(16, 8)):
    import gymnasium as gym
    from stable_baselines3.common.policies import ActorCriticPolicy

    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
    return ActorCriticPolicy(obs_space, act_space, lambda _: 1e-3, net_arch=list(arch), activation_fn=activation)


def test_teacher_mlp_is_sb3s_action_to_the_bit_in_seven_ops():
    from go2bench.agents.teacher import load_teacher

    shipped = load_teacher("Go2Walk-v0").policy  # 33 -> 512 -> 256 -> 128 -> 12, ELU
    cases = [(shipped, 33, 7), (_sb3_policy(nn.Tanh), 7, 5), (_sb3_policy(nn.ReLU, arch=(16,)), 7, 3),
             (_sb3_policy(nn.SiLU), 7, None)]  # SiLU: not a known activation, SB3's modules are kept
    for policy, dim, ops in cases:
        obs = torch.randn(64, dim, generator=torch.Generator().manual_seed(1)) * 2
        with torch.no_grad():
            want = policy._predict(obs, deterministic=True)
            actor = teacher_mlp(policy)
            with _CountOps() as count:
                got = actor(obs)
        assert torch.equal(got, want) and not torch.equal(got[0], got[1])
        if ops is not None:  # addmm per layer and one in-place activation per hidden layer, nothing else
            assert sum(count.ops.values()) == ops, count.ops
            assert count.ops["addmm"] == (ops + 1) // 2
        else:  # SB3's modules: linear takes W.t() at every call, the bare chain took it once
            assert count.ops["t"] > 0
    # the weights are read when the actor is built, not copied: a later in-place update is seen
    policy = _sb3_policy(nn.Tanh)
    actor = teacher_mlp(policy)
    with torch.no_grad():
        policy.action_net.bias.add_(1.0)
        obs = torch.ones(2, 7)
        assert torch.equal(actor(obs), policy._predict(obs, deterministic=True))


class _ScriptedSim:
    """Envs whose episodes end where ``done`` (C, H) says; observations name (step, episode step, env)."""

    def __init__(self, done: torch.Tensor):
        self.done, self.t = done, 0
        self.episode_step = torch.tensor([3, 0, 7, 1])
        self.actions, self.resets = [], []

    def obs(self):
        h = len(self.episode_step)
        return torch.stack([torch.full((h,), float(self.t)), self.episode_step.float(), torch.arange(h) * 1.0,
                            torch.full((h,), -1.0), torch.full((h,), 99.0)], 1)  # the last column is not recorded

    def step(self, act):
        self.actions.append(act.clone())
        self.t += 1
        self.episode_step = self.episode_step + 1
        term = self.done[self.t - 1]
        return SimpleNamespace(obs=self.obs(), reward=act[:, 0] + 10.0 * self.t, terminated=term,
                               truncated=torch.zeros_like(term))

    def reset(self, mask):
        self.resets.append(mask.clone())
        self.episode_step = self.episode_step.masked_fill(mask, 0)
        return self.obs()


def test_step_chunk_records_the_rows_and_ends_histories_as_worked_out_by_hand():
    C, H, A, N = 6, 4, 2, 5  # a history's last row is 4: the episode that ends at a row >= 4 ends it
    start = torch.tensor([0, 2, 4, 1])
    grid = start + torch.arange(C)[:, None]
    done = torch.zeros(C, H, dtype=torch.bool)
    done[2, 0] = done[5, 0] = True  # history 0: rows 2 (goes on) and 5 (ends it: recorded, then nothing)
    done[1, 1] = done[3, 1] = True  # history 1: rows 3 (goes on) and 5 (ends it after step 3)
    done[4, 3] = True  # history 3 was not active: its rows are never recorded
    active = torch.tensor([True, True, True, False])
    write_from = torch.tensor([0, 0, 6, 0])  # history 2 resumes: rows 4 and 5 are on disk already
    eps = torch.zeros(C, H)
    eps[:, 1] = 1.0  # history 1: pure noise; the others: the teacher
    noise = torch.full((C, H, A), 0.25)
    noise[:, 1, 1] = 5.0  # beyond the bound: clipped
    bounds = (torch.full((A,), -2.0), torch.full((A,), 2.0), torch.full((A,), -1.0), torch.full((A,), 1.0))
    bufs = {"obs": torch.zeros(C, H, 4), "action": torch.zeros(C, H, A), "reward": torch.zeros(C, H),
            "step_num": torch.zeros(C, H, dtype=torch.int32), "rec": torch.zeros(C, H, dtype=torch.bool),
            "demo": torch.zeros(C, H, A)}
    sim = _ScriptedSim(done)
    actor = lambda o: o[:, :A] * torch.tensor([0.5, -1.0])  # noqa: E731 - (step / 2, -episode step)
    with torch.no_grad():
        obs, still = step_chunk(sim, actor, sim.obs(), bufs, grid, eps, noise, active, write_from, N - 1, bounds)

    rec = torch.ones(C, H, dtype=torch.bool)
    rec[4:, 1] = False
    rec[:2, 2] = False
    rec[:, 3] = False
    assert torch.equal(bufs["rec"], rec)
    assert still.tolist() == [False, False, True, False]
    assert [m.nonzero().flatten().tolist() for m in sim.resets] == [[1], [0], [1], [3], [0]]  # steps 1, 2, 3, 4, 5
    assert torch.equal(obs, sim.obs())
    steps = torch.tensor([[3, 0, 7, 1], [4, 1, 8, 2], [5, 0, 9, 3], [0, 1, 10, 4], [1, 0, 11, 5], [2, 1, 12, 0]])
    assert torch.equal(bufs["step_num"], steps.int())
    assert torch.equal(bufs["obs"][:, :, 0], torch.arange(C)[:, None].float().expand(C, H))
    assert torch.equal(bufs["obs"][:, :, 1], steps.float()) and torch.equal(bufs["obs"][:, :, 3], -torch.ones(C, H))
    # the teacher's action clipped to its bounds is the demonstrator's; the executed one is the blend, clipped
    teacher = torch.stack([torch.arange(C)[:, None].float().expand(C, H) * 0.5, -steps.float()], -1).clamp(-2, 2)
    assert torch.equal(bufs["demo"], teacher)
    want = teacher.clamp(-1, 1)
    want[:, 1] = torch.tensor([0.25, 1.0])
    assert torch.equal(bufs["action"], want) and torch.equal(torch.stack(sim.actions), want)
    assert torch.equal(bufs["reward"], want[:, :, 0] + 10.0 * torch.arange(1, C + 1)[:, None])


def _read(path):
    with h5py.File(path, "r") as f:
        names = sorted(f, key=lambda k: int(k.split("-")[0]))
        return {k: np.concatenate([f[n][k][()] for n in names]) for k in f[names[0]]}


@pytest.mark.slow
def test_a_collection_equals_a_plain_step_by_step_loop(tmp_path):
    """Real Genesis, 3 histories of 250 steps (100-step episodes, falls while the noise is high, chunks of 64
    that do not divide N): every row, bitwise, against a loop written from the definitions."""
    from go2bench.agents.teacher import load_teacher
    from go2bench.collect.collector import collect
    from go2bench.collect.config import CollectConfig
    from go2bench.collect.noise import history_seed, uniform_noise
    from go2bench.collect.schedule import blend_actions
    from go2bench.envs.walk_sim import make_walk_sim

    H, N = 3, 250
    cfg = CollectConfig(env="Go2Walk-v0", num_histories=H, steps_per_history=N, max_episode_steps=100,
                        group_size=100, chunk_steps=64, seed=11)
    collect(tmp_path / "ds", cfg, progress=False, plot=False)
    got = [_read(tmp_path / "ds" / f"trajectories_env_{i:04d}.h5") for i in range(H)]

    teacher = load_teacher("Go2Walk-v0")
    sim = make_walk_sim("Go2Walk-v0", H, "cpu", max_episode_steps=100)
    keys, low, high = history_seed(11, torch.arange(H)), sim.action_low, sim.action_high
    rows = {k: [] for k in ("proprio_observation", "action", "demonstrator_action", "reward", "step_num")}
    end, falls, n = [None] * H, 0, 0  # end: the step whose episode end ends the history
    try:
        obs = sim.reset()
        with torch.no_grad():
            while None in end:
                step = torch.full((H,), n)
                a = torch.clamp(teacher.policy._predict(obs, deterministic=True), teacher._low, teacher._high)
                act = blend_actions(cfg.schedule.eps(step), a, uniform_noise(keys, step, 12), low, high)
                rows["proprio_observation"].append(obs.clone())
                rows["action"].append(act)
                rows["demonstrator_action"].append(a)
                rows["step_num"].append(sim.episode_step.int())
                r = sim.step(act)
                rows["reward"].append(r.reward.clone())
                done = r.terminated | r.truncated
                falls += int(r.terminated.sum())
                end = [n if e is None and bool(done[j]) and n >= N - 1 else e for j, e in enumerate(end)]
                obs = sim.reset(done) if bool(done.any()) else r.obs
                n += 1
    finally:
        sim.close()
    assert falls > 0 and len(set(end)) > 1  # episodes ended by falls; the histories end at different steps
    for j in range(H):
        assert len(got[j]["reward"]) == end[j] + 1 > N
        for k, v in rows.items():
            np.testing.assert_array_equal(got[j][k], torch.stack(v)[: end[j] + 1, j].numpy(), err_msg=f"{k} of {j}")


def test_the_profiles_op_counter_tells_launches_views_and_host_reads():
    """benchmarks/collect_step_profile.py: each op counted under the innermost labelled call, by kind."""
    from conftest import load_benchmark

    bench = load_benchmark("collect_step_profile")
    counter = bench.OpCounter()
    x = torch.ones(4, 3)

    def inner(t):
        return t[1:].add_(1.0)  # a view (slice) and an in-place op: a launch

    def outer(t):
        y = counter.wrap("inner", inner)(t)
        return bool((y.sum() > 0).any())  # sum, gt, any: launches; bool(): a host read

    with counter:
        counter.wrap("outer", outer)(x)
        counter.wrap("outer", outer)(x)
    got = bench.summarise_ops(counter, steps=2)
    assert {k: got["inner"][k] for k in ("launch", "view", "host_read", "calls")} == \
        {"launch": 1, "view": 1, "host_read": 0, "calls": 1}
    assert {k: got["outer"][k] for k in ("launch", "view", "host_read", "calls")} == \
        {"launch": 3, "view": 0, "host_read": 1, "calls": 1}
    assert x[0].tolist() == [1.0] * 3 and x[1:].eq(3.0).all()  # the ops ran
