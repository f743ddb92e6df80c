"""Learning histories as a Minari dataset: every episode of every history becomes a Minari episode.

Why the last step of each episode is dropped: a history row holds the observation the policy
saw, the action it took and that action's reward.  The observation *after* an episode's last
action is not stored: the collector resets the env at once and the next row holds the next
episode's first observation.  Minari wants an episode's T actions with T + 1 observations, the
last one being where the final action led.  Rather than invent that observation, the export drops
the final step (:data:`FINAL_STEP_RULE`).  What the dropped step was stays in the episode metadata.

Lives in ``collect`` because the rows' meaning (noise schedule, one theta per history, the
collector finishing a history's last episode) is the collector's.  The reference scores come in
as arguments, looked up by the CLI in ``eval``.  minari is optional (``pip install "go2bench[minari]"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from go2bench.collect.schedule import NoiseSchedule
from go2bench.core.provenance import read_json_object, versions
from go2bench.histories.check import dataset_report
from go2bench.histories.names import DEMONSTRATOR_KEY, history_index, metadata_path
from go2bench.histories.reader import history_files, read_history, read_metadata
from go2bench.vintix.data import episode_segments

__all__ = ["FINAL_STEP_RULE", "MINARI_MISSING", "import_minari", "default_dataset_id", "history_episodes",
           "export_minari"]

FINAL_STEP_RULE = (
    "The observation after an episode's last action is not in the history (the env was reset at once), so the "
    "last step of every episode is dropped: an episode of n history rows becomes n - 1 steps with its n recorded "
    "observations, truncations[-1] = True (the data stops; bootstrapping from the final observation is valid) and "
    "no termination. Episode metadata keeps the dropped step: source_rows = n, source_return (all n rewards) and "
    "source_end (time_limit, before_time_limit = a fall or a diverged simulation, episode_end = time limit unknown, "
    "history_end = the history stops there). One-row episodes have no step left and are skipped."
)
MINARI_MISSING = 'the Minari export needs the minari package: pip install "go2bench[minari]"'
_ID_RE = re.compile(r"^(?:[-_\w][-_\w/]*[-_\w]+/)?[-_\w]+?-v\d+$")  # minari's (namespace/)name-vN


def import_minari():
    """The minari module, or an ImportError saying how to install it."""
    try:
        import minari
    except ImportError as exc:
        raise ImportError(f"{MINARI_MISSING} ({exc})") from None
    return minari


def default_dataset_id(dataset_dir, meta: dict[str, Any]) -> str:
    """``go2bench/<robot>-<family or walk>/<folder name>-v0``, e.g. ``go2bench/go2-velocity/ad-v0``."""
    def slug(s: str) -> str:
        return re.sub(r"[^-\w]+", "-", str(s).replace("_", "-")).strip("-") or "dataset"

    robot = slug(meta.get("robot") or "robot")
    return f"go2bench/{robot}-{slug(meta.get('family') or 'walk')}/{slug(Path(dataset_dir).resolve().name)}-v0"


def _source_end(rows: int, last: bool, max_steps: int | None, last_complete: bool) -> str:
    if last and not last_complete:
        return "history_end"
    if max_steps is None:
        return "episode_end"
    return "time_limit" if rows >= max_steps else "before_time_limit"


def history_episodes(data: dict[str, np.ndarray], index: int, *, schedule: NoiseSchedule | None = None,
                     max_episode_steps: int | None = None, last_complete: bool = False,
                     task: dict[str, float] | None = None, task_id: str | None = None,
                     task_refs: tuple[float, float] | None = None):
    """Minari episode buffers of one history (``read_history``'s arrays), their metadata, skipped one-row episodes.

    ``infos`` hold one entry per observation: ``noise_eps`` (the schedule's weight of the action taken
    there, with a schedule) and ``demonstrator_action`` (when the history has it).
    """
    from minari.data_collector import EpisodeBuffer

    obs, act, rew = data["proprio_observation"], data["action"], data["reward"]
    demo = data.get(DEMONSTRATOR_KEY)
    eps = schedule.eps(np.arange(len(rew))).astype(np.float32) if schedule is not None else None
    segments = episode_segments(data["step_num"])
    buffers, metas, skipped = [], [], 0
    for k, (s, n) in enumerate(segments.tolist()):
        if n < 2:
            skipped += 1
            continue
        e = s + n  # rows s .. e-1; the step of row e-1 is dropped
        infos = {}
        if eps is not None:
            infos["noise_eps"] = eps[s:e]
        if demo is not None:
            infos[DEMONSTRATOR_KEY] = demo[s:e]
        truncations = np.zeros(n - 1, bool)
        truncations[-1] = True
        buffers.append(EpisodeBuffer(observations=obs[s:e], actions=act[s:e - 1], rewards=rew[s:e - 1],
                                     terminations=np.zeros(n - 1, bool), truncations=truncations, infos=infos))
        m: dict[str, Any] = {
            "history": index, "episode_in_history": k, "source_first_row": s, "source_rows": n,
            "source_return": float(rew[s:e].astype(np.float64).sum()),
            "source_end": _source_end(n, k == len(segments) - 1, max_episode_steps, last_complete),
        }
        if eps is not None:
            m.update(noise_eps_first=float(eps[s]), noise_eps_last=float(eps[e - 2]))
        if task_id is not None:
            m["task_id"] = task_id
        m.update({f"task/{name}": float(v) for name, v in (task or {}).items()})  # read back as {"task": {...}}
        if task_refs is not None:
            m["ref_min_score"], m["ref_max_score"] = float(task_refs[0]), float(task_refs[1])
        metas.append(m)
    return buffers, metas, skipped


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError(f"{out}: exists and is not a folder; give a new folder for the Minari export")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out}: folder exists and is not empty; give a new (or empty) folder for the Minari export")


def _check_id(dataset_id: str) -> None:
    if not _ID_RE.match(dataset_id):
        raise ValueError(f"dataset id {dataset_id!r}: expected (namespace/)name-vN with letters, digits, '-' and '_', "
                         "e.g. go2bench/go2-velocity/ad-v0")


@contextlib.contextmanager
def _datasets_root(path: Path) -> Iterator[None]:
    """Minari writes under $MINARI_DATASETS_PATH (default ~/.minari): point it at ``path`` meanwhile."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def export_minari(dataset_dir, out, *, dataset_id: str | None = None, ref_min_score: float | None = None,
                  ref_max_score: float | None = None, ref_source: str | None = None,
                  task_refs: dict[str, tuple[float, float]] | None = None, author: str | None = None,
                  on_history=None) -> dict[str, Any]:
    """Write ``dataset_dir`` (a valid learning-history dataset) as a Minari dataset under the new folder ``out``.

    ``out`` becomes a Minari datasets root: ``MINARI_DATASETS_PATH=out`` makes
    ``minari.load_dataset(dataset_id)`` find it.  The export is built in a hidden sibling folder
    and renamed to ``out`` when complete, so a failure leaves nothing behind.  ``ref_min_score``
    and ``ref_max_score`` (both or neither) go to the dataset metadata; ``task_refs`` maps a
    family's task id to its (random, expert) returns, stored with each episode of that theta.
    ``on_history(index)`` is called after each history.  Returns a summary.
    """
    minari = import_minari()
    d, out = Path(dataset_dir), Path(out)
    problems, data_warnings = dataset_report(d)
    if problems:
        raise ValueError(f"{d}: not a valid learning-history dataset ({len(problems)} problem(s), first: "
                         f"{problems[0]}); `go2bench data check {d}` lists them all")
    _check_out(out)
    meta = read_metadata(d)
    dataset_id = dataset_id or default_dataset_id(d, meta)
    _check_id(dataset_id)
    if (ref_min_score is None) != (ref_max_score is None):
        raise ValueError("give both reference scores (random and expert return) or neither")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".minari-partial", dir=out.parent))
    t0 = time.perf_counter()
    try:
        umask = os.umask(0o22)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make the export private
        with _datasets_root(tmp), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"minari\.")  # fields we leave None
            summary = _write(minari, d, meta, dataset_id, author, task_refs or {}, on_history)
            extra = {"go2bench": {**summary["go2bench"], "reference_scores_source": ref_source,
                                  "check_warnings": data_warnings}}
            if ref_min_score is not None:
                extra.update(ref_min_score=float(ref_min_score), ref_max_score=float(ref_max_score))
            summary.pop("dataset").storage.update_metadata(extra)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    g = summary["go2bench"]
    return {"out": str(out), "dataset_id": dataset_id, "episodes": g["episodes"], "steps": g["steps"],
            "histories": g["histories"], "source_transitions": g["source_transitions"],
            "dropped_final_steps": g["dropped_final_steps"], "skipped_one_row_episodes": g["skipped_one_row_episodes"],
            "ref_min_score": ref_min_score, "ref_max_score": ref_max_score, "warnings": data_warnings,
            "wall_s": round(time.perf_counter() - t0, 2)}


def _write(minari, d: Path, meta: dict, dataset_id: str, author, task_refs: dict, on_history) -> dict[str, Any]:
    from gymnasium import spaces

    obs_dim, act_dim = meta["observation_shape"]["proprio"][0], meta["action_dim"]
    bounds = meta.get("action_bounds") or {}
    low = np.asarray(bounds.get("low", [-np.inf] * act_dim), np.float32)
    high = np.asarray(bounds.get("high", [np.inf] * act_dim), np.float32)
    obs_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = spaces.Box(low, high, (act_dim,), np.float32)
    noise = meta.get("noise")
    try:
        schedule = NoiseSchedule(**noise) if noise is not None else None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{metadata_path(d)}: field noise {noise!r} is not a noise schedule ({exc})") from None
    collection = meta.get("collection") if isinstance(meta.get("collection"), dict) else None
    max_steps = (collection or {}).get("max_episode_steps")
    dataset, episodes, steps, rows, skipped, histories, with_demo = None, 0, 0, 0, 0, 0, 0
    for h5 in history_files(d):
        i = history_index(h5)
        hmeta = read_json_object(h5.with_suffix(".json"), "per-history metadata")
        planned = (meta.get("tasks") or {}).get(str(i), {})
        task_id = hmeta.get("task_id", planned.get("task_id"))
        data = read_history(h5)
        buffers, metas, k = history_episodes(
            data, i, schedule=schedule, max_episode_steps=max_steps, last_complete=collection is not None,
            task=hmeta.get("task", planned.get("task")), task_id=task_id, task_refs=task_refs.get(task_id))
        rows += len(data["reward"])
        with_demo += DEMONSTRATOR_KEY in data
        skipped += k
        histories += 1
        if buffers:
            if dataset is None:
                dataset = minari.create_dataset_from_buffers(
                    dataset_id, buffers, observation_space=obs_space, action_space=act_space, author=author,
                    algorithm_name="go2bench learning histories: teacher actions blended with fading noise",
                    description=_description(d, meta), data_format="hdf5")
            else:
                dataset.update_dataset_from_buffer(buffers)
            dataset.storage.update_episode_metadata(metas, range(episodes, episodes + len(metas)))
            episodes += len(metas)
            steps += sum(len(b) for b in buffers)
        if on_history is not None:
            on_history(i)
    if dataset is None:
        raise ValueError(f"{d}: no episode with two or more rows: nothing to export")
    keep = ("format", "task_name", "env_id", "robot", "family", "obs_mode", "observation_layout", "task_layout",
            "noise", "reward_scale", "action_bounds", "seed", "teacher")
    info = {k: meta[k] for k in keep if k in meta}
    info.update({
        "source_dataset": d.resolve().name, "max_episode_steps": max_steps,
        "split": (collection or {}).get("split") if meta.get("family") else None,
        "final_step_rule": FINAL_STEP_RULE, "histories": histories, "episodes": episodes, "steps": steps,
        "source_transitions": rows, "dropped_final_steps": episodes, "skipped_one_row_episodes": skipped,
        "infos": {"noise_eps": "per observation: noise weight eps of the action taken there" if schedule else None,
                  DEMONSTRATOR_KEY: f"per observation: the teacher's clean action there ({with_demo} of {histories} "
                                    "histories have it)" if with_demo else None},
        "rewards": "as collected (reward_scale not applied)",
        "exported_with": versions(),
    })
    json.dumps(info)  # fail here, not in Minari, on a value JSON cannot hold
    return {"dataset": dataset, "go2bench": info}


def _description(d: Path, meta: dict) -> str:
    what = f"{meta.get('env_id') or meta.get('task_name') or d.name}"
    if meta.get("family"):
        what += f", {meta['family']} family (one hidden theta per history, in the episode metadata)"
    return (f"go2bench learning histories of {what}: {meta.get('num_histories', '?')} histories in which a teacher's "
            f"actions are blended with noise that fades over each history (Algorithm Distillation data); "
            f"exported from the Vintix HDF5 layout. {FINAL_STEP_RULE}")
