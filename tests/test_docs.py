"""The docs site builds with ``mkdocs build --strict`` and its generated reference covers the code.

Strict mode turns every warning into a failure: a broken link or anchor, a page left out of the
nav, a docstring mkdocstrings cannot parse, a missing snippet file. The hook
``docs/hooks/reference_tables.py`` writes the reference tables from the code at build time; the
checks below read the built HTML back and look for what the code defines.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out


def page_text(site: Path, page: str) -> str:
    raw = (site / page / "index.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def test_env_reference_lists_every_registered_env_and_reward_term(site):
    from go2bench.envs.registry import TASKS
    from go2bench.envs.walk_config import RewardScales

    text = page_text(site, "envs")
    for env_id in TASKS:
        assert env_id in text
    for name in RewardScales.__dataclass_fields__:
        assert name in text
    # the observation table's last index of the plain layout is 33 (12-joint robot), of "full" 45
    assert "21:33" in text and "33:45" in text
    assert "1.2 x 0.02 x 1000 = 24" in text  # the perfect-episode return, computed from the defaults


def test_family_reference_lists_every_theta_field(site):
    from go2bench.envs.families import FAMILIES

    text = page_text(site, "families")
    for family in FAMILIES.values():
        for f in family.fields:
            assert f"{f.name}" in text, f"{family.name}.{f.name} missing from the families page"
    for suite in sorted(p.stem for p in (ROOT / "go2bench" / "suites").glob("*.yaml")):
        assert suite in text


def test_cli_page_holds_every_command_help(site):
    from go2bench.cli import main

    text = page_text(site, "cli")
    for name in main.commands:
        assert f"Usage: go2bench {name}" in text, name
    assert "Usage: go2bench data check" in text


def test_api_reference_documents_every_public_module(site):
    pages = {p.parent.name: p.read_text() for p in (site / "api").glob("*/index.html")}
    for init in sorted((ROOT / "go2bench").glob("*/__init__.py")):
        layer = init.parent.name
        if layer == "cli":
            continue  # documented by its --help on the command-line page
        assert layer in pages, f"no API page for go2bench.{layer}: add docs/api/{layer}.md and a nav entry"
        for module in sorted(init.parent.glob("*.py")):
            name = f"go2bench.{layer}" + ("" if module.stem == "__init__" else f".{module.stem}")
            if module.stem.startswith("_") and module.stem != "__init__":
                continue
            assert f'id="{name}"' in pages[layer], f"{name} has no API entry"

