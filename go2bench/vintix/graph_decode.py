"""A decode step replayed as one CUDA graph: static input buffers in, a static output buffer out.

Streaming evaluation runs the same small forward (one token per env, a few layers) every env
step; eagerly that is a hundred-odd kernel launches from Python, each far shorter than its launch.
:class:`StaticStep` records the step once for fixed shapes and replays it with one launch.  The
step function must read its inputs only from the static buffers it is given and keep all its state
in tensors updated in place (the ring-buffer slot included: no host integers, no host syncs), so
that the recorded graph is valid at every position.  Capture runs the function a few times first
(warm-up: cuBLAS handles, allocator), so the caller resets its state after :func:`capture_step`.

With ``graph=False`` the same static-buffer path runs eagerly: what the graph records, runnable on
the CPU (tests compare it with the plain path there).
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import torch

__all__ = ["StaticStep", "capture_step", "graph_unavailable_reason", "wants_graph", "GRAPH_VARIABLE"]

GRAPH_VARIABLE = "GO2BENCH_CUDA_GRAPH"  # "0": no CUDA-graph decode step (the default on a CUDA device)


def wants_graph(device: torch.device, requested: bool | None) -> bool:
    """``requested``, or by default (None): on for a CUDA device unless ``GO2BENCH_CUDA_GRAPH=0``."""
    if requested is not None:
        return bool(requested)
    return torch.device(device).type == "cuda" and os.environ.get(GRAPH_VARIABLE, "1") != "0"


def graph_unavailable_reason(device: torch.device) -> str | None:
    """Why a CUDA graph cannot be used on ``device`` (None: it can)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    return None


class StaticStep:
    """``fn(*static_inputs) -> tensor`` with inputs copied into fixed buffers; replayed as a CUDA graph
    when ``graph`` is set (see :func:`capture_step`), else run eagerly on the same buffers."""

    def __init__(self, fn: Callable[..., torch.Tensor], static_inputs: Sequence[torch.Tensor]):
        self.fn = fn
        self.inputs = list(static_inputs)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.output: torch.Tensor | None = None

    @torch.no_grad()
    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs, got {len(inputs)}")
        for buf, x in zip(self.inputs, inputs):
            buf.copy_(x)  # shapes were checked by the caller; copy_ raises on a mismatch anyway
        if self.graph is None:
            return self.fn(*self.inputs)
        self.graph.replay()
        return self.output.clone()  # the buffer is overwritten by the next replay


def capture_step(step: StaticStep, warmup: int = 2) -> None:
    """Record ``step.fn`` on its static inputs as a CUDA graph (the state it updates in place is
    changed by the warm-up runs: reset it afterwards).  Raises what capture raised."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            step.fn(*step.inputs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step.fn(*step.inputs)
    torch.cuda.synchronize()
    step.graph, step.output = graph, out
