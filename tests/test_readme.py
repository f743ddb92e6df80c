"""The README's numbers come from commands: its leaderboard block is the tool's output on committed results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_leaderboard_is_generated_from_the_committed_results():
    spec = importlib.util.spec_from_file_location("readme_leaderboard", ROOT / "benchmarks" / "readme_leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "README.md").read_text()
    for markers in module.BLOCKS:
        assert module.current_block(text, markers) == module.generated_block(markers), \
            "README tables are stale: run python benchmarks/readme_leaderboard.py"


def test_readme_starts_with_the_two_setup_commands():
    first, second = (ROOT / "README.md").read_text().splitlines()[:2]
    assert first.strip().startswith("pip install torch==2.13.0 -e .") and "go2bench pipeline --preset cpu" in first
    assert second.strip().startswith('pip install torch==2.13.0 -e ".[test]"') and "pytest" in second
