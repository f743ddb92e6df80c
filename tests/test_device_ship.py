"""benchmarks/device/setup.sh's `ship` under DEVICE_DRY=1: a device call brings back at most 8 files of at most
16 MB each from $OUT, so an archive must be split into parts that reassemble byte for byte, and too many
files must be said loudly."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("bash", "tar", "xz", "split")),
                                reason="needs bash, tar, xz and split")


def _bash(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE_DRY": "1", "DRY_DIR": str(tmp_path / "dry"), "OUT": str(tmp_path / "out")}
    return subprocess.run(["bash", "-c", f"set -u; . benchmarks/device/setup.sh > /dev/null; {script}"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def test_ship_splits_a_big_archive_into_parts_that_reassemble(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    payload = os.urandom(20 * 1000 * 1000)  # random: xz cannot shrink it below the part size
    (src / "big.bin").write_bytes(payload)
    (src / "note.txt").write_text("results\n")
    r = _bash(f"SHIP_XZ=-0 ship results -C {src} big.bin note.txt missing.json", tmp_path)  # -0: fast
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    parts = sorted(out.glob("results.tar.xz.part-*"))
    assert [p.name for p in parts] == ["results.tar.xz.part-00", "results.tar.xz.part-01"]
    assert not (out / "results.tar.xz").exists()
    assert all(p.stat().st_size <= 15_000_000 for p in parts)
    assert "SPLIT" in r.stdout and "MISSING" in r.stdout and "missing.json" in r.stdout
    # reassembled with the documented command, read by another tool than the one that wrote it
    back = tmp_path / "back"
    back.mkdir()
    subprocess.run(f"cat {out}/results.tar.xz.part-* | tar -xJ -C {back}", shell=True, check=True)
    assert hashlib.sha256((back / "big.bin").read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert (back / "note.txt").read_text() == "results\n"


def test_ship_small_archive_stays_whole_and_rm_deletes_what_it_shipped(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.log").write_text("a\n")
    r = _bash('ship --rm logs -C "$OUT" a.log', tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["logs.tar.xz"]
    listing = subprocess.run(["tar", "-tJf", str(out / "logs.tar.xz")], capture_output=True, text=True, check=True)
    assert listing.stdout.split() == ["a.log"]
    assert "WARNING" not in r.stdout


def test_ship_warns_loudly_beyond_eight_files_and_fails_with_nothing_to_ship(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for i in range(8):
        (out / f"f{i}.json").write_text("{}")
    r = _bash(f"ship more -C {tmp_path} out/f0.json", tmp_path)
    assert r.returncode == 0
    assert "9 files" in r.stdout and "AT MOST 8" in r.stdout
    r = _bash("ship none nothing_here", tmp_path)
    assert r.returncode == 1 and "NOTHING TO SHIP" in r.stdout
