"""Genesis is initialised once per process; this module owns that one initialisation.

Importing Genesis is slow (seconds) and initialising it fixes the compute backend for the life of
the process, so go2bench imports it only when the first environment is built, and refuses, with
a clear message, a later request for a different backend.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

BACKENDS = ("cpu", "gpu")
_backend_in_use: str | None = None


def _prepare_environment(backend: str) -> None:
    # Headless rendering needs EGL, and the variable must be set before OpenGL is imported.
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    # Genesis' CPU backend runs on one thread unless told otherwise.
    if backend == "cpu":
        os.environ.setdefault("QD_NUM_THREADS", str(len(os.sched_getaffinity(0))))


DETERMINISTIC_VARIABLE = "GO2BENCH_DETERMINISTIC"


def init_options(backend: str) -> dict[str, Any]:
    """``gs.init``'s options besides the backend.  On the GPU Genesis runs in performance mode, where its
    constraint solver's implementation is picked by timing at run time, so a rollout depends on machine
    load (two GPU collections of one config differ: docs/data.md); ``GO2BENCH_DETERMINISTIC=1`` settles
    that choice at build time (Genesis' ``use_deterministic_algorithms``) for bit-reproducible runs on one
    machine, at a throughput cost.  The CPU backend is deterministic either way."""
    opts: dict[str, Any] = {"precision": "32", "logging_level": "warning", "performance_mode": backend == "gpu"}
    flag = os.environ.get(DETERMINISTIC_VARIABLE, "")
    if flag not in ("", "0", "1"):
        raise ValueError(f"{DETERMINISTIC_VARIABLE} must be 0 or 1, got {flag!r}")
    if flag == "1":
        opts["use_deterministic_algorithms"] = True
    return opts


def init(backend: str = "cpu") -> Any:
    """Initialise Genesis for ``backend`` ("cpu" or "gpu") if needed and return the module."""
    global _backend_in_use
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if _backend_in_use is not None:
        if backend != _backend_in_use:
            raise RuntimeError(
                f"Genesis is already initialised with backend={_backend_in_use!r} in this process and "
                f"cannot switch to backend={backend!r}; use one backend per process "
                f"(start a new Python process for the other)."
            )
        import genesis as gs

        return gs

    if backend == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("backend='gpu' needs a CUDA GPU visible to torch; none is. Use backend='cpu'.")
    _prepare_environment(backend)
    import genesis as gs

    if gs._initialized:  # initialised by the user before us: accept it if it matches
        actual = "cpu" if gs.backend == gs.cpu else "gpu"
        if actual != backend:
            raise RuntimeError(
                f"Genesis was initialised by the caller with the {actual} backend; go2bench was asked "
                f"for backend={backend!r}. Pass backend={actual!r} or initialise Genesis differently."
            )
    else:
        gs.init(backend=gs.cpu if backend == "cpu" else gs.gpu, **init_options(backend))
    _quiet_known_harmless_warnings()
    _backend_in_use = backend
    return gs


class _DropKnownHarmless:
    """A logging filter for Genesis messages that say nothing about go2bench's simulation.

    "Neutral robot position (qpos0) exceeds joint limits": the URDF's all-zero joint vector is
    outside some joint ranges (Go2's calf: -2.72..-0.84 rad); go2bench never uses that position,
    every reset sets the robot description's default pose, which is checked to lie within limits.
    """

    MESSAGES = ("Neutral robot position (qpos0) exceeds joint limits",)

    def filter(self, record) -> bool:
        return not any(str(record.msg).startswith(m) for m in self.MESSAGES)


def _quiet_known_harmless_warnings() -> None:
    """Silence Genesis' and its compiler's known-harmless warnings, unless GO2BENCH_GENESIS_WARNINGS=all.

    The kernel compiler (quadrants) warns "qd.loop_config(serialize=True) does not have effect on
    the struct for" about Genesis' own kernels, several times per process on a cold kernel cache;
    its warnings are raised to errors-only here. Genesis' own logger keeps every other warning.
    """
    if os.environ.get("GO2BENCH_GENESIS_WARNINGS") == "all":
        return
    import logging

    logger = logging.getLogger("genesis")
    if not any(isinstance(f, _DropKnownHarmless) for f in logger.filters):
        logger.addFilter(_DropKnownHarmless())
    try:
        import quadrants as qd

        qd.set_logging_level("error")
    except (ImportError, AttributeError):  # another compiler version: keep its default level
        pass


def backend_in_use() -> str | None:
    """The backend Genesis was initialised with by go2bench, or None before the first env."""
    return _backend_in_use


@contextlib.contextmanager
def torch_threads_beside_simulation(device) -> Iterator[None]:
    """One torch thread inside a loop that interleaves CPU Genesis steps with torch compute.

    Genesis' CPU backend keeps its worker threads (one per core) busy; torch's intra-op threads
    then fight them, and a 16-row MLP forward took 8 ms instead of tens of microseconds (the
    collector ran at a tenth of the simulation's speed). Torch gets one thread for the block and
    its previous setting back afterwards. No effect when the simulation is on the GPU.
    """
    import torch

    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
