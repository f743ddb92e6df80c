"""Smoke test run by tests/test_packaging.py inside a fresh venv holding the installed wheel.

Loads every kind of package data through go2bench's own loaders, from the installed package only
(the caller runs it outside the repository), and prints a JSON summary for the test to compare with
the repository. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

import go2bench
from go2bench.agents.teacher import POLICY_FILE, load_teacher
from go2bench.agents.vintix_agent import DEFAULT_CHECKPOINT
from go2bench.envs.families import FAMILIES
from go2bench.envs.registry import TASKS
from go2bench.envs.robots import ROBOTS
from go2bench.envs.suites import SUITE_SPECS, load_suite
from go2bench.histories.dataset_config import load_dataset_config, resolve_config_path, shipped_configs
from go2bench.vintix.inference import VintixPolicy

PKG = Path(go2bench.__file__).resolve().parent


def inside_package(path: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(PKG)


def suites() -> dict[str, int]:
    """Tasks per suite file, summed over the robots it covers (every robot for robot-agnostic families)."""
    from go2bench.envs.robot_split import ROBOT_SPLIT_SPECS, load_robot_split

    counts = {}
    for path in sorted((PKG / "suites").glob("*.yaml")):
        if path.stem in ROBOT_SPLIT_SPECS:  # a leave-one-robot-out split: one fold per robot
            counts[path.name] = len(load_robot_split(path.stem).folds)
            continue
        family = SUITE_SPECS[path.stem].family
        counts[path.name] = 0
        for robot in ROBOTS:
            if FAMILIES[family].robot_specific or robot == next(iter(ROBOTS)):
                suite = load_suite(family, robot, name=path.stem)
                counts[path.name] += len(suite.train) + len(suite.test)
    return counts


def teachers() -> list[str]:
    """Every zoo teacher: its weights read weights-only, then rebuilt from its card and run on zeros."""
    loaded = []
    for card in sorted((PKG / "zoo").rglob("model_card.json")):
        policy = card.parent / POLICY_FILE
        if (card.parent / "vintix.pt").exists():  # a Vintix (default task or a family's): vintix() below
            continue
        state = torch.load(policy, map_location="cpu", weights_only=True)
        assert state and all(torch.is_tensor(v) for v in state.values()), policy
        teacher = load_teacher(card.parent)
        assert inside_package(teacher.checkpoint), teacher.checkpoint
        actions = teacher.act(np.zeros((2, teacher.obs_dim), np.float32))
        assert actions.shape == (2, 12) and np.isfinite(actions).all(), card
        loaded.append(str(card.parent.relative_to(PKG / "zoo")))
    return loaded


def vintix() -> str:
    assert inside_package(DEFAULT_CHECKPOINT), DEFAULT_CHECKPOINT
    card = json.loads((DEFAULT_CHECKPOINT.parent / "model_card.json").read_text())
    assert isinstance(card, dict) and card, "empty vintix model card"
    policy = VintixPolicy.load(str(DEFAULT_CHECKPOINT))
    for path in sorted((PKG / "zoo").glob("*/*/vintix*/vintix.pt")):  # the family-trained models
        env_id = path.parts[-4]
        assert VintixPolicy.load(str(path)).group_for_env(env_id), path
    return policy.group_for_env(next(iter(TASKS)))


def robot_assets() -> list[str]:
    """URDFs shipped in the package exist there and name every joint the robot description uses."""
    shipped = []
    for robot in ROBOTS.values():
        if not Path(robot.urdf).is_absolute():
            continue  # a genesis-world asset
        assert inside_package(robot.urdf), robot.urdf
        joints = {j.get("name") for j in ET.parse(robot.urdf).getroot().iter("joint")}
        missing = set(robot.joint_names) - joints
        assert not missing, f"{robot.urdf}: no joints {sorted(missing)}"
        shipped.append(robot.name)
    return shipped


def configs() -> dict[str, int]:
    out = {}
    for name in shipped_configs():
        assert inside_package(resolve_config_path(name)), name
        out[name] = len(load_dataset_config(name))
    return out


if __name__ == "__main__":
    summary = {"package": str(PKG), "python": sys.executable, "suites": suites(), "teachers": teachers(),
               "vintix_group": vintix(), "robot_assets": robot_assets(), "configs": configs()}
    print(json.dumps(summary))
