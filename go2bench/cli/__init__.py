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
        click.echo(f"  action_space:      {S.action_space(rd)}")
        click.echo(f"  max_episode_steps: {cfg.max_episode_steps} (dt {cfg.dt} s)")


@main.command("rollout")
@click.option("--env", "env_ids", multiple=True, default=tuple(ENV_ROBOTS), show_default=True,
              help="Env id(s) to roll out; repeat the option for several.")
@click.option("--agent", "agents", type=click.Choice(["random", "zero", "teacher"]), multiple=True,
              default=("random", "teacher"), show_default=True, help="Agent(s); repeat the option for several.")
@click.option("--num-envs", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON here.")
def rollout_command(env_ids, agents, num_envs, steps, backend, seed, out) -> None:
    """Build each env and run short batched rollouts of each agent, printing a summary."""
    from go2bench.eval.rollout import rollout_summary

    summaries = []
    for env_id in env_ids:
        for agent in agents:
            t0 = time.perf_counter()
            s = rollout_summary(env_id, agent=agent, num_envs=num_envs, steps=steps, backend=backend, seed=seed)
            s["wall_s"] = round(time.perf_counter() - t0, 2)
            summaries.append(s)
            click.echo(
                f"{env_id:20s} {agent:8s} envs={num_envs} steps={steps}  {s['env_steps_per_s']:>7,.0f} env-steps/s  "
                f"reward/step {s['mean_reward_per_step']:+.4f}  falls {s['falls']:3d}  "
                f"height {s['mean_base_height']:.3f} m  forward {s['mean_forward_velocity']:+.2f} m/s"
            )
    if out:
        with open(out, "w") as f:
            json.dump({"go2bench_version": go2bench.__version__, "rollouts": summaries}, f, indent=2)
        click.echo(f"wrote {out}")


@main.command("teach")
@click.option("--env", "env_id", type=click.Choice(list(ENV_ROBOTS)), default="Go2Walk-v0", show_default=True)
@click.option("--num-envs", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--total-steps", type=click.IntRange(min=1), default=50_000_000, show_default=True,
              help="Env steps in all, over all envs (a resumed run counts its earlier steps).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="auto", show_default=True,
              help="Torch device of the policy.")
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="Genesis backend of the simulation.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUT/checkpoints.")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default="noleak", show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=5_000_000, show_default=True,
              help="Env steps between checkpoints.")
@click.option("--target-kl", type=float, default=None, help="SB3 early stop of an update (default: off).")
@click.option("--no-adaptive-lr", is_flag=True, help="Keep the learning rate fixed.")
@click.option("--eval-episodes", type=click.IntRange(min=0), default=64, show_default=True,
              help="Episodes evaluated after training for the model card's scores (0: skip).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop learning after this much wall time, then save and evaluate.")
@click.option("--no-progress-bar", is_flag=True)
def teach_command(env_id, num_envs, total_steps, device, backend, out, seed, resume, obs_mode, checkpoint_every,
                  target_kl, no_adaptive_lr, eval_episodes, max_minutes, no_progress_bar) -> None:
    """Train a PPO teacher (stable-baselines3) on the batched env; writes OUT/final.zip and a model card."""
    from go2bench.teachers.ppo import PPOConfig, train_teacher

    cfg = PPOConfig(target_kl=target_kl, adaptive_lr=not no_adaptive_lr)
    _, card = train_teacher(
        env_id, num_envs=num_envs, total_steps=total_steps, device=device, backend=backend, out=out, seed=seed,
        resume=resume, ppo=cfg, obs_mode=obs_mode, checkpoint_every=checkpoint_every,
        eval_episodes=eval_episodes, progress_bar=not no_progress_bar, max_minutes=max_minutes,
    )
    line = f"{env_id}: {card['training_steps']:,} steps in {card['wall_time_s']:.0f} s"
    if "expert_score" in card:
        line += (f"; teacher mean return {card['expert_score']:.2f} (random {card['random_score']:.2f}), "
                 f"falls {card['fall_rate']:.1%}, tracking error {card['mean_tracking_error']:.3f} m/s")
    click.echo(line)
    click.echo(f"wrote {out}/final.zip and {out}/model_card.json")


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 0,1,2; got {text!r}") from None
    if not seeds:
        raise click.BadParameter("at least one seed is needed")
    return seeds


@main.command("eval")
@click.option("--agent", "agent_spec", default="teacher", show_default=True,
              help="NAME[:checkpoint]: random, teacher[:PATH], vintix[:PATH], vintix-nocontext[:PATH], or a "
                   "third-party agent of the 'go2bench.agents' entry-point group (a bare path means teacher:PATH).")
@click.option("--env", "env_id", type=click.Choice(list(ENV_ROBOTS)), default="Go2Walk-v0", show_default=True)
@click.option("--episodes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Consecutive episodes per env (an in-context agent keeps its context across them).")
@click.option("--num-envs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seeds", "seeds_text", default=None, help="Comma-separated seeds, e.g. 0,1,2 (default 0).")
@click.option("--seed", type=int, default=None, hidden=True, help="One seed (older spelling of --seeds).")
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device of the agent.")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default=None,
              help="Default: the agent's model card's, else noleak.")
@click.option("--max-episode-steps", type=click.IntRange(min=1), default=None,
              help="Time limit per episode in steps (default: the task's, 1000). Reference scores are for 1000.")
@click.option("--config", "walk_config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A WalkConfig YAML for the evaluation distribution (commands, randomization); default: the "
                   "task's (fixed 0.5 m/s command, no randomisation).")
@click.option("--video", type=click.Path(dir_okay=False), default=None,
              help="Record env 0 of the first seed to this mp4 (at most --video-frames frames).")
@click.option("--video-frames", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--random-score", type=float, default=None,
              help="Reference return of a random agent for the normalised score (default: the shipped teacher's card).")
@click.option("--expert-score", type=float, default=None, help="Reference return of the expert (default: as above).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON here.")
def eval_command(agent_spec, env_id, episodes, num_envs, seeds_text, seed, backend, device, obs_mode,
                 max_episode_steps, walk_config, video, video_frames, random_score, expert_score, no_progress,
                 out) -> None:
    """In-context evaluation: each of N envs runs K consecutive episodes per seed; normalised score with 95% CI."""
    from go2bench.eval.protocol import evaluate_in_context, save_results
    from go2bench.agents.registry import UnknownAgentError, make_agent

    if seeds_text is not None and seed is not None:
        raise click.UsageError("give --seeds or --seed, not both")
    seeds = _parse_seeds(seeds_text) if seeds_text is not None else [0 if seed is None else seed]
    try:
        agent = make_agent(agent_spec, env_id, device=device, seed=seeds[0])
    except (FileNotFoundError, UnknownAgentError, ValueError, ImportError) as e:
        raise click.ClickException(str(e)) from None
    t0 = time.perf_counter()
    try:
        res = evaluate_in_context(
            agent, env_id, episodes=episodes, num_envs=num_envs, seeds=seeds, backend=backend, obs_mode=obs_mode,
            max_episode_steps=max_episode_steps, config=walk_config, agent_spec=agent_spec, device=device,
            progress=not no_progress, random_score=random_score, expert_score=expert_score,
            video=video, video_max_frames=video_frames,
        )
    except RuntimeError as e:
        if video and ("video" in str(e) or "camera" in str(e) or "imageio" in str(e)):
            raise click.ClickException(str(e)) from None
        raise
    res["total_wall_s"] = round(time.perf_counter() - t0, 2)

    def fmt(x, spec=".3f"):
        return "n/a" if x is None else format(x, spec)

    lo, hi = res["normalized_score_ci95"]
    click.echo(
        f"{env_id} agent={agent_spec} {res['num_envs']} envs x {episodes} episodes x {len(seeds)} seed(s)  "
        f"mean return {res['mean_return']:.3f} (95% CI {fmt(res['ci95'][0])}..{fmt(res['ci95'][1])})  "
        f"falls {res['fall_rate']:.1%}  tracking error {res['mean_tracking_error']:.3f} m/s  "
        f"normalized score {fmt(res['normalized_score'])} (95% CI {fmt(lo)}..{fmt(hi)})"
    )
    per = res["per_episode"]["normalized_score"]
    if len(per) > 1 and per[0] is not None:
        click.echo("normalized score by episode index: " + " ".join(f"{x:.2f}" for x in per))
    if out:
        save_results(res, out)
        click.echo(f"wrote {out}")
    if video:
        click.echo(f"wrote {video}")


@main.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="benchmarks/leaderboard", show_default=True,
              help="Folder for leaderboard.md, leaderboard.csv and the PNG plots.")
@click.option("--datasets", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Collected dataset folder(s) whose learning curves to plot; repeat for several.")
def leaderboard_command(results, out, datasets) -> None:
    """Tables (Markdown, CSV) and plots from `go2bench eval` result files."""
    from go2bench.eval.leaderboard import LeaderboardError, make_leaderboard

    try:
        made = make_leaderboard(results, out, datasets=datasets)
    except LeaderboardError as e:
        raise click.ClickException(str(e)) from None
    click.echo(made["markdown"])
    for path in made["files"]:
        click.echo(f"wrote {path}")


from go2bench.cli.collect import collect_command, data_group  # noqa: E402

main.add_command(collect_command, "collect")
main.add_command(data_group, "data")


@main.command("pipeline")
@click.option("--preset", type=click.Choice(["cpu", "gpu", "seed"]), default="cpu", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/pipeline_<preset>); an existing one is resumed.")
@click.option("--stages", default="collect,train,eval,leaderboard", show_default=True,
              help="Comma-separated subset of the stages, in order.")
@click.option("--set", "overrides", multiple=True, help="Override a preset field, e.g. --set max_minutes=2.")
def pipeline_command(preset, out, stages, overrides) -> None:
    """End to end: collect both robots' histories, train Vintix, evaluate every agent, print the leaderboard."""

    import yaml

    from go2bench.core.config import ConfigError, from_dict, to_dict
    from go2bench.pipeline import PRESETS, PipelinePreset, run_pipeline

    data = to_dict(PRESETS[preset])
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--set {item!r}: expected FIELD=VALUE")
        data[key.strip()] = yaml.safe_load(value)
    try:
        cfg = from_dict(PipelinePreset, data, f"preset {preset}")
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    try:
        run_pipeline(cfg, out or f"runs/pipeline_{preset}", tuple(s.strip() for s in stages.split(",") if s.strip()))
    except (ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None

from go2bench.cli.train import train_command  # noqa: E402
main.add_command(train_command, "train")


if __name__ == "__main__":
    main()
