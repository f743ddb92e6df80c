"""Torch devices asked for on the command line, checked before any work starts."""

from __future__ import annotations

__all__ = ["check_torch_device"]


def check_torch_device(device: str, option: str = "--device") -> None:
    """A one-line error for a device this machine lacks (``cuda`` without a GPU, a misspelled name)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"{option} {device!r}: not a torch device ({e}); use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{option} {device}: this machine has no CUDA GPU visible to torch; use {option} cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{option} {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"{option} {device}: unsupported device type {dev.type!r}; use cpu or cuda")
