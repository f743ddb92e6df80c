"""The fused step math gives the numbers of the unfused code it replaced.

``tests/fixtures/step_fusion_rollouts.npz`` was recorded with the code before the observation,
reward and termination math of ``WalkSimulation.step`` was fused (one op per term, a Python loop
over terms, a fresh tensor per intermediate). Three short rollouts with fixed seeds and actions
cover every branch of that math: the "full" observation with widened, resampled commands and
pushes and falls (same-step autoresets); the velocity family (hidden command, privileged theta,
next-step autoresets); the dynamics family with latencies 0, 1 and 2. Here the same rollouts must
reproduce every observation, reward, reward term and final observation, and every flag exactly.

Tolerance: on the machine that recorded the fixture the rollouts agree to float32 rounding (rtol 1e-6), but
Genesis compiles its CPU kernels for the host's instruction set (LLVM), so another CPU (one with AVX-512, seen
2026-12-01) rounds the physics differently and the rollouts drift apart by up to 1.3e-4 within 20 steps. The
floats are compared at ``FLOAT_TOL`` (1e-3 relative, 1e-4 absolute). Checked by hand on 2026-12-01: the
tracking sigma scaled by 1.1 in ``step_math`` fails the full case (reward off by 8.4e-4); a wrong sign or index
is off by far more.

Regenerate (only with the unfused code checked out): ``PYTHONPATH=. python tests/test_step_fusion.py``.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import go2bench  # noqa: F401  (registers the envs)
from go2bench.envs import step_math

FLOAT_TOL = dict(rtol=1e-3, atol=1e-4)  # the module docstring says why: other CPUs round the physics differently
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "step_fusion_rollouts.npz"
STEPS = 40

# name -> (make_vec kwargs, action amplitude); every case differs in a branch of the step math
CASES = {
    "full_obs_pushes_falls": (dict(num_envs=6, max_episode_steps=20, obs_mode="full",
                                   commands={"lin_vel_x": [-1.0, 1.0], "ang_vel_yaw": [-0.5, 0.5],
                                             "resample_time_s": 0.1},
                                   randomization={"push_interval_s": 0.1, "push_max_velocity": 1.0}), 2.5),
    "velocity_privileged_next_step": (dict(num_envs=4, max_episode_steps=15, family="velocity", privileged=True,
                                           autoreset_mode="next_step",
                                           tasks=[{"lin_vel_x": 0.2}, {"lin_vel_x": 0.9, "lin_vel_y": -0.3},
                                                  {"ang_vel_yaw": 0.4}, {}]), 0.5),
    "dynamics_latency": (dict(num_envs=3, max_episode_steps=25, family="dynamics",
                              tasks=[{"latency_steps": 0, "friction": 0.5}, {"latency_steps": 1},
                                     {"latency_steps": 2, "strength_FR": 0.6}]), 0.8),
}


def rollout(env, amplitude: float, seed: int = 3) -> dict[str, np.ndarray]:
    """Per step: obs, reward, flags, each reward term, final_obs (zeros where none), the sim's tracking error."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out: dict[str, list] = {"reset_obs": [obs.copy()]}
    for _ in range(STEPS):
        a = rng.uniform(-amplitude, amplitude, env.action_space.shape).astype(np.float32)
        obs, reward, term, trunc, info = env.step(a)
        row = {"obs": obs, "reward": reward, "terminated": term, "truncated": trunc,
               "final_obs": info.get("final_obs", np.zeros_like(obs)),
               "tracking_error": env.unwrapped.sim.tracking_error().numpy(),
               **{k: v for k, v in info.items() if k.startswith("reward_")}}
        for k, v in row.items():
            out.setdefault(k, []).append(np.array(v, copy=True))
    return {k: np.stack(v) for k, v in out.items()}


def assert_as_recorded(key: str, got: np.ndarray, ref: np.ndarray) -> None:
    """Flags exactly; floats within ``FLOAT_TOL`` (the module docstring says why)."""
    assert got.shape == ref.shape and got.dtype == ref.dtype, key
    if ref.dtype == np.bool_:
        np.testing.assert_array_equal(got, ref, err_msg=key)
    else:
        np.testing.assert_allclose(got, ref, err_msg=key, **FLOAT_TOL)


def record_all() -> dict[str, np.ndarray]:
    arrays = {}
    for case, (kwargs, amp) in CASES.items():
        env = gym.make_vec("Go2Walk-v0", **kwargs)
        try:
            for k, v in rollout(env, amp).items():
                arrays[f"{case}/{k}"] = v
        finally:
            env.close()
    return arrays


@pytest.mark.slow  # builds three scenes
@pytest.mark.parametrize("case", list(CASES))
def test_fused_step_reproduces_the_recorded_rollouts(case):
    kwargs, amp = CASES[case]
    want = np.load(FIXTURE)
    env = gym.make_vec("Go2Walk-v0", **kwargs)
    try:
        got = rollout(env, amp)
    finally:
        env.close()
    keys = sorted(k.split("/", 1)[1] for k in want.files if k.startswith(case + "/"))
    assert keys == sorted(got), "the info keys of a step changed"
    for k in keys:
        assert_as_recorded(k, got[k], want[f"{case}/{k}"])
    # the rollout exercised what it is meant to: falls, time limits and (full case) resets mid-run
    assert want[f"{case}/truncated"].any()
    if case == "full_obs_pushes_falls":
        assert want[f"{case}/terminated"].any()


@pytest.mark.slow  # builds a scene
def test_the_gpu_code_path_reproduces_the_recorded_rollout(monkeypatch):
    """The branch-free step the GPU runs (no host reads: cleanup and command resampling applied to all
    envs through masks), forced on the CPU, gives the same numbers."""
    from go2bench.envs import walk_sim

    build = walk_sim.WalkSimulation._init_buffers

    def sync_free(sim):
        build(sim)
        sim._sync_free = True

    monkeypatch.setattr(walk_sim.WalkSimulation, "_init_buffers", sync_free)
    # On a GPU the step math's 0-dim CPU constants (step_math._k) ride along device tensors, but CUDA refuses an
    # op given two CPU scalars ("too many CPU scalars"; every GPU collection once failed so). Tag them and check.
    cpu_scalars: set[int] = set()
    make_constant = step_math._k

    def tagged(value, dtype=torch.float32):
        t = make_constant(value, dtype)
        cpu_scalars.add(id(t))
        return t

    monkeypatch.setattr(step_math, "_k", tagged)
    case = "full_obs_pushes_falls"  # resampled commands and pushes: every masked path of the step
    kwargs, amp = CASES[case]
    want = np.load(FIXTURE)
    env = gym.make_vec("Go2Walk-v0", **kwargs)
    try:
        assert env.unwrapped.sim._sync_free and cpu_scalars
        with _TwoCpuScalars(cpu_scalars) as check:
            got = rollout(env, amp)
    finally:
        env.close()
    assert not check.offenders, f"ops given two CPU scalar constants (refused on a GPU): {sorted(check.offenders)}"
    for k, v in got.items():
        assert_as_recorded(k, v, want[f"{case}/{k}"])


class _TwoCpuScalars(TorchFunctionMode):
    """Records the torch ops called with two or more of the tagged CPU scalars among their tensor arguments."""

    def __init__(self, tagged: set[int]):
        super().__init__()
        self.tagged, self.offenders = tagged, set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        n = sum(isinstance(a, torch.Tensor) and id(a) in self.tagged for a in (*args, *kwargs.values()))
        if n >= 2:
            self.offenders.add(getattr(func, "__name__", str(func)))
        return func(*args, **kwargs)


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = record_all()
    np.savez_compressed(FIXTURE, **data)
    print(f"wrote {FIXTURE}: {len(data)} arrays")
    for k, v in data.items():
        if k.endswith(("terminated", "truncated")):
            print(k, int(v.sum()))
