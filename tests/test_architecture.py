"""The package's shape: layered sub-packages without cycles, modules a reader can hold in mind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "go2bench"
MAX_MODULE_LINES = 450


def test_layers_contract_is_kept():
    """core < envs < histories < vintix < agents < collect < eval < teachers < pipeline < cli."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    r = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_a_layer_import_is_caught(tmp_path):
    """The contract is live: a low layer importing a high one breaks it (checked on a copy of the tree)."""
    import shutil

    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "go2bench", ignore=shutil.ignore_patterns("zoo", "assets", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    bad = copy / "go2bench" / "core" / "bad.py"
    bad.write_text("def f():\n    from go2bench.eval import protocol  # inside a function: still counted\n")
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--no-cache"], cwd=copy, capture_output=True, text=True,
                       env={"PYTHONPATH": str(copy), "PATH": str(lint.parent)})
    assert r.returncode != 0
    assert "go2bench.core is not allowed to import go2bench.eval" in r.stdout


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
