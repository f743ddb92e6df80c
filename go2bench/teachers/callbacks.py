"""Callbacks of the PPO teacher recipe: KL-adaptive learning rate, timed checkpoints, wall-time limits, progress."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

__all__ = ["AdaptiveLR", "KLAdaptiveLRCallback", "TimedCheckpointCallback", "WallTimeLimitCallback",
           "ProgressLineCallback", "mean_training_return"]


class AdaptiveLR:
    """A learning-rate 'schedule' whose value the KL callback moves; SB3 reads it before each update.

    It is stored in the saved model as ``learning_rate``, so a resumed run continues at the
    adapted rate.
    """

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, progress_remaining: float) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"AdaptiveLR({self.value:.3g})"


class KLAdaptiveLRCallback(BaseCallback):
    """rsl-rl's KL-adaptive learning rate, applied once per PPO iteration."""

    def __init__(self, desired_kl: float = 0.01, lr_min: float = 1e-5, lr_max: float = 1e-2, verbose: int = 0):
        super().__init__(verbose)
        self.desired_kl, self.lr_min, self.lr_max = desired_kl, lr_min, lr_max
        self.schedule: AdaptiveLR | None = None

    def _on_training_start(self) -> None:
        lr = self.model.learning_rate
        if not isinstance(lr, AdaptiveLR):  # a model made elsewhere: take over its current rate
            lr = AdaptiveLR(self.model.lr_schedule(self.model._current_progress_remaining))
            self.model.learning_rate = lr
        self.model.lr_schedule = lr  # PPO.train() sets the optimizer's rate from this
        self.schedule = lr

    def _on_rollout_end(self) -> None:
        kl = self.model.logger.name_to_value.get("train/approx_kl")  # the previous update's, None at first
        if kl is None or not math.isfinite(kl) or self.schedule is None:
            return
        lr = self.schedule.value
        if kl > 2.0 * self.desired_kl:
            lr = max(self.lr_min, lr / 2.0)
        elif kl < 0.5 * self.desired_kl:
            lr = min(self.lr_max, lr * 1.5)
        self.schedule.value = lr

    def _on_step(self) -> bool:
        return True


class TimedCheckpointCallback(CheckpointCallback):
    """SB3's CheckpointCallback that also writes the wall time so far next to each checkpoint."""

    def __init__(self, *args, wall_time_before: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.wall_time_before = wall_time_before
        self.t0 = time.perf_counter()

    def _on_step(self) -> bool:
        keep_going = super()._on_step()
        if self.n_calls % self.save_freq == 0:
            side = Path(self._checkpoint_path(extension="json"))
            side.write_text(json.dumps({"num_timesteps": self.num_timesteps, "wall_time_s": self.wall_time_s()}))
        return keep_going

    def wall_time_s(self) -> float:
        return round(self.wall_time_before + time.perf_counter() - self.t0, 2)


class WallTimeLimitCallback(BaseCallback):
    """Stops learning once ``max_seconds`` of wall time have passed, or at the clock time ``deadline``.

    ``deadline`` is a Unix time (``time.time()``): a fixed-length GPU session passes the moment
    learning must end so that evaluation and export still fit, whatever the scene build took.
    """

    def __init__(self, max_seconds: float | None = None, deadline: float | None = None) -> None:
        super().__init__(0)
        self.max_seconds = max_seconds
        self.deadline = deadline
        self.t0 = time.perf_counter()

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter()

    def _on_step(self) -> bool:
        if self.max_seconds is not None and time.perf_counter() - self.t0 >= self.max_seconds:
            return False
        return self.deadline is None or time.time() < self.deadline


class ProgressLineCallback(BaseCallback):
    """One line every ``every_s`` seconds (steps, env-steps/s, mean training return, learning rate).

    A compact log for long unattended runs where SB3's per-iteration tables would be too long.
    """

    def __init__(self, every_s: float = 30.0, label: str = "") -> None:
        super().__init__(0)
        self.every_s, self.label = every_s, label
        self.t0 = self.last = time.perf_counter()
        self.steps0 = 0

    def _on_training_start(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.steps0 = self.model.num_timesteps

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_s:
            return
        self.last = now
        ret = mean_training_return(self.model)
        rate = (self.model.num_timesteps - self.steps0) / max(now - self.t0, 1e-9)
        lr = self.model.lr_schedule(self.model._current_progress_remaining)
        print(f"{self.label}t={now - self.t0:.0f}s steps={self.model.num_timesteps} env_steps_per_s={rate:.0f} "
              f"train_return={'n/a' if ret is None else f'{ret:.3f}'} lr={lr:.2e}", flush=True)

    def _on_step(self) -> bool:
        return True


def mean_training_return(model) -> float | None:
    """Mean undiscounted return of the last (up to 100) training episodes, None before the first ends."""
    buf = getattr(model, "ep_info_buffer", None)
    if not buf:
        return None
    return round(float(sum(e["r"] for e in buf) / len(buf)), 4)
