"""``go2bench pipeline``: a preset PipelineConfig, changed with ``--set section.field=value``, run end to end."""

from __future__ import annotations

import click

from go2bench.cli.errors import one_line_errors
from go2bench.pipeline import PRESETS, STAGES


def _stages(ctx, param, text: str) -> tuple[str, ...]:
    stages = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise click.BadParameter(f"{text!r}: expected a comma-separated subset of {','.join(STAGES)}")
    return stages


@click.command("pipeline")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="cpu", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/pipeline_<preset>); an existing one is resumed.")
@click.option("--stages", default=",".join(STAGES), show_default=True, callback=_stages,
              help="Comma-separated subset of the stages, in order.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change a setting of the preset, e.g. --set train.max_steps=200 --set eval.episodes=5 --set gpus=2 "
                   "(values are YAML; --print-config lists every key).")
@click.option("--print-config", is_flag=True, help="Print the resulting config as YAML and exit.")
def pipeline_command(preset, out, stages, overrides, print_config) -> None:
    """End to end: collect every robot's histories, train Vintix, evaluate every agent, print the leaderboard."""
    from go2bench.pipeline import pipeline_config, run_pipeline

    with one_line_errors():
        cfg = pipeline_config(preset, overrides)
    if print_config:
        import yaml

        from go2bench.core.config import to_dict
        from go2bench.pipeline.config import PIPELINE_FIELDS

        data = to_dict(cfg)
        for key in PIPELINE_FIELDS:  # not settable: the pipeline fills them in
            section, name = key.split(".")
            data[section].pop(name)
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
        return
    with one_line_errors():
        run_pipeline(cfg, out or f"runs/pipeline_{preset}", stages)
