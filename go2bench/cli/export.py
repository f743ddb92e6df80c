"""CLI of `go2bench data export-minari`: a learning-history dataset as a Minari dataset.

The conversion is :mod:`go2bench.collect.minari_export`; this module adds the reference scores
the leaderboard normalises with (``eval`` is above ``collect``, so they are looked up here):
the shipped teacher's model card for the default task, the family's privileged card's per-theta
returns for a task family.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from go2bench.cli.errors import one_line_errors


def _collection_steps(meta: dict[str, Any]) -> int | None:
    c = meta.get("collection")
    return c.get("max_episode_steps") if isinstance(c, dict) else None


def reference_scores(dataset_dir) -> dict[str, Any]:
    """``ref_min_score``, ``ref_max_score``, ``ref_source`` and (family) ``task_refs`` of a dataset; Nones if unknown.

    Default task: the random and expert returns of the shipped teacher's model card (what
    ``go2bench eval`` and the leaderboard use).  Task family: the privileged card's per-theta
    random and teacher returns (what the family leaderboard uses), per episode by its theta and,
    for the dataset, their means over its histories.  Scores measured in episodes of another
    length than the dataset's are not used.
    """
    from go2bench.envs.registry import TASKS, task_spec
    from go2bench.histories.names import history_index, history_paths
    from go2bench.histories.reader import read_metadata

    none: dict[str, Any] = {"ref_min_score": None, "ref_max_score": None, "ref_source": None, "task_refs": None}
    try:
        meta = read_metadata(dataset_dir)
    except (OSError, ValueError):
        return none  # the export reports what is wrong with the dataset
    env_id, family, steps = meta.get("env_id"), meta.get("family"), _collection_steps(meta)
    if env_id not in TASKS:
        return {**none, "ref_source": f"no reference scores: env {env_id!r} is not a go2bench task"}
    if not family:
        from go2bench.eval.reference import shipped_reference_scores

        from go2bench.agents.teacher import read_model_card

        refs = shipped_reference_scores(env_id)
        card = read_model_card(task_spec(env_id).zoo_dir) or {}
        if card.get("max_episode_steps") not in (None, steps) and steps is not None:
            return {**none, "ref_source": f"no reference scores: {refs.source} measured {card['max_episode_steps']}-"
                                          f"step episodes, the dataset has {steps}-step ones"}
        return {**none, "ref_min_score": refs.random_score, "ref_max_score": refs.expert_score,
                "ref_source": f"{refs.source}: {refs.note}" if refs.source else None}
    from go2bench.eval.family_reference import card_returns

    rel = f"{family}/privileged/model_card.json"
    path = task_spec(env_id).zoo_dir / rel
    if not path.is_file():
        return {**none, "ref_source": f"no reference scores: no {rel} for {env_id}"}
    card = json.loads(path.read_text())
    measured = (card.get("per_task_eval") or {}).get("max_episode_steps", card.get("max_episode_steps"))
    if steps is not None and measured not in (None, steps):
        return {**none, "ref_source": f"no reference scores: go2bench/zoo/{env_id}/{rel} measured {measured}-step "
                                      f"episodes, the dataset has {steps}-step ones"}
    returns = card_returns(card, "privileged")
    rnd, exp = returns.get("random", {}), returns.get("privileged", {})
    task_refs = {t: (rnd[t], exp[t]) for t in rnd.keys() & exp.keys()}
    tasks = meta.get("tasks") or {}
    ids = [tasks.get(str(history_index(p)), {}).get("task_id") for p in history_paths(dataset_dir)]
    source = f"go2bench/zoo/{env_id}/{rel}: per-theta mean returns"
    if not ids or not all(t in task_refs for t in ids):
        return {**none, "task_refs": task_refs, "ref_source": f"{source} (missing for some of the dataset's thetas: "
                                                               "per episode only)"}
    lo, hi = (math.fsum(task_refs[t][j] for t in ids) / len(ids) for j in (0, 1))
    return {"ref_min_score": lo, "ref_max_score": hi, "task_refs": task_refs,
            "ref_source": f"{source}; dataset scores: their means over the {len(ids)} histories' thetas"}


@click.command("export-minari")
@click.argument("dataset", type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="New (or empty) folder: a Minari datasets root holding the export (MINARI_DATASETS_PATH=OUT).")
@click.option("--dataset-id", default=None,
              help="Minari id, (namespace/)name-vN; default go2bench/<robot>-<family or walk>/<folder name>-v0.")
@click.option("--ref-min-score", type=float, default=None, help="Random agent's return (default: from the zoo).")
@click.option("--ref-max-score", type=float, default=None, help="Expert's return (default: from the zoo).")
@click.option("--author", default=None, help="Author recorded in the Minari metadata.")
def export_minari_command(dataset, out, dataset_id, ref_min_score, ref_max_score, author) -> None:
    """Write a learning-history dataset as a Minari dataset in --out, one Minari episode per history episode.

    The observation after an episode's last action is not in the history (the env was reset at
    once), so that last step is dropped: n rows become n - 1 steps with their n observations,
    ending truncated; the episode metadata keeps what the dropped step was.
    """
    with one_line_errors():
        from go2bench.collect.minari_export import export_minari, import_minari

        import_minari()  # before anything is read
        if (ref_min_score is None) != (ref_max_score is None):
            raise click.UsageError("give both --ref-min-score and --ref-max-score, or neither")
        refs = reference_scores(dataset)
        if ref_min_score is not None:
            refs.update(ref_min_score=ref_min_score, ref_max_score=ref_max_score, ref_source="given by the caller")
        s = export_minari(dataset, out, dataset_id=dataset_id, author=author, **refs,
                          on_history=lambda i: click.echo(f"history {i} exported", err=True))
    for line in s["warnings"]:
        click.echo(f"warning: {line}")
    ref = (f"ref scores {s['ref_min_score']:.4g} / {s['ref_max_score']:.4g}" if s["ref_min_score"] is not None
           else "no ref scores")
    click.echo(f"{out}: Minari dataset {s['dataset_id']}: {s['episodes']:,} episodes, {s['steps']:,} steps from "
               f"{s['histories']} histories ({s['source_transitions']:,} rows; {s['dropped_final_steps']:,} final "
               f"steps without a next observation dropped, {s['skipped_one_row_episodes']:,} one-row episodes skipped); "
               f"{ref}; {s['wall_s']:.1f} s")
    click.echo(f"load it with MINARI_DATASETS_PATH={Path(out)} and minari.load_dataset({s['dataset_id']!r})")
