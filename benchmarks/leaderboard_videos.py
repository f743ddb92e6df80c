"""Leaderboard clips: per robot, the shipped teacher beside the shipped Vintix in episode 1 and in its last episode.

Each robot's clip is ``go2bench video`` (:func:`go2bench.eval.video.render_clip`) with the panels
``teacher@1`` and ``vintix@1,last``: every agent runs ``--episodes`` consecutive short episodes
(``--max-episode-steps``, 400 = 8 s) from the same seeded cold start, Vintix keeping its context
across them; only the shown episodes are rendered, one frame every other control step (25 fps,
real time). Robots the shipped Vintix was not trained on get the teacher alone, in one episode (their
title says so).

Usage::

    python benchmarks/leaderboard_videos.py                               # every robot (about 25 min on 2 busy cores)
    python benchmarks/leaderboard_videos.py --envs Go2Walk-v0 MiniCheetahWalk-v0

Writes ``benchmarks/leaderboard/videos/<env>.mp4`` with its ``<env>.json`` (config, returns,
timings, versions), an ``index.md`` of every clip there, and ``benchmarks/results/leaderboard_videos.json``
(updated per env, so robots can be rendered in separate runs). The table's baseline is the same
runs' time outside the camera (simulation and agent): ``render x`` is how much longer the runs took
with rendering.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VIDEO_DIR = ROOT / "leaderboard" / "videos"
RESULTS = ROOT / "results" / "leaderboard_videos.json"


def vintix_envs() -> set[str]:
    """The envs the shipped Vintix was trained on (its model card's groups)."""
    from go2bench.agents.vintix_agent import DEFAULT_CHECKPOINT

    card = json.loads((DEFAULT_CHECKPOINT.parent / "model_card.json").read_text())
    return set(card["groups"].values())


def clip_for(env_id: str, args) -> dict:
    from go2bench.eval.video import PanelSpec, render_clip

    panels, title, episodes = [PanelSpec("teacher", 1)], None, args.episodes
    if env_id in vintix_envs():
        panels += [PanelSpec("vintix", 1), PanelSpec("vintix", "last")]
    else:  # the teacher alone: one episode is all it shows
        title, episodes = f"{env_id}  seed {args.seed}  (no Vintix for this robot)", 1  # fits a 320-pixel panel
    t0 = time.perf_counter()
    meta = render_clip(env_id, panels, VIDEO_DIR / f"{env_id}.mp4", episodes=episodes, seed=args.seed,
                       max_episode_steps=args.max_episode_steps, fps=args.fps, title=title)
    meta["total_s"] = round(time.perf_counter() - t0, 1)
    return meta


def row(env_id: str, m: dict) -> dict:
    runs = [p for p in m["panels"] if "run_s" in p]
    run_s, render_s = sum(p["run_s"] for p in runs), sum(p["render_s"] for p in runs)
    steps = sum(p["steps"] for p in runs)
    return {
        "env": env_id,
        "panels": "; ".join(f"{p['agent']} ep {p['episode']}: {p['return']:.2f}" for p in m["panels"]),
        "frames rendered": sum(p["rendered"] for p in runs),
        "render fps": m["render_fps"],
        "sim+agent steps/s": round(steps / (run_s - render_s), 1),
        "render x": round(run_s / (run_s - render_s), 1),
        "build s": m["scene_build_s"],
        "MB": round(m["bytes"] / 1e6, 2),
        "clip s": m["seconds"],
    }


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


def write_index(clips: dict) -> None:
    """``videos/index.md``: one line per clip with its panels' returns, from the clips' JSON."""
    lines = ["# Leaderboard clips", "",
             "Rendered headless by `python benchmarks/leaderboard_videos.py` (`go2bench video`); each clip's "
             "JSON holds its config, returns and versions. Returns are over the short episodes shown, "
             "not the leaderboard's 1000-step ones.", ""]
    for env_id, m in clips.items():
        c = m["config"]
        shown = ", ".join(f"{p['agent']} episode {p['episode']} (return {p['return']:.2f}"
                          f"{', fell' if p['fell'] else ''})" for p in m["panels"])
        lines.append(f"- [{env_id}]({env_id}.mp4): {shown}; {c['episodes']} episodes of {c['max_episode_steps']} "
                     f"steps per agent, seed {c['seed']}, {m['seconds']} s, {m['bytes'] / 1e6:.2f} MB")
    (VIDEO_DIR / "index.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    from go2bench.core.provenance import hardware, versions, write_json_atomic
    from go2bench.envs.registry import env_ids

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", nargs="+", default=env_ids(), choices=env_ids())
    ap.add_argument("--episodes", type=int, default=3, help="consecutive episodes per agent (Vintix's context)")
    ap.add_argument("--max-episode-steps", type=int, default=400)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    VIDEO_DIR.mkdir(parents=True, exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    clips = dict(old.get("clips", {}))
    for env_id in args.envs:
        clips[env_id] = clip_for(env_id, args)
        print(f"{env_id}: {clips[env_id]['total_s']} s", flush=True)
    clips = {e: clips[e] for e in env_ids() if e in clips}
    rows = [row(e, m) for e, m in clips.items()]
    print_table(rows)
    write_index(clips)
    write_json_atomic(RESULTS, {
        "benchmark": "leaderboard_videos", "date": _dt.date.today().isoformat(), "last_run_envs": args.envs,
        "config": vars(args), "versions": versions(), "hardware": hardware(), "table": rows, "clips": clips,
    })
    print(f"wrote {VIDEO_DIR}/ and {RESULTS}")


if __name__ == "__main__":
    main()
