"""Clips from rendered frames: labelled panels side by side, written as mp4 (ffmpeg) or GIF (Pillow).

Kept apart from the simulation so the layout and the encoders are tested with synthetic frames.
A clip is written to a temporary file beside its path and renamed, so a failed or interrupted
write never leaves half a video under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from go2bench.core.provenance import check_output_path, write_atomic

__all__ = ["CLIP_FORMATS", "LABEL_HEIGHT", "TITLE_COLOUR", "check_clip_path", "label_band", "compose_panels",
           "write_clip", "encoder_versions"]

CLIP_FORMATS = (".mp4", ".gif")
LABEL_HEIGHT = 16  # pixels of each text band (even: H.264's 4:2:0 frames need even sizes)
SEPARATOR = 2  # black pixels between panels
_BAND_COLOUR = (40, 40, 40)
TITLE_COLOUR = (0, 0, 0)  # the clip's top band, darker than the panels' labels
_TEXT_COLOUR = (235, 235, 235)


def check_clip_path(path: str | Path) -> Path:
    """Fail now, not after minutes of rendering: a known extension, an encoder for it, a writable folder."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in CLIP_FORMATS:
        raise ValueError(f"{p}: unknown video format {suffix or '(no extension)'!r}; name the file .mp4 or .gif")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ImportError(f"{p}: mp4 needs imageio-ffmpeg (pip install 'go2bench[video]'); "
                              "or write a .gif") from None
    check_output_path(p)
    try:  # a folder can exist and still refuse files (read-only mount, permissions)
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=p.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OSError(f"{p}: cannot write in {p.parent}: {e.strerror or e}") from None
    return p


def encoder_versions() -> dict[str, str]:
    """Versions of what drew and encoded a clip (Pillow; imageio-ffmpeg and its ffmpeg when installed)."""
    import PIL

    out = {"pillow": PIL.__version__}
    try:
        import imageio_ffmpeg

        out.update({"imageio-ffmpeg": imageio_ffmpeg.__version__, "ffmpeg": imageio_ffmpeg.get_ffmpeg_version()})
    except ImportError:
        out["imageio-ffmpeg"] = "missing"
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # a scalable font when Pillow has FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()  # the built-in bitmap font


def label_band(width: int, text: str, height: int = LABEL_HEIGHT, background=_BAND_COLOUR,
               right: str = "") -> np.ndarray:
    """A (height, width, 3) uint8 band: ``text`` left-aligned (cut to fit, ending "..."), ``right`` right-aligned."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (int(width), int(height)), tuple(background))
    draw, font = ImageDraw.Draw(img), _font(max(8, height - 4))
    right_w = draw.textlength(right, font=font) + 8 if right else 0
    if right:
        draw.text((int(width) - right_w + 4, 1), right, fill=_TEXT_COLOUR, font=font)
    if text:
        room = int(width) - 8 - right_w
        if draw.textlength(text, font=font) > room:  # cut, and say so, rather than run off the edge
            while text and draw.textlength(text + "...", font=font) > room:
                text = text[:-1]
            text = text.rstrip() + "..."
        draw.text((4, 1), text, fill=_TEXT_COLOUR, font=font)
    return np.asarray(img, dtype=np.uint8)


def compose_panels(panels: Sequence[Sequence[np.ndarray]], labels: Sequence[str], title: str = "",
                   notes: Sequence[Sequence[str]] | None = None) -> list[np.ndarray]:
    """Frames with the panels side by side, each under its label, under one ``title`` band.

    ``panels``: one list of (H, W, 3) uint8 frames per panel, all the same size. ``notes``: per panel
    one string per frame, shown at the right end of its label (e.g. the distance walked so far). The
    clip lasts as long as the longest panel; a shorter one (an episode that ended early) holds its
    last frame and note.
    Panels are separated by :data:`SEPARATOR` black columns. Output frames are
    (2 * LABEL_HEIGHT + H, n * W + (n - 1) * SEPARATOR, 3).
    """
    if not panels:
        raise ValueError("compose_panels needs at least one panel")
    if len(labels) != len(panels):
        raise ValueError(f"{len(panels)} panels but {len(labels)} labels")
    if any(len(p) == 0 for p in panels):
        raise ValueError(f"panel(s) {[i for i, p in enumerate(panels) if len(p) == 0]} have no frames")
    shape = np.shape(panels[0][0])
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) RGB arrays; got shape {shape}")
    for i, p in enumerate(panels):
        bad = {np.shape(f) for f in p} - {shape}
        if bad:
            raise ValueError(f"panel {i} has frames of shape {sorted(bad)}; every frame must be {shape}")
    if notes is not None and [len(x) for x in notes] != [len(p) for p in panels]:
        raise ValueError(f"notes must have one string per frame of each panel: {[len(x) for x in notes]} notes "
                         f"for {[len(p) for p in panels]} frames")
    h, w = shape[:2]
    n = len(panels)
    width = n * w + (n - 1) * SEPARATOR
    canvas = np.zeros((2 * LABEL_HEIGHT + h, width, 3), dtype=np.uint8)
    canvas[:LABEL_HEIGHT] = label_band(width, title, background=TITLE_COLOUR)
    x0s = [i * (w + SEPARATOR) for i in range(n)]
    for x0, text in zip(x0s, labels):
        canvas[LABEL_HEIGHT:2 * LABEL_HEIGHT, x0:x0 + w] = label_band(w, text)
    out = []
    for t in range(max(len(p) for p in panels)):
        frame = canvas.copy()
        for i, (x0, p) in enumerate(zip(x0s, panels)):
            k = min(t, len(p) - 1)
            frame[2 * LABEL_HEIGHT:, x0:x0 + w] = p[k]
            if notes is not None:
                frame[LABEL_HEIGHT:2 * LABEL_HEIGHT, x0:x0 + w] = label_band(w, labels[i], right=notes[i][k])
        out.append(frame)
    return out


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even height and width (repeating the edge): 4:2:0 video needs both even."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(frames: Sequence[np.ndarray], path: str, fps: float) -> None:
    import imageio_ffmpeg

    h, w = _even(frames[0]).shape[:2]
    writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", quality=5, macro_block_size=1,
                                         output_params=["-movflags", "+faststart"])
    writer.send(None)  # start ffmpeg
    try:
        for f in frames:
            writer.send(np.ascontiguousarray(_even(f)))
    finally:
        writer.close()


def _write_gif(frames: Sequence[np.ndarray], path: str, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    # GIF delays are whole hundredths of a second: 25 fps is exact, 30 fps becomes 30.3
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def write_clip(frames: Sequence[np.ndarray], path: str | Path, fps: float = 25.0) -> Path:
    """Write (H, W, 3) uint8 ``frames`` to ``path`` (.mp4: H.264 via imageio-ffmpeg; .gif: Pillow), atomically."""
    p = check_clip_path(path)
    if len(frames) == 0:
        raise ValueError(f"{p}: no frames to write")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = [np.asarray(f) for f in frames]
    shape = frames[0].shape
    if len(shape) != 3 or shape[2] != 3 or any(f.shape != shape or f.dtype != np.uint8 for f in frames):
        raise ValueError(f"{p}: frames must all be (H, W, 3) uint8 arrays of one size")
    write_atomic(p, lambda tmp: (_write_mp4 if p.suffix.lower() == ".mp4" else _write_gif)(frames, tmp, float(fps)),
                 "write the video", suffix=p.suffix)
    return p
