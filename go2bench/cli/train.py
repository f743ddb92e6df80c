"""``go2bench train``: the click command, one option per field of ``TrainConfig`` (torch and h5py
load inside the command)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import click

from go2bench.cli.errors import TRACEBACK_VARIABLE, one_line_errors
from go2bench.cli.options import dataclass_options
from go2bench.vintix.config import TrainConfig

HELP = {
    "data_dir": "Root the dataset config paths are relative to.",
    "dataset_config_paths": "Dataset config YAML (path, or name of a config in go2bench/configs); repeat for several.",
    "name": "Run name: checkpoints go to OUT_DIR/NAME/.",
    "model": "Preset (tiny, seed, small, paper) or a model YAML file.",
    "batch_size": "Sequences per process per micro-step (global batch = batch_size x world_size x grad_accum).",
    "trajectory_sparsity": "Steps between window starts.",
    "context": "history: windows span episodes (in-context learning across episodes); episode: windows stay inside "
               "one episode (the no-context baseline; its policy forgets at every episode start).",
    "target": "action: the action the history executed (Algorithm Distillation); demonstrator_action: the "
              "teacher's clean action at that step (DPT-style; the histories must hold it).",
    "save_every": "Epochs between checkpoints.",
    "beta1": "AdamW beta1.",
    "beta2": "AdamW beta2.",
    "warmup_steps": "Default: 5% of the planned steps (at most 1000).",
    "device": "auto, cpu, cuda or cuda:N (torchrun: LOCAL_RANK's GPU).",
    "num_workers": "DataLoader workers per process.",
    "max_steps": "Stop after this many optimizer steps (in all); the warmup + cosine schedule is planned for them.",
    "max_minutes": "Stop after this wall time.",
    "log_every": "Optimizer steps between metrics lines.",
    "resume": "Continue from the latest checkpoint in OUT_DIR/NAME.",
}

# ranges TrainConfig does not check itself
RANGES = {"warmup_steps": click.IntRange(min=1), "max_steps": click.IntRange(min=1),
          "max_minutes": click.FloatRange(min=0, min_open=True), "log_every": click.IntRange(min=1)}


def _both_spellings(name: str) -> tuple[str, ...]:
    """``--a_b`` (the seed's spelling) and ``--a-b``."""
    dash = name.replace("_", "-")
    return (f"--{name}",) + ((f"--{dash}",) if dash != name else ())


COMPILE_CHOICES = {"auto": "auto", "true": True, "false": False}


def train_config(model_override: tuple[str, ...] = (), no_progress_bar: bool = False, compile: str = "auto",
                 **fields: Any) -> TrainConfig:
    """The TrainConfig of the command's parameters (ConfigError/ValueError on a bad value)."""
    from go2bench.vintix.config import make_model_config, parse_overrides

    fields["compile"] = COMPILE_CHOICES[compile]
    overrides = parse_overrides(model_override)
    make_model_config(fields["model"], overrides)  # validate before loading data
    fields["dataset_config_paths"] = list(fields["dataset_config_paths"])
    return TrainConfig(model_overrides=overrides, progress_bar=not no_progress_bar, **fields)


@contextlib.contextmanager
def _data_problems_one_per_line():
    """Bad data: every problem on a line of its own, then one line saying that training did not start."""
    from go2bench.histories.check import DataProblems

    try:
        yield
    except DataProblems as e:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        for line in e.problems:
            click.echo(f"error: {' '.join(line.split())}", err=True)
        raise click.ClickException(f"refusing to train: {len(e.problems)} problem(s) in the data (listed above)") \
            from None


@click.command("train")
@dataclass_options(TrainConfig, help=HELP, skip=("model_overrides", "progress_bar", "compile"),
                   required=("dataset_config_paths",), spell=_both_spellings, types_=RANGES)
@click.option("--model_override", "--model-override", "model_override", multiple=True, metavar="KEY=VALUE",
              help="Override a ModelConfig field; repeatable.")
@click.option("--no_progress_bar", "--no-progress-bar", "no_progress_bar", is_flag=True)
@click.option("--compile", "compile", type=click.Choice(list(COMPILE_CHOICES)), default="auto", show_default=True,
              is_flag=False, flag_value="true",
              help="torch.compile the transformer blocks: auto = on a CUDA device (with Triton), off elsewhere; "
                   "--compile alone = true.")
def train_command(**params) -> None:
    """Train a Vintix model multitask on learning-history datasets (torchrun for several GPUs)."""
    from go2bench.vintix.train import train

    with one_line_errors(), _data_problems_one_per_line():
        summary = train(train_config(**params))
    if summary.get("is_main", True):
        click.echo(f"step {summary['step']} epoch {summary['epoch']}: loss {summary['final_loss'] or float('nan'):.4f}, "
                   f"{summary['params']:,} params, {summary['wall_s']:.1f} s; wrote {summary['checkpoint']}")
