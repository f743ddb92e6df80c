"""CLI of the collection stage: `go2bench collect` and `go2bench data check|fix` (cheap to import)."""

from __future__ import annotations

from pathlib import Path

import click

from go2bench.envs import ENV_ROBOTS


@click.command("collect")
@click.option("--env", "env_id", type=click.Choice(list(ENV_ROBOTS)), default=None,
              help="Env of the dataset (required without --config).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Dataset folder <...>/<name>; required without --config.")
@click.option("--config", "config", default=None,
              help="Dataset config YAML (path, or a name shipped in go2bench/configs such as go2_dataset_config); "
                   "collects every entry with a `collect` section into --data-dir/<path>.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Root of the config's dataset paths.")
@click.option("--num-histories", type=click.IntRange(min=1), default=None, help="[10]")
@click.option("--steps-per-history", type=click.IntRange(min=1), default=None, help="N [1000000]")
@click.option("--p", "p", type=float, default=None, help="Schedule shape [0.6]")
@click.option("--f", "f", type=float, default=None, help="Noise-free final fraction [0.05]")
@click.option("--max-perf", type=float, default=None, help="1 - noise floor [1.0]")
@click.option("--teacher", type=click.Path(exists=True), default=None, help="Teacher checkpoint [the shipped one]")
@click.option("--seed", type=int, default=None, help="[0]")
@click.option("--group-size", type=click.IntRange(min=1), default=None, help="Steps per HDF5 group [10000]")
@click.option("--max-episode-steps", type=click.IntRange(min=1), default=None, help="[1000]")
@click.option("--compression", type=click.Choice(["none", "gzip", "lzf"]), default=None, help="[none]")
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--env-ids", default=None, help="Collect only these histories, e.g. 0-4 (others: another run).")
@click.option("--resume", is_flag=True, help="Continue an interrupted collection in --out.")
@click.option("--no-progress-bar", is_flag=True)
def collect_command(env_id, out, config, data_dir, num_histories, steps_per_history, p, f, max_perf, teacher, seed,
                    group_size, max_episode_steps, compression, backend, env_ids, resume, no_progress_bar) -> None:
    """Write noisy learning histories (teacher + fading noise) in the Vintix HDF5/JSON layout."""
    import dataclasses

    from go2bench.collect.collector import CollectConfig, collect
    from go2bench.core.config import ConfigError

    overrides = {k: v for k, v in dict(
        env=env_id, num_histories=num_histories, steps_per_history=steps_per_history, p=p, f=f, max_perf=max_perf,
        teacher=teacher, seed=seed, group_size=group_size, max_episode_steps=max_episode_steps,
    ).items() if v is not None}
    if compression is not None:
        overrides["compression"] = None if compression == "none" else compression
    jobs = []  # (out dir, CollectConfig, group, reward_scale)
    try:
        if config:
            from go2bench.histories.dataset_config import load_dataset_config

            if out:
                raise click.UsageError("--out and --config exclude each other (the config gives each dataset's path)")
            for name, entry in load_dataset_config(config).items():
                if entry.collect is None:
                    continue
                cfg = dataclasses.replace(entry.collect, **overrides)
                jobs.append((Path(data_dir) / entry.path, cfg, entry.group, entry.reward_scale))
            if not jobs:
                raise click.UsageError(f"{config}: no entry has a `collect` section")
        else:
            if not env_id or not out:
                raise click.UsageError("give --env and --out (or --config)")
            jobs.append((Path(out), CollectConfig(**overrides), None, 1.0))
    except (ConfigError, ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from None
    for out_dir, cfg, group, reward_scale in jobs:
        try:
            summary = collect(out_dir, cfg, env_ids=env_ids, backend=backend, resume=resume,
                              progress=not no_progress_bar, group_name=group, reward_scale=reward_scale)
        except (FileExistsError, ValueError) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # HistoryWriteError: disk full, permissions
            raise click.ClickException(f"collection stopped: {e}") from None
        rate = summary["steps_per_s"]
        click.echo(f"{out_dir}: {summary['status']} ({summary['complete_histories']}/{summary['num_histories']} "
                   f"histories, {summary['total_transitions']:,} transitions); this run wrote "
                   f"{summary['rows_written']:,} rows in {summary['wall_s']:.1f} s"
                   + (f" ({rate:,.0f} steps/s)" if rate else ""))


@click.group("data")
def data_group() -> None:
    """Validate and repair learning-history datasets (ours or the original workflow's)."""


@data_group.command("check")
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option("--config", "configs", multiple=True, help="Dataset config(s): check every dataset they name, and "
              "task_name collisions / reused groups across them.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings (the original's T+1 observation rows) as errors.")
def check_command(dirs, configs, data_dir, strict) -> None:
    """Exit non-zero if any dataset has a problem; one line per problem naming file and field."""
    from go2bench.histories.layout import dataset_report
    from go2bench.histories.repair import check_config

    if not dirs and not configs:
        raise click.UsageError("give dataset folders and/or --config")
    problems, warnings = [], []
    for d in dirs:
        p, w = dataset_report(d)
        problems += p
        warnings += w
    if configs:
        p, w = check_config(configs, data_dir)
        problems += p
        warnings += w
    for line in problems:
        click.echo(f"error: {line}")
    for line in warnings:
        click.echo(f"warning: {line}")
    n = len(problems) + (len(warnings) if strict else 0)
    if n:
        raise SystemExit(1)
    click.echo(f"ok: {len(dirs)} folder(s)" + (f" and {len(configs)} config(s)" if configs else ""))


@data_group.command("fix")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--task-name", default=None, help="Set task_name: a robot (go2, mini_cheetah), an env id or a name.")
@click.option("--dry-run", is_flag=True, help="Print the changes without making them.")
def fix_command(dirs, task_name, dry_run) -> None:
    """Repair metadata (missing dataset/per-history JSON, task_name); prints every change, deletes nothing."""
    from go2bench.histories.repair import fix_dataset

    for d in dirs:
        try:
            changes = fix_dataset(d, task_name=task_name, dry_run=dry_run)
        except (ValueError, FileNotFoundError) as e:
            raise click.ClickException(str(e)) from None
        for line in changes:
            click.echo(("would change " if dry_run else "changed ") + line)
        if not changes:
            click.echo(f"{d}: nothing to repair")
