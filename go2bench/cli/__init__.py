"""The ``go2bench`` command line: one click group, one module per stage.

``envs``/``rollout`` (cli.envs), ``teach`` (cli.teach), ``collect`` and ``data check|fix`` (cli.collect;
``data export-minari``: cli.export; ``data robot-split``: cli.robot_split), ``train`` (cli.train;
``cli.train_main`` under torchrun), ``eval`` and ``leaderboard`` (cli.eval), ``video`` (cli.video), ``pipeline``
(cli.pipeline), ``export`` (cli.export_vintix). Heavy imports happen inside the commands.
"""

from __future__ import annotations

import os

import click

import go2bench
from go2bench.cli.errors import TRACEBACK_VARIABLE
from go2bench.cli.collect import collect_command, data_group
from go2bench.cli.envs import envs_command, rollout_command
from go2bench.cli.eval import eval_command, leaderboard_command
from go2bench.cli.export_vintix import export_command
from go2bench.cli.pipeline import pipeline_command
from go2bench.cli.robot_split import robot_split_command
from go2bench.cli.teach import teach_command
from go2bench.cli.train import train_command
from go2bench.cli.video import video_command

__all__ = ["main"]


@click.group()
@click.version_option(go2bench.__version__, prog_name="go2bench")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error instead of one line.")
def main(debug: bool) -> None:
    """go2bench: in-context RL benchmark on Genesis-simulated quadrupeds."""
    if debug:
        os.environ[TRACEBACK_VARIABLE] = "1"


for command in (envs_command, rollout_command, teach_command, collect_command, data_group, train_command,
                eval_command, leaderboard_command, video_command, pipeline_command, export_command):
    main.add_command(command)
data_group.add_command(robot_split_command)
