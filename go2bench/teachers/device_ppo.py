"""SB3's PPO with its rollouts collected on the simulation's device (``rollout="device"``).

Why: SB3's ``collect_rollouts`` talks to a VecEnv in numpy, so every step copies observations,
rewards and flags to the host, builds one info dict per env, bootstraps each timed-out env with
its own forward pass in a Python loop, and copies the policy's outputs back for the buffer. With
the batched simulation and the policy on one GPU, that round trip and the per-env Python work
were most of a teacher's wall time (on one H200 at 4096 envs: 177.5k env-steps/s incl. learning;
the simulation's torch path alone 1.44M). Here one PPO iteration is:

* per step: the policy's forward pass on the device observations, the action clipped to the
  action space (as SB3 does), one batched ``WalkSimulation.step``, one masked ``reset`` of the
  finished envs (the simulation's one host sync: it checks whether any env finished), episode
  return/length accumulators, and the buffer writes, all on the device;
* per rollout, a few host syncs: the time-out bootstrap, ``reward += gamma * V(terminal obs)``
  where an episode hit its time limit and neither fell nor diverged (SB3's ``TimeLimit.truncated``
  rule), in one critic pass over just those rows (the policy does not change during a rollout, so
  this is SB3's per-env value, batched); GAE on the device; the finished episodes of the rollout
  (returns and lengths, oldest first, the last ``stats_window_size`` of them) into
  ``ep_info_buffer`` as SB3's Monitor would have put them; a check that all actions were finite.

``train()`` is SB3's own, fed by :class:`~go2bench.teachers.device_buffer.DeviceRolloutBuffer`.
Rollouts and updates run with ``torch.distributions``' argument validation off (as rsl-rl runs):
it checks every Gaussian's parameters with a ``.all()``, a host sync per policy call on the GPU;
a policy that turned NaN still stops training (the finite-action check per rollout).
Callbacks are called exactly where SB3 calls them (``on_step`` after every env step, so step-based
checkpoints and wall-time stops behave as in the host path, at a few microseconds per call).
The environment must be a :class:`~go2bench.teachers.sb3_vec_env.WalkSB3VecEnv` (its ``sim`` is
stepped directly; SB3's ``reset``, seeding and spaces still go through the adapter), so the policy
sees exactly the observations of the host path.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.distributions import Distribution
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from go2bench.teachers.device_buffer import DeviceRolloutBuffer

ROLLOUT_MODES = ("host", "device")


@dataclass
class _RolloutState:
    """What carries over from one rollout to the next (not saved with the model)."""

    obs: torch.Tensor  # (N, obs_dim) float32, the observation the next action is chosen on
    starts: torch.Tensor  # (N,) float32, 1 where that observation starts an episode
    ep_return: torch.Tensor  # (N,) float64, undiscounted return of the running episode so far
    ep_length: torch.Tensor  # (N,) int64
    # per step of the current rollout: which envs finished, and their episode's return and length
    finished: torch.Tensor  # (n_steps, N) bool
    fin_return: torch.Tensor  # (n_steps, N) float64
    fin_length: torch.Tensor  # (n_steps, N) int64
    timeouts: torch.Tensor  # (n_steps, N) bool: hit the time limit, did not fall, did not diverge
    terminal_obs: torch.Tensor  # (n_steps, N, obs_dim) float32: the step's observation before any reset


@contextmanager
def unvalidated_distributions() -> Iterator[None]:
    """``torch.distributions`` without argument validation inside the block (restored after)."""
    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(before)


class DeviceRolloutPPO(PPO):
    """stable-baselines3's PPO whose ``collect_rollouts`` steps the batched simulation on its device.

    Same constructor as :class:`~stable_baselines3.PPO`; the rollout buffer defaults to
    :class:`DeviceRolloutBuffer`. The saved model is an ordinary SB3 PPO zip.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rollout_buffer_class", DeviceRolloutBuffer)
        self._rollout: _RolloutState | None = None
        super().__init__(*args, **kwargs)
        if not hasattr(self.env, "sim"):
            raise TypeError("DeviceRolloutPPO steps a WalkSB3VecEnv's simulation directly; got "
                            f"{type(self.env).__name__}")
        if self.use_sde or self.policy.squash_output:
            raise ValueError("DeviceRolloutPPO supports neither gSDE nor squashed actions")
        low, high = self.action_space.low, self.action_space.high
        self._action_low = torch.as_tensor(low, device=self.device, dtype=torch.float32)
        self._action_high = torch.as_tensor(high, device=self.device, dtype=torch.float32)

    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["_rollout", "_action_low", "_action_high"]

    def _setup_learn(self, total_timesteps: int, callback: Any = None, reset_num_timesteps: bool = True,
                     tb_log_name: str = "run", progress_bar: bool = False) -> tuple[int, BaseCallback]:
        """SB3's setup (which resets the env on a fresh start); then the device state from that reset."""
        fresh = reset_num_timesteps or self._last_obs is None
        out = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if fresh or self._rollout is None:
            n, dev = self.n_envs, self.device
            steps = (self.n_steps, n)
            self._rollout = _RolloutState(
                obs=torch.as_tensor(self._last_obs, device=dev, dtype=torch.float32),
                starts=torch.as_tensor(self._last_episode_starts, device=dev, dtype=torch.float32),
                ep_return=torch.zeros(n, device=dev, dtype=torch.float64),
                ep_length=torch.zeros(n, device=dev, dtype=torch.int64),
                finished=torch.zeros(steps, device=dev, dtype=torch.bool),
                fin_return=torch.zeros(steps, device=dev, dtype=torch.float64),
                fin_length=torch.zeros(steps, device=dev, dtype=torch.int64),
                timeouts=torch.zeros(steps, device=dev, dtype=torch.bool),
                terminal_obs=torch.zeros((*steps, *self.observation_space.shape), device=dev, dtype=torch.float32),
            )
        return out

    def train(self) -> None:
        """SB3's PPO update, unchanged (distributions unvalidated: no host sync per minibatch for it)."""
        with unvalidated_distributions():
            super().train()

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: DeviceRolloutBuffer,
                         n_rollout_steps: int) -> bool:
        """Fill ``rollout_buffer`` with ``n_rollout_steps`` steps of every env (see the module docstring)."""
        with unvalidated_distributions():
            return self._collect(env, callback, rollout_buffer, n_rollout_steps)

    def _collect(self, env: VecEnv, callback: BaseCallback, rollout_buffer: DeviceRolloutBuffer,
                 n_rollout_steps: int) -> bool:
        if self._rollout is None:
            raise RuntimeError("collect_rollouts() before learn() set the rollout up")
        if getattr(env, "_needs_reset", False):
            raise RuntimeError("call reset() before step()")  # the adapter's rule: the shared sim was moved
        if n_rollout_steps > self._rollout.finished.shape[0]:
            raise ValueError(f"n_rollout_steps {n_rollout_steps} > n_steps {self._rollout.finished.shape[0]}")
        sim, st, dev = env.sim, self._rollout, self.device
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        st.finished.zero_()
        callback.on_rollout_start()

        n_steps = 0
        dones = st.starts
        while n_steps < n_rollout_steps:
            with torch.no_grad():
                actions, values, log_probs = self.policy(st.obs)
                result = sim.step(torch.clamp(actions, self._action_low, self._action_high).to(sim.device))
                done_sim = result.terminated | result.truncated
                new_obs = sim.reset(done_sim).to(dev)  # same-step reset of the finished envs
                done = done_sim.to(dev)
                timeout = (result.truncated & ~result.terminated & ~result.diverged).to(dev)
                reward = result.reward.to(dev)
                st.timeouts[n_steps] = timeout
                st.terminal_obs[n_steps] = result.obs.to(dev)

                st.ep_return += reward
                st.ep_length += 1
                st.finished[n_steps] = done
                st.fin_return[n_steps] = st.ep_return
                st.fin_length[n_steps] = st.ep_length
                st.ep_return.masked_fill_(done, 0.0)
                st.ep_length.masked_fill_(done, 0)
            self.num_timesteps += env.num_envs
            last_obs, last_starts = st.obs, st.starts
            dones = done.to(torch.float32)
            st.obs, st.starts = new_obs, dones

            callback.update_locals(locals())
            if not callback.on_step():
                self._record_episodes(n_steps + 1)
                return False
            rollout_buffer.add(last_obs, actions, reward, last_starts, values, log_probs)
            n_steps += 1

        with torch.no_grad():
            self._bootstrap_timeouts(rollout_buffer, n_steps)
            last_values = self.policy.predict_values(st.obs)
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self._record_episodes(n_steps)
        if not bool(torch.isfinite(rollout_buffer.actions).all()):
            raise ValueError("the policy produced NaN or inf actions; actions must be finite")

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _bootstrap_timeouts(self, rollout_buffer: DeviceRolloutBuffer, n_steps: int) -> None:
        """``reward += gamma * V(terminal obs)`` at every time-out of the rollout: one critic pass over those rows."""
        st = self._rollout
        index = st.timeouts[:n_steps].reshape(-1).nonzero().reshape(-1)  # one host sync
        if index.numel() == 0:
            return
        obs = st.terminal_obs[:n_steps].reshape(-1, st.terminal_obs.shape[-1])[index]
        values = self.policy.predict_values(obs).reshape(-1)
        rewards = rollout_buffer.tensor("rewards")[:n_steps].reshape(-1)  # a view of the stored rewards
        rewards[index] += self.gamma * values

    def _record_episodes(self, n_steps: int) -> None:
        """Episodes finished in the first ``n_steps`` steps of this rollout -> ``ep_info_buffer`` (a few syncs).

        In step order, then env order (as SB3's Monitor infos arrive); only the newest ones that fit
        the buffer's window are copied to the host.
        """
        st = self._rollout
        finished = st.finished[:n_steps].reshape(-1)
        index = finished.nonzero().reshape(-1)
        window = self.ep_info_buffer.maxlen
        if window is not None:
            index = index[-window:]
        returns = st.fin_return[:n_steps].reshape(-1)[index].cpu().numpy()
        lengths = st.fin_length[:n_steps].reshape(-1)[index].cpu().numpy()
        now = round(time.time() - getattr(self.env, "_t_start", self.start_time / 1e9), 6)
        self.ep_info_buffer.extend(
            {"r": round(float(r), 6), "l": int(l), "t": now} for r, l in zip(returns, lengths, strict=True)
        )


def resolve_rollout(rollout: str, device: str, backend: str) -> str:
    """``"auto"``: ``"device"`` when the policy is on CUDA and the simulation on the GPU, else ``"host"``."""
    if rollout == "auto":
        return "device" if str(device).startswith("cuda") and backend == "gpu" else "host"
    if rollout not in ROLLOUT_MODES:
        raise ValueError(f"--rollout must be one of auto, {', '.join(ROLLOUT_MODES)}; got {rollout!r}")
    return rollout


__all__ = ["DeviceRolloutPPO", "ROLLOUT_MODES", "resolve_rollout"]
