"""``go2bench video``: render agents' chosen episodes side by side to an mp4 or GIF (headless)."""

from __future__ import annotations

import click

from go2bench.cli.errors import one_line_errors
from go2bench.core.devices import check_torch_device
from go2bench.envs.registry import TASKS


@click.command("video")
@click.option("--env", "env_id", type=click.Choice(list(TASKS)), default="Go2Walk-v0", show_default=True)
@click.option("--agent", "agents", multiple=True, required=True,
              help="AGENT[@EPISODES], repeatable, one panel per episode: teacher, vintix@1,last, "
                   "vintix:PATH@2 ... (agent specs as in `go2bench eval`; episodes from 1, or 'last'; default 1).")
@click.option("--episodes", type=click.IntRange(min=1), default=3, show_default=True,
              help="Consecutive episodes each agent runs from a cold start (an in-context agent keeps its context); "
                   "only the chosen ones are rendered.")
@click.option("--max-episode-steps", type=click.IntRange(min=1), default=400, show_default=True,
              help="Steps per episode (400 = 8 s): the clip's length.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--fps", type=click.FloatRange(min=1, max=50), default=25.0, show_default=True,
              help="Frames per second of the clip; a frame every 50/fps control steps, so it plays at real time.")
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device of the agents.")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default=None,
              help="Default: the agents' model cards', else noleak.")
@click.option("--title", default=None, help="Text of the clip's top band [default: env, seed, episodes, speed].")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="The clip, .mp4 (needs imageio-ffmpeg) or .gif; its config, returns and timings go to the .json "
                   "beside it.")
def video_command(env_id, agents, episodes, max_episode_steps, seed, fps, backend, device, obs_mode, title,
                  out) -> None:
    """Render agents walking, chosen episodes side by side with a label each, headless (EGL).

    Example: go2bench video --env MiniCheetahWalk-v0 --agent teacher --agent vintix@1,last --out mc.mp4
    shows the teacher's episode 1 and Vintix's first and last of 3 consecutive episodes.
    """
    from go2bench.eval.video import parse_panels, render_clip

    with one_line_errors():
        panels = [p for text in agents for p in parse_panels(text)]
        check_torch_device(device)
        meta = render_clip(env_id, panels, out, episodes=episodes, seed=seed, max_episode_steps=max_episode_steps,
                           fps=fps, backend=backend, device=device, obs_mode=obs_mode, title=title)
    for p in meta["panels"]:
        click.echo(f"{p['agent']:>24} episode {p['episode']}/{episodes}: return {p['return']:.3f} over {p['length']} "
                   f"steps{' (fell)' if p['fell'] else ''}")
    click.echo(f"wrote {out} ({meta['bytes'] / 1e6:.2f} MB, {meta['clip_frames']} frames, {meta['seconds']} s); "
               f"rendered at {meta['render_fps']} frames/s")
