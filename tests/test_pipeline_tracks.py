"""The family stage beside the default stages (go2bench.pipeline.tracks): which GPUs each part gets, how a
child's GPU index maps through CUDA_VISIBLE_DEVICES, and the child process's result or one-line failure."""

from __future__ import annotations

import json
import os
import sys

import pytest

from go2bench.pipeline.config import PRESETS, apply_overrides
from go2bench.pipeline.stages import start_process
from go2bench.pipeline.tracks import TRACK_FILE, FamilyTrack, beside_split

ALL = ("collect", "train", "eval", "leaderboard", "family")


def _gpu(*sets: str):
    return apply_overrides(PRESETS["gpu"], list(sets))


@pytest.mark.parametrize("sets, visible, stages, expected", [
    (["gpus=2"], None, ALL, ([0], [1])),
    (["gpus=4"], None, ALL, ([0, 1], [2, 3])),
    (["gpus=3"], None, ALL, ([0], [1, 2])),
    (["gpus=2"], "3,5", ALL, ([3], [5])),  # the ids a child's CUDA_VISIBLE_DEVICES takes
    (["gpus=4", "train_gpus=2"], None, ALL, ([0, 1], [2, 3])),
    (["gpus=1"], None, ALL, None),
    (["gpus=2", "family_beside=false"], None, ALL, None),
    (["gpus=2", "train_gpus=2"], None, ALL, None),  # DDP needs both GPUs: one after the other
    (["gpus=2", "family.families=[]"], None, ALL, None),
    (["gpus=2"], None, ("family",), None),  # nothing to run beside it
    (["gpus=2"], None, ("leaderboard", "family"), None),
    (["gpus=2"], "7", ALL, None),  # only one GPU visible
])
def test_which_gpus_each_part_gets(monkeypatch, sets, visible, stages, expected):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert beside_split(_gpu(*sets), stages) == expected


def test_cpu_backend_never_splits(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert beside_split(apply_overrides(PRESETS["cpu"], ["gpus=2"]), ALL) is None


def test_a_child_gpu_index_maps_through_this_process_visible_devices(tmp_path, monkeypatch):
    code = "import os; print('seen', os.environ['CUDA_VISIBLE_DEVICES'])"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    start_process([sys.executable, "-c", code], tmp_path / "a.log", gpu=1).wait()
    assert "seen 6" in (tmp_path / "a.log").read_text()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    start_process([sys.executable, "-c", code], tmp_path / "b.log", gpu=1).wait()
    assert "seen 1" in (tmp_path / "b.log").read_text()


def test_the_child_result_and_its_one_line_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    # no families: the child's family stage returns {} at once
    track = FamilyTrack(apply_overrides(PRESETS["cpu"], ["family.families=[]"]), tmp_path / "a", [1])
    assert track.join()["wall_s"] > 0
    assert json.loads((tmp_path / "a" / "family" / TRACK_FILE).read_text()) == {}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"  # restored after starting the child

    # a family without shipped teachers: the child fails in its collection, the parent says so in one line
    track = FamilyTrack(apply_overrides(PRESETS["cpu"], ["family.families=[faults]"]), tmp_path / "b", [1])
    with pytest.raises(RuntimeError) as err:
        track.join()
    msg = str(err.value)
    assert "\n" not in msg and "failed (exit 1)" in msg and "no shipped privileged faults teacher" in msg
    assert "track.log" in msg and (tmp_path / "b" / "family" / "track.log").is_file()
