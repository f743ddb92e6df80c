"""A robot's URDF without its <visual> elements, for scenes that render nothing.

Genesis reads a URDF twice (its own parser, then MuJoCo's through urdfpy), and urdfpy loads every
mesh a file names, visual ones included, although a scene built without visualization drops them:
Go2's 34 COLLADA visuals cost 7-11 s of a CPU build (benchmarks/build_probe.py). The copy made
here keeps every link, joint, inertial and collision element as written, so the simulation is the
same (tests/test_collision_urdf.py compares rollouts); only the meshes nobody draws are never read.

The copy lives in a cache directory keyed by the source file's content and location (mesh paths
are rewritten to absolute ones, so the location matters); it is made once and reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

_FORMAT = "1"  # bump when the transformation changes, so old copies are not reused


def cache_dir() -> Path:
    """Where the copies live: $GO2BENCH_CACHE or $XDG_CACHE_HOME/go2bench (~/.cache/go2bench) /urdf."""
    root = os.environ.get("GO2BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "go2bench")
    return Path(root) / "urdf"


def resolve(urdf: str) -> Path:
    """Absolute path of ``urdf``: a file path as given, else a path inside Genesis' asset directory."""
    path = Path(urdf)
    if path.is_absolute():
        return path
    # genesis/assets, as genesis.utils.misc.get_assets_dir, found without importing Genesis (seconds)
    spec = importlib.util.find_spec("genesis")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{urdf!r} is a Genesis asset path but genesis-world is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / urdf


def strip_visuals(text: str, source_dir: Path) -> str | None:
    """The URDF ``text`` without <visual> elements, mesh paths made absolute; None if it has no visuals.

    Also None when a collision mesh is named with a scheme (``package://``): Genesis resolves those
    by searching around the source file, which a copy elsewhere cannot reproduce, so such a file is
    used as it is.
    """
    root = ET.fromstring(text)
    visuals = [(link, v) for link in root.iter("link") for v in link.findall("visual")]
    if not visuals:
        return None
    for link, visual in visuals:
        link.remove(visual)
    for mesh in root.iter("mesh"):
        name = mesh.get("filename", "")
        if "://" in name:
            return None
        mesh.set("filename", str(source_dir / name))  # an absolute name stays as it is
    return ET.tostring(root, encoding="unicode")


def collision_only(urdf: str) -> str:
    """Path of ``urdf`` without its visuals (a cached copy), or ``urdf`` itself when that saves nothing."""
    source = resolve(urdf)
    data = source.read_bytes()
    key = hashlib.sha256(b"\0".join((_FORMAT.encode(), str(source).encode(), data))).hexdigest()[:20]
    target = cache_dir() / f"{source.stem}-{key}.urdf"
    if target.is_file():
        return str(target)
    stripped = strip_visuals(data.decode("utf-8"), source.parent)
    if stripped is None:
        return urdf
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")  # atomic: concurrent builds see all or nothing
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(stripped)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(target)
