"""``go2bench data robot-split``: the training set of one fold of a leave-one-robot-out split.

Lists the datasets of the fold's training robots (one per robot, from the given dataset configs),
pools them into one dataset folder and writes the Vintix dataset config that trains them as the
split's one task group; prints the train and eval commands of the fold. Datasets of a task family (e.g. a
pipeline run's ``family/dataset_config_velocity.yaml``) make it the fold's family training set, named after the
family (:meth:`go2bench.envs.robot_split.Fold.for_family`), evaluated with ``go2bench eval --family``.
"""

from __future__ import annotations

import shlex

import click

from go2bench.cli.errors import one_line_errors
from go2bench.envs.robot_split import CURRENT_ROBOT_SPLIT, ROBOT_SPLIT_SPECS


@click.command("robot-split")
@click.option("--split", type=click.Choice(sorted(ROBOT_SPLIT_SPECS)), default=CURRENT_ROBOT_SPLIT, show_default=True)
@click.option("--held-out", required=True, help="The held-out robot (e.g. go2) or its env id.")
@click.option("--config", "configs", multiple=True, required=True,
              help="Dataset config(s) with one dataset per robot, e.g. a pipeline run's dataset_config.yaml, or "
                   "its family/dataset_config_<family>.yaml for a task family's fold (train thetas only); repeat "
                   "for several.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Root of the configs' dataset paths; the pooled folder goes to DATA_DIR/<split>/.")
@click.option("--train-robots", default=None,
              help="Comma-separated subset of the fold's training robots [default: all of them].")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The dataset config to write [default: DATA_DIR/<split>/<split>_heldout_<robot>[_<family>].yaml].")
@click.option("--dry-run", is_flag=True, help="Only list the datasets; write nothing.")
def robot_split_command(split, held_out, configs, data_dir, train_robots, out, dry_run) -> None:
    """Pool the training robots' histories of one fold and write its Vintix dataset config."""
    from go2bench.envs.robot_split import load_robot_split
    from go2bench.histories.reader import history_files
    from go2bench.histories.robot_split_data import fold_training_set, write_fold_config

    robots = None if train_robots is None else [r.strip() for r in train_robots.split(",") if r.strip()]
    with one_line_errors():
        ts = fold_training_set(load_robot_split(split).fold(held_out), configs, data_dir, robots)
        fold = ts.fold  # a family fold when the datasets hold a task family's histories
        what = f"{fold.family} family ({ts.family.suite}, train thetas) " if fold.family else ""
        click.echo(f"{split} fold holding out {fold.held_out} ({fold.env_id}): group {fold.group!r}, "
                   f"{len(ts.sources)} {what}training dataset(s)"
                   + (" (a subset of the fold's robots)" if ts.partial else ""))
        for robot, spec in ts.sources:
            click.echo(f"  {robot:<13} {spec.name:<20} {spec.dir}  {len(history_files(spec.dir))} history file(s)")
        for robot, spec in ts.excluded:
            why = "the held-out robot" if robot == fold.held_out else "not a training robot here"
            click.echo(f"  left out: {spec.name} ({robot or 'robot unknown'}: {why})")
        if dry_run:
            return
        path = write_fold_config(ts, out)
    name = f"{split}-{fold.held_out}" + (f"-{fold.family}" if fold.family else "")
    family = ["--family", fold.family] if fold.family else []
    click.echo(f"wrote {ts.data_dir / ts.pooled_path} (pooled links) and {path}")
    click.echo("train: " + shlex.join(["go2bench", "train", "--data_dir", str(data_dir), "--dataset_config_paths",
                                      str(path), "--name", name]))
    click.echo("eval:  " + shlex.join(["go2bench", "eval", "--agent", f"vintix:runs/{name}/final.pt", *family,
                                      "--robots-split", split, "--held-out", fold.held_out,
                                      "--out", f"runs/{name}/eval.json"]))
