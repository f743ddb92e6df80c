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

Family teachers (``family="velocity"`` or ``"dynamics"``): per (robot, family) a *privileged*
teacher, whose observation ends with the block "task" (theta normalised to [-1, 1], the per-theta
expert and upper bound), and a *blind* one, the same recipe without theta (a robust policy, the
baseline in-context learning must beat). Both train over the suite's train thetas, a new theta at
every episode start of every env (``tasks="train", resample_tasks="episode"``). One scene holds one
family, so each family has its own teachers. (One policy over both families would be cheap with an
adapter concatenating two simulations, one per family, and a privileged block padded to the union of
both theta layouts; not built.) After training, their cards cache per-theta returns of the teacher
and of a random agent on every test theta (:mod:`go2bench.teachers.task_eval`).

Rollouts (``rollout=``): "host" is SB3's own loop over the numpy VecEnv adapter; "device"
(:mod:`go2bench.teachers.device_ppo`, the default with a CUDA policy on the GPU backend) steps the
simulation on its device with the same observations, rewards, time-out bootstrap and PPO update.

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
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from go2bench.agents.sb3_checkpoint import ACTIVATIONS, CheckpointError, read_zip_plain_data, read_zip_tensors
from go2bench.core.provenance import hardware, versions, write_json_atomic
from go2bench.envs import spaces as S
from go2bench.envs.genesis_runtime import torch_threads_beside_simulation
from go2bench.teachers.callbacks import (  # noqa: F401  (public here too)
    AdaptiveLR, KLAdaptiveLRCallback, ProgressLineCallback, TimedCheckpointCallback, WallTimeLimitCallback,
    mean_training_return,
)
from go2bench.teachers.device_ppo import DeviceRolloutPPO, resolve_rollout
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

    def __post_init__(self) -> None:
        positive = ("learning_rate", "clip_range", "max_grad_norm", "desired_kl", "lr_min", "lr_max", "n_steps",
                    "n_minibatches", "n_epochs")
        for name in positive + ("ent_coef", "vf_coef", "log_std_init", "gamma", "gae_lambda"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"ppo.{name} must be a finite number, got {v!r}")
            if name in positive and v <= 0:
                raise ValueError(f"ppo.{name} must be > 0, got {v!r}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError(f"ppo.gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma}, {self.gae_lambda}")
        if self.target_kl is not None and not (math.isfinite(self.target_kl) and self.target_kl > 0):
            raise ValueError(f"--target-kl must be a finite number > 0, got {self.target_kl!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"ppo.batch_size must be >= 1, got {self.batch_size}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"ppo.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")

    def resolved_batch_size(self, num_envs: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return max(1, num_envs * self.n_steps // self.n_minibatches)




def latest_checkpoint(out: str | Path) -> Path | None:
    """The checkpoint with the most steps in ``out/checkpoints``, or None."""
    found = []
    for p in (Path(out) / "checkpoints").glob("ppo_*_steps.zip"):
        m = re.fullmatch(r"ppo_(\d+)_steps\.zip", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None






RUN_CONFIG_FILE = "ppo_config.json"


def _check_run_config(out: Path, cfg: PPOConfig, env_id: str, resuming: bool,
                      task: dict[str, Any] | None = None) -> None:
    """Record the run's recipe; a resumed run must use the same one (named field by field)."""
    path = out / RUN_CONFIG_FILE
    new = {"env_id": env_id, "ppo": asdict(cfg), "task": task or {}}
    if resuming and path.exists():
        old = json.loads(path.read_text())
        diff = [f"{k}: {old['ppo'].get(k)!r} -> {v!r}" for k, v in new["ppo"].items() if old["ppo"].get(k) != v]
        diff += [f"{k}: {old.get('task', {}).get(k)!r} -> {v!r}" for k, v in new["task"].items()
                 if old.get("task", {}).get(k) != v]
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


def make_ppo(venv, cfg: PPOConfig, device: str, seed: int, tensorboard_log: str | None, verbose: int = 1,
             rollout: str = "host") -> PPO:
    """A fresh SB3 PPO with ``cfg`` on ``venv``; ``rollout="device"``: a :class:`DeviceRolloutPPO`."""
    algorithm = DeviceRolloutPPO if resolve_rollout(rollout, device, venv.sim.backend) == "device" else PPO
    return algorithm(
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
    family: str | None = None,
    privileged: bool = False,
    tasks: Any = "train",
    resample_tasks: str = "episode",
    stop_at: float | None = None,
    task_eval_episodes: int = 4,
    task_eval_train: int | None = None,
    log_every_s: float | None = None,
    rollout: str = "auto",
) -> tuple[PPO, dict[str, Any]]:
    """Train a PPO teacher on ``env_id``; return the model and its model card (both also saved in ``out``).

    Args:
        total_steps: env steps in all (over all envs), including those of a resumed run.
        device: torch device of the policy ("cpu", "cuda", "auto").
        backend: Genesis backend of the simulation ("cpu" or "gpu").
        resume: continue from the newest checkpoint in ``out/checkpoints`` (fresh start if none),
            reading only its tensors and counters (never unpickling it); ``ppo``, ``env_id`` and the
            task setup must equal the run's recorded ``ppo_config.json``.
        checkpoint_every: env steps between checkpoints.
        eval_episodes: (teachers without a family) after training, evaluate the deterministic policy
            and a random agent on the training simulation with the in-context protocol (one seed,
            ``ceil(eval_episodes / num_envs)`` episodes per env); their mean returns go into the card
            as ``expert_score`` and ``random_score`` (0 skips).
        venv: an existing adapter to train on (its env_id/num_envs/backend/family/privileged win).
        max_minutes: stop learning after this much wall time (then save, evaluate and write the card).
        family: a task family ("velocity", "dynamics"): the teacher trains over that family's thetas
            (one scene holds one family, so there is one teacher per (robot, family)); None: today's
            default task.
        privileged: append the normalised theta to the observation (the per-theta expert); False:
            the blind teacher, the same recipe without theta (a robust policy).
        tasks: the thetas to train over (family teachers): by default the suite's train split.
        resample_tasks: when an env draws a new theta; by default at every episode start.
        stop_at: a Unix time (``time.time()``) at which learning stops whatever else is left, so that
            a fixed-length session still has time to evaluate and export.
        task_eval_episodes: (family teachers) after training, the deterministic policy and a random
            agent run on every test theta of the suite (and ``task_eval_train`` train thetas: None all,
            0 none), at least this many full episodes per (agent, theta); the per-theta mean returns go
            into the card (:mod:`go2bench.teachers.task_eval`), their test-split means into
            ``expert_score``/``random_score``. 0 skips.
        log_every_s: print one progress line this often (seconds); None: no such lines.
        rollout: "host" (SB3's own rollouts through the numpy VecEnv), "device" (rollouts stepped
            on the simulation's device, :mod:`go2bench.teachers.device_ppo`; same PPO update) or
            "auto" (device when the policy is on CUDA and the backend is the GPU); in the card.
    """
    for name, value in (("--max-minutes", max_minutes), ("--log-every", log_every_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    cfg = ppo or PPOConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolve_rollout(rollout, device, backend)  # a bad mode fails before the scene is built
    if venv is None:
        venv = WalkSB3VecEnv(
            env_id, num_envs, backend=backend, seed=seed, obs_mode=obs_mode, config=config,
            max_episode_steps=max_episode_steps, family=family, privileged=privileged,
            tasks=tasks if family is not None else None,
            resample_tasks=resample_tasks if family is not None else "trial",
        )
    env_id, num_envs, backend = venv.env_id, venv.num_envs, venv.sim.backend
    rollout = resolve_rollout(rollout, device, backend)
    task = family_setup(venv)

    ckpt = latest_checkpoint(out) if resume else None
    _check_run_config(out, cfg, env_id, resuming=ckpt is not None, task=task)
    wall_before = 0.0
    model = make_ppo(venv, cfg, device, seed, str(out / "tb"), verbose, rollout=rollout)
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
    if max_minutes is not None or stop_at is not None:
        callbacks.append(WallTimeLimitCallback(None if max_minutes is None else 60.0 * max_minutes, stop_at))
    if log_every_s is not None:
        callbacks.append(ProgressLineCallback(log_every_s, label=f"{out.name}: "))
    remaining = max(0, total_steps - model.num_timesteps)
    if remaining > 0 and (stop_at is None or time.time() < stop_at):
        with torch_threads_beside_simulation(venv.sim.device):  # CPU sim: torch's threads fought Genesis' (5x slower)
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
        "family": task.get("family"),
        "privileged": bool(task.get("privileged", False)),
        "obs_mode": venv.config.obs_mode,
        "obs_dim": venv.obs_dim,
        "obs_layout": [[name, size] for name, size in S.observation_layout(
            venv.robot_description, venv.config.obs_mode, venv.family if venv.privileged else None)],
        "max_episode_steps": venv.max_episode_steps,
        "training_steps": int(model.num_timesteps),
        "final_training_return": mean_training_return(model),
        "wall_time_s": wall,
        "env_steps_per_s": round(model.num_timesteps / wall, 1) if wall > 0 else None,
        "num_envs": num_envs,
        "device": device,
        "backend": backend,
        "rollout": rollout,
        "hardware": hardware(device, backend),
        "seed": seed,
        "resumed_from": str(ckpt) if ckpt is not None else None,
        "final_learning_rate": float(model.lr_schedule(model._current_progress_remaining)),
        "ppo": asdict(cfg) | {"batch_size": cfg.resolved_batch_size(num_envs)},
        "walk_config": venv.config.to_dict(),
        "versions": versions(),
        "checkpoint": "final.zip",
    }
    if task:
        card.update(family_card_fields(venv, task))
    card_path = out / "model_card.json"
    card_path.write_text(json.dumps(card, indent=2))  # a usable card already, should the evaluation not finish
    from go2bench.agents.teacher import TeacherAgent

    teacher = TeacherAgent(model.policy, device=device)
    if task and task_eval_episodes > 0:
        from go2bench.teachers.task_eval import evaluate_tasks

        ev = evaluate_tasks(teacher, env_id, venv.sim, train_tasks=task_eval_train,
                            min_episodes=task_eval_episodes, seed=seed + 1, progress=log_every_s is not None)
        test = ev["family_scores"]["test"]
        card.update(ev, expert_score=test["teacher_mean_return"], random_score=test["random_mean_return"],
                    fall_rate=test["teacher_fall_rate"], random_fall_rate=test["random_fall_rate"],
                    scores_note="expert_score/random_score: mean over the suite's test thetas of per-theta "
                                "mean returns (per_task_returns)")
        if venv.tasks_spec is not None:
            venv.assign_tasks(venv.tasks_spec, venv.resample_tasks)  # back to the training thetas
    elif not task and eval_episodes > 0:
        from go2bench.agents.random import RandomAgent
        from go2bench.eval.protocol import evaluate_in_context

        per_env = -(-eval_episodes // num_envs)  # K episodes per env, at least eval_episodes in all
        protocol = dict(episodes=per_env, seeds=[seed + 1], sim=venv.sim, progress=False)
        ev = evaluate_in_context(teacher, env_id, **protocol)
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
    card_path.write_text(json.dumps(card, indent=2))  # NaN allowed: never lose a finished run
    return model, card


def family_setup(venv: WalkSB3VecEnv) -> dict[str, Any]:
    """The task setup of a run ({} without a family): recorded in ``ppo_config.json`` and the card."""
    if venv.family is None:
        return {}
    spec = json.loads(json.dumps(venv.tasks_spec, default=str))  # JSON-safe ((split, i) -> [split, i])
    return {"family": venv.family, "privileged": bool(venv.privileged), "tasks": spec,
            "resample_tasks": venv.resample_tasks}


def family_card_fields(venv: WalkSB3VecEnv, task: dict[str, Any]) -> dict[str, Any]:
    """Suite and theta layout of a family teacher's card (what its privileged block means)."""
    from go2bench.core.provenance import file_sha256
    from go2bench.envs.suites import CURRENT_SUITE, SUITES_DIR, load_suite

    layout = venv.sim.tasks.layout
    suite = load_suite(venv.family, venv.robot_description.name)
    path = SUITES_DIR / f"{CURRENT_SUITE[venv.family]}.yaml"
    return {
        "suite": {"name": suite.name, "file": f"go2bench/suites/{path.name}", "sha256": file_sha256(path),
                  "seed": suite.seed, "train_tasks": len(suite.train), "test_tasks": len(suite.test)},
        "theta_layout": {"names": list(layout.names), "low": list(layout.low), "high": list(layout.high),
                         "units": list(layout.units),
                         "privileged_block": "task: theta mapped linearly from [low, high] to [-1, 1]"
                         if task["privileged"] else None},
        "training_tasks": task["tasks"],
        "resample_tasks": task["resample_tasks"],
    }
