"""Genesis is initialised once per process; this module owns that one initialisation.

Importing Genesis is slow (seconds) and initialising it fixes the compute backend for the life of
the process, so go2bench imports it only when the first environment is built, and refuses, with
a clear message, a later request for a different backend.
"""

from __future__ import annotations

import os
from typing import Any

BACKENDS = ("cpu", "gpu")
_backend_in_use: str | None = None


def _prepare_environment(backend: str) -> None:
    # Headless rendering needs EGL, and the variable must be set before OpenGL is imported.
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    # Genesis' CPU backend runs on one thread unless told otherwise.
    if backend == "cpu":
        os.environ.setdefault("QD_NUM_THREADS", str(len(os.sched_getaffinity(0))))


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
        gs.init(
            backend=gs.cpu if backend == "cpu" else gs.gpu,
            precision="32",
            logging_level="warning",
            performance_mode=backend == "gpu",
        )
    _backend_in_use = backend
    return gs


def backend_in_use() -> str | None:
    """The backend Genesis was initialised with by go2bench, or None before the first env."""
    return _backend_in_use
