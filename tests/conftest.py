"""Shared fixtures: Genesis scenes are expensive to build, so each is built once per test session.  Also what
keeps the whole suite fast without changing what it runs: one torch/OpenMP thread, frozen long-lived objects
for the garbage collector, Genesis' debug tracebacks without source lines."""

from __future__ import annotations

import gc
import os
import sys

import gymnasium as gym
import pytest

import go2bench  # noqa: F401  (registers the envs)

# Processes that tests start (`go2bench train` children, the installed wheel's smoke script, CLI runs) use torch on
# one thread too, like this process (_torch_on_one_thread below): on 2 busy cores, two OpenMP threads made each of
# the smoke script's 13 small orthogonal initialisations 250 times slower (75 ms instead of 0.3 ms; 19 s -> 7 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# torch.compile's C++ build imports distutils; where setuptools' shim stands in for it (a fresh venv with a recent
# setuptools) the build fails and the compiled-decode tests could only skip. The standard library's distutils
# (Python 3.11) builds them.
if sys.version_info < (3, 12):
    os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")

_seen = {"module": "", "genesis": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """At each test module's first test, and once Genesis is imported: collect garbage, then freeze what is left.

    What is alive then (imported libraries, Genesis' kernels, session fixtures) lives for the whole session;
    frozen (gc.freeze), no later collection walks it again.  Genesis runs a full collection in every scene's
    destroy() and CPython starts its own as objects pile up: with ~850,000 objects alive, five Genesis modules
    (test_envs, _agents, _zoo, _step_fusion, _side_by_side_eval) spent 15.6 s in the explicit ones alone and
    took 70 s of CPU; frozen here, 2.3 s and 54 s.  Only objects alive here are frozen (cyclic garbage is
    collected first); what a test makes is collected as before.
    """
    module, genesis = item.nodeid.split("::")[0], "genesis" in sys.modules
    if (module, genesis) != (_seen["module"], _seen["genesis"]):
        _seen.update(module=module, genesis=genesis)
        if genesis:
            _quadrants_tracebacks_without_source_lines()
        gc.collect()
        gc.freeze()


def _quadrants_tracebacks_without_source_lines() -> None:
    """Genesis' compiler (quadrants) keeps the Python traceback of every array it allocates as debug information
    for its error messages, formatted with source lines: about 1,100 per scene build, each reading the stack's
    source files through linecache (a stat per file).  Under pytest's deep stacks that was half of a scene build
    (the five modules above: 57 s of CPU with it, 45 s without).  Here the same frames (file, line, function)
    without their source lines; nothing else reads it.  Quadrants versions without this helper are left as
    they are."""
    def frames_only(stacklevel: int = 1) -> str:
        frame, rows = sys._getframe(1), []  # the caller; the original drops it and `stacklevel` frames above it
        for _ in range(stacklevel):
            frame = frame and frame.f_back
        while frame is not None:
            rows.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}\n')
            frame = frame.f_back
        return "".join(reversed(rows))

    for name in ("quadrants.lang.util", "quadrants.lang.impl", "quadrants.lang._ndarray", "quadrants.lang.matrix"):
        module = sys.modules.get(name)
        if module is not None and callable(getattr(module, "get_traceback", None)):
            module.get_traceback = frames_only


@pytest.fixture(scope="session")
def go2_env():
    env = gym.make("Go2Walk-v0")
    yield env
    env.close()


@pytest.fixture(scope="session")
def cheetah_env():
    env = gym.make("MiniCheetahWalk-v0")
    yield env
    env.close()


@pytest.fixture(scope="session")
def go2_vec4():
    """Four Go2s with short episodes (20 steps) so that time limits are reached quickly."""
    env = gym.make_vec("Go2Walk-v0", num_envs=4, max_episode_steps=20)
    yield env
    env.close()


@pytest.fixture(scope="session", autouse=True)
def _torch_on_one_thread():
    """Every test runs torch on one thread.  On 2 cores, torch's intra-op threads compete with Genesis' CPU
    workers while a scene steps (envs.genesis_runtime.torch_threads_beside_simulation does the same in the
    library) and with any other load: with the machine at load ~4, the two-iteration PPO fixture of
    test_agents took 14.6 s on 2 threads and 3.0 s on one (unloaded: 2.8 s and 3.0 s).  Tests of thread
    handling set their own count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def one_torch_thread():
    """Training tests run torch on one thread (deterministic and not fighting Genesis for the 2 cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (benchmarks are scripts, not a package), registered in
    ``sys.modules`` so that dataclasses and pickling inside it resolve their module."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
