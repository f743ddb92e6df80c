"""PPO teacher weights without unpickling: tensors only, the architecture from the JSON model card.

A stable-baselines3 model zip holds a ``data`` JSON whose ``:serialized:`` entries are cloudpickle
(``PPO.load`` runs whatever code they carry) beside ``.pth`` tensor files. go2bench never unpickles
a checkpoint it did not just write in the same process: it reads only the ``.pth`` entries with
``torch.load(weights_only=True)`` and the plain JSON values, and rebuilds the policy network from
the model card (``obs_dim``, ``ppo.net_arch``, ``ppo.activation``, ``ppo.log_std_init``) and the
robot's action bounds. Shipped teachers are a weights-only ``policy.pt`` plus ``model_card.json``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from go2bench.envs.registry import robot_for_env
from go2bench.envs.robots import get_robot

__all__ = ["CheckpointError", "ACTIVATIONS", "build_policy", "read_zip_tensors", "read_zip_plain_data",
           "load_policy_state", "save_policy_state", "load_actor_state"]

ACTIVATIONS = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


class CheckpointError(ValueError):
    """A checkpoint or model card that cannot be read safely; the message names the file."""


def build_policy(card: dict[str, Any], where: str = "model card"):
    """A fresh SB3 ``ActorCriticPolicy`` with the architecture the model card describes."""
    import numpy as np
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticPolicy

    try:
        env_id, obs_dim, ppo = card["env_id"], int(card["obs_dim"]), card["ppo"]
        arch = [int(w) for w in ppo["net_arch"]]
        activation = ACTIVATIONS[ppo.get("activation", "elu")]
        log_std_init = float(ppo.get("log_std_init", 0.0))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot rebuild the policy: missing or bad field {e}") from None
    low, high = get_robot(robot_for_env(env_id)).action_bounds()
    return ActorCriticPolicy(
        spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
        spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32),
        lr_schedule=lambda _: 0.0,
        net_arch=dict(pi=arch, vf=arch),
        activation_fn=activation,
        log_std_init=log_std_init,
    )


def read_zip_tensors(path: str | Path) -> dict[str, Any]:
    """Every ``.pth`` entry of an SB3 zip (``policy``, ``policy.optimizer``, ...), weights only."""
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".pth"):
                    out[name[: -len(".pth")]] = torch.load(io.BytesIO(archive.read(name)), map_location="cpu",
                                                           weights_only=True)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable stable-baselines3 zip: {e}") from None
    except Exception as e:  # noqa: BLE001 - torch's weights-only unpickler refusing an object
        raise CheckpointError(f"{path}: a tensor file inside holds more than tensors ({type(e).__name__}); "
                              "refused without unpickling it") from None
    if "policy" not in out:
        raise CheckpointError(f"{path}: no policy.pth inside; not a stable-baselines3 PPO checkpoint")
    return out


def read_zip_plain_data(path: str | Path) -> dict[str, Any]:
    """The ``data`` JSON of an SB3 zip without its pickled (``:serialized:``) entries."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, OSError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: no readable data entry: {e}") from None
    return {k: v for k, v in data.items() if not (isinstance(v, dict) and ":serialized:" in v)}


def load_policy_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The policy's state dict from a weights-only ``.pt`` file or from an SB3 zip's ``policy.pth``."""
    path = Path(path)
    if path.suffix == ".zip":
        return read_zip_tensors(path)["policy"]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - corrupt file, or an object the weights-only loader refuses
        raise CheckpointError(f"{path}: not a weights-only state dict ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return state


# The parameters that act: a shipped teacher needs no critic (half of the network's size).
ACTOR_PREFIXES = ("log_std", "mlp_extractor.policy_net.", "action_net.")


def _is_actor(key: str) -> bool:
    return key.startswith(ACTOR_PREFIXES)


def save_policy_state(policy, path: str | Path, actor_only: bool = True) -> Path:
    """Write the policy's tensors as a weights-only ``.pt`` file (loadable with ``weights_only=True``).

    ``actor_only``: keep only what :func:`load_actor_state` needs to act (no value network).
    """
    path = Path(path)
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items() if _is_actor(k) or not actor_only},
               path)
    return path


def load_actor_state(policy, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``policy``: every actor tensor must be there with its shape; the critic may be absent."""
    missing = [k for k in policy.state_dict() if _is_actor(k) and k not in state]
    unexpected = [k for k in state if k not in policy.state_dict()]
    if missing or unexpected:
        raise CheckpointError(f"{where}: weights do not match the architecture in the model card "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    try:
        policy.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a shape that differs from the card's architecture
        raise CheckpointError(f"{where}: weights do not match the architecture in the model card: "
                              f"{str(e).splitlines()[0]}") from None
