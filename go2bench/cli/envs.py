"""``go2bench envs`` (the registered tasks and their spaces) and ``go2bench rollout`` (short batched runs)."""

from __future__ import annotations

import json
import time

import click

import go2bench
from go2bench.cli.errors import one_line_errors
from go2bench.core.provenance import check_output_path
from go2bench.envs.registry import TASKS


@click.command("envs")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default="noleak", show_default=True)
def envs_command(obs_mode: str) -> None:
    """List the registered environments, their spaces and the task families (builds nothing)."""
    from go2bench.envs import spaces as S
    from go2bench.envs.families import FAMILIES
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import make_walk_config

    cfg = make_walk_config(obs_mode=obs_mode)
    for env_id, spec in TASKS.items():
        rd = get_robot(spec.robot)
        click.echo(f"{env_id}")
        click.echo(f"  robot:             {rd.name} ({rd.urdf})")
        click.echo(f"  observation_space: {S.observation_space(S.observation_dim(rd, obs_mode))}  "
                   f"[obs_mode={obs_mode}]")
        click.echo(f"  action_space:      {S.action_space(rd)}")
        click.echo(f"  max_episode_steps: {cfg.max_episode_steps} (dt {cfg.dt} s)")
    click.echo("task families (family=...; privileged=True appends the normalised theta to the observation):")
    for fam in FAMILIES.values():
        click.echo(f"  {fam.name:<10} theta {len(fam.fields):>2}: {fam.description}")


@click.command("rollout")
@click.option("--env", "env_ids", multiple=True, default=tuple(TASKS), show_default=True,
              help="Env id(s) to roll out; repeat the option for several.")
@click.option("--agent", "agents", type=click.Choice(["random", "zero", "teacher"]), multiple=True,
              default=("random", "teacher"), show_default=True, help="Agent(s); repeat the option for several.")
@click.option("--num-envs", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON here.")
def rollout_command(env_ids, agents, num_envs, steps, backend, seed, out) -> None:
    """Build each env and run short batched rollouts of each agent, printing a summary."""
    from go2bench.eval.rollout import rollout_summary

    if out:
        with one_line_errors():
            check_output_path(out)

    summaries = []
    for env_id in env_ids:
        for agent in agents:
            t0 = time.perf_counter()
            with one_line_errors():
                s = rollout_summary(env_id, agent=agent, num_envs=num_envs, steps=steps, backend=backend, seed=seed)
            s["wall_s"] = round(time.perf_counter() - t0, 2)
            summaries.append(s)
            click.echo(
                f"{env_id:20s} {agent:8s} envs={num_envs} steps={steps}  {s['env_steps_per_s']:>7,.0f} env-steps/s  "
                f"reward/step {s['mean_reward_per_step']:+.4f}  falls {s['falls']:3d}  "
                f"height {s['mean_base_height']:.3f} m  forward {s['mean_forward_velocity']:+.2f} m/s"
            )
    if out:
        with one_line_errors():
            with open(out, "w") as f:
                json.dump({"go2bench_version": go2bench.__version__, "rollouts": summaries}, f, indent=2)
        click.echo(f"wrote {out}")
