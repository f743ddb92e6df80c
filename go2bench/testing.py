"""Synthetic learning-history datasets for tests: the collector's on-disk layout without a simulation.

Tests of training, stats and data checks need datasets with known content in seconds; these are
written with the real :class:`~go2bench.histories.writer.HistoryWriter`, so they exercise the
same format as collected ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from go2bench.core.provenance import write_json_atomic
from go2bench.histories.names import history_h5, metadata_path
from go2bench.histories.writer import HistoryWriter

__all__ = ["write_synthetic_dataset", "write_privileged_teacher", "CliRunHere", "start_cli_here"]


def _default_dims(env_id: str | None) -> tuple[int, int]:
    """(obs_dim, act_dim) of ``env_id``'s robot (default: the first registered task), "noleak" observations."""
    from go2bench.envs.registry import TASKS, task_spec
    from go2bench.envs.robots import get_robot
    from go2bench.envs.spaces import observation_dim

    spec = task_spec(env_id) if env_id is not None else next(iter(TASKS.values()))
    robot = get_robot(spec.robot)
    return observation_dim(robot, "noleak"), robot.num_joints


def write_synthetic_dataset(root, name: str, *, n_histories: int = 2, steps: int = 1000, obs_dim: int | None = None,
                            act_dim: int | None = None, episode_len=100, group_size: int = 10_000,
                            env_id: str | None = None, task_name: str | None = None, seed: int = 0,
                            weight: np.ndarray | None = None, obs_scale: float = 1.0,
                            demonstrator: bool = False, family: str | None = None, family_split: str = "train",
                            suite: str | None = None) -> Path:
    """Write a dataset folder in the collector's layout; actions = ``obs @ weight`` (+ small noise).

    ``episode_len`` is an int or a list of episode lengths cycled through.  Rewards are
    ``-|a|^2 / act_dim``.  ``obs_dim``/``act_dim`` default to those of ``env_id``'s robot.
    ``demonstrator``: also write ``demonstrator_action`` = ``obs @ weight`` (the noise-free action).
    The metadata's ``robot`` is ``env_id``'s robot when it is given, else ``name``.
    ``family``: the metadata says what a ``--family`` collection's says of its family, its suite (default: the
    family's current one) and the theta split ``family_split`` (``family``, ``task_layout``, ``collection.split``).
    Returns the dataset folder.
    """
    if obs_dim is None or act_dim is None:
        default_obs, default_act = _default_dims(env_id)
        obs_dim = default_obs if obs_dim is None else obs_dim
        act_dim = default_act if act_dim is None else act_dim
    d = Path(root) / name
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if weight is None:
        weight = np.random.default_rng(1234 + obs_dim * 100 + act_dim).normal(size=(obs_dim, act_dim)) / np.sqrt(obs_dim)
    lens = [int(episode_len)] if np.isscalar(episode_len) else [int(x) for x in episode_len]
    meta = {"task_name": task_name or name, "robot": name, "observation_shape": {"proprio": [obs_dim]},
            "action_dim": act_dim, "steps_per_history": steps, "num_histories": n_histories}
    if env_id is not None:
        from go2bench.envs.registry import task_spec

        meta.update(env_id=env_id, robot=task_spec(env_id).robot)
    for h in range(n_histories):
        step_num = np.empty(steps, np.int32)
        pos, k = 0, 0
        while pos < steps:
            n = min(lens[k % len(lens)], steps - pos)
            step_num[pos:pos + n] = np.arange(n)
            pos += n
            k += 1
        obs = (rng.normal(size=(steps, obs_dim)) * obs_scale).astype(np.float32)
        demo = (obs @ weight).astype(np.float32)
        act = (demo + 0.01 * rng.normal(size=(steps, act_dim))).astype(np.float32)
        rew = (-(act**2).mean(1)).astype(np.float32)
        path = history_h5(d, h)
        with HistoryWriter(path, obs_dim, act_dim, group_size=group_size, demonstrator=demonstrator) as w:
            for a in range(0, steps, 100_000):
                b = min(steps, a + 100_000)
                w.append(obs[a:b], act[a:b], rew[a:b], step_num[a:b], demo[a:b] if demonstrator else None)
        write_json_atomic(path.with_suffix(".json"), {k: meta[k] for k in ("observation_shape", "action_dim")})
    if demonstrator:
        meta["dataset_keys"] = ["proprio_observation", "action", "reward", "step_num", "demonstrator_action"]
    meta["total_transitions"] = n_histories * steps  # as the collector records it
    if family is not None:
        from go2bench.envs.suites import CURRENT_SUITE

        suite = suite or CURRENT_SUITE[family]
        meta.update(family=family, task_layout={"family": family, "suite": suite, "split": family_split},
                    collection={"family": family, "split": family_split})
    write_json_atomic(metadata_path(d), meta)
    return d


def write_original_layout_history(path, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
                                  step_num: np.ndarray, groups: list[tuple[int, int]], extra_obs: np.ndarray) -> Path:
    """A history file in the original collector's layout: groups ``"a-(b-1)"`` for each ``(a, b)`` of ``groups``,
    whose ``proprio_observation`` holds one row more (T+1: ``extra_obs[k]`` for group k) than the other datasets."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for k, (a, b) in enumerate(groups):
            g = f.create_group(f"{a}-{b - 1}")
            g["proprio_observation"] = np.concatenate([obs[a:b], extra_obs[k:k + 1]]).astype(np.float32)
            g["action"], g["reward"], g["step_num"] = action[a:b], reward[a:b], step_num[a:b]
    return path


def write_privileged_teacher(dest, env_id: str, family: str, theta_weight: float = 0.05, seed: int = 0) -> Path:
    """A stand-in privileged teacher of ``family`` built from ``env_id``'s shipped (blind) teacher.

    Its first layers get extra input columns for the theta block (small random weights, so its
    actions depend on theta a little and a wrong theta shows); everything else is the shipped
    teacher's.  Writes ``dest/policy.pt`` and a model card with ``privileged: true`` and ``family``;
    returns ``dest``.  For tests, until the shipped privileged teachers exist.
    """
    import json

    import torch

    from go2bench.agents.sb3_checkpoint import build_policy, save_policy_state
    from go2bench.agents.teacher import load_teacher
    from go2bench.envs.families import theta_layout
    from go2bench.envs.registry import task_spec
    from go2bench.envs.robots import get_robot
    from go2bench.envs.spaces import observation_dim

    blind = load_teacher(env_id)
    card = dict(blind.model_card)
    robot = get_robot(task_spec(env_id).robot)
    obs_dim = observation_dim(robot, card.get("obs_mode", "noleak"), family)
    lay = theta_layout(family, robot)
    card.update(obs_dim=obs_dim, privileged=True, family=family, note="test stand-in: shipped teacher + theta inputs",
                theta_layout={"names": list(lay.names), "low": list(lay.low), "high": list(lay.high),
                              "units": list(lay.units)})
    policy = build_policy(card)
    state = blind.policy.state_dict()
    gen = torch.Generator().manual_seed(seed)
    for name, w in list(state.items()):
        if name.endswith("0.weight") and w.dim() == 2 and w.shape[1] == blind.obs_dim:  # first layer of pi and vf
            extra = theta_weight * torch.randn(w.shape[0], obs_dim - w.shape[1], generator=gen)
            state[name] = torch.cat([w, extra.to(w.dtype)], 1)
    policy.load_state_dict(state)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    save_policy_state(policy, dest / "policy.pt")
    (dest / "model_card.json").write_text(json.dumps(card, indent=1))
    return dest


class CliRunHere:
    """A ``python -m go2bench.cli ...`` command run to its end in this process, standing in for the
    :class:`subprocess.Popen` that ``pipeline.stages.start_process`` returns (``poll``, ``wait``, ``kill``,
    ``returncode``).  Tests of drivers that start CLI processes use it to skip a fresh interpreter's
    Genesis import and first scene build (~25 s each on 2 cores) when the process itself is not under test.
    """

    def __init__(self, cmd: list[str], log_file=None):
        import traceback

        from click.testing import CliRunner

        from go2bench.cli import main
        from go2bench.pipeline.stages import CLI

        cmd = [str(c) for c in cmd]
        if cmd[:len(CLI)] != CLI:
            raise ValueError(f"not a go2bench CLI command: {cmd[:len(CLI)]}")
        self.cmd = cmd
        r = CliRunner().invoke(main, cmd[len(CLI):])
        self.returncode = r.exit_code
        self.output = r.output
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            self.output += "".join(traceback.format_exception(r.exception))
        if log_file is not None:
            with open(log_file, "a") as f:
                f.write(self.output)

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout=None) -> int:
        return self.returncode

    def kill(self) -> None:
        """Nothing left to kill: the command has finished."""


def start_cli_here(started: list | None = None):
    """A drop-in for ``start_process(cmd, log_file, gpu)`` that runs the command here (:class:`CliRunHere`),
    appending each run to ``started`` so that a test can check which commands were started."""

    def start(cmd, log_file=None, gpu=None):
        run = CliRunHere(cmd, log_file)
        if started is not None:
            started.append(run)
        return run

    return start
