"""CLI of the collection stage: `go2bench collect` (an option per CollectConfig field) and `go2bench data ...`."""

from __future__ import annotations

from pathlib import Path

import click

from go2bench.cli.errors import one_line_errors
from go2bench.cli.export import export_minari_command
from go2bench.cli.options import dataclass_options
from go2bench.collect.config import SPLITS, CollectConfig
from go2bench.envs.families import FAMILIES
from go2bench.envs.registry import TASKS

HELP = {
    "env": "Env of the dataset (required without --config).",
    "num_histories": "Learning histories, stepped together in one batched scene.",
    "steps_per_history": "Steps per history (N of the noise schedule).",
    "p": "Shape of the noise schedule eps(n) = (1 - (n / ((1-f) N))^p)^(1/p).",
    "f": "Final fraction of each history at the noise floor.",
    "max_perf": "1 - the noise floor.",
    "teacher": "Teacher checkpoint; default: the env's shipped teacher (with --family: that family's privileged "
               "teacher, whose model card says privileged: true).",
    "seed": "Seed of the noise.",
    "group_size": "Steps per HDF5 group.",
    "max_episode_steps": "Time limit of an episode.",
    "obs_mode": "Observation mode of the teacher and the data (see `go2bench envs`).",
    "compression": "HDF5 compression (none, gzip, lzf).",
    "chunk_steps": "Steps simulated between two writes.",
    "family": "Task family: history i holds theta i mod (split size) of the family's suite for its whole length; "
              "the privileged teacher sees theta, the rows do not.",
    "split": "Suite split whose thetas the histories take (with --family).",
    "writer_processes": "Processes writing the HDF5 files beside the stepping process: 0 = a writer thread, auto = "
                        "0 on the CPU backend and one per 512 histories (at most CPUs - 2) on the GPU. The files "
                        "are the same either way; a resume may use another value.",
    "segments": "Envs stepping each history at once: env j starts a fresh episode at row j N/S and collects N/S rows "
                "with the history's noise; the rows are joined in order (an episode in progress at a join is cut). "
                "Turns the seed's 1M-step histories from 1M batch steps into N/S.",
}


class _Processes(click.ParamType):
    """``auto`` or an integer >= 0."""

    name = "auto|N"

    def convert(self, value, param, ctx):
        if value == "auto" or (isinstance(value, int) and value >= 0):
            return value
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = -1
        if n < 0:
            self.fail(f"{value!r} is neither 'auto' nor an integer >= 0", param, ctx)
        return n


@click.command("collect")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Dataset folder <...>/<name>; required without --config.")
@click.option("--config", "config", default=None,
              help="Dataset config YAML (path, or a name shipped in go2bench/configs such as go2_dataset_config); "
                   "collects every entry with a `collect` section into --data-dir/<path>; the options below "
                   "override its collect sections.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Root of the config's dataset paths.")
@dataclass_options(CollectConfig, help=HELP, defaults_from_config=False, hide_defaults=("env",), names={
    "p": ("--noise-power", "--p"), "f": ("--noise-floor-fraction", "--f"),
}, types_={
    "env": click.Choice(list(TASKS)), "teacher": click.Path(exists=True), "obs_mode": click.Choice(["noleak", "full"]),
    "compression": click.Choice(["none", "gzip", "lzf"]), "num_histories": click.IntRange(min=1),
    "steps_per_history": click.IntRange(min=1), "group_size": click.IntRange(min=1),
    "max_episode_steps": click.IntRange(min=1), "chunk_steps": click.IntRange(min=1),
    "family": click.Choice(sorted(FAMILIES)), "split": click.Choice(list(SPLITS)), "writer_processes": _Processes(),
    "segments": click.IntRange(min=1),
})
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--env-ids", default=None, help="Collect only these histories (indices), e.g. 0-4 (others: another run).")
@click.option("--resume", is_flag=True, help="Continue an interrupted collection in --out.")
@click.option("--no-progress-bar", is_flag=True)
@click.option("--trust-checkpoint", is_flag=True,
              help="Let stable-baselines3 unpickle a --teacher zip without a model card: runs any code inside it; "
                   "only for files you wrote.")
def collect_command(out, config, data_dir, backend, env_ids, resume, no_progress_bar, trust_checkpoint,
                    **fields) -> None:
    """Write noisy learning histories (teacher + fading noise) in the Vintix HDF5/JSON layout."""
    import dataclasses

    from go2bench.collect.collector import collect

    overrides = {k: v for k, v in fields.items() if v is not None}
    if overrides.get("compression") == "none":
        overrides["compression"] = None
    jobs = []  # (out dir, CollectConfig, group, reward_scale)
    with one_line_errors():
        if config:
            from go2bench.collect.config import dataset_collect_configs

            if out:
                raise click.UsageError("--out and --config exclude each other (the config gives each dataset's path)")
            for spec, collect_cfg in dataset_collect_configs(config, data_dir):
                cfg = dataclasses.replace(collect_cfg, **overrides)
                jobs.append((Path(data_dir) / spec.entry.path, cfg, spec.entry.group, spec.entry.reward_scale))
            if not jobs:
                raise click.UsageError(f"{config}: no entry has a `collect` section")
        else:
            if not fields["env"] or not out:
                raise click.UsageError("give --env and --out (or --config)")
            jobs.append((Path(out), CollectConfig(**overrides), None, 1.0))
    for out_dir, cfg, group, reward_scale in jobs:
        with one_line_errors():
            summary = collect(out_dir, cfg, env_ids=env_ids, backend=backend, resume=resume,
                              progress=not no_progress_bar, group_name=group, reward_scale=reward_scale,
                              trust_checkpoint=trust_checkpoint)
        rate = summary["steps_per_s"]
        click.echo(f"{out_dir}: {summary['status']} ({summary['complete_histories']}/{summary['num_histories']} "
                   f"histories, {summary['total_transitions']:,} transitions); this run wrote "
                   f"{summary['rows_written']:,} rows in {summary['wall_s']:.1f} s"
                   + (f" ({rate:,.0f} steps/s)" if rate else ""))


@click.group("data")
def data_group() -> None:
    """Validate, repair and export learning-history datasets (ours or the original workflow's)."""


data_group.add_command(export_minari_command)


@data_group.command("check")
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option("--config", "configs", multiple=True, help="Dataset config(s): check every dataset they name, and "
              "task_name collisions / reused groups across them.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings (the original's T+1 observation rows) as errors.")
def check_command(dirs, configs, data_dir, strict) -> None:
    """Exit non-zero if any dataset has a problem; one line per problem naming file and field."""
    from go2bench.histories.check import check_config, dataset_report

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
        with one_line_errors():
            changes = fix_dataset(d, task_name=task_name, dry_run=dry_run)
        for line in changes:
            click.echo(("would change " if dry_run else "changed ") + line)
        if not changes:
            click.echo(f"{d}: nothing to repair")
