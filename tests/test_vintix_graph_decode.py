"""The CUDA-graph-ready decode step on the CPU: the static-buffer path (what the graph records) gives
bit-identical actions to the plain path; reset reuses and zeroes the buffers a graph points at; the
graph is on by default only on CUDA and a CPU request falls back to the eager step, saying why."""

from __future__ import annotations

import warnings

import pytest
import torch

from go2bench.vintix.config import make_model_config
from go2bench.vintix.graph_decode import GRAPH_VARIABLE, wants_graph
from go2bench.vintix.inference import VintixPolicy
from go2bench.vintix.model import VintixModel

OBS, ACT = 7, 3


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _policy(pos="rope", context="history", C=5, **kw):
    torch.manual_seed(0)
    groups = {"g": {"obs_dim": OBS, "act_dim": ACT, "obs_mean": [0.1] * OBS, "obs_std": [2.0] * OBS,
                    "act_mean": [0.5] * ACT, "act_std": [1.5] * ACT, "reward_scale": 2.0}}
    model = VintixModel(make_model_config("tiny", {"pos_encoding": pos}), groups)
    return VintixPolicy(model, groups, context_len=C, context=context, **kw)


def _inputs(T=17, N=4, seed=3):
    g = torch.Generator().manual_seed(seed)
    obs, rew = torch.randn(T, N, OBS, generator=g), torch.randn(T, N, generator=g)
    start = torch.rand(T, N, generator=g) < 0.2
    start[0] = True
    return obs, rew, start


def _run(pol, act, inputs, clear_at=9):
    obs, rew, start = inputs
    outs = []
    for t in range(len(obs)):
        if t == clear_at:  # forget env 2 mid-stream
            pol.clear_context(torch.tensor([False, False, True, False]))
        outs.append(act(obs[t], rew[t], start[t]))
    return torch.stack(outs)


@pytest.mark.parametrize("pos,context", [("rope", "history"), ("rope", "episode"), ("alibi", "history")])
def test_static_buffer_step_equals_plain_step(pos, context):
    inputs = _inputs()  # 17 steps over a 5-slot ring: wraps three times, with episode starts and a clear
    plain = _policy(pos, context)
    plain.reset(4, "g")
    ref = _run(plain, plain.act, inputs)
    static = _policy(pos, context)
    static.reset(4, "g")
    step = static.static_step()
    out = _run(static, step, inputs)
    assert torch.equal(out, ref)
    assert static._slot.item() == 17 % 5 and static._pos.tolist() == plain._pos.tolist()


def test_reset_reuses_the_buffers_zeroed_and_restarts_the_stream():
    inputs = _inputs()
    pol = _policy()
    pol.reset(4, "g")
    step = pol.static_step()
    first = _run(pol, step, inputs)
    ptrs = [t.data_ptr() for t in (*pol._k, *pol._v, pol._valid, pol._pos, pol._slot, pol._prev_act)]
    pol.reset(4, "g")  # same N and group: the buffers a captured graph points at, zeroed in place
    assert [t.data_ptr() for t in (*pol._k, *pol._v, pol._valid, pol._pos, pol._slot, pol._prev_act)] == ptrs
    assert not pol._valid.any() and pol._slot.item() == 0 and float(pol._k[0].abs().sum()) == 0.0
    assert torch.equal(_run(pol, step, inputs), first)  # as from a cold start
    pol.reset(2, "g")  # another N: new buffers of that size
    assert pol._valid.shape == (2, 5) and pol._k[0].data_ptr() != ptrs[0]


def test_graph_default_only_on_cuda(monkeypatch):
    monkeypatch.delenv(GRAPH_VARIABLE, raising=False)
    assert wants_graph(torch.device("cuda"), None) is True
    assert wants_graph(torch.device("cpu"), None) is False
    assert wants_graph(torch.device("cuda"), False) is False
    monkeypatch.setenv(GRAPH_VARIABLE, "0")
    assert wants_graph(torch.device("cuda"), None) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pol = _policy()
        pol.reset(4, "g")  # default on the CPU: eager, nothing to warn about
    assert pol.decode_info == {"cuda_graph": False, "mode": "eager", "reason": None}


def test_graph_requested_on_cpu_falls_back_to_the_eager_step():
    inputs = _inputs()
    pol = _policy(cuda_graph=True)
    with pytest.warns(RuntimeWarning, match="decode step runs eagerly: CUDA graphs need a CUDA device, not cpu"):
        pol.reset(4, "g")
    assert pol.decode_info["mode"] == "eager" and pol.decode_info["cuda_graph"] is True
    ref = _policy()
    ref.reset(4, "g")
    assert torch.equal(_run(pol, pol.act, inputs), _run(ref, ref.act, inputs))
