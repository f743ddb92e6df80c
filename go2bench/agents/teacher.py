"""PPO teachers as batched agents: ``act(obs (N, obs_dim)) -> actions (N, action_dim)``, numpy float32.

A teacher also implements the batched agent protocol of ``go2bench eval``
(:mod:`go2bench.agents.protocol`): ``reset(num_envs, env_id, seed)`` and
``act(obs, prev_reward, episode_start)``; the extra arguments are ignored (it has no context).

* :class:`TeacherAgent`: a trained SB3 PPO policy, deterministic (the mean action).
* :func:`load_teacher`: the shipped teacher of an env (``go2bench/zoo/<env_id>/policy.pt``, weights
  only, with ``model_card.json``) or a checkpoint given by path, never unpickled;
* :func:`export_teacher`: a trained run -> ``policy.pt`` + model card in the zoo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from go2bench.agents.sb3_checkpoint import CheckpointError, build_policy, load_policy_state, save_policy_state
from go2bench.core.provenance import write_json_atomic
from go2bench.envs.registry import TASKS, task_spec

POLICY_FILE = "policy.pt"  # weights only; the network is rebuilt from the model card
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


def resolve_teacher_path(env_id_or_path: str | Path) -> Path:
    """The checkpoint file behind an env id (its shipped teacher), a directory or a file path."""
    key = str(env_id_or_path).split(":", 1)[-1]
    if key in TASKS:
        path = zoo_path(key) / POLICY_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no shipped teacher for {key}: {path} does not exist. Train one with "
                f"`go2bench teach --env {key} --out runs/{key}`, then ship it with "
                f"`go2bench.agents.teacher.export_teacher('runs/{key}')` (writes {path} and {CARD_FILE}), "
                f"or pass the checkpoint path (e.g. runs/{key}) instead of the env id."
            )
        return path
    path = Path(env_id_or_path)
    if path.is_dir():
        found = _checkpoint_in(path)
        if found is None:
            raise FileNotFoundError(f"no {POLICY_FILE} or final.zip in {path}")
        return found
    if not path.exists():
        raise FileNotFoundError(
            f"{env_id_or_path!r} is neither a go2bench env id ({sorted(TASKS)}) nor an existing checkpoint"
        )
    return path


def load_teacher(env_id_or_path: str | Path, device: str = "cpu", trust_checkpoint: bool = False) -> TeacherAgent:
    """A ready, deterministic teacher agent, loaded without unpickling.

    ``env_id_or_path``: an env id ("Go2Walk-v0") for the shipped teacher in ``go2bench/zoo``, a
    weights-only ``policy.pt``, an SB3 model zip (``final.zip``, a checkpoint) or a directory holding
    one. The ``model_card.json`` beside it describes the network; only tensors are read from the
    checkpoint (:mod:`go2bench.agents.sb3_checkpoint`). A zip without a card can only be loaded by
    stable-baselines3 itself, which unpickles it (runs any code inside): that needs
    ``trust_checkpoint=True`` (``--trust-checkpoint``) and is meant for files you wrote.
    """
    path = resolve_teacher_path(env_id_or_path)
    card = read_model_card(path)
    if card is None:
        if not trust_checkpoint or path.suffix != ".zip":
            raise CheckpointError(
                f"{path}: no {CARD_FILE} beside it; go2bench rebuilds a teacher from its model card and reads "
                "only tensors. If you wrote this SB3 zip yourself, pass --trust-checkpoint (trust_checkpoint=True) "
                "to let stable-baselines3 unpickle it, which runs any code it contains."
            )
        from stable_baselines3 import PPO

        model = PPO.load(path, device=device, custom_objects=_INFERENCE_ONLY)
        return TeacherAgent(model.policy, device=device, model_card=None, source=str(path))
    policy = build_policy(card, str(path.with_name(CARD_FILE)))
    try:
        policy.load_state_dict(load_policy_state(path))
    except RuntimeError as e:  # shapes or names that do not match the card's architecture
        raise CheckpointError(f"{path}: weights do not match the architecture in {CARD_FILE}: "
                              f"{str(e).splitlines()[0]}") from None
    return TeacherAgent(policy, device=device, model_card=card, source=str(path))


# Loading a trusted zip for inference: the training schedules are not needed.
_INFERENCE_ONLY = {"learning_rate": 0.0, "lr_schedule": 0.0, "clip_range": 0.2}


def export_teacher(run: str | Path, dest: str | Path | None = None) -> Path:
    """Write a trained run as a shippable teacher: ``dest/policy.pt`` + ``dest/model_card.json``.

    ``run``: a run directory of ``go2bench teach`` (its ``final.zip`` and ``model_card.json``) or a
    checkpoint zip with its card. ``dest`` defaults to ``go2bench/zoo/<env_id>`` (env id from the
    card). ``policy.pt`` holds only the policy's tensors (about a third of the zip, no optimizer
    moments, nothing to unpickle); it loads with :func:`load_teacher`.
    """
    src = resolve_teacher_path(run)
    card = read_model_card(src)
    if card is None:
        raise CheckpointError(f"{src}: no {CARD_FILE} beside it; cannot describe the policy to ship")
    if dest is None:
        dest = zoo_path(card["env_id"])
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    policy = build_policy(card, str(src.with_name(CARD_FILE)))
    policy.load_state_dict(load_policy_state(src))
    save_policy_state(policy, dest / POLICY_FILE)
    card = {**card, "checkpoint": POLICY_FILE, "exported_from": str(src)}
    write_json_atomic(dest / CARD_FILE, card)
    return dest / POLICY_FILE
