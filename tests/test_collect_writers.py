"""Writer processes (collect.writer_processes): the same bytes as the writer thread, errors as one line,
kill -9 then resume, config and CLI validation.

The collector's real loop runs over ``SleepSim`` of benchmarks/collect_writers.py (a stand-in simulation
with deterministic rows, no Genesis) with a cheap stand-in policy; a real Genesis collection with writer
processes is compared with the thread's in tests/test_collect.py."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import load_benchmark

from go2bench.cli import main
from go2bench.collect.collector import collect
from go2bench.collect.config import IDENTITY_FIELDS, CollectConfig
from go2bench.collect.writer_procs import shard_columns, shared_memory_shortfall, slot_layout, writer_process_count
from go2bench.core.config import ConfigError, from_dict

ROOT = Path(__file__).resolve().parents[1]
H = 5
CFG = CollectConfig(env="Go2Walk-v0", num_histories=H, steps_per_history=250, max_episode_steps=100, group_size=64,
                    chunk_steps=40, seed=3)


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("collect_writers")


@pytest.fixture(scope="module")
def teacher(bench):
    return bench.cheap_teacher("Go2Walk-v0")


def _collect(bench, teacher, out, processes, step_s=0.0, sim=None, **kw):
    sim = sim or bench.SleepSim("go2", H, step_s, max_episode_steps=CFG.max_episode_steps)
    return collect(out, replace(CFG, writer_processes=processes), sim=sim, teacher=teacher, progress=False,
                   plot=False, **kw)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        names = sorted(f, key=lambda k: int(k.split("-")[0]))
        return {k: np.concatenate([f[n][k][()] for n in names]) for k in f[names[0]]}


@pytest.fixture(scope="module")
def thread_run(bench, teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("thread") / "ds"
    return out, _collect(bench, teacher, out, 0)


def test_processes_write_the_threads_bytes(bench, teacher, thread_run, tmp_path):
    ref, s0 = thread_run
    out = tmp_path / "ds"
    s2 = _collect(bench, teacher, out, 2)
    assert s2["rows_written"] == s0["rows_written"] == H * 300  # each history ends its episode crossing 250
    assert _digests(out) == _digests(ref)  # every file, byte for byte: HDF5, per-history and dataset JSON
    assert len(list(out.glob("trajectories_env_*.h5"))) == len(list(out.glob("trajectories_env_*.json"))) == H
    rec = json.loads((out / "trajectories_env_0003.json").read_text())
    rows = _read(out / "trajectories_env_0003.h5")  # read back by plain h5py, against the record
    assert rec["total_transitions"] == len(rows["reward"]) == 300
    np.testing.assert_allclose(rec["obs_mean"], rows["proprio_observation"].astype(np.float64).mean(0), rtol=1e-9)
    assert "writer_processes" not in json.loads((out / "ds.json").read_text())["collection"]


def test_more_processes_than_histories_and_a_subset(bench, teacher, thread_run, tmp_path):
    ref, _ = thread_run
    out = tmp_path / "ds"
    sim = bench.SleepSim("go2", 2, 0.0, max_episode_steps=CFG.max_episode_steps)
    _collect(bench, teacher, out, 4, sim=sim, env_ids=[1, 4])  # two processes, one history each
    got = _digests(out)
    assert {k: v for k, v in _digests(ref).items() if k in got and k != "ds.json"} == \
        {k: v for k, v in got.items() if k != "ds.json"}
    assert sorted(p.name for p in out.glob("*.h5")) == ["trajectories_env_0001.h5", "trajectories_env_0004.h5"]


def test_an_error_in_a_writer_process_is_one_line(bench, teacher, thread_run, tmp_path):
    for processes in (0, 2):
        out = tmp_path / f"p{processes}" / "ds"
        out.mkdir(parents=True)
        (out / "trajectories_env_0004.json").mkdir()  # history 4's record cannot be written
        with pytest.raises(RuntimeError) as exc:
            _collect(bench, teacher, out, processes)
        msg = str(exc.value)
        # the thread's message and the processes' alike: one line naming the file and why
        assert msg.startswith(f"writing the histories failed: {out / 'trajectories_env_0004.json'}: failed to "
                              "write JSON: [Errno 21] Is a directory"), msg
        assert "\n" not in msg
        # the histories finished before it are complete
        assert len(list(out.glob("trajectories_env_000[0-3].json"))) == 4
        assert _read(out / "trajectories_env_0004.h5")["reward"].shape == (300,)  # its last group came first


def test_a_writer_process_that_dies_stops_the_collection(bench, teacher, tmp_path):
    import multiprocessing

    class Killer(bench.SleepSim):
        steps = 0

        def step(self, actions):
            Killer.steps += 1
            if Killer.steps == 60:  # a writer process dies without a word (the OOM killer, a kill -9)
                for child in multiprocessing.active_children():
                    if child.name.startswith("collect-writer-"):
                        os.kill(child.pid, signal.SIGKILL)
                        break
            return super().step(actions)

    sim = Killer("go2", H, 0.002, max_episode_steps=CFG.max_episode_steps)
    with pytest.raises(RuntimeError, match=r"^writing the histories failed: writer process \d exited \(code -9\)"):
        _collect(bench, teacher, tmp_path / "ds", 2, sim=sim)
    assert not [c for c in multiprocessing.active_children() if c.name.startswith("collect-writer-")]


def test_config_validation_and_identity():
    assert CollectConfig().writer_processes == "auto"
    assert from_dict(CollectConfig, {"writer_processes": 3}).writer_processes == 3
    for bad in (-1, "3", "many", 1.5, True):
        with pytest.raises(ConfigError, match=r"d\.collect.*writer_processes"):
            from_dict(CollectConfig, {"writer_processes": bad}, "f.yaml: d.collect")
    assert "writer_processes" not in IDENTITY_FIELDS  # a resume may use another value
    r = CliRunner().invoke(main, ["collect", "--env", "Go2Walk-v0", "--out", "x", "--writer-processes", "-2"])
    assert r.exit_code == 2 and "'-2' is neither 'auto' nor an integer >= 0" in r.output


def test_process_count_and_shards(monkeypatch):
    assert writer_process_count("auto", cuda=False, histories=4096) == 0  # CPU backend: the thread
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))
    assert [writer_process_count("auto", True, n) for n in (16, 512, 1024, 4096, 65536)] == [1, 1, 2, 8, 30]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert writer_process_count("auto", True, 4096) == 0  # no spare CPU: the thread
    assert writer_process_count(3, False, 2) == 2  # never more processes than histories
    assert shard_columns(10, 3) == [range(0, 3), range(3, 7), range(7, 10)]


def test_auto_takes_the_thread_where_the_slots_do_not_fit_in_dev_shm(bench, teacher, thread_run, tmp_path,
                                                                     monkeypatch, capsys):
    import torch

    import go2bench.collect.collector as collector
    import go2bench.collect.writer_procs as writer_procs

    # a slot's layout: each buffer starts on a 64-byte boundary (3 x 5 float32 = 60 bytes -> 64)
    layout, size = slot_layout({"a": ((3, 5), torch.float32), "b": ((2,), torch.int64)})
    assert layout == {"a": ((3, 5), "<f4", 0), "b": ((2,), "<i8", 64)} and size == 128
    if os.path.isdir("/dev/shm"):
        assert shared_memory_shortfall(1) is None and "/dev/shm has" in shared_memory_shortfall(1 << 60)
    # a machine with a small /dev/shm (containers default to 64 MiB): "auto" falls back to the thread, says so,
    # and writes the thread's bytes; an explicit count refuses with one line
    monkeypatch.setattr(collector, "writer_process_count", lambda setting, cuda, histories: 2)
    monkeypatch.setattr(collector, "shared_memory_shortfall", lambda n: "the chunk slots need 9 GiB")
    _collect(bench, teacher, tmp_path / "ds", "auto")
    assert "writer thread instead of 2 writer processes: the chunk slots need 9 GiB" in capsys.readouterr().out
    assert _digests(tmp_path / "ds") == _digests(thread_run[0])
    monkeypatch.setattr(writer_procs, "shared_memory_shortfall", lambda n: "the chunk slots need 9 GiB")
    with pytest.raises(RuntimeError, match="writer_processes: the chunk slots need 9 GiB.*writer_processes: 0"):
        _collect(bench, teacher, tmp_path / "two", 2)


KILLED = """
import sys, time
sys.path.insert(0, {bench!r})
from dataclasses import replace
from collect_writers import SleepSim, cheap_teacher
from go2bench.collect.collector import collect
from go2bench.collect.config import CollectConfig
cfg = CollectConfig(**{cfg!r})
collect(sys.argv[1], cfg, sim=SleepSim("go2", cfg.num_histories, 0.01, cfg.max_episode_steps), teacher=cheap_teacher(cfg.env),
        progress=False, plot=False)
"""


def _marked(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (the killed collection and anything it spawned)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and mark.encode() in (d / "environ").read_bytes():
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_with_writer_processes_then_resume_equals_the_whole_run(bench, teacher, thread_run, tmp_path):
    ref, _ = thread_run
    out = tmp_path / "ds"
    mark = f"GO2BENCH_KILL_TEST={uuid.uuid4().hex}"
    fields = {k: getattr(CFG, k) for k in ("env", "num_histories", "steps_per_history", "max_episode_steps",
                                           "group_size", "chunk_steps", "seed")}
    code = KILLED.format(bench=str(ROOT / "benchmarks"), cfg={**fields, "writer_processes": 2})
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], env={**os.environ, mark.split("=")[0]:
                            mark.split("=")[1]}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, groups = time.time() + 120, 0
    try:
        while time.time() < deadline and proc.poll() is None and groups < 2:
            try:
                with h5py.File(out / "trajectories_env_0000.h5", "r", locking=False) as f:
                    groups = sum(not k.startswith("_") for k in f)
            except OSError:
                pass
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert len(_marked(mark)) >= 3  # the collection and its two writer processes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    t0 = time.time()
    while _marked(mark) and time.time() < t0 + 10:  # the writers die with their parent
        time.sleep(0.05)
    assert not _marked(mark), "writer processes outlived the killed collection"
    assert not (out / "trajectories_env_0000.json").exists()
    summary = _collect(bench, teacher, out, 1, resume=True)  # resumed with another number of processes
    assert summary["resumed_histories"] >= 1
    for i in range(H):
        a, b = _read(ref / f"trajectories_env_{i:04d}.h5"), _read(out / f"trajectories_env_{i:04d}.h5")
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        assert (ref / f"trajectories_env_{i:04d}.json").read_text() == (out / f"trajectories_env_{i:04d}.json").read_text()
