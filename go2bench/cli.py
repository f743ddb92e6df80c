"""The ``go2bench`` command line: one click group, one subcommand per pipeline stage."""

from __future__ import annotations

import json
import time

import click

import go2bench
from go2bench.envs import ENV_ROBOTS


@click.group()
@click.version_option(go2bench.__version__, prog_name="go2bench")
def main() -> None:
    """go2bench: in-context RL benchmark on Genesis-simulated quadrupeds."""


@main.command("envs")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default="noleak", show_default=True)
def envs_command(obs_mode: str) -> None:
    """List the registered environments and their spaces (builds nothing)."""
    from go2bench.envs import spaces as S
    from go2bench.envs.robots import get_robot
    from go2bench.envs.walk_config import make_walk_config

    cfg = make_walk_config(obs_mode=obs_mode)
    for env_id, robot in ENV_ROBOTS.items():
        rd = get_robot(robot)
        click.echo(f"{env_id}")
        click.echo(f"  robot:             {rd.name} ({rd.urdf})")
        click.echo(f"  observation_space: {S.observation_space(cfg.obs_dim)}  [obs_mode={obs_mode}]")
        click.echo(f"  action_space:      {S.action_space()}")
        click.echo(f"  max_episode_steps: {cfg.max_episode_steps} (dt {cfg.dt} s)")


@main.command("rollout")
@click.option("--env", "env_ids", multiple=True, default=tuple(ENV_ROBOTS), show_default=True,
              help="Env id(s) to roll out; repeat the option for several.")
@click.option("--agent", type=click.Choice(["random", "zero"]), default="random", show_default=True)
@click.option("--num-envs", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON here.")
def rollout_command(env_ids, agent, num_envs, steps, backend, seed, out) -> None:
    """Build each env and run a short batched rollout, printing a summary."""
    from go2bench.envs.rollout import rollout_summary

    summaries = []
    for env_id in env_ids:
        t0 = time.perf_counter()
        s = rollout_summary(env_id, agent=agent, num_envs=num_envs, steps=steps, backend=backend, seed=seed)
        s["wall_s"] = round(time.perf_counter() - t0, 2)
        summaries.append(s)
        click.echo(
            f"{env_id:22s} agent={agent:6s} envs={num_envs} steps={steps}  build {s['build_s']:.1f}s  "
            f"{s['env_steps_per_s']:,.0f} env-steps/s  mean reward/step {s['mean_reward_per_step']:+.4f}  "
            f"episodes ended {s['episodes_ended']} (fell {s['falls']})  base height {s['mean_base_height']:.3f} m"
        )
    if out:
        with open(out, "w") as f:
            json.dump({"go2bench_version": go2bench.__version__, "rollouts": summaries}, f, indent=2)
        click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
