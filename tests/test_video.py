"""Leaderboard clips: panel layout and labels, encoders read back by another decoder (PyAV), the
recorder hook of the episode loop, bad inputs, and (slow) frames of a real Go2 scene."""

from __future__ import annotations

import types
from fractions import Fraction

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from go2bench.cli import main
from go2bench.eval import video_io
from go2bench.eval.protocol import run_episodes
from go2bench.eval.video import EpisodeFrames, PanelSpec, parse_panels, record_panels
from go2bench.eval.video_io import (LABEL_HEIGHT, SEPARATOR, TITLE_COLOUR, check_clip_path, compose_panels, label_band,
                                    write_clip)

import av  # noqa: E402  (PyAV, a genesis-world dependency: a decoder independent of the ffmpeg binary and of Pillow)


def solid(h, w, rgb):
    return np.tile(np.array(rgb, dtype=np.uint8), (h, w, 1))


def moving_square(n, h=48, w=64):
    """n frames, few colours: a white 8x8 square moving right on dark blue, frame t at x = 4t."""
    frames = []
    for t in range(n):
        f = solid(h, w, (10, 20, 90))
        f[20:28, 4 * t:4 * t + 8] = 255
        frames.append(f)
    return frames


def decode(path):
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return frames, stream


# ---------------------------------------------------------------------------------- layout and labels
def test_label_band_draws_text_only_when_given():
    empty, text = label_band(100, ""), label_band(100, "teacher")
    assert empty.shape == text.shape == (LABEL_HEIGHT, 100, 3) and text.dtype == np.uint8
    assert len(np.unique(empty.reshape(-1, 3), axis=0)) == 1  # the background colour alone
    ink = (text.astype(int) - empty.astype(int)).any(axis=2)
    assert 20 < ink.sum() < 0.6 * ink.size  # glyphs, not a filled band
    assert ink[:, :3].sum() == 0 and ink[:, 60:].sum() == 0  # left-aligned after a margin, short
    assert not np.array_equal(text, label_band(100, "vintix"))
    right = (label_band(100, "", right="2.5 m").astype(int) - empty.astype(int)).any(axis=2)
    assert right[:, :50].sum() == 0 and right[:, 50:97].sum() > 10 and right[:, 98:].sum() == 0  # right-aligned
    long = "a label far too long for a band of a hundred pixels"  # cut to fit and marked, not run off the edge
    assert np.array_equal(label_band(100, long), label_band(100, long[:len(long) - 1]))
    assert not np.array_equal(label_band(100, long), label_band(100, long[:8]))


def test_compose_panels_places_each_panel_under_its_label_and_holds_short_ones():
    h, w = 10, 40
    a = [solid(h, w, (200, 0, 0)), solid(h, w, (210, 0, 0))]  # two frames
    b = [solid(h, w, (0, 0, 50 + 10 * t)) for t in range(4)]  # four frames
    out = compose_panels([a, b], ["A", "B"], title="title")
    assert len(out) == 4  # the longer panel's length
    assert all(f.shape == (2 * LABEL_HEIGHT + h, 2 * w + SEPARATOR, 3) and f.dtype == np.uint8 for f in out)
    for t, f in enumerate(out):
        np.testing.assert_array_equal(f[2 * LABEL_HEIGHT:, :w], a[min(t, 1)])  # panel A holds its last frame
        np.testing.assert_array_equal(f[2 * LABEL_HEIGHT:, w + SEPARATOR:], b[t])
        assert not f[2 * LABEL_HEIGHT:, w:w + SEPARATOR].any()  # black separator
        np.testing.assert_array_equal(f[:LABEL_HEIGHT], label_band(2 * w + SEPARATOR, "title", background=TITLE_COLOUR))
        np.testing.assert_array_equal(f[LABEL_HEIGHT:2 * LABEL_HEIGHT, :w], label_band(w, "A"))
        np.testing.assert_array_equal(f[LABEL_HEIGHT:2 * LABEL_HEIGHT, w + SEPARATOR:], label_band(w, "B"))
    # per-frame notes at the right of each label; a short panel keeps its last one
    out = compose_panels([a, b], ["A", "B"], notes=[["a0", "a1"], ["b0", "b1", "b2", "b3"]])
    np.testing.assert_array_equal(out[3][LABEL_HEIGHT:2 * LABEL_HEIGHT, :w], label_band(w, "A", right="a1"))
    np.testing.assert_array_equal(out[2][LABEL_HEIGHT:2 * LABEL_HEIGHT, w + SEPARATOR:], label_band(w, "B", right="b2"))
    with pytest.raises(ValueError, match="one string per frame"):
        compose_panels([a, b], ["A", "B"], notes=[["a0"], ["b0", "b1", "b2", "b3"]])


def test_compose_panels_refuses_mismatched_input():
    f = solid(4, 4, (1, 2, 3))
    with pytest.raises(ValueError, match="2 panels but 1 labels"):
        compose_panels([[f], [f]], ["a"])
    with pytest.raises(ValueError, match=r"panel 1 has frames of shape \[\(4, 6, 3\)\]"):
        compose_panels([[f], [solid(4, 6, (0, 0, 0))]], ["a", "b"])
    with pytest.raises(ValueError, match=r"panel\(s\) \[0\] have no frames"):
        compose_panels([[], [f]], ["a", "b"])


# ---------------------------------------------------------------------------------- encoders
def test_mp4_round_trip_through_pyav(tmp_path):
    frames = moving_square(12)
    path = write_clip(frames, tmp_path / "clip.mp4", fps=25)
    got, stream = decode(path)
    assert len(got) == 12 and all(g.shape == (48, 64, 3) for g in got)
    assert stream.average_rate == Fraction(25) and stream.codec_context.name == "h264"
    for t, g in enumerate(got):  # lossy, but each decoded frame is its own source, in order
        errors = [np.abs(g.astype(int) - f.astype(int)).mean() for f in frames]
        assert int(np.argmin(errors)) == t and errors[t] < 6
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary file left


def test_mp4_pads_odd_sizes_to_even(tmp_path):
    got, _ = decode(write_clip([solid(15, 21, (0, 128, 0))] * 3, tmp_path / "odd.mp4", fps=10))
    assert len(got) == 3 and got[0].shape == (16, 22, 3)


def test_gif_round_trip_is_exact_and_keeps_the_frame_rate(tmp_path):
    frames = moving_square(6)
    path = write_clip(frames, tmp_path / "clip.gif", fps=25)
    with av.open(str(path)) as c:
        decoded = list(c.decode(video=0))
        got = [f.to_ndarray(format="rgb24") for f in decoded]
        durations = [float(f.duration * f.time_base) for f in decoded if f.duration]
    assert len(got) == 6
    for g, f in zip(got, frames):  # three colours: the palette holds them exactly
        np.testing.assert_array_equal(g, f)
    assert durations and all(d == pytest.approx(0.04) for d in durations)  # 25 fps: 4 hundredths of a second


def test_a_failed_encode_leaves_nothing(tmp_path, monkeypatch):
    def broken(frames, path, fps):
        with open(path, "wb") as f:
            f.write(b"half a video")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video_io, "_write_mp4", broken)
    with pytest.raises(OSError, match=r"clip.mp4: failed to write the video \(disk full\)"):
        write_clip(moving_square(2), tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


def test_clip_paths_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"clip.avi: unknown video format '.avi'; name the file .mp4 or .gif"):
        check_clip_path(tmp_path / "clip.avi")
    with pytest.raises(ValueError, match=r"\(no extension\)"):
        check_clip_path(tmp_path / "clip")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="cannot create its folder"):
        check_clip_path(tmp_path / "file" / "clip.mp4")
    with pytest.raises(ValueError, match="frames must all be"):
        write_clip([solid(4, 4, (0, 0, 0)), solid(4, 6, (0, 0, 0))], tmp_path / "x.gif")
    assert check_clip_path(tmp_path / "new" / "c.GIF") == tmp_path / "new" / "c.GIF"


# ---------------------------------------------------------------------------------- panels and the recorder hook
def test_panel_specs():
    assert parse_panels("vintix@1,last") == [PanelSpec("vintix", 1), PanelSpec("vintix", "last")]
    assert parse_panels(" teacher ") == [PanelSpec("teacher", 1)]
    assert parse_panels("teacher:/runs/a@b/final.zip") == [PanelSpec("teacher:/runs/a@b/final.zip", 1)]
    assert parse_panels("vintix:/m@x.pt@3") == [PanelSpec("vintix:/m@x.pt", 3)]
    assert [p.index(4) for p in parse_panels("vintix@1,last,2")] == [0, 3, 1]
    with pytest.raises(ValueError, match="episode 5 is outside the run's 1..4"):
        PanelSpec("vintix", 5).index(4)
    with pytest.raises(ValueError, match="counted from 1"):
        parse_panels("vintix@0")


class StepSim:
    """One env whose episodes last 5 steps; its "frame" is the step count within the episode."""

    def __init__(self):
        self.num_envs, self.device, self.obs_dim, self.max_episode_steps = 1, torch.device("cpu"), 2, 5
        self.robot_description = types.SimpleNamespace(num_joints=1)
        self.config = types.SimpleNamespace(obs_mode="noleak")
        self.commands = torch.zeros(1, 3)
        self.base_lin_vel = torch.zeros(1, 3)
        self.t, self.renders = 0, 0
        self.base_pos = torch.zeros(1, 3)

    def seed(self, seed):
        pass

    def reset(self, mask=None):
        self.t = 0
        return torch.zeros(1, 2)

    def step(self, actions):
        self.t += 1
        self.base_pos[0, :2] += torch.tensor([0.3, 0.4])  # 0.5 m per step
        end = torch.tensor([self.t >= 5])
        return types.SimpleNamespace(obs=torch.zeros(1, 2), reward=torch.ones(1), terminated=torch.zeros(1, dtype=bool),
                                     truncated=end, diverged=torch.zeros(1, dtype=bool))

    def render(self):
        self.renders += 1
        return np.full((2, 2, 3), self.t, np.uint8)


class Zero:
    name = "zero"

    def reset(self, num_envs, env_id, seed=None):
        pass

    def act(self, obs, prev_reward, episode_start):
        return torch.zeros(1, 1)


def test_recorder_sees_every_state_of_env0_and_renders_only_what_it_keeps():
    calls = []
    run_episodes(Zero(), "Go2Walk-v0", StepSim(), [3], 0, recorder=lambda e, s, sim: calls.append((e, s, sim.t)))
    assert calls == [(e, s, s) for e in range(3) for s in range(5)]  # the state after s steps of episode e
    sim = StepSim()
    rec = EpisodeFrames(keep=[0, 2], stride=2, render=lambda s: s.render())
    run_episodes(Zero(), "Go2Walk-v0", sim, [3], 0, recorder=rec)
    assert sorted(rec.frames) == [0, 2] and sim.renders == rec.count == 6
    assert [[int(f[0, 0, 0]) for f in rec.frames[e]] for e in (0, 2)] == [[0, 2, 4], [0, 2, 4]]
    # distance from the episode's start, though the base never returns to the origin (reset keeps it)
    assert rec.distance == {0: pytest.approx([0.0, 1.0, 2.0]), 2: pytest.approx([0.0, 1.0, 2.0])}
    frames = []  # the older frames/max_frames form still records the first frames
    run_episodes(Zero(), "Go2Walk-v0", StepSim(), [3], 0, frames=frames, max_frames=7)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4, 0, 1]
    with pytest.raises(ValueError, match="frames or a recorder, not both"):
        run_episodes(Zero(), "Go2Walk-v0", StepSim(), [1], 0, frames=[], recorder=rec)


# ---------------------------------------------------------------------------------- the command's bad inputs
@pytest.mark.parametrize("args, message", [
    (["--agent", "nope"], "Error: unknown agent 'nope'; known agents:"),
    (["--agent", "teacher", "--out", "{tmp}/clip.webm"], "unknown video format '.webm'; name the file .mp4 or .gif"),
    (["--agent", "teacher", "--out", "{tmp}/file/clip.mp4"], "cannot create its folder"),
    (["--agent", "teacher@5"], "episode 5 is outside the run's 1..3"),
    (["--env", "A1Walk-v0", "--agent", "vintix@1,last"], "agent 'vintix' cannot run A1Walk-v0: no group"),
])
def test_video_command_bad_input_is_one_line_before_any_scene(tmp_path, monkeypatch, args, message):
    from go2bench.envs import genesis_runtime

    monkeypatch.setattr(genesis_runtime, "init", lambda *a, **k: pytest.fail("a scene was about to be built"))
    (tmp_path / "file").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "clip.mp4")]
    r = CliRunner().invoke(main, ["video", *args])
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output and not (tmp_path / "clip.mp4").exists()


# ---------------------------------------------------------------------------------- a real scene (slow)
@pytest.fixture(scope="module")
def go2_camera_sim():
    from go2bench.envs.walk_sim import make_walk_sim

    sim = make_walk_sim("Go2Walk-v0", 1, max_episode_steps=9, render=True)
    yield sim
    sim.close()


@pytest.mark.slow  # builds a Go2 scene with a camera (about a minute cold) and renders a few frames
def test_real_go2_frames_show_the_robot(go2_camera_sim, tmp_path):
    from go2bench.agents.registry import make_agent

    sim = go2_camera_sim
    teacher = make_agent("teacher", "Go2Walk-v0")
    (entry,) = record_panels(sim, "Go2Walk-v0", {"teacher": teacher}, [PanelSpec("teacher", 1)], episodes=1, stride=2)
    frames = entry["frames"]
    assert entry["length"] == 9 and len(frames) == 5 == entry["rendered"] == len(entry["distance"])  # steps 0, 2, .., 8
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert frames[0].std() > 5 and not np.array_equal(frames[0], frames[-1])  # an image, and it moves
    # rendering does not change the rollout: the same episode without a camera gives the same return
    plain = run_episodes(teacher, "Go2Walk-v0", sim, [1], 0)["records"][0]
    assert plain.ret == entry["return"]
    # the robot is in the picture: moving it away changes a blob of pixels around the image centre
    still = sim.render()  # episode over: the robot stands where the run ended, the camera on its base
    pose = sim.camera.pos, sim.camera.lookat
    sim.robot.set_pos(sim.base_pos + torch.tensor([[50.0, 50.0, 0.0]]))
    sim.camera.set_pose(pos=tuple(pose[0]), lookat=tuple(pose[1]))
    empty = np.asarray(sim.camera.render(rgb=True, force_render=True)[0])
    robot = np.abs(still.astype(int) - empty.astype(int)).max(axis=2) > 40
    ys, xs = np.nonzero(robot)
    assert 0.02 < robot.mean() < 0.5, robot.mean()
    assert abs(ys.mean() - 120) < 40 and abs(xs.mean() - 160) < 50
    # and the clip of those frames reads back with its panel and labels
    clip = compose_panels([frames], ["teacher  episode 1/1"], "Go2Walk-v0")
    got, _ = decode(write_clip(clip, tmp_path / "go2.mp4", fps=25))
    assert len(got) == 5 and got[0].shape == (240 + 2 * LABEL_HEIGHT, 320, 3)


@pytest.mark.slow  # reuses the module's Go2 scene; renders 15 frames
def test_video_command_writes_the_clip_and_its_json(go2_camera_sim, tmp_path, monkeypatch):
    import json

    from go2bench.envs import walk_sim

    def same_scene(env_id, num_envs, backend, obs_mode=None, max_episode_steps=None, render=False):
        assert (env_id, num_envs, max_episode_steps, render) == ("Go2Walk-v0", 1, 9, True)
        return go2_camera_sim

    monkeypatch.setattr(walk_sim, "make_walk_sim", same_scene)
    monkeypatch.setattr(go2_camera_sim, "close", lambda: None)  # the module's scene outlives the command
    out = tmp_path / "clips" / "go2.mp4"
    r = CliRunner().invoke(main, ["video", "--agent", "teacher", "--agent", "vintix@1,last", "--episodes", "2",
                                  "--max-episode-steps", "9", "--out", str(out)])
    assert r.exit_code == 0, r.output
    got, stream = decode(out)
    assert len(got) == 5 and got[0].shape == (240 + 2 * LABEL_HEIGHT, 3 * 320 + 2 * SEPARATOR, 3)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert [(p["agent"], p["episode"], p["frames_rendered"]) for p in meta["panels"]] == \
        [("teacher", 1, 5), ("vintix", 1, 5), ("vintix", 2, 5)]
    assert meta["config"]["stride"] == 2 and meta["config"]["playback_speed"] == 1.0 and meta["clip_frames"] == 5
    assert meta["panels"][1]["rendered"] == 10  # Vintix's one run rendered both of its episodes, no more
    assert meta["bytes"] == out.stat().st_size and "genesis-world" in meta["versions"]
    assert "vintix episode 2/2" in r.output
