"""Provenance of every output: package versions, the machine, file hashes, and atomic JSON writes.

Every command records its config and these facts next to what it writes, so a result can be
traced back to the code and data that produced it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from go2bench._version import __version__

__all__ = ["versions", "hardware", "file_sha256", "read_json_object", "write_atomic", "write_json_atomic", "remove_stale_temp_files",
           "OutputWriteError"]

_TMP_SUFFIX = ".tmp"

_DISTRIBUTIONS = ("torch", "stable_baselines3", "genesis-world", "gymnasium", "numpy", "h5py")


class OutputWriteError(OSError):
    """Writing an output file failed (disk full, permissions); the message names the file."""


def versions() -> dict[str, str]:
    """Versions of go2bench, Python and the packages a result depends on ("missing" if absent)."""
    out = {"go2bench": __version__, "python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def hardware(device: str = "cpu", backend: str = "cpu") -> str:
    """A one-line description of the machine: CPU model and cores, and the GPU if one is used."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {len(os.sched_getaffinity(0))} cores"
    if str(device).startswith("cuda") or backend == "gpu":
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def read_json_object(path: str | Path, what: str = "JSON file") -> dict[str, Any]:
    """A JSON object from ``path``; a one-line ValueError naming the file (and ``what`` it is) otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: unreadable {what}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a {what} must be a JSON object")
    return data


def check_output_path(path: str | Path) -> None:
    """Fail now, not after the work, if ``path`` cannot be written (its folder cannot be made, or it is a folder)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{p}: is a folder; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"{p}: cannot create its folder: {e}") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_error(path: str | Path, action: str, exc: BaseException) -> OutputWriteError:
    """An :class:`OutputWriteError` naming the file, what was being done and why it failed."""
    err = getattr(exc, "errno", None)
    hint = " (disk full)" if err == errno.ENOSPC or "No space" in str(exc) else ""
    return OutputWriteError(f"{path}: failed to {action}{hint}: {exc}")


def write_atomic(path: str | Path, write: Callable[[str], None], what: str, suffix: str = _TMP_SUFFIX) -> Path:
    """Create ``path`` by ``write(tmp)`` into a temporary file of the same folder, then ``os.replace``.

    Readers never see a half-written file, and a crash or error leaves either the old content or
    none (the temporary file is removed); an OSError becomes one clear line naming ``path`` and ``what``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(path, what, exc) from exc
        raise
    return path


def write_json_atomic(path: str | Path, obj: Any, indent: int = 2, fsync: bool = True) -> None:
    """Write JSON to ``path`` atomically (:func:`write_atomic`); NaN and inf are refused (they are not JSON).

    ``fsync=False`` for a file that describes data which is not fsynced itself (a history's record):
    the rename alone already makes it safe against a kill, and each fsync costs a file-system
    journal commit (1-4 ms on the 2-core machine's ext4, paid per history at the end of a collection).
    """
    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=indent, allow_nan=False)
            fh.write("\n")
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())

    write_atomic(path, write, "write JSON")


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files a killed :func:`write_json_atomic` left in ``directory``.

    A kill between creating the temporary file and renaming it leaves ``.<name>.<random>.tmp``
    behind; the next run that writes into the folder removes them. Returns what was removed.
    """
    d = Path(directory)
    removed = []
    if d.is_dir():
        for p in d.glob(f".*.json.*{_TMP_SUFFIX}"):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
