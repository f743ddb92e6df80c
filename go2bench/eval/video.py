"""``go2bench video``: a clip of agents walking, chosen episodes of an in-context run side by side.

Each agent runs the evaluation's own loop (:func:`go2bench.eval.episodes.run_episodes`) for K
consecutive episodes in one env with a camera (the simulation's, moved by :func:`render_following`), from
a cold start with the same seed, so every agent meets the same commands and start. Only the chosen
episodes are rendered, and only every ``stride``-th step of them: rendering costs far more than
simulating (3-25 frames/s against about 1,000 steps/s on 2 CPU cores), so Vintix's episode K costs
its K - 1 earlier episodes in simulation only.

A panel is ``AGENT@EPISODES``: ``vintix@1,last`` is two panels, Vintix in its first and its last
episode; a bare ``teacher`` is its episode 1. The clip's JSON (next to it) records the config,
each panel's return, the rendering time and the versions.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from go2bench.core.provenance import file_sha256, hardware, versions, write_json_atomic
from go2bench.envs.walk_sim import WalkSimulation
from go2bench.eval.episodes import run_episodes
from go2bench.eval.video_io import check_clip_path, compose_panels, encoder_versions, write_clip

__all__ = ["PanelSpec", "parse_panels", "render_following", "EpisodeFrames", "record_panels", "render_clip", "metadata_path"]

_EPISODES = re.compile(r"^(\d+|last)(,(\d+|last))*$")
# where the camera sits relative to the base for a robot standing 0.3 m high (Go2, Mini Cheetah: the
# simulation's own camera); scaled by each robot's base height target, so ANYmal C fits the frame too
CAMERA_OFFSET = np.array([1.2, -1.2, 0.5])
GO2_HEIGHT = 0.3


def render_following(sim: WalkSimulation) -> np.ndarray:
    """An RGB frame of env 0 from the simulation's camera, placed at the robot's scale behind its base."""
    if sim.camera is None:
        raise RuntimeError("this simulation was built without a camera; build it with render=True")
    base = sim.base_pos[0].detach().cpu().numpy().astype(float)
    offset = CAMERA_OFFSET * (sim.robot_description.base_height_target / GO2_HEIGHT)
    sim.camera.set_pose(pos=tuple(base + offset), lookat=tuple(base))
    return np.ascontiguousarray(np.asarray(sim.camera.render(rgb=True)[0], dtype=np.uint8))


@dataclass(frozen=True)
class PanelSpec:
    """One panel: ``agent`` (a registry spec, ``NAME[:checkpoint]``) in its ``episode`` (1-based, or "last")."""

    agent: str
    episode: int | str = 1

    def index(self, episodes: int) -> int:
        """The 0-based episode index in a run of ``episodes`` episodes."""
        e = episodes if self.episode == "last" else int(self.episode)
        if not 1 <= e <= episodes:
            raise ValueError(f"panel {self.agent}@{self.episode}: episode {e} is outside the run's 1..{episodes} "
                             f"(raise --episodes or choose another episode)")
        return e - 1


def parse_panels(text: str) -> list[PanelSpec]:
    """``"vintix@1,last"`` -> two panels; ``"teacher"`` -> episode 1. A checkpoint path may hold '@'."""
    text = text.strip()
    if not text:
        raise ValueError("empty agent; expected AGENT[@EPISODES], e.g. teacher or vintix@1,last")
    agent, sep, tail = text.rpartition("@")
    if not sep or not _EPISODES.match(tail):
        return [PanelSpec(text, 1)]
    if not agent:
        raise ValueError(f"{text!r}: no agent before '@'; expected AGENT[@EPISODES], e.g. vintix@1,last")
    out = []
    for item in tail.split(","):
        if item != "last" and int(item) < 1:
            raise ValueError(f"{text!r}: episodes are counted from 1")
        out.append(PanelSpec(agent, item if item == "last" else int(item)))
    return out


class EpisodeFrames:
    """A ``run_episodes`` recorder: every ``stride``-th state of env 0 in the ``keep`` episodes, timed.

    Beside each frame it keeps the base's horizontal distance from where the episode started (m):
    the camera follows the robot, so the picture alone hides how far it walked.
    """

    def __init__(self, keep: Sequence[int], stride: int = 1, render: Callable[[Any], np.ndarray] = render_following
                 ) -> None:
        if stride < 1:
            raise ValueError(f"stride must be at least 1, got {stride}")
        self.stride = int(stride)
        self.render = render
        self.frames: dict[int, list[np.ndarray]] = {int(e): [] for e in keep}
        self.distance: dict[int, list[float]] = {int(e): [] for e in keep}
        self._start: np.ndarray | None = None
        self.render_s = 0.0

    def __call__(self, episode: int, step: int, sim: WalkSimulation) -> None:
        if episode in self.frames and step % self.stride == 0:
            xy = sim.base_pos[0, :2].detach().cpu().numpy().astype(float)
            if step == 0:
                self._start = xy
            self.distance[episode].append(float(np.linalg.norm(xy - self._start)))
            t0 = time.perf_counter()
            self.frames[episode].append(self.render(sim))
            self.render_s += time.perf_counter() - t0

    @property
    def count(self) -> int:
        return sum(len(f) for f in self.frames.values())


def record_panels(sim: WalkSimulation, env_id: str, agents: dict[str, Any], panels: Sequence[PanelSpec],
                  episodes: int, seed: int = 0, stride: int = 2,
                  render: Callable[[Any], np.ndarray] = render_following) -> list[dict[str, Any]]:
    """Run each agent of ``agents`` (spec -> built agent) for ``episodes`` episodes on env 0 of ``sim``.

    Returns one dict per panel, in order: ``frames``, ``distance`` (per frame, m, see
    :class:`EpisodeFrames`), ``return``, ``length``, ``fell`` (the episode's),
    and, on each agent's first panel, its run's ``render_s``, ``run_s``, ``rendered`` (frames) and ``steps``.
    """
    if sim.num_envs != 1:
        raise ValueError(f"record_panels renders env 0 of a 1-env simulation; this one has {sim.num_envs}")
    wanted: dict[str, list[int]] = {}
    for p in panels:
        wanted.setdefault(p.agent, []).append(p.index(episodes))
    runs = {}
    for spec, keep in wanted.items():
        rec = EpisodeFrames(keep, stride, render)
        t0 = time.perf_counter()
        run = run_episodes(agents[spec], env_id, sim, [episodes], seed, recorder=rec)
        runs[spec] = (rec, {r.episode: r for r in run["records"]},
                      {"render_s": rec.render_s, "run_s": time.perf_counter() - t0, "rendered": rec.count,
                       "steps": run["steps"]})
    out, timed = [], set()
    for p in panels:
        rec, records, timing = runs[p.agent]
        e = p.index(episodes)
        r = records[e]
        entry = {"agent": p.agent, "episode": e + 1, "frames": rec.frames[e], "distance": rec.distance[e],
                 "return": r.ret, "length": r.length, "fell": r.fell}
        if p.agent not in timed:
            entry.update(timing)
            timed.add(p.agent)
        out.append(entry)
    return out


def panel_label(entry: dict[str, Any], episodes: int) -> str:
    fell = ", fell" if entry["fell"] else ""
    return f"{entry['agent']}  episode {entry['episode']}/{episodes}  return {entry['return']:.2f}{fell}"


def metadata_path(out: str | Path) -> Path:
    """The JSON beside a clip: ``clip.mp4`` -> ``clip.json``."""
    return Path(out).with_suffix(".json")


def render_clip(env_id: str, panels: Sequence[PanelSpec], out: str | Path, episodes: int = 3, seed: int = 0,
                max_episode_steps: int = 400, fps: float = 25.0, backend: str = "cpu", device: str = "cpu",
                obs_mode: str | None = None, title: str | None = None) -> dict[str, Any]:
    """Render ``panels`` of ``env_id`` side by side to ``out`` (.mp4/.gif) and its JSON; returns the JSON's dict.

    Every agent runs ``episodes`` episodes of ``max_episode_steps`` steps from seed ``seed``; a frame
    every ``round(control rate / fps)`` steps, so the clip plays at about real time. Agents are built
    (and a bad spec reported) before the scene; ``obs_mode``: default the agents' model cards'.
    """
    from go2bench.agents.registry import make_agent
    from go2bench.envs.walk_sim import make_walk_sim

    out = check_clip_path(out)
    if not panels:
        raise ValueError("no panels to render: give at least one --agent")
    if episodes < 1 or max_episode_steps < 1 or not fps > 0:
        raise ValueError("episodes and max_episode_steps must be at least 1 and fps positive")
    for p in panels:
        p.index(episodes)
    agents = {}
    for p in panels:
        if p.agent not in agents:
            agents[p.agent] = make_agent(p.agent, env_id, device=device, seed=seed)
            try:  # a Vintix checkpoint without this robot's group fails here, before the scene is built
                agents[p.agent].reset(1, env_id, seed)
            except KeyError as e:
                raise ValueError(f"agent {p.agent!r} cannot run {env_id}: {e.args[0] if e.args else e}") from None
    modes = {(getattr(a, "model_card", None) or {}).get("obs_mode") for a in agents.values()} - {None}
    if obs_mode is None and len(modes) > 1:
        raise ValueError(f"the agents were trained on different obs modes {sorted(modes)}; give obs_mode")
    t0 = time.perf_counter()
    sim = make_walk_sim(env_id, 1, backend, obs_mode=obs_mode or next(iter(modes), None),
                        max_episode_steps=max_episode_steps, render=True)
    build_s = time.perf_counter() - t0
    try:
        stride = max(1, round(1.0 / (sim.config.dt * fps)))
        entries = record_panels(sim, env_id, agents, panels, episodes, seed, stride)
        speed = fps * stride * sim.config.dt
    finally:
        sim.close()
    caption = title if title is not None else (
        f"{env_id}  seed {seed}  {episodes} episodes of {max_episode_steps * sim.config.dt:g} s per agent, "
        f"context kept across them  ({speed:g}x speed)")
    frames = compose_panels([e["frames"] for e in entries], [panel_label(e, episodes) for e in entries], caption,
                            notes=[[f"{d:.1f} m" for d in e["distance"]] for e in entries])
    write_clip(frames, out, fps)
    render_s = sum(e.get("render_s", 0.0) for e in entries)
    rendered = sum(e.get("rendered", 0) for e in entries)
    meta = {
        "clip": out.name,
        "config": {"env_id": env_id, "panels": [asdict(p) for p in panels], "episodes": episodes, "seed": seed,
                   "max_episode_steps": max_episode_steps, "fps": fps, "stride": stride, "playback_speed": speed,
                   "backend": backend, "device": device, "obs_mode": sim.config.obs_mode, "title": caption},
        "panels": [{k: v for k, v in e.items() if k not in ("frames", "distance")}
                   | {"frames_rendered": len(e["frames"]), "distance_shown_m": round(e["distance"][-1], 3)}
                   for e in entries],
        "clip_frames": len(frames),
        "frame_size": list(frames[0].shape[:2]),
        "seconds": round(len(frames) / fps, 2),
        "bytes": out.stat().st_size,
        "sha256": file_sha256(out),
        "scene_build_s": round(build_s, 2),
        "render_s": round(render_s, 2),
        "render_fps": round(rendered / render_s, 2) if render_s > 0 else None,
        "versions": versions() | encoder_versions(),
        "hardware": hardware(device, backend),
    }
    write_json_atomic(metadata_path(out), meta)
    return meta
