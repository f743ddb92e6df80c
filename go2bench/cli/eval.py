"""``go2bench eval`` (in-context evaluation of one agent on one env) and ``go2bench leaderboard``."""

from __future__ import annotations

import time

import click

from go2bench.cli.errors import one_line_errors
from go2bench.envs.registry import TASKS


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 0,1,2; got {text!r}") from None
    if not seeds:
        raise click.BadParameter("at least one seed is needed")
    return seeds


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None else format(x, spec)


@click.command("eval")
@click.option("--agent", "agent_spec", default="teacher", show_default=True,
              help="NAME[:checkpoint]: random, teacher[:PATH], vintix[:PATH], vintix-nocontext[:PATH], or a "
                   "third-party agent of the 'go2bench.agents' entry-point group.")
@click.option("--env", "env_id", type=click.Choice(list(TASKS)), default="Go2Walk-v0", show_default=True)
@click.option("--episodes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Consecutive episodes per env (an in-context agent keeps its context across them).")
@click.option("--num-envs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seeds", "seeds", default="0", show_default=True, callback=lambda ctx, param, v: _parse_seeds(v),
              help="Comma-separated seeds, e.g. 0,1,2.")
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
@click.option("--trust-checkpoint", is_flag=True,
              help="Let stable-baselines3 unpickle a teacher zip without a model card: runs any code inside it; "
                   "only for files you wrote.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON here.")
def eval_command(agent_spec, env_id, episodes, num_envs, seeds, backend, device, obs_mode, max_episode_steps,
                 walk_config, video, video_frames, random_score, expert_score, no_progress, trust_checkpoint,
                 out) -> None:
    """In-context evaluation: each of N envs runs K consecutive episodes per seed; normalised score with 95% CI."""
    from go2bench.agents.registry import make_agent
    from go2bench.eval.protocol import evaluate_in_context
    from go2bench.eval.results import save_results

    t0 = time.perf_counter()
    with one_line_errors():
        agent = make_agent(agent_spec, env_id, device=device, seed=seeds[0], trust_checkpoint=trust_checkpoint)
        res = evaluate_in_context(
            agent, env_id, episodes=episodes, num_envs=num_envs, seeds=seeds, backend=backend, obs_mode=obs_mode,
            max_episode_steps=max_episode_steps, config=walk_config, agent_spec=agent_spec, device=device,
            progress=not no_progress, random_score=random_score, expert_score=expert_score,
            video=video, video_max_frames=video_frames,
        )
    res["total_wall_s"] = round(time.perf_counter() - t0, 2)
    lo, hi = res["normalized_score_ci95"]
    click.echo(
        f"{env_id} agent={agent_spec} {res['num_envs']} envs x {episodes} episodes x {len(seeds)} seed(s)  "
        f"mean return {res['mean_return']:.3f} (95% CI {_fmt(res['ci95'][0])}..{_fmt(res['ci95'][1])})  "
        f"falls {res['fall_rate']:.1%}  tracking error {res['mean_tracking_error']:.3f} m/s  "
        f"normalized score {_fmt(res['normalized_score'])} (95% CI {_fmt(lo)}..{_fmt(hi)})"
    )
    per = res["per_episode"]["normalized_score"]
    if len(per) > 1 and per[0] is not None:
        click.echo("normalized score by episode index: " + " ".join(f"{x:.2f}" for x in per))
    if out:
        with one_line_errors():
            save_results(res, out)
        click.echo(f"wrote {out}")
    if video:
        click.echo(f"wrote {video}")


@click.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="runs/leaderboard", show_default=True,
              help="Folder for leaderboard.md, leaderboard.csv and the PNG plots.")
@click.option("--datasets", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Collected dataset folder(s) whose learning curves to plot; repeat for several.")
def leaderboard_command(results, out, datasets) -> None:
    """Tables (Markdown, CSV) and plots from `go2bench eval` result files."""
    from go2bench.eval.leaderboard import make_leaderboard

    with one_line_errors():
        made = make_leaderboard(results, out, datasets=datasets)
    click.echo(made["markdown"])
    for path in made["files"]:
        click.echo(f"wrote {path}")
