"""The built wheel and sdist carry the whole package: installed from the wheel, go2bench works outside the repo.

``python -m build`` writes both into a temporary folder (the wheel is built from the sdist, so the
sdist must hold everything too); the wheel goes into a fresh venv (``pip --python``, pip >= 22.3;
``--no-deps --no-index``: nothing is downloaded, the dependencies are the running environment's)
and ``tests/wheel_smoke.py`` loads every suite, teacher, Vintix checkpoint, URDF and dataset config
from there, run from a folder outside the repository. Expected files and counts come from
walking the repository's ``go2bench/`` folder, not from the packaging configuration under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "go2bench"


def repo_package_files() -> set[str]:
    """Every file under go2bench/ that a user of the package needs (bytecode caches aside)."""
    return {f"go2bench/{p.relative_to(PKG).as_posix()}" for p in PKG.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _clean_env() -> dict:
    """This environment minus anything that points Python at the repository (e.g. PYTHONPATH=$PWD)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


BUILD_INPUTS = ("pyproject.toml", "README.md", "MANIFEST.in", "setup.cfg", "setup.py", "LICENSE")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """Wheel and sdist built from a clean copy of the build inputs, as from a fresh clone.

    In place, a ``go2bench.egg-info`` left by an earlier build would feed its file list into the
    sdist and hide package data that the configuration no longer covers.
    """
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in BUILD_INPUTS:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PKG, src / "go2bench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # --no-isolation: the build backend (setuptools, in the test extra) is already installed, so no download
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)])
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dist) -> Path:
    """A fresh venv that sees this interpreter's packages (dependencies) behind its own (the wheel).

    Like ``--system-site-packages``, but for the running environment even when that is itself a venv:
    a .pth file adds its site directories (their .pth files too) after the venv's own.
    """
    where = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(where)])
    python = where / "bin" / "python"
    # this pip, run by the venv's interpreter (--python), installs before the venv sees anything else:
    # it cannot mistake (or touch) the editable install, and the console script points at the venv
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(dist["wheel"])])
    own = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    parents = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (own / "_parent_env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    return where


def test_wheel_holds_every_package_file(dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    missing = repo_package_files() - names
    assert not missing, f"missing from the wheel (add them to [tool.setuptools.package-data]): {sorted(missing)}"
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


def test_sdist_holds_every_package_file(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = (repo_package_files() | {"pyproject.toml", "README.md"}) - names
    assert not missing, f"missing from the sdist: {sorted(missing)}"


def test_installed_wheel_works_outside_the_repo(venv, tmp_path):
    python = venv / "bin" / "python"
    proc = _run([str(python), str(ROOT / "tests" / "wheel_smoke.py")], cwd=tmp_path)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    site = Path(got["package"])
    assert site.is_relative_to(venv.resolve()) and not site.is_relative_to(ROOT), got["package"]

    # independent expectations: what the repository's go2bench/ folder holds
    assert sorted(got["suites"]) == sorted(p.name for p in (PKG / "suites").glob("*.yaml"))
    assert all(n > 0 for n in got["suites"].values()), got["suites"]
    cards = sorted(str(p.parent.relative_to(PKG / "zoo")) for p in (PKG / "zoo").rglob("model_card.json"))
    vintix = {c for c in cards if (PKG / "zoo" / c / "vintix.pt").exists()}  # default-task and family Vintix
    assert vintix >= {"vintix", "MiniCheetahWalk-v0/velocity/vintix"}
    assert sorted(got["teachers"]) == [c for c in cards if c not in vintix]
    assert got["robot_assets"] and sorted(got["robot_assets"]) == sorted(
        p.name for p in (PKG / "envs" / "assets").iterdir() if (p / f"{p.name}.urdf").exists())
    assert sorted(got["configs"]) == sorted(p.name for p in (PKG / "configs").glob("*.yaml"))
    assert all(n > 0 for n in got["configs"].values())


def test_installed_console_script_runs(venv, tmp_path):
    script = venv / "bin" / "go2bench"
    assert "Commands:" in _run([str(script), "--help"], cwd=tmp_path).stdout
    listing = _run([str(script), "envs"], cwd=tmp_path).stdout
    for env_id in ("Go2Walk-v0", "MiniCheetahWalk-v0", "A1Walk-v0"):
        assert env_id in listing
    assert str(venv) in listing  # the Mini Cheetah URDF path printed is the installed one
