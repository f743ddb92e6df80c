"""Vintix model: causality, mixed-width groups, KV-cache streaming equals a full forward pass."""

from __future__ import annotations

import pytest
import torch

from go2bench.vintix.config import MODEL_PRESETS, make_model_config
from go2bench.vintix.inference import VintixPolicy
from go2bench.vintix.model import VintixModel

@pytest.fixture(autouse=True)
def _one_thread():  # tiny shapes: threads only add overhead on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


GROUPS = {
    "cheetah": {"obs_dim": 33, "act_dim": 12},
    "go2_full": {"obs_dim": 45, "act_dim": 10},
}


def _model(pos="rope", **kw):
    torch.manual_seed(0)
    cfg = make_model_config("tiny", {"pos_encoding": pos, **kw})
    return VintixModel(cfg, GROUPS).eval()


def _batch(B=4, L=16, groups=(0, 1, 1, 0), seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, L, 45, generator=g)
    act = torch.randn(B, L, 12, generator=g)
    rew = torch.randn(B, L, generator=g)
    return obs, act, rew, torch.tensor(groups)


@pytest.mark.parametrize("pos", ["rope", "alibi"])
def test_causality(pos):
    m = _model(pos, qk_norm=True)
    obs, act, rew, grp = _batch()
    y = m(obs, act, rew, grp)
    obs2, act2, rew2 = obs.clone(), act.clone(), rew.clone()
    obs2[:, 9:] += 5.0
    act2[:, 9:] -= 3.0
    rew2[:, 9:] = 7.0
    y2 = m(obs2, act2, rew2, grp)
    assert torch.allclose(y[:, :9], y2[:, :9], atol=1e-6)
    assert not torch.allclose(y[:, 9:], y2[:, 9:], atol=1e-3)


def test_mixed_groups_in_one_batch_equal_separate_batches():
    m = _model()
    obs, act, rew, grp = _batch()
    y = m(obs, act, rew, grp)
    assert y.shape == (4, 16, 12)
    # padded dims: group 1 (act_dim 10) predicts zeros beyond its width
    assert torch.all(y[1:3, :, 10:] == 0)
    # inputs beyond a group's widths are ignored
    obs2 = obs.clone()
    obs2[0, :, 33:] = 100.0
    assert torch.allclose(m(obs2, act, rew, grp)[0], y[0], atol=1e-6)
    for i in range(4):
        yi = m(obs[i : i + 1], act[i : i + 1], rew[i : i + 1], grp[i : i + 1])
        assert torch.allclose(yi[0], y[i], atol=1e-5)
    loss = m.loss(y, torch.zeros_like(y), grp)
    expected = torch.cat([y[0, :, :12].reshape(-1), y[1:3, :, :10].reshape(-1), y[3, :, :12].reshape(-1)]).pow(2).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_param_counts_of_presets():
    counts = {}
    for name in ("tiny", "seed", "small"):
        counts[name] = VintixModel(make_model_config(name), {"a": {"obs_dim": 45, "act_dim": 12}}).num_params()
    assert counts["tiny"] < 200_000
    assert 0.8e6 < counts["seed"] < 1.6e6
    assert 2e6 < counts["small"] < 20e6
    cfg = make_model_config("seed", {"n_layers": 4})
    assert cfg.n_layers == 4 and cfg.d_model == 256
    assert make_model_config("paper").d_model == 1024 and MODEL_PRESETS["paper"]["n_layers"] == 20


def _stream(pos, C=6, N=3, T=20, clear_at=11, clear_envs=(1,), static=False):
    """Stream T steps through a policy with context C; return per-step outputs and the inputs.

    ``static``: through the static-buffer decode step (what a CUDA graph records), run eagerly."""
    m = _model(pos, qk_norm=(pos == "rope"))
    groups = {g: dict(v) for g, v in GROUPS.items()}
    for g, info in groups.items():
        gen = torch.Generator().manual_seed(len(g))
        info.update(obs_mean=torch.randn(info["obs_dim"], generator=gen).tolist(),
                    obs_std=(torch.rand(info["obs_dim"], generator=gen) + 0.5).tolist(),
                    act_mean=torch.randn(info["act_dim"], generator=gen).tolist(),
                    act_std=(torch.rand(info["act_dim"], generator=gen) + 0.5).tolist(),
                    reward_scale=3.0, env_id=None)
    pol = VintixPolicy(m, groups, context_len=C)
    pol.reset(N, "go2_full")
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(T, N, 45, generator=gen)
    rew = torch.randn(T, N, generator=gen)
    start = torch.rand(T, N, generator=gen) < 0.15
    start[0] = True
    act = pol.static_step() if static else pol.act
    outs = []
    for t in range(T):
        if t == clear_at:
            mask = torch.zeros(N, dtype=torch.bool)
            mask[list(clear_envs)] = True
            pol.clear_context(mask)
        outs.append(act(obs[t], rew[t], start[t]))
    return m, pol, obs, rew, start, torch.stack(outs)


def _reference(m, pol, obs, rew, start, outs, env, t0, t1, C):
    """Full forward (sliding window C) over env's tokens t0..t1-1 built from the policy's own actions."""
    o = pol.normalize_obs(obs[t0:t1, env])
    a_norm = pol.normalize_action(outs[:, env])
    pa = torch.zeros(t1 - t0, 10)
    pa[1:] = a_norm[t0 : t1 - 1]  # the policy's own previous action (none right after a reset/clear)
    pr = rew[t0:t1, env] * 3.0  # act(obs[t], rew[t], ...) gets rew[t] as the previous step's reward
    st = start[t0:t1, env].clone()
    pa[st] = 0
    pr[st] = 0
    grp = torch.tensor([m.group_index("go2_full")])
    y = m(o[None], pa[None], pr[None], grp, window=C)[0, :, :10]
    return y * pol._act_std + pol._act_mean


@pytest.mark.parametrize("static", [False, True], ids=["plain", "static-buffers"])
@pytest.mark.parametrize("pos", ["rope", "alibi"])
def test_kv_cache_streaming_equals_full_forward(pos, static):
    C, T, clear_at = 6, 20, 11
    m, pol, obs, rew, start, outs = _stream(pos, C=C, T=T, clear_at=clear_at, clear_envs=(1,), static=static)
    for env in (0, 2):  # never cleared: window slid many times
        ref = _reference(m, pol, obs, rew, start, outs, env, 0, T, C)
        torch.testing.assert_close(outs[:, env], ref, atol=1e-4, rtol=1e-4)
        # before the window slides, sliding == plain causal attention over everything
        ref_c = _reference(m, pol, obs, rew, start, outs, env, 0, C, None)
        torch.testing.assert_close(outs[:C, env], ref_c, atol=1e-4, rtol=1e-4)
    # env 1 was cleared at clear_at: its context restarts there (cold start, no previous action)
    ref1 = _reference(m, pol, obs, rew, start, outs, 1, clear_at, T, C)
    torch.testing.assert_close(outs[clear_at:, 1], ref1, atol=1e-4, rtol=1e-4)
    ref1_before = _reference(m, pol, obs, rew, start, outs, 1, 0, clear_at, C)
    torch.testing.assert_close(outs[:clear_at, 1], ref1_before, atol=1e-4, rtol=1e-4)
    # the full-stream reference (no clear) must differ for env 1 after the clear
    ref1_noclear = _reference(m, pol, obs, rew, start, outs, 1, 0, T, C)
    assert not torch.allclose(outs[clear_at:, 1], ref1_noclear[clear_at:], atol=1e-3)


def test_policy_errors():
    m = _model()
    groups = {g: dict(v, env_id=("Go2Walk-v0" if g == "go2_full" else None)) for g, v in GROUPS.items()}
    pol = VintixPolicy(m, groups, context_len=4)
    assert pol.group_for_env("Go2Walk-v0") == "go2_full"
    with pytest.raises(KeyError, match="MiniCheetahWalk-v0"):
        pol.group_for_env("MiniCheetahWalk-v0")
    with pytest.raises(RuntimeError):
        pol.act(torch.zeros(1, 45), torch.zeros(1), torch.ones(1, dtype=torch.bool))
    with pytest.raises(KeyError):
        pol.reset(2, "nope")
