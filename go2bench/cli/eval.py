"""``go2bench eval`` (in-context evaluation of one agent on one env, on a task family, or on the held-out robot of a
leave-one-robot-out split) and ``go2bench leaderboard``."""

from __future__ import annotations

import time

import click

from go2bench.cli.errors import one_line_errors
from go2bench.core.devices import check_torch_device
from go2bench.core.provenance import check_output_path
from go2bench.envs.families import FAMILIES
from go2bench.envs.registry import TASKS
from go2bench.envs.robot_split import ROBOT_SPLIT_SPECS

FAMILY_ONLY = ("split", "trials", "references", "reference_cache", "no_measure_references", "reference_episodes",
               "bootstrap_reps")
DEFAULT_TASK_ONLY = ("num_envs", "video", "random_score", "expert_score")
NOT_WITH_ROBOTS_SPLIT = ("split", "trials", "references", "reference_cache", "no_measure_references",
                         "reference_episodes", "walk_config", "init_joint_noise")


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise click.BadParameter(f"--seeds: expected comma-separated integers such as 0,1,2; got {text!r}") from None
    if not seeds:
        raise click.BadParameter("--seeds: at least one seed is needed")
    if any(s < 0 for s in seeds):
        raise click.BadParameter(f"--seeds: seeds must be >= 0, got {seeds}")
    return seeds


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None else format(x, spec)


@click.command("eval")
@click.option("--agent", "agent_specs", multiple=True, default=("teacher",), show_default=True,
              help="NAME[:checkpoint]: random, teacher[:PATH], teacher-privileged / teacher-blind (the family's "
                   "teachers, with --family), vintix[:PATH], vintix-nocontext[:PATH], or a third-party agent of the "
                   "'go2bench.agents' entry-point group. Repeat it to evaluate several agents in one process: side by "
                   "side in one scene per kind (--sequential: one after the other); each agent's results are "
                   "those of a call with it alone; --out is then a folder.")
@click.option("--env", "env_id", type=click.Choice(list(TASKS)), default=None,
              help="[default: Go2Walk-v0; with --robots-split the held-out robot's env]")
@click.option("--family", type=click.Choice(sorted(FAMILIES)), default=None,
              help="Evaluate on a task family: one trial per (theta of --split, seed), each a cold start and "
                   "--episodes episodes with theta held; scores normalised per theta, IQM with bootstrap CIs.")
@click.option("--robots-split", type=click.Choice(sorted(ROBOT_SPLIT_SPECS)), default=None,
              help="Evaluate on the held-out robot of a leave-one-robot-out split (go2bench/suites/<split>.yaml) from "
                   "a cold start, with the split's episodes, envs, seeds and episode length unless given; normalised "
                   "per episode, IQM with bootstrap CIs. Needs --held-out. With --family: the family protocol on "
                   "the held-out robot's env, a Vintix trained on the fold's family training set.")
@click.option("--held-out", default=None, help="With --robots-split: the held-out robot (e.g. go2) or its env id.")
@click.option("--split", type=click.Choice(["train", "test"]), default=None,
              help="With --family: the suite split whose thetas are evaluated [default: test].")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="With --family: only the first N thetas of the split [default: all].")
@click.option("--episodes", type=click.IntRange(min=1), default=None,
              help="Consecutive episodes per env / per trial (an in-context agent keeps its context across them) "
                   "[default: 10; with --robots-split the split's].")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Before its counted episodes, each env (trial) plays unscored episodes until it has taken this "
                   "many steps; an in-context agent keeps them in its context (an Algorithm-Distillation agent "
                   "improves with steps of experience, and a cold start that falls gathers few per episode).")
@click.option("--num-envs", type=click.IntRange(min=1), default=None, help="Envs per seed [default: 10]; not with "
              "--family (one env per trial).")
@click.option("--seeds", "seeds", default=None, callback=lambda ctx, param, v: _parse_seeds(v),
              help="Comma-separated seeds, e.g. 0,1,2 [default: 0; with --family 0,1,2].")
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device of the agent.")
@click.option("--obs-mode", type=click.Choice(["noleak", "full"]), default=None,
              help="Default: the agent's model card's, else noleak.")
@click.option("--max-episode-steps", type=click.IntRange(min=1), default=None,
              help="Time limit per episode in steps (default: the task's, 1000). Reference scores are for 1000.")
@click.option("--config", "walk_config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A WalkConfig YAML for the evaluation distribution (commands, randomization); default: the "
                   "task's (fixed 0.5 m/s command, no randomisation).")
@click.option("--init-joint-noise", type=click.FloatRange(min=0), default=None,
              help="Radians: every reset puts each joint at its default + u x this (u uniform in [-1, 1), drawn per "
                   "seed, env, trial and episode), so that evaluation seeds vary a deterministic agent's trials. "
                   "Default: none (every shipped reference and result is without it). Adds to --config.")
@click.option("--video", type=click.Path(dir_okay=False), default=None,
              help="Record env 0 of the first seed to this .mp4 or .gif (at most --video-frames frames).")
@click.option("--video-frames", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--random-score", type=float, default=None,
              help="Reference return of a random agent for the normalised score (default: the shipped teacher's card).")
@click.option("--expert-score", type=float, default=None, help="Reference return of the expert (default: as above).")
@click.option("--references", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --family: a JSON of per-theta reference returns {task_id: {random, privileged}} (see "
                   "go2bench.eval.family_reference); missing ones come from the cache, the zoo's cards, or are measured.")
@click.option("--reference-cache", type=click.Path(file_okay=False), default=None,
              help="With --family: folder of measured reference returns [default: runs/references].")
@click.option("--no-measure-references", is_flag=True, default=None,
              help="With --family: fail instead of measuring missing reference returns.")
@click.option("--reference-episodes", type=click.IntRange(min=1), default=None,
              help="With --family: episodes per theta when measuring reference returns [default: 3].")
@click.option("--bootstrap-reps", type=click.IntRange(min=100), default=None,
              help="With --family or --robots-split: bootstrap resamples of the IQM intervals [default: 2000].")
@click.option("--sequential", is_flag=True,
              help="With several --agent: evaluate them one after the other instead of side by side (agents of "
                   "one observation mode acting at once on their own envs of one scene; same results).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--trust-checkpoint", is_flag=True,
              help="Let stable-baselines3 unpickle a teacher zip without a model card: runs any code inside it; "
                   "only for files you wrote.")
@click.option("--out", type=click.Path(), default=None,
              help="Write the results as JSON here; with several --agent a folder: one JSON per agent (named from "
                   "the agent spec) and index.json.")
def eval_command(agent_specs, env_id, family, robots_split, held_out, split, trials, episodes, warmup_steps, num_envs,
                 seeds, backend, device, obs_mode, max_episode_steps, walk_config, init_joint_noise, video,
                 video_frames, random_score,
                 expert_score, references, reference_cache, no_measure_references, reference_episodes, bootstrap_reps,
                 sequential, no_progress, trust_checkpoint, out) -> None:
    """In-context evaluation: each of N envs runs K consecutive episodes per seed; normalised score with 95% CI.

    With --family: per (theta, seed) trial a cold start and K episodes with theta held, one batched scene for all
    trials; per-theta normalised scores, IQM over trials with 95% stratified bootstrap CIs per episode index,
    zero-shot (episode 1), final (last 3) and AUC.

    With --robots-split S --held-out R: the same statistics for a cold start on robot R's default task, normalised by
    R's shipped teacher and random returns; a Vintix checkpoint must have been trained on the other robots only.
    With --family F as well: the family protocol on R's env (its thetas, per-theta references of R), a Vintix trained on
    the other robots' F histories (`go2bench data robot-split` on their F datasets).

    Several --agent: evaluated in one process, side by side in one scene per observation mode (with --family
    privileged if any agent reads theta) of agents x envs (x trials with --family), each on its own envs, written
    when their scene is done (--sequential: one after the other in the order given, each written as soon as it is
    done).
    """
    import math

    for name, value in (("--random-score", random_score), ("--expert-score", expert_score)):
        if value is not None and not math.isfinite(value):
            raise click.BadParameter(f"{name} must be a finite number, got {value}")
    if random_score is not None and expert_score is not None and random_score == expert_score:
        raise click.BadParameter(f"--random-score and --expert-score are equal ({random_score}): no scale to normalise")
    specs = list(agent_specs)
    if len(set(specs)) != len(specs):
        raise click.BadParameter(f"--agent {next(a for a in specs if specs.count(a) > 1)} is given twice")
    if video and len(specs) > 1:
        raise click.UsageError("--video records one agent: give a single --agent")
    given = dict(split=split, trials=trials, references=references, reference_cache=reference_cache,
                 no_measure_references=no_measure_references, reference_episodes=reference_episodes,
                 bootstrap_reps=bootstrap_reps, num_envs=num_envs, walk_config=walk_config, video=video,
                 random_score=random_score, expert_score=expert_score, sequential=sequential or None,
                 init_joint_noise=init_joint_noise)
    if held_out is not None and robots_split is None:
        raise click.UsageError("--held-out goes only with --robots-split")
    if robots_split is not None and held_out is None:
        raise click.UsageError(f"--robots-split needs --held-out ROBOT (one of "
                               f"{', '.join(ROBOT_SPLIT_SPECS[robots_split].robots)})")
    t0 = time.perf_counter()
    if init_joint_noise is not None and (robots_split is None or family):
        with one_line_errors():
            walk_config = _with_init_joint_noise(walk_config, init_joint_noise)
    common = dict(backend=backend, obs_mode=obs_mode, max_episode_steps=max_episode_steps, device=device,
                  trust_checkpoint=trust_checkpoint, progress=not no_progress, warmup_steps=warmup_steps)
    if robots_split is not None and not family:
        used = [f"--{k.replace('_', '-')}" for k in NOT_WITH_ROBOTS_SPLIT if given[k] is not None]
        if used:
            raise click.UsageError(f"{', '.join(used)} do not go with --robots-split (without --family)")
        from go2bench.eval.multi_agent import evaluate_robot_split_agents

        with one_line_errors():
            fold = _fold(robots_split, held_out, None, env_id)
            check_torch_device(device)
            sink = _Sink(out, specs, "robots-split", fold.env_id, t0, _show_robot_split)
            evaluate_robot_split_agents(
                specs, robots_split, fold.held_out, episodes=episodes, num_envs=num_envs, seeds=seeds,
                bootstrap_reps=bootstrap_reps or 2000, random_score=random_score, expert_score=expert_score,
                video=video, video_max_frames=video_frames, on_result=sink, side_by_side=not sequential, **common)
        return
    wrong = DEFAULT_TASK_ONLY if family else FAMILY_ONLY
    used = [f"--{k.replace('_', '-')}" for k in wrong if given[k] is not None]
    if used:
        raise click.UsageError(f"{', '.join(used)} {'do not go' if family else 'go only'} with --family")
    episodes = episodes or 10
    if family:
        from go2bench.eval.family_protocol import DEFAULT_FAMILY_SEEDS
        from go2bench.eval.family_reference import DEFAULT_CACHE
        from go2bench.eval.multi_agent import evaluate_family_agents

        split = split or "test"
        with one_line_errors():
            fold = None if robots_split is None else _fold(robots_split, held_out, family, env_id)
            env_id = fold.env_id if fold is not None else env_id or "Go2Walk-v0"
            check_torch_device(device)
            sink = _Sink(out, specs, "family", env_id, t0, _show_family if fold is None else _show_family_fold)
            evaluate_family_agents(
                specs, env_id, family, split, trials=trials, episodes=episodes,
                seeds=seeds or list(DEFAULT_FAMILY_SEEDS), config=walk_config, references=references,
                reference_cache=reference_cache or DEFAULT_CACHE, compute_references=not no_measure_references,
                reference_episodes=reference_episodes or 3, bootstrap_reps=bootstrap_reps or 2000, on_result=sink,
                side_by_side=not sequential, fold=fold, **common)
        return
    env_id = env_id or "Go2Walk-v0"
    from go2bench.eval.multi_agent import evaluate_in_context_agents

    with one_line_errors():
        check_torch_device(device)
        sink = _Sink(out, specs, "default", env_id, t0, _show_default)
        evaluate_in_context_agents(
            specs, env_id, episodes=episodes, num_envs=num_envs or 10, seeds=seeds or [0], config=walk_config,
            random_score=random_score, expert_score=expert_score, video=video, video_max_frames=video_frames,
            on_result=sink, side_by_side=not sequential, **common)
    if video:
        click.echo(f"wrote {video}")


def _fold(robots_split: str, held_out: str, family: str | None, env_id: str | None):
    """The fold holding out ``held_out`` (its ``family`` fold with --family); ``--env``, if given, must be its env."""
    from go2bench.envs.robot_split import load_robot_split

    fold = load_robot_split(robots_split).fold(held_out)
    if env_id is not None and env_id != fold.env_id:
        raise ValueError(f"--env {env_id} is not the env of the held-out robot {fold.held_out} ({fold.env_id}); "
                         "leave --env out")
    return fold if family is None else fold.for_family(family)


def _with_init_joint_noise(walk_config, noise: float):
    """The --config's WalkConfig (or the task's) with ``randomization.init_joint_noise`` set."""
    from dataclasses import replace

    from go2bench.envs.walk_config import make_walk_config

    cfg = make_walk_config(walk_config)
    return replace(cfg, randomization=replace(cfg.randomization, init_joint_noise=float(noise)))


class _Sink:
    """Prints each agent's summary and writes its results: to ``--out FILE`` (one agent) or the ``--out`` folder."""

    def __init__(self, out, specs, mode, env_id, t0, show) -> None:
        from go2bench.eval.agent_outputs import ResultsFolder

        self.out, self.t0, self.show = out, t0, show
        self.folder = ResultsFolder(out, specs, mode, env_id) if out and len(specs) > 1 else None
        if out and self.folder is None:
            check_output_path(out)

    def __call__(self, spec: str, res: dict) -> None:
        from go2bench.eval.results import save_results

        res["total_wall_s"] = round(time.perf_counter() - self.t0, 2)
        self.show(spec, res)
        p = res.get("process", {})
        if p.get("agents", 1) > 1:
            beside = (f" side by side with {p['scene_agents'] - 1} other agent(s) in {p['scene_envs']} envs"
                      if p.get("side_by_side") else "")
            click.echo(f"agent {p['agent_index'] + 1}/{p['agents']}: scene build {p['scene_build_s']:.1f} s"
                       f"{'' if p['scene_built_for_this_agent'] else ' (shared)'}, evaluation {p['eval_s']:.1f} s"
                       f"{beside}")
        if self.folder is not None:
            click.echo(f"wrote {self.folder.write(spec, res)}")
        elif self.out:
            save_results(res, self.out)
            click.echo(f"wrote {self.out}")


def _iqm(m, interval: str = "ci95") -> str:
    lo, hi = m[interval]
    return f"{m['iqm']:.3f} [{lo:.3f}, {hi:.3f}]"


def _show_default(spec: str, res: dict) -> None:
    lo, hi = res["normalized_score_ci95"]
    c = res["config"]
    click.echo(
        f"{res['env']} agent={spec} {res['num_envs']} envs x {c['episodes']} episodes x {len(c['seeds'])} seed(s)  "
        f"mean return {res['mean_return']:.3f} (95% CI {_fmt(res['ci95'][0])}..{_fmt(res['ci95'][1])})  "
        f"falls {res['fall_rate']:.1%}  tracking error {res['mean_tracking_error']:.3f} m/s  "
        f"normalized score {_fmt(res['normalized_score'])} (95% CI {_fmt(lo)}..{_fmt(hi)})"
    )
    per = res["per_episode"]["normalized_score"]
    if len(per) > 1 and per[0] is not None:
        click.echo("normalized score by episode index: " + " ".join(f"{x:.2f}" for x in per))


def _show_family(spec: str, res: dict) -> None:
    fam, c = res["family"], res["config"]
    te = fam["tracking_error"]
    click.echo(
        f"{res['env']} {fam['name']}/{c['split']} agent={spec} {fam['trials_per_seed']} thetas x "
        f"{len(c['seeds'])} seed(s) x {c['episodes']} episodes  normalised IQM [95% CI over thetas and seeds]: "
        # the seeds-only interval (ci95) is zero-wide whenever the seeds change nothing (a deterministic env)
        f"zero-shot {_iqm(fam['zero_shot'], 'ci95_thetas')}  final {_iqm(fam['final'], 'ci95_thetas')}  "
        f"AUC {_iqm(fam['auc'], 'ci95_thetas')}  falls {res['fall_rate']:.1%}  "
        f"tracking error x {te['x']:.3f} m/s, y {te['y']:.3f} m/s, yaw {te['yaw']:.3f} rad/s")
    click.echo("IQM by episode: " + " ".join(f"{x:.2f}" for x in fam["per_episode"]["iqm"]))


def _show_family_fold(spec: str, res: dict) -> None:
    _show_family(spec, res)
    rs, group = res["robot_split"], res["robot_split"]["agent_group"]
    click.echo(f"{rs['split']} held out {rs['held_out']} ({res['env']}), {rs['family']} fold trained on "
               f"{', '.join(rs['train_robots'])}" + (f"; agent pinned to group {group['name']!r} (dataset "
                                                     f"{group['dataset']})" if group else ""))


def _show_robot_split(spec: str, res: dict) -> None:
    rs, c = res["robot_split"], res["config"]
    p = rs["protocol"]
    click.echo(
        f"{c['robots_split']} held out {c['held_out']} ({res['env']}), trained on {', '.join(rs['train_robots'])}; "
        f"agent={spec} {p['num_envs']} envs x {p['episodes']} episodes x {len(p['seeds'])} seed(s)"
        f"{'' if p['as_split'] else ' (not the split protocol)'}  normalised IQM [95% CI]: zero-shot "
        f"{_iqm(rs['zero_shot'])}  final {_iqm(rs['final'])}  AUC {_iqm(rs['auc'])}  rise {_iqm(rs['rise'])}  "
        f"falls {res['fall_rate']:.1%}")
    click.echo("IQM by episode: " + " ".join(f"{x:.2f}" for x in rs["per_episode"]["iqm"]))
    t = rs["target"]
    click.echo(f"target final >= {t['final_iqm_at_least']}: {'met' if t['final_met'] else 'not met'}; "
               f"rising curve: {'yes' if t['rising'] else 'no'}")


def _parse_pools(ctx, param, values) -> list[tuple[str, list[str]]]:
    """``--pool NAME=A.json,B.json[,...]`` -> [(NAME, [files])]."""
    from pathlib import Path

    pools = []
    for value in values:
        name, sep, files = value.partition("=")
        paths = [f.strip() for f in files.split(",") if f.strip()]
        if not sep or not name.strip() or not paths:
            raise click.BadParameter(f"{value!r}: give NAME=FILE,FILE[,...], e.g. vintix-mc=a.json,b.json,c.json")
        missing = [f for f in paths if not Path(f).is_file()]
        if missing:
            raise click.BadParameter(f"pool {name.strip()}: no file {missing[0]}")
        pools.append((name.strip(), paths))
    return pools


@click.command("leaderboard")
@click.argument("results", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="runs/leaderboard", show_default=True,
              help="Folder for leaderboard.md, leaderboard.csv and the PNG plots.")
@click.option("--datasets", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Collected dataset folder(s) whose learning curves to plot; repeat for several.")
@click.option("--pool", "pools", multiple=True, callback=_parse_pools, metavar="NAME=FILE,FILE[,...]",
              help="Family results of several training runs of one agent (same env, family, split and protocol, "
                   "other checkpoints) as ONE row NAME: the IQM of their trials pooled, with a 95% interval "
                   "resampling runs, thetas and seeds, the run count and each run's final; also written to "
                   "leaderboard_pooled.json. The files need not be repeated as RESULTS. Repeat for several pools.")
@click.option("--pool-by", type=click.Choice(["agent"]), default=None,
              help="agent: pool the family results of every agent name (checkpoint path left out) that has two or "
                   "more on one env, family and split, as one row named after the agent; give only the runs of "
                   "one recipe per agent.")
def leaderboard_command(results, out, datasets, pools, pool_by) -> None:
    """Tables (Markdown, CSV) and plots from `go2bench eval` result files."""
    from go2bench.eval.leaderboard import make_leaderboard

    if not results and not pools:
        raise click.UsageError("give result files (RESULTS or --pool)")
    with one_line_errors():
        made = make_leaderboard(results, out, datasets=datasets, pools=pools, pool_by=pool_by)
    click.echo(made["markdown"])
    for path in made["files"]:
        click.echo(f"wrote {path}")
