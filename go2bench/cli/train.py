"""``go2bench train``: the click command (cheap to import; torch and h5py load inside it)."""

from __future__ import annotations

import click

_DEFAULTS = None


def _opt(name: str, **kw):
    """An option spelled both ``--a_b`` and ``--a-b``."""
    dash = name.replace("_", "-")
    names = [f"--{name}"] + ([f"--{dash}"] if dash != name else [])
    return click.option(*names, name, **kw)


@click.command("train")
@_opt("data_dir", default="data", show_default=True, type=click.Path(file_okay=False),
      help="Root the dataset config paths are relative to.")
@_opt("dataset_config_paths", multiple=True, required=True,
      help="Dataset config YAML (path, or name of a config in go2bench/configs); repeat for several.")
@_opt("name", default="vintix", show_default=True, help="Run name: checkpoints go to OUT_DIR/NAME/.")
@_opt("out_dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@_opt("model", default="seed", show_default=True, help="Preset (tiny, seed, small, paper) or a model YAML file.")
@_opt("model_override", multiple=True, metavar="KEY=VALUE", help="Override a ModelConfig field; repeatable.")
@_opt("context_len", type=click.IntRange(min=1), default=2048, show_default=True)
@_opt("batch_size", type=click.IntRange(min=1), default=8, show_default=True,
      help="Sequences per process per micro-step (global batch = batch_size x world_size x grad_accum).")
@_opt("trajectory_sparsity", type=click.IntRange(min=1), default=128, show_default=True,
      help="Steps between window starts.")
@_opt("epochs", type=click.IntRange(min=1), default=100, show_default=True)
@_opt("save_every", type=click.IntRange(min=1), default=5, show_default=True, help="Epochs between checkpoints.")
@_opt("lr", type=float, default=3e-4, show_default=True)
@_opt("min_lr_ratio", type=float, default=0.1, show_default=True)
@_opt("weight_decay", type=float, default=0.1, show_default=True)
@_opt("warmup_steps", type=click.IntRange(min=1), default=None,
      help="Default: 5%% of the planned steps (at most 1000).")
@_opt("grad_clip", type=float, default=1.0, show_default=True)
@_opt("grad_accum", type=click.IntRange(min=1), default=1, show_default=True)
@_opt("compile", is_flag=True, help="torch.compile the transformer blocks.")
@_opt("device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (torchrun: LOCAL_RANK's GPU).")
@_opt("seed", type=int, default=0, show_default=True)
@_opt("num_workers", type=click.IntRange(min=0), default=2, show_default=True, help="DataLoader workers per process.")
@_opt("max_steps", type=click.IntRange(min=1), default=None, help="Stop after this many optimizer steps (in all); the warmup + cosine schedule is planned for them.")
@_opt("max_minutes", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after this wall time.")
@_opt("log_every", type=click.IntRange(min=1), default=10, show_default=True)
@_opt("resume", is_flag=True, help="Continue from the latest checkpoint in OUT_DIR/NAME.")
@_opt("no_progress_bar", is_flag=True)
def train_command(no_progress_bar, model_override, **kw) -> None:
    """Train a Vintix model multitask on learning-history datasets (torchrun for several GPUs)."""
    from go2bench.core.config import ConfigError
    from go2bench.vintix.config import TrainConfig, make_model_config, parse_overrides
    from go2bench.vintix.train import train

    try:
        overrides = parse_overrides(model_override)
        make_model_config(kw["model"], overrides)  # validate before loading data
        cfg = TrainConfig(model_overrides=overrides, progress_bar=not no_progress_bar,
                          **{**kw, "dataset_config_paths": list(kw["dataset_config_paths"])})
        summary = train(cfg)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if summary.get("is_main", True):
        click.echo(f"step {summary['step']} epoch {summary['epoch']}: loss {summary['final_loss']:.4f}, "
                   f"{summary['params']:,} params, {summary['wall_s']:.1f} s; wrote {summary['checkpoint']}")
