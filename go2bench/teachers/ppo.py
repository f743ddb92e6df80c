"""PPO teachers: the whole stable-baselines3 recipe in one file.

Settings follow Genesis' Go2 locomotion example (rsl-rl), translated to SB3:

* 24 steps per env per iteration, 4 minibatches (batch = num_envs * 24 / 4), 5 epochs;
* lr 1e-3, adapted after every update from the measured KL like rsl-rl (halve when
  approx_kl > 2 * 0.01, raise 1.5x when < 0.01 / 2, kept in [1e-5, 1e-2]); SB3's fixed rate
  overshoots late in training (approx_kl ~0.04, clip fraction ~0.5 at 4096 envs);
* clip 0.2, entropy 0.01, gamma 0.99, GAE lambda 0.95, value loss 1.0, grad norm 1.0;
* actor and critic MLPs 512-256-128 with ELU, separate; initial action std 1.0 (log_std 0).

SB3 applies the rate adaptation per iteration (rsl-rl per minibatch): the callback reads the
``train/approx_kl`` of the last update (mean of its last epoch) before the next update starts.

Outputs under ``out``: ``final.zip`` (the SB3 model), ``model_card.json``, ``checkpoints/``
(``ppo_<steps>_steps.zip`` with a ``.json`` of the wall time so far; ``resume=True`` continues
from the newest) and ``tb/`` (TensorBoard).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback

from go2bench.agents.sb3_checkpoint import ACTIVATIONS, CheckpointError, read_zip_plain_data, read_zip_tensors
from go2bench.core.provenance import hardware, versions, write_json_atomic
from go2bench.teachers.sb3_vec_env import WalkSB3VecEnv


@dataclass
class PPOConfig:
    """Everything PPO is given; ``batch_size`` None means num_envs * n_steps / n_minibatches."""

    n_steps: int = 24
    n_minibatches: int = 4
    batch_size: int | None = None
    n_epochs: int = 5
    learning_rate: float = 1.0e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 1.0
    max_grad_norm: float = 1.0
    target_kl: float | None = None  # SB3's early stop of an update; the adaptive rate is the main guard
    adaptive_lr: bool = True
    desired_kl: float = 0.01
    lr_min: float = 1.0e-5
    lr_max: float = 1.0e-2
    net_arch: list[int] = field(default_factory=lambda: [512, 256, 128])
    activation: str = "elu"
    log_std_init: float = 0.0

    def resolved_batch_size(self, num_envs: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return max(1, num_envs * self.n_steps // self.n_minibatches)




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
    """Stops learning once ``max_seconds`` of wall time have passed (for fixed-length GPU sessions)."""

    def __init__(self, max_seconds: float) -> None:
        super().__init__(0)
        self.max_seconds = max_seconds
        self.t0 = time.perf_counter()

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self.t0 < self.max_seconds


def latest_checkpoint(out: str | Path) -> Path | None:
    """The checkpoint with the most steps in ``out/checkpoints``, or None."""
    found = []
    for p in (Path(out) / "checkpoints").glob("ppo_*_steps.zip"):
        m = re.fullmatch(r"ppo_(\d+)_steps\.zip", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None






RUN_CONFIG_FILE = "ppo_config.json"


def _check_run_config(out: Path, cfg: PPOConfig, env_id: str, resuming: bool) -> None:
    """Record the run's recipe; a resumed run must use the same one (named field by field)."""
    path = out / RUN_CONFIG_FILE
    new = {"env_id": env_id, "ppo": asdict(cfg)}
    if resuming and path.exists():
        old = json.loads(path.read_text())
        diff = [f"{k}: {old['ppo'].get(k)!r} -> {v!r}" for k, v in new["ppo"].items() if old["ppo"].get(k) != v]
        if old.get("env_id") != env_id:
            diff.insert(0, f"env: {old.get('env_id')!r} -> {env_id!r}")
        if diff:
            raise ValueError(f"{out}: --resume with settings that differ from the run's ({'; '.join(diff)}); "
                             "resume with the same settings or use another --out")
    write_json_atomic(path, new)


def _restore(model: PPO, ckpt: Path, cfg: PPOConfig) -> None:
    """Continue from a checkpoint zip without unpickling it: tensors and plain counters only."""
    tensors = read_zip_tensors(ckpt)
    plain = read_zip_plain_data(ckpt)
    try:
        model.policy.load_state_dict(tensors["policy"])
        if "policy.optimizer" in tensors:
            model.policy.optimizer.load_state_dict(tensors["policy.optimizer"])
        model.num_timesteps = int(plain["num_timesteps"])
        model._n_updates = int(plain.get("_n_updates", 0))
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{ckpt}: does not match this run's policy ({str(e).splitlines()[0]})") from None
    if cfg.adaptive_lr:  # continue at the adapted rate the optimizer had reached
        rate = float(model.policy.optimizer.param_groups[0]["lr"])
        model.learning_rate = AdaptiveLR(rate)
        model.lr_schedule = model.learning_rate


def make_ppo(venv, cfg: PPOConfig, device: str, seed: int, tensorboard_log: str | None, verbose: int = 1) -> PPO:
    """A fresh SB3 PPO with ``cfg`` on ``venv``."""
    return PPO(
        "MlpPolicy",
        venv,
        learning_rate=AdaptiveLR(cfg.learning_rate) if cfg.adaptive_lr else cfg.learning_rate,
        n_steps=cfg.n_steps,
        batch_size=cfg.resolved_batch_size(venv.num_envs),
        n_epochs=cfg.n_epochs,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_range,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        target_kl=cfg.target_kl,
        policy_kwargs=dict(
            net_arch=dict(pi=list(cfg.net_arch), vf=list(cfg.net_arch)),
            activation_fn=ACTIVATIONS[cfg.activation],
            log_std_init=cfg.log_std_init,
        ),
        tensorboard_log=tensorboard_log,
        device=device,
        seed=seed,
        verbose=verbose,
    )


def train_teacher(
    env_id: str = "Go2Walk-v0",
    num_envs: int = 4096,
    total_steps: int = 50_000_000,
    device: str = "auto",
    backend: str = "cpu",
    out: str | Path = "runs/teacher",
    seed: int = 0,
    resume: bool = False,
    ppo: PPOConfig | None = None,
    obs_mode: str | None = None,
    config: Any = None,
    max_episode_steps: int | None = None,
    checkpoint_every: int = 5_000_000,
    eval_episodes: int = 64,
    progress_bar: bool = True,
    verbose: int = 1,
    venv: WalkSB3VecEnv | None = None,
    max_minutes: float | None = None,
) -> tuple[PPO, dict[str, Any]]:
    """Train a PPO teacher on ``env_id``; return the model and its model card (both also saved in ``out``).

    Args:
        total_steps: env steps in all (over all envs), including those of a resumed run.
        device: torch device of the policy ("cpu", "cuda", "auto").
        backend: Genesis backend of the simulation ("cpu" or "gpu").
        resume: continue from the newest checkpoint in ``out/checkpoints`` (fresh start if none),
            reading only its tensors and counters (never unpickling it); ``ppo`` and ``env_id`` must
            equal the run's recorded ``ppo_config.json``.
        checkpoint_every: env steps between checkpoints.
        eval_episodes: after training, evaluate the deterministic policy and a random agent on
            the training simulation with the in-context protocol (one seed, ``ceil(eval_episodes /
            num_envs)`` episodes per env); their mean returns go into the card as ``expert_score``
            and ``random_score`` (0 skips).
        venv: an existing adapter to train on (its env_id/num_envs/backend win).
        max_minutes: stop learning after this much wall time (then save, evaluate and write the card).
    """
    cfg = ppo or PPOConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if venv is None:
        venv = WalkSB3VecEnv(
            env_id, num_envs, backend=backend, seed=seed, obs_mode=obs_mode, config=config,
            max_episode_steps=max_episode_steps,
        )
    env_id, num_envs, backend = venv.env_id, venv.num_envs, venv.sim.backend

    ckpt = latest_checkpoint(out) if resume else None
    _check_run_config(out, cfg, env_id, resuming=ckpt is not None)
    wall_before = 0.0
    model = make_ppo(venv, cfg, device, seed, str(out / "tb"), verbose)
    if ckpt is not None:
        _restore(model, ckpt, cfg)
        side = ckpt.with_suffix(".json")
        if side.exists():
            wall_before = float(json.loads(side.read_text()).get("wall_time_s", 0.0))
        if verbose:
            print(f"resuming from {ckpt} at {model.num_timesteps} steps")
    elif resume and verbose:
        print(f"nothing to resume in {out / 'checkpoints'}; starting fresh")

    checkpoints = TimedCheckpointCallback(
        save_freq=max(1, checkpoint_every // num_envs),
        save_path=str(out / "checkpoints"),
        name_prefix="ppo",
        wall_time_before=wall_before,
    )
    callbacks: list[BaseCallback] = [checkpoints]
    if cfg.adaptive_lr:
        callbacks.append(KLAdaptiveLRCallback(cfg.desired_kl, cfg.lr_min, cfg.lr_max))
    if max_minutes is not None:
        callbacks.append(WallTimeLimitCallback(60.0 * max_minutes))
    remaining = max(0, total_steps - model.num_timesteps)
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList(callbacks),
            tb_log_name="ppo",
            reset_num_timesteps=ckpt is None,
            progress_bar=progress_bar,
        )
    wall = checkpoints.wall_time_s()
    model.save(out / "final.zip")

    card: dict[str, Any] = {
        "env_id": env_id,
        "algorithm": "PPO (stable-baselines3)",
        "obs_mode": venv.config.obs_mode,
        "obs_dim": venv.obs_dim,
        "max_episode_steps": venv.max_episode_steps,
        "training_steps": int(model.num_timesteps),
        "wall_time_s": wall,
        "env_steps_per_s": round(model.num_timesteps / wall, 1) if wall > 0 else None,
        "num_envs": num_envs,
        "device": device,
        "backend": backend,
        "hardware": hardware(device, backend),
        "seed": seed,
        "resumed_from": str(ckpt) if ckpt is not None else None,
        "final_learning_rate": float(model.lr_schedule(model._current_progress_remaining)),
        "ppo": asdict(cfg) | {"batch_size": cfg.resolved_batch_size(num_envs)},
        "walk_config": venv.config.to_dict(),
        "versions": versions(),
        "checkpoint": "final.zip",
    }
    if eval_episodes > 0:
        from go2bench.agents.random import RandomAgent
        from go2bench.agents.teacher import TeacherAgent
        from go2bench.eval.protocol import evaluate_in_context

        per_env = -(-eval_episodes // num_envs)  # K episodes per env, at least eval_episodes in all
        protocol = dict(episodes=per_env, seeds=[seed + 1], sim=venv.sim, progress=False)
        ev = evaluate_in_context(TeacherAgent(model.policy, device=device), env_id, **protocol)
        rnd = evaluate_in_context(RandomAgent(seed=seed + 1), env_id, **protocol)
        card.update(
            evaluated_episodes=ev["episodes"],
            expert_score=ev["mean_return"],
            random_score=rnd["mean_return"],
            fall_rate=ev["fall_rate"],
            mean_tracking_error=ev["mean_tracking_error"],
            mean_episode_length=ev["mean_length"],
            random_fall_rate=rnd["fall_rate"],
            random_mean_tracking_error=rnd["mean_tracking_error"],
            reward_terms=ev["reward_terms"],
        )
        venv._needs_reset = True  # evaluation moved the shared simulation
    (out / "model_card.json").write_text(json.dumps(card, indent=2))
    return model, card
