"""What a collection in a task family adds: the teacher that sees theta, and one theta per history.

A family dataset is written by the family's *privileged* teacher (it observes the agent's
observation plus theta normalised to [-1, 1], appended last), but its rows hold the *agent's*
observation, the same layout without the theta block: an in-context learner trained on them can
only infer theta from rewards and dynamics.  History i takes theta ``i mod len(split)`` of the
family's suite: a pure function of the index, so ``--env-ids`` subsets and resumed runs give
every history the same theta, and the dataset JSON lists them all before anything is simulated.
The theta is held for the whole history (every episode), never resampled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from go2bench.collect.config import CollectConfig
from go2bench.envs.registry import ZOO_DIR
from go2bench.envs.robots import RobotDescription

__all__ = ["history_task_specs", "planned_tasks", "load_collect_teacher", "teacher_record", "layout_record"]


def _suite(cfg: CollectConfig, robot: RobotDescription):
    from go2bench.envs.suites import load_suite

    return load_suite(cfg.family, robot.name)


def history_task_specs(cfg: CollectConfig, robot: RobotDescription, ids: list[int]) -> list[tuple[str, int]]:
    """The envs' task spec ``(split, index)`` of each history in ``ids``: index = history mod split size."""
    n = len(_suite(cfg, robot).split(cfg.split))
    return [(cfg.split, i % n) for i in ids]


def planned_tasks(cfg: CollectConfig, robot: RobotDescription) -> dict[str, dict[str, Any]]:
    """``{history index: {"task": {name: value}, "task_id": suite id}}`` for every history of the dataset."""
    tasks = _suite(cfg, robot).split(cfg.split)
    return {str(i): {"task": tasks[i % len(tasks)].theta, "task_id": tasks[i % len(tasks)].id}
            for i in range(cfg.num_histories)}


def layout_record(cfg: CollectConfig, robot: RobotDescription) -> dict[str, Any]:
    """The family's theta layout for the dataset JSON: what each ``task`` field means."""
    from go2bench.envs.families import theta_layout
    from go2bench.envs.suites import CURRENT_SUITE

    lay = theta_layout(cfg.family, robot)
    return {"family": cfg.family, "suite": CURRENT_SUITE.get(cfg.family), "split": cfg.split,
            "names": list(lay.names), "low": list(lay.low), "high": list(lay.high), "units": list(lay.units)}


def load_collect_teacher(cfg: CollectConfig, device: str, trust_checkpoint: bool):
    """The collection's teacher: ``cfg.teacher`` or the shipped one; privileged for a family, blind otherwise.

    A family needs a teacher whose model card says ``privileged: true`` and names the family
    (``family`` or a ``families`` list) with its theta layout; the default task refuses a
    privileged one (its input has a theta block that the default task does not fill).  The shipped
    one is ``go2bench/zoo/<EnvId>/<family>/privileged/``.
    """
    from go2bench.agents.teacher import load_teacher

    env_id = cfg.env_id
    if cfg.family is None or cfg.teacher:
        teacher = load_teacher(cfg.teacher or env_id, device=device, trust_checkpoint=trust_checkpoint)
    else:
        teacher = load_teacher(env_id, device=device, trust_checkpoint=trust_checkpoint, family=cfg.family,
                               privileged=True)
    card = teacher.model_card or {}
    where = teacher.source or "the teacher"
    if card.get("env_id") not in (None, env_id):
        raise ValueError(f"{where} was trained on {card['env_id']}, not {env_id}")
    privileged = bool(card.get("privileged", False))
    if cfg.family is None and privileged:
        raise ValueError(f"{where} is a privileged teacher (it observes theta of the {card.get('family')} family): "
                         "collect with --family, or give a blind teacher")
    if cfg.family is not None:
        families = card.get("families") or [card.get("family")]
        if not privileged or cfg.family not in families:
            raise ValueError(f"{where}: a {cfg.family} collection needs that family's privileged teacher (model card "
                             f"with privileged: true and family: {cfg.family}); its card says privileged: "
                             f"{card.get('privileged')}, family: {card.get('family')}")
        from go2bench.envs.families import theta_layout
        from go2bench.envs.registry import task_spec

        names = (card.get("theta_layout") or {}).get("names")
        want = list(theta_layout(cfg.family, task_spec(env_id).robot).names)
        if names is not None and list(names) != want:
            raise ValueError(f"{where}: its theta block is {names}, the {cfg.family} family's is {want}")
    return teacher


def teacher_record(teacher, cfg: CollectConfig) -> dict[str, Any]:
    """The dataset JSON's ``teacher`` entry: where it came from, its hash and scores, what it observes."""
    from go2bench.core.provenance import file_sha256

    path = Path(teacher.source)
    card = teacher.model_card or {}
    try:  # a shipped teacher by its place in the package ("zoo/<env>/..."), any other by its path
        source = str(path.resolve().relative_to(ZOO_DIR.parent.resolve())) if not cfg.teacher else str(path)
    except ValueError:
        source = str(path)
    return {
        "source": source,
        "sha256": file_sha256(path),
        "expert_score": card.get("expert_score"),
        "random_score": card.get("random_score"),
        "obs_mode": card.get("obs_mode"),
        "privileged": bool(card.get("privileged", False)),
        "family": card.get("family"),
    }
