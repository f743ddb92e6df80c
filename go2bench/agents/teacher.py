"""PPO teachers as batched agents: ``act(obs (N, obs_dim)) -> actions (N, action_dim)``, numpy float32.

A teacher also implements the batched agent protocol of ``go2bench eval``
(:mod:`go2bench.agents.protocol`): ``reset(num_envs, env_id, seed)`` and
``act(obs, prev_reward, episode_start)``; the extra arguments are ignored (it has no context).

* :class:`TeacherAgent`: a trained SB3 PPO policy, deterministic (the mean action).
* :func:`load_teacher`: the shipped teacher of an env (``go2bench/zoo/<env_id>/policy.pt``, weights
  only, with ``model_card.json``), of a task family of it, or a checkpoint given by path, never unpickled;
* :func:`export_teacher`: a trained run -> ``policy.pt`` + model card in the zoo.

Zoo layout::

    go2bench/zoo/<EnvId>/policy.pt, model_card.json                        default-task teacher
    go2bench/zoo/<EnvId>/<family>/privileged/policy.pt, model_card.json    observes theta
    go2bench/zoo/<EnvId>/<family>/blind/policy.pt, model_card.json         the same recipe without it

Family teachers: ``load_teacher("Go2Walk-v0", family="velocity", privileged=True)``. A privileged
teacher reads the privileged observation: the env's observation with the block "task" (theta
normalised to [-1, 1]) appended, i.e. an env made with ``family=F, privileged=True``
(``agent.privileged_family`` is F; ``agent.obs_dim`` includes the block, so the evaluator's
obs-dim check catches a blind env). To run it on a blind simulation instead (one scene shared with
other agents), call ``agent.use_task_source(lambda: sim.tasks.normalised)``: it then takes the blind
observation and appends theta itself. Its card's ``per_task_returns`` hold the per-theta reference
returns of the teacher and of a random agent (:mod:`go2bench.teachers.task_eval`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from go2bench.agents.sb3_actor import deterministic_actor
from go2bench.agents.sb3_checkpoint import (CheckpointError, build_policy, load_actor_state, load_policy_state,
                                             save_policy_state)
from go2bench.core.provenance import read_json_object, write_json_atomic
from go2bench.envs.registry import TASKS, task_spec

POLICY_FILE = "policy.pt"  # weights only; the network is rebuilt from the model card
CARD_FILE = "model_card.json"
KINDS = {True: "privileged", False: "blind"}  # zoo sub-folder of a family teacher


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
        self._actor = deterministic_actor(self.policy)  # the Gaussian's mean, without SB3's Normal
        self.policy_obs_dim = int(policy.observation_space.shape[0])
        self.obs_dim = self.policy_obs_dim
        card = model_card or {}
        self.family: str | None = card.get("family")  # the task family it was trained on (None: default task)
        self.privileged = bool(card.get("privileged", False))
        # an env made with family=privileged_family, privileged=True gives the observation it reads
        self.privileged_family: str | None = self.family if self.privileged else None
        self.task_dim = len(card.get("theta_layout", {}).get("names", [])) if self.privileged else 0
        self._task_source = None
        low, high = policy.action_space.low, policy.action_space.high
        self._low = torch.as_tensor(low, device=self.device)
        self._high = torch.as_tensor(high, device=self.device)

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint file this policy was loaded from (None if built in memory)."""
        return self.source

    def use_task_source(self, source) -> None:
        """Read theta from ``source()`` ((N, D) normalised, e.g. ``lambda: sim.tasks.normalised``) instead
        of the observation: ``act`` then takes the blind observation (``obs_dim`` shrinks by D).
        ``None`` goes back to the privileged observation."""
        if source is not None and not self.privileged_family:
            raise ValueError("only a privileged teacher reads theta; this one is blind or of the default task")
        self._task_source = source
        self.obs_dim = self.policy_obs_dim - (self.task_dim if source is not None else 0)

    def reset(self, num_envs: int | None = None, env_id: str | None = None, seed: int | None = None) -> None:
        """Protocol cold start: nothing to forget (a memoryless, deterministic policy)."""

    @torch.no_grad()
    def act(self, obs: np.ndarray | torch.Tensor, prev_reward=None, episode_start=None) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if self._task_source is not None and x.dim() == 2 and x.shape[1] == self.obs_dim:
            theta = torch.as_tensor(self._task_source(), dtype=torch.float32, device=self.device)
            x = torch.cat((x, theta), dim=1)
        if x.dim() != 2 or x.shape[1] != self.policy_obs_dim:
            raise ValueError(f"obs must have shape (N, {self.obs_dim}); got {tuple(x.shape)}"
                             + (f" (a privileged {self.privileged_family} teacher: make the env with "
                                f"family={self.privileged_family!r}, privileged=True)" if self.privileged_family else ""))
        actions = self._actor(x)  # no torch.distributions: their argument checks sync with the host on a GPU
        return torch.clamp(actions, self._low, self._high).cpu().numpy().astype(np.float32, copy=False)


def zoo_path(env_id: str, family: str | None = None, privileged: bool | None = None,
             root: str | Path | None = None) -> Path:
    """Where the shipped teacher of ``env_id`` lives (of its task ``family``: privileged or blind).

    ``root``: another zoo folder (e.g. an export destination), laid out the same way.
    """
    base = task_spec(env_id).zoo_dir if root is None else Path(root) / task_spec(env_id).env_id
    if family is None:
        return base
    if privileged is None:
        raise ValueError(f"a {family} teacher is privileged (observes theta) or blind: pass privileged=True or False")
    from go2bench.envs.families import get_family

    return base / get_family(family).name / KINDS[bool(privileged)]


def read_model_card(path: str | Path) -> dict[str, Any] | None:
    """The model card next to a checkpoint (or in a directory), None if there is none."""
    p = Path(path)
    card = p / CARD_FILE if p.is_dir() else p.with_name(CARD_FILE)
    if not card.exists():
        return None
    return read_json_object(card, "model card")


def _checkpoint_in(directory: Path) -> Path | None:
    for name in (POLICY_FILE, "final.zip"):
        if (directory / name).exists():
            return directory / name
    return None


def resolve_teacher_path(env_id_or_path: str | Path, family: str | None = None,
                         privileged: bool | None = None) -> Path:
    """The checkpoint file behind an env id (its shipped teacher, of ``family`` if given), a directory or a file."""
    key = str(env_id_or_path).split(":", 1)[-1]
    if key in TASKS:
        path = zoo_path(key, family, privileged) / POLICY_FILE
        if not path.exists():
            flags = f" --family {family}{' --privileged' if privileged else ''}" if family else ""
            what = f"{KINDS[bool(privileged)]} {family} teacher" if family else "teacher"
            raise FileNotFoundError(
                f"no shipped {what} for {key}: {path} does not exist. Train one with "
                f"`go2bench teach --env {key}{flags} --out runs/{key}`, then ship it with "
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


def load_teacher(env_id_or_path: str | Path, device: str = "cpu", trust_checkpoint: bool = False,
                 family: str | None = None, privileged: bool | None = None) -> TeacherAgent:
    """A ready, deterministic teacher agent, loaded without unpickling.

    ``env_id_or_path``: an env id ("Go2Walk-v0") for the shipped teacher in ``go2bench/zoo`` (with
    ``family`` and ``privileged``: that family's privileged or blind teacher), a weights-only
    ``policy.pt``, an SB3 model zip (``final.zip``, a checkpoint) or a directory holding one. Given
    a path, ``family``/``privileged`` (when not None) are checked against its model card. The ``model_card.json`` beside it describes the network; only tensors are read from the
    checkpoint (:mod:`go2bench.agents.sb3_checkpoint`). A zip without a card can only be loaded by
    stable-baselines3 itself, which unpickles it (runs any code inside): that needs
    ``trust_checkpoint=True`` (``--trust-checkpoint``) and is meant for files you wrote.
    """
    path = resolve_teacher_path(env_id_or_path, family, privileged)
    card = read_model_card(path)
    if card is not None:
        _check_kind(card, path, family, privileged)
    elif family is not None:
        raise CheckpointError(f"{path}: no {CARD_FILE} beside it, so nothing says it is a {family} teacher")
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
    load_actor_state(policy, load_policy_state(path), str(path))
    return TeacherAgent(policy, device=device, model_card=card, source=str(path))


def _check_kind(card: dict[str, Any], path: Path, family: str | None, privileged: bool | None) -> None:
    """The card's family and privileged flag must be the ones asked for (None: anything)."""
    have_family, have_priv = card.get("family"), bool(card.get("privileged", False))
    if family is not None and have_family != family:
        raise CheckpointError(f"{path}: a teacher of {'the default task' if have_family is None else have_family!r}"
                              f", not of the {family!r} family (its {CARD_FILE})")
    if privileged is not None and have_priv != bool(privileged):
        raise CheckpointError(f"{path}: a {KINDS[have_priv]} teacher, not a {KINDS[bool(privileged)]} one "
                              f"(its {CARD_FILE})")


# Loading a trusted zip for inference: the training schedules are not needed.
_INFERENCE_ONLY = {"learning_rate": 0.0, "lr_schedule": 0.0, "clip_range": 0.2}


def export_teacher(run: str | Path, dest: str | Path | None = None, zoo_root: str | Path | None = None) -> Path:
    """Write a trained run as a shippable teacher: ``dest/policy.pt`` + ``dest/model_card.json``.

    ``run``: a run directory of ``go2bench teach`` (its ``final.zip`` and ``model_card.json``) or a
    checkpoint zip with its card. ``dest`` defaults to the zoo layout under ``zoo_root`` (default
    ``go2bench/zoo``): ``<env_id>`` for a default-task teacher, ``<env_id>/<family>/privileged|blind``
    for a family teacher (all from the card). ``policy.pt`` holds only the policy's tensors (about a third of the zip, no optimizer
    moments, nothing to unpickle); it loads with :func:`load_teacher`.
    """
    src = resolve_teacher_path(run)
    card = read_model_card(src)
    if card is None:
        raise CheckpointError(f"{src}: no {CARD_FILE} beside it; cannot describe the policy to ship")
    if dest is None:
        family = card.get("family")
        dest = zoo_path(card["env_id"], family, bool(card.get("privileged")) if family else None, zoo_root)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    policy = build_policy(card, str(src.with_name(CARD_FILE)))
    load_actor_state(policy, load_policy_state(src), str(src))
    save_policy_state(policy, dest / POLICY_FILE)
    card = {**card, "checkpoint": POLICY_FILE, "exported_from": str(src)}
    write_json_atomic(dest / CARD_FILE, card)
    return dest / POLICY_FILE
