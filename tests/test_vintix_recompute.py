"""The training-exact decode (RecomputePolicy) against the KV-cache decode and a hand-built training window."""

from __future__ import annotations

import torch

from go2bench.vintix.config import make_model_config
from go2bench.vintix.inference import VintixPolicy
from go2bench.vintix.model import VintixModel
from go2bench.vintix.recompute import RecomputePolicy, WindowPolicy

GROUP = {"obs_dim": 45, "act_dim": 10}
C, N, T = 6, 2, 20


def _policies():
    torch.manual_seed(0)
    m = VintixModel(make_model_config("tiny", {"qk_norm": True}), {"g": GROUP}).eval()
    gen = torch.Generator().manual_seed(3)
    info = dict(GROUP, obs_mean=torch.randn(45, generator=gen).tolist(), obs_std=(torch.rand(45, generator=gen) + .5).tolist(),
                act_mean=torch.randn(10, generator=gen).tolist(), act_std=(torch.rand(10, generator=gen) + .5).tolist(),
                reward_scale=3.0, env_id=None)
    return m, VintixPolicy(m, {"g": info}, context_len=C), RecomputePolicy(m, {"g": info}, context_len=C)


def _inputs(seed: int):
    """T steps of random observations and rewards for N envs; every env's episode starts at step 0."""
    g = torch.Generator().manual_seed(seed)
    start = torch.zeros(T, N, dtype=torch.bool)
    start[0] = True
    return torch.randn(T, N, 45, generator=g), torch.randn(T, N, generator=g), start


def _stream(pol, obs, rew, start):
    pol.reset(N, "g")
    return torch.stack([pol.act(obs[t], rew[t], start[t]) for t in range(T)])


def test_equal_to_the_cache_until_the_window_slides_then_a_fresh_training_window():
    m, cache, exact = _policies()
    obs, rew, start = _inputs(1)
    start[9, 1] = True  # an episode boundary: a history context keeps it (previous action/reward zeroed)
    a_cache, a_exact = _stream(cache, obs, rew, start), _stream(exact, obs, rew, start)
    torch.testing.assert_close(a_exact[:C], a_cache[:C], atol=1e-5, rtol=1e-5)  # one window: the same model
    assert (a_exact[C + 2:] - a_cache[C + 2:]).abs().max() > 1e-3  # after the slide: keys from beyond the window
    # step t (>= C) by hand: ONE forward over the last C tokens, exactly a training window
    t = T - 1
    torch.testing.assert_close(a_exact[t, 1], _by_hand(m, exact, obs, rew, start, a_exact, 1, t - C + 1, t),
                               atol=1e-5, rtol=1e-5)


def _by_hand(m, pol, obs, rew, start, acts, env, first, t):
    """The action at step t of ``env`` from ONE forward over its tokens first..t (a training window), fed with the
    policy's own earlier actions as previous actions."""
    info = pol.groups["g"]
    mean, std = torch.tensor(info["act_mean"]), torch.tensor(info["act_std"])
    prev = (acts - mean) / std  # each step's normalised action, fed back as the next token's previous action
    window = range(first, t + 1)
    o = torch.stack([(obs[s, env] - torch.tensor(info["obs_mean"])) / torch.tensor(info["obs_std"]) for s in window])
    pa = torch.stack([torch.zeros(10) if start[s, env] else prev[s - 1, env] for s in window])
    pr = torch.stack([torch.zeros(()) if start[s, env] else rew[s, env] * 3.0 for s in window])
    y = m(o[None], pa[None], pr[None], torch.tensor([0]))[0, -1, :10]
    return y * std + mean


def test_window_decode_is_always_a_training_window_starting_at_its_last_rebuild():
    m, cache, _ = _policies()
    window = WindowPolicy(m, cache.groups, context_len=C)
    obs, rew, start = _inputs(4)
    start[9, 0] = True  # an episode boundary inside the history context
    acts = _stream(window, obs, rew, start)
    H = C // 2
    for t in range(T):  # rebuilds at C, C + H, ...: step t's window starts H before the last one
        first = 0 if t < C else C + (t - C) // H * H - H
        for env in range(N):
            torch.testing.assert_close(acts[t, env], _by_hand(m, window, obs, rew, start, acts, env, first, t),
                                       atol=1e-5, rtol=1e-5)
    a_cache = _stream(cache, obs, rew, start)
    torch.testing.assert_close(acts[:C], a_cache[:C], atol=1e-5, rtol=1e-5)
    assert (acts[C:] - a_cache[C:]).abs().max() > 1e-3


def test_cleared_env_restarts_its_window():
    m, cache, exact = _policies()
    obs, rew, start = _inputs(2)
    for pol in (cache, exact):
        pol.reset(N, "g")
    out = {id(p): [] for p in (cache, exact)}
    for t in range(T):
        if t == 12:
            for pol in (cache, exact):
                pol.clear_context(torch.tensor([False, True]))
        for pol in (cache, exact):
            out[id(pol)].append(pol.act(obs[t], rew[t], start[t]))
    a_cache, a_exact = (torch.stack(out[id(p)]) for p in (cache, exact))
    # env 1 restarted at step 12: its next C steps are one fresh window for both decodes
    torch.testing.assert_close(a_exact[12:12 + C, 1], a_cache[12:12 + C, 1], atol=1e-5, rtol=1e-5)
