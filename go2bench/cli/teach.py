"""``go2bench teach``: train a PPO teacher (stable-baselines3) on the batched env."""

from __future__ import annotations

import click

from go2bench.cli.errors import one_line_errors
from go2bench.envs.registry import TASKS


@click.command("teach")
@click.option("--env", "env_id", type=click.Choice(list(TASKS)), default="Go2Walk-v0", show_default=True)
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
    with one_line_errors():
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
