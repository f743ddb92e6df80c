"""Reference scores for the normalised score: the one place they are looked up.

``random_score`` and ``expert_score`` come from the shipped teacher's model card of a task
(``<zoo dir of the task>/model_card.json``, found through :mod:`go2bench.envs.registry`), where
the PPO trainer wrote the mean returns of its deterministic policy and of a random agent over full
episodes. A caller may give either score instead (``go2bench eval --random-score/--expert-score``,
or the pipeline's scores measured in its own shorter episodes).
"""

from __future__ import annotations

from dataclasses import dataclass

from go2bench.envs.registry import task_spec

__all__ = ["ReferenceScores", "shipped_reference_scores", "reference_scores", "given_reference_scores"]

CALLER_NOTE = "expert_score/random_score given by the caller"
MEASURED_NOTE = "expert_score/random_score are mean returns measured in the same protocol"


@dataclass(frozen=True)
class ReferenceScores:
    """The two reference returns, where they come from (a file or "arguments") and what they mean."""

    random_score: float | None
    expert_score: float | None
    source: str | None
    note: str


def shipped_reference_scores(env_id: str) -> ReferenceScores:
    """The scores in the shipped teacher's model card of ``env_id`` (Nones when there is no card)."""
    from go2bench.agents.teacher import CARD_FILE, read_model_card  # torch: only when a card is read

    spec = task_spec(env_id)
    card = read_model_card(spec.zoo_dir) or {}
    if not card:
        return ReferenceScores(None, None, None, CALLER_NOTE)
    steps = card.get("max_episode_steps")
    length = f"full {steps}-step episodes" if steps else "full episodes"
    return ReferenceScores(
        card.get("random_score"), card.get("expert_score"),
        f"go2bench/zoo/{spec.zoo_dir.name}/{CARD_FILE}",
        f"expert_score/random_score are mean returns of {length}",
    )


def given_reference_scores(random_score: float, expert_score: float, note: str = CALLER_NOTE) -> ReferenceScores:
    """Scores given by the caller, e.g. measured by the pipeline in its own episodes (``MEASURED_NOTE``)."""
    return ReferenceScores(random_score, expert_score, "arguments", note)


def reference_scores(env_id: str, random_score: float | None = None,
                     expert_score: float | None = None) -> ReferenceScores:
    """The scores to normalise ``env_id``'s returns with: each argument given, else the shipped card's."""
    if random_score is not None and expert_score is not None:
        return given_reference_scores(random_score, expert_score)
    shipped = shipped_reference_scores(env_id)
    if random_score is None and expert_score is None:
        return shipped
    return ReferenceScores(
        random_score if random_score is not None else shipped.random_score,
        expert_score if expert_score is not None else shipped.expert_score,
        f"arguments + {shipped.source}", shipped.note,
    )
