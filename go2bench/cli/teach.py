"""``go2bench teach``: train a PPO teacher (stable-baselines3) on the batched env."""

from __future__ import annotations

import click

from go2bench.cli.errors import one_line_errors
from go2bench.core.devices import check_torch_device
from go2bench.envs.families import FAMILIES  # data only: --help stays cheap
from go2bench.envs.registry import TASKS

FAMILY_CHOICES = sorted(FAMILIES)


@click.command("teach")
@click.option("--env", "env_id", type=click.Choice(list(TASKS)), default="Go2Walk-v0", show_default=True)
@click.option("--family", type=click.Choice(FAMILY_CHOICES), default=None,
              help="Train over the thetas of this task family (default: the env's default task).")
@click.option("--privileged", is_flag=True,
              help="With --family: the teacher observes theta (the per-theta expert); without: the blind teacher.")
@click.option("--tasks", "tasks", type=click.Choice(["train", "default"]), default="train", show_default=True,
              help="With --family: the suite's train thetas, or only the family's default theta.")
@click.option("--resample-tasks", type=click.Choice(["episode", "trial"]), default="episode", show_default=True,
              help="With --tasks train: draw a new theta at every episode start, or once per env.")
@click.option("--num-envs", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--total-steps", type=click.IntRange(min=1), default=50_000_000, show_default=True,
              help="Env steps in all, over all envs (a resumed run counts its earlier steps).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="auto", show_default=True,
              help="Torch device of the policy.")
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="Genesis backend of the simulation.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUT/checkpoints.")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default="noleak", show_default=True)
@click.option("--max-episode-steps", type=click.IntRange(min=1), default=None,
              help="Time limit per episode in steps (default: the task's, 1000; reference returns are for 1000).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=5_000_000, show_default=True,
              help="Env steps between checkpoints.")
@click.option("--target-kl", type=float, default=None, help="SB3 early stop of an update (default: off).")
@click.option("--no-adaptive-lr", is_flag=True, help="Keep the learning rate fixed.")
@click.option("--eval-episodes", type=click.IntRange(min=0), default=64, show_default=True,
              help="Without --family: episodes evaluated after training for the model card's scores (0: skip).")
@click.option("--task-eval-episodes", type=click.IntRange(min=0), default=4, show_default=True,
              help="With --family: at least this many episodes per test theta, for the teacher and a random agent, "
                   "cached per theta in the card (0: skip).")
@click.option("--task-eval-train", type=click.IntRange(min=0), default=None,
              help="With --family: also evaluate this many train thetas, spread over the split (default: all).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop learning after this much wall time, then save and evaluate.")
@click.option("--stop-at", type=float, default=None,
              help="Stop learning at this Unix time (seconds), whatever is left: leaves time to evaluate.")
@click.option("--log-every", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Print one progress line every this many seconds.")
@click.option("--rollout", type=click.Choice(["auto", "host", "device"]), default="auto", show_default=True,
              help="Where rollouts are collected: host (SB3's numpy VecEnv loop) or device (tensors stay on the "
                   "simulation's device; same PPO update); auto: device with --device cuda --backend gpu.")
@click.option("--quiet", is_flag=True, help="No SB3 per-iteration tables (use --log-every for progress).")
@click.option("--no-progress-bar", is_flag=True)
def teach_command(env_id, family, privileged, tasks, resample_tasks, num_envs, total_steps, device, backend, out,
                  seed, resume, obs_mode, max_episode_steps, checkpoint_every, target_kl, no_adaptive_lr,
                  eval_episodes, task_eval_episodes, task_eval_train, max_minutes, stop_at, log_every, rollout,
                  quiet, no_progress_bar) -> None:
    """Train a PPO teacher (stable-baselines3) on the batched env; writes OUT/final.zip and a model card.

    With --family, a teacher of that task family: privileged (--privileged, observes theta) or blind,
    trained over the suite's train thetas; its card caches per-theta returns of the teacher and of a
    random agent on every test theta.
    """
    from go2bench.teachers.ppo import PPOConfig, train_teacher

    if family is None and privileged:
        raise click.UsageError("--privileged needs --family (the teacher observes that family's theta)")
    with one_line_errors():
        if device != "auto":
            check_torch_device(device)
        cfg = PPOConfig(target_kl=target_kl, adaptive_lr=not no_adaptive_lr)
        _, card = train_teacher(
            env_id, num_envs=num_envs, total_steps=total_steps, device=device, backend=backend, out=out, seed=seed,
            resume=resume, ppo=cfg, obs_mode=obs_mode, max_episode_steps=max_episode_steps,
            checkpoint_every=checkpoint_every, eval_episodes=eval_episodes, progress_bar=not no_progress_bar,
            max_minutes=max_minutes, family=family, privileged=privileged,
            tasks="train" if tasks == "train" else None, resample_tasks=resample_tasks if tasks == "train" else "trial",
            stop_at=stop_at, task_eval_episodes=task_eval_episodes, task_eval_train=task_eval_train,
            log_every_s=log_every, verbose=0 if quiet else 1, rollout=rollout,
        )
    kind = f" {family} {'privileged' if privileged else 'blind'}" if family else ""
    line = (f"{env_id}{kind}: {card['training_steps']:,} steps in {card['wall_time_s']:.0f} s "
            f"({card['rollout']} rollouts)")
    if card.get("final_training_return") is not None:
        line += f", training return {card['final_training_return']:.2f}"
    if "family_scores" in card:
        test = card["family_scores"]["test"]
        line += (f"; test thetas ({test['tasks']}): teacher mean return {test['teacher_mean_return']:.2f} "
                 f"(random {test['random_mean_return']:.2f}), falls {test['teacher_fall_rate']:.1%}")
    elif "expert_score" in card:
        line += (f"; teacher mean return {card['expert_score']:.2f} (random {card['random_score']:.2f}), "
                 f"falls {card['fall_rate']:.1%}, tracking error {card['mean_tracking_error']:.3f} m/s")
    click.echo(line)
    click.echo(f"wrote {out}/final.zip and {out}/model_card.json")
