"""PPO teachers as batched agents: ``act(obs (N, obs_dim)) -> actions (N, action_dim)``, numpy float32.

A teacher also implements the batched agent protocol of ``go2bench eval``
(:mod:`go2bench.agents.protocol`): ``reset(num_envs, env_id, seed)`` and
``act(obs, prev_reward, episode_start)``; the extra arguments are ignored (it has no context).

* :class:`TeacherAgent`: a trained SB3 PPO policy, deterministic (the mean action).
* :func:`load_teacher`: the shipped teacher of an env (``go2bench/zoo/<env_id>/policy.zip``, an SB3
  PPO model zip, with ``model_card.json``) or a checkpoint given by path;
* :func:`export_teacher`: a trained run -> a slim ``policy.zip`` + model card in the zoo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from go2bench.envs.registry import TASKS, task_spec

POLICY_FILE = "policy.zip"
CARD_FILE = "model_card.json"


class TeacherAgent:
    """A trained SB3 actor-critic policy acting deterministically on batches of observations."""

    name = "teacher"

    def __init__(
        self, policy, device: str | torch.device = "cpu", model_card: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.policy.set_training_mode(False)
        self.model_card = model_card
        self.source = source
        self.obs_dim = int(policy.observation_space.shape[0])
        low, high = policy.action_space.low, policy.action_space.high
        self._low = torch.as_tensor(low, device=self.device)
        self._high = torch.as_tensor(high, device=self.device)

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint file this policy was loaded from (None if built in memory)."""
        return self.source

    def reset(self, num_envs: int | None = None, env_id: str | None = None, seed: int | None = None) -> None:
        """Protocol cold start: nothing to forget (a memoryless, deterministic policy)."""

    @torch.no_grad()
    def act(self, obs: np.ndarray | torch.Tensor, prev_reward=None, episode_start=None) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if x.dim() != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have shape (N, {self.obs_dim}); got {tuple(x.shape)}")
        actions = self.policy._predict(x, deterministic=True)  # the Gaussian's mean
        return torch.clamp(actions, self._low, self._high).cpu().numpy().astype(np.float32, copy=False)


def zoo_path(env_id: str) -> Path:
    """Where the shipped teacher of ``env_id`` lives."""
    return task_spec(env_id).zoo_dir


def read_model_card(path: str | Path) -> dict[str, Any] | None:
    """The model card next to a checkpoint (or in a directory), None if there is none."""
    p = Path(path)
    card = p / CARD_FILE if p.is_dir() else p.with_name(CARD_FILE)
    return json.loads(card.read_text()) if card.exists() else None


def _checkpoint_in(directory: Path) -> Path | None:
    for name in (POLICY_FILE, "final.zip"):
        if (directory / name).exists():
            return directory / name
    return None


def load_teacher(env_id_or_path: str | Path, device: str = "cpu") -> TeacherAgent:
    """A ready, deterministic teacher agent.

    ``env_id_or_path``: an env id ("Go2Walk-v0") for the shipped teacher in ``go2bench/zoo``, or a
    path to an SB3 model zip (``final.zip``, a checkpoint) or to a directory holding ``policy.zip``
    or ``final.zip``; a ``model_card.json`` beside it is loaded when present.
    """
    from stable_baselines3 import PPO

    key = str(env_id_or_path).split(":", 1)[-1]
    if key in TASKS:
        directory = zoo_path(key)
        path = directory / POLICY_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no shipped teacher for {key}: {path} does not exist. Train one with "
                f"`go2bench teach --env {key} --out runs/{key}`, then ship it with "
                f"`go2bench.agents.teacher.export_teacher('runs/{key}')` (writes {path} and {CARD_FILE}), "
                f"or pass the checkpoint path (e.g. runs/{key}) instead of the env id."
            )
    else:
        path = Path(env_id_or_path)
        if path.is_dir():
            found = _checkpoint_in(path)
            if found is None:
                raise FileNotFoundError(f"no {POLICY_FILE} or final.zip in {path}")
            path = found
        elif not path.exists():
            raise FileNotFoundError(
                f"{env_id_or_path!r} is neither a go2bench env id ({sorted(TASKS)}) nor an existing checkpoint"
            )
    model = PPO.load(path, device=device, custom_objects=_INFERENCE_ONLY)
    return TeacherAgent(model.policy, device=device, model_card=read_model_card(path), source=str(path))


# Loading for inference: don't unpickle the training schedules (they may be classes of another version).
_INFERENCE_ONLY = {"learning_rate": 0.0, "lr_schedule": 0.0, "clip_range": 0.2}


def export_teacher(run: str | Path, dest: str | Path | None = None) -> Path:
    """Write a trained run as a shippable teacher: ``dest/policy.zip`` + ``dest/model_card.json``.

    ``run``: a run directory of ``go2bench teach`` (its ``final.zip`` and ``model_card.json``) or a
    checkpoint zip. ``dest`` defaults to ``go2bench/zoo/<env_id>`` (env id from the model card).
    The exported zip is an ordinary SB3 PPO model without the optimizer's moments (about a third
    of the size); it loads with ``PPO.load`` and :func:`load_teacher`.
    """
    from stable_baselines3 import PPO

    src = Path(run)
    if src.is_dir():
        src = _checkpoint_in(src) or src / "final.zip"
    card = read_model_card(src) or {}
    if dest is None:
        if "env_id" not in card:
            raise ValueError(f"no model card with env_id beside {src}; pass dest explicitly")
        dest = zoo_path(card["env_id"])
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model = PPO.load(src, device="cpu", custom_objects=_INFERENCE_ONLY)
    policy = model.policy
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=0.0, **policy.optimizer_kwargs)
    model.save(dest / POLICY_FILE)
    card = {**card, "checkpoint": POLICY_FILE, "exported_from": str(src)}
    (dest / CARD_FILE).write_text(json.dumps(card, indent=2))
    return dest / POLICY_FILE
