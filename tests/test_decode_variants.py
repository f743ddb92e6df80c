"""The opt-in decode variants of VintixPolicy (a bfloat16/float16 KV cache, ``attention="matmul"``,
``unmasked_when_full``, ``compile_step``) against the default float32 SDPA decode, eagerly on the CPU, on streams
that wrap the ring buffer with episode starts and a context clear; the step's additive mask against the boolean
one it replaced; and ``benchmarks/eval_throughput.py``'s variant rows next to the fields older readers use.

Tolerances (max abs action difference, tiny random model, actions spread with std 0.22; a context one token
longer changes them by 0.10-0.14): float32 matmul 1-2e-7 measured (1e-6 allowed), float16 cache 1.2-1.5e-4
(5e-4), bfloat16 cache 0.9-1.3e-3 (4e-3).  The shipped checkpoint over 2,248 steps at context 2048, actions
spread with std ~0.6 (the slow test, 1 env: float16 + matmul 2.2e-5; bfloat16 measured 1.1e-4 once;
`eval_throughput.py` on the CPU, 4 envs: float32 matmul 8.3e-7, float16 1.4e-5, bfloat16 1.6e-4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import load_benchmark

from go2bench.vintix.config import make_model_config
from go2bench.vintix.inference import VintixPolicy
from go2bench.vintix.model import VintixModel, matmul_attention

from test_vintix_graph_decode import OBS, _one_thread, _policy  # noqa: F401 - the tiny policy, one thread

CHECKPOINT = Path(__file__).resolve().parents[1] / "go2bench" / "zoo" / "vintix" / "vintix.pt"
TOL = {("float32", "matmul"): 1e-6, ("float16", "sdpa"): 5e-4, ("float16", "matmul"): 5e-4,
       ("bfloat16", "sdpa"): 4e-3, ("bfloat16", "matmul"): 4e-3}


def _run(pol, static=False, T=23, N=4):
    """T steps over a 5-slot ring (wraps four times), random episode starts, env 2's context cleared at step 9."""
    g = torch.Generator().manual_seed(3)
    obs, rew = torch.randn(T, N, OBS, generator=g), torch.randn(T, N, generator=g)
    start = torch.rand(T, N, generator=g) < 0.2
    start[0] = True
    pol.reset(N, "g")
    act = pol.static_step() if static else pol.act
    out = []
    for t in range(T):
        if t == 9:
            pol.clear_context(torch.tensor([False, False, True, False]))
        out.append(act(obs[t], rew[t], start[t]))
    return torch.stack(out)


@pytest.mark.parametrize("pos,context", [("rope", "history"), ("rope", "episode"), ("alibi", "history")])
def test_variants_match_the_float32_sdpa_decode_within_their_tolerance(pos, context):
    ref = _run(_policy(pos, context))
    assert float((_run(_policy(pos, context, C=6)) - ref).abs().max()) > 0.05  # what the tolerances must tell apart
    for (kv, attention), tol in TOL.items():
        pol = _policy(pos, context, kv_dtype=kv, attention=attention)
        out = _run(pol)
        err = float((out - ref).abs().max())
        assert err <= tol, (kv, attention, err)
        assert pol._k[0].dtype == getattr(torch, kv) and out.dtype == torch.float32
        if kv != "float32":
            assert err > 1e-6, (kv, attention)  # the cache really holds the narrower type
        assert pol.decode_options == {"kv_dtype": kv, "attention": attention, "compiled": False,
                                      "unmasked_when_full": False}
        assert torch.equal(_run(_policy(pos, context, kv_dtype=kv, attention=attention), static=True), out)


@pytest.mark.parametrize("kv,attention", [("float32", "sdpa"), ("float16", "matmul")])
def test_unmasked_step_once_every_slot_is_valid_equals_the_masked_step(kv, attention):
    """History context: the steps since the last reset or clear decide (a clear at step 9 of 23, ring of 5: steps
    5-8 and 14-22 unmasked); an episode-context policy, whose starts are on the device, always masks."""
    masked = _run(_policy(kv_dtype=kv, attention=attention))
    pol = _policy(kv_dtype=kv, attention=attention, unmasked_when_full=True)
    calls, full_fn = [], pol._full_fn
    pol._full_fn = lambda *a: calls.append(len(calls)) or full_fn(*a)
    assert torch.equal(_run(pol), masked) and len(calls) == 4 + 9
    stale = _policy(kv_dtype=kv, attention=attention)  # the unmasked step where a slot is not valid yet: wrong
    stale.reset(4, "g")
    obs, rew = torch.ones(4, OBS), torch.zeros(4)
    ref = [stale.act(obs, rew, torch.ones(4, dtype=torch.bool)) for _ in range(2)][-1]
    stale.reset(4, "g")
    stale.act(obs, rew, torch.ones(4, dtype=torch.bool))
    assert float((stale.static_step(full=True)(obs, rew, torch.ones(4, dtype=torch.bool)) - ref).abs().max()) > 1e-3
    assert not _policy(context="episode", unmasked_when_full=True).unmasked_when_full
    assert not _policy(pos="alibi", unmasked_when_full=True).unmasked_when_full  # its mask is the position bias


def test_auto_attention_is_matmul_on_cuda_and_sdpa_elsewhere():
    from go2bench.vintix.inference import resolve_attention

    assert resolve_attention("auto", "cuda") == "matmul" and resolve_attention("auto", torch.device("cuda:1")) == "matmul"
    assert resolve_attention("auto", "cpu") == "sdpa" and resolve_attention("sdpa", "cuda") == "sdpa"
    assert _policy().decode_options["attention"] == "sdpa"  # the CPU default


def test_bad_decode_options_are_refused_by_name():
    with pytest.raises(ValueError, match="kv_dtype must be one of"):
        _policy(kv_dtype="int8")
    with pytest.raises(ValueError, match="attention must be one of"):
        _policy(attention="flash")
    assert _policy(kv_dtype=torch.float16).decode_options["kv_dtype"] == "float16"


def test_additive_mask_equals_the_boolean_mask_and_matmul_attention_the_definition():
    torch.manual_seed(1)
    N, H, C, Dh = 3, 2, 6, 8
    attn = VintixModel(make_model_config("tiny", {}), {"g": {"obs_dim": 2, "act_dim": 1}}).trunk.blocks[0].attn
    valid = torch.rand(N, C) < 0.6
    valid[:, 2] = True  # the slot written this step
    x = torch.randn(N, 1, attn.n_heads * attn.head_dim)
    outs = []
    for mask in (valid[:, None, None, :], torch.zeros(N, C).masked_fill(~valid, float("-inf"))[:, None, None, :]):
        g = torch.Generator().manual_seed(2)
        k, v = (torch.randn(N, attn.n_heads, C, attn.head_dim, generator=g) for _ in range(2))
        outs.append(attn.step(x, None, None, k, v, torch.tensor([2]), mask))
    assert torch.equal(outs[0], outs[1])
    q, k, v = (torch.randn(N, H, 1 if i == 0 else C, Dh, dtype=torch.float64) for i in range(3))
    w = torch.exp((q * k).sum(-1) / Dh ** 0.5).masked_fill(~valid[:, None, :], 0.0)  # (N, H, C), by hand
    expect = (w[..., None] * v).sum(-2, keepdim=True) / w.sum(-1)[..., None, None]
    got = matmul_attention(q, k, v, valid[:, None, None, :])
    assert torch.allclose(got.double(), expect, atol=1e-6)  # its softmax is float32
    assert torch.allclose(F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :]), expect)


def test_eval_throughput_variant_rows_beside_the_old_fields(tmp_path, capsys, monkeypatch):
    bench = load_benchmark("eval_throughput")
    out = tmp_path / "e.json"
    monkeypatch.setattr("sys.argv", ["eval_throughput.py", "--model", "tiny", "--context-len", "8", "--num-envs", "3",
                                     "--steps", "4", "--naive-steps", "1", "--device", "cpu",
                                     "--variants", "graph,graph-fp16kv-matmul", "--out", str(out)])
    bench.main()
    d = json.loads(out.read_text())
    for key in ("max_abs_action_diff", "batched", "naive", "speedup", "graph"):
        assert key in d
    assert d["graph"] == {"skipped": "CUDA graphs need a CUDA device, not cpu"}  # on the CPU the graph runs eagerly
    g, f = d["variants"]["graph"], d["variants"]["graph-fp16kv-matmul"]
    assert g["decode"]["mode"] == "eager" and g["max_abs_action_diff_vs_eager"] == 0.0
    assert f["decode_options"] == {"kv_dtype": "float16", "attention": "matmul", "compiled": False,
                                   "unmasked_when_full": False}
    assert 0 < f["max_abs_action_diff_vs_eager"] <= TOL[("float16", "matmul")] and f["compared_steps"] == 8 + 300 + 4
    assert f["speedup_vs_naive"] == pytest.approx(f["env_steps_per_s"] / d["naive"]["env_steps_per_s"])
    assert "graph-fp16kv-matmul" in capsys.readouterr().out


def _compile_unavailable() -> str | None:
    """Why torch.compile cannot build kernels in this Python environment (None: it can). Inductor's CPU backend
    compiles C++ through the environment's toolchain (a venv whose distutils is the stdlib's fails)."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(3))
    except Exception as e:  # noqa: BLE001 - any toolchain failure
        return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


@pytest.mark.slow
def test_compiled_step_matches_the_eager_step():
    """torch.compile of the step (in-place cache updates, no graph breaks), plain and on the static buffers."""
    why = _compile_unavailable()
    if why:
        pytest.skip(f"torch.compile cannot build kernels here: {why}")
    ref = _run(_policy())
    for attention in ("sdpa", "matmul"):
        pol = _policy(compile_step=True, attention=attention)
        assert float((_run(pol) - ref).abs().max()) <= 1e-6
        assert float((_run(pol, static=True) - ref).abs().max()) <= 1e-6
    pol = _policy(compile_step=True, unmasked_when_full=True)
    assert float((_run(pol) - ref).abs().max()) <= 1e-6


@pytest.mark.slow
def test_shipped_checkpoint_accuracy_of_the_narrow_caches_over_a_wrapped_window():
    """The shipped model, full 2048-token context, 2,248 steps (the ring wrapped by 200 slots), episode starts."""
    N, T = 1, 2248
    g = torch.Generator().manual_seed(7)
    obs, rew = torch.randn(T, N, 33, generator=g), torch.rand(T, N, generator=g) * 0.03
    start = torch.zeros(T, N, dtype=torch.bool)
    start[0], start[T // 3] = True, True
    outs = {}
    for kv, attention in (("float32", "sdpa"), ("float16", "matmul")):  # bfloat16: the small model's test above
        pol = VintixPolicy.load(CHECKPOINT, kv_dtype=kv, attention=attention)
        pol.reset(N, "go2_walking")
        outs[kv] = torch.stack([pol.act(obs[t], rew[t], start[t]) for t in range(T)])
    spread = float(outs["float32"].std())
    assert spread > 0.05
    assert float((outs["float16"] - outs["float32"]).abs().max()) <= 1e-4  # measured 2.2e-5
