"""The README's and the docs' generated tables are the tool's output on committed results."""

from __future__ import annotations

import re
from pathlib import Path
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parent.parent


def test_generated_tables_are_current_with_the_committed_results():
    module = load_benchmark("readme_leaderboard")
    for markers in module.BLOCKS:
        path = module.target(markers)
        assert module.current_block(path.read_text(), markers) == module.generated_block(markers), \
            f"{path.name}: generated tables are stale: run python benchmarks/readme_leaderboard.py"
    assert module.target((module.FAMILY_GPU_START, module.FAMILY_GPU_END)) == ROOT / "README.md", \
        "the in-context leaderboard (hidden task parameters) stays in the README"
    assert module.target((module.ROBOTS_SPLIT_START, module.ROBOTS_SPLIT_END)) == ROOT / "README.md"


def test_readme_starts_with_the_two_setup_commands():
    first, second = (ROOT / "README.md").read_text().splitlines()[:2]
    assert first.strip().startswith("pip install torch==2.13.0 -e .") and "go2bench pipeline --preset cpu" in first
    assert second.strip().startswith('pip install torch==2.13.0 -e ".[test]"') and "pytest" in second


def test_readme_is_short_and_links_to_docs_pages_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= 8192, "the README holds set-up, leaderboard, quick start and links; the rest goes to docs/"
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 10
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, f"README links to missing docs pages: {missing}"
