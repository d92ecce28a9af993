"""Assets derived from a finished MP4 for the engine: the WebP thumbnail and the JPEG spritesheet.

Synchronous and CPU-bound: callers run these with ``asyncio.to_thread``. Frames are sampled by decoding
sequentially and seeking over long gaps, so no clip is held in memory; outputs are written to a temporary
sibling file and moved into place atomically, so a failure never leaves a half-written ``out``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import av
from av.video.stream import VideoStream
from PIL import Image

from app.media.probe import MediaError, VideoInfo, decode_frames, frame_rate, open_video, probe_video, to_image

__all__ = ["make_spritesheet", "make_thumbnail", "make_variants"]

_SEEK_GAP = 3.0  # when sampling frames, seek instead of decoding through gaps longer than this


def _start_seconds(stream: VideoStream) -> float:
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _frame_seconds(frame: av.VideoFrame, start: float) -> float | None:
    t = frame.time
    return None if t is None else t - start


def _sample(path: Path, fractions: list[float]) -> tuple[list[Image.Image], VideoInfo]:
    """Frames at the given fractions (0..1, ascending) of the clip: the first frame at or after each
    target time (the last frame if past the end).  Decodes sequentially, seeking over long gaps."""
    info = probe_video(path)
    targets = [max(0.0, min(1.0, f)) * info.seconds for f in fractions]
    picked: list[Image.Image] = []
    with open_video(path) as (container, stream):
        start = _start_seconds(stream)
        tb = stream.time_base
        eps = 0.25 / float(frame_rate(stream))
        pos: float | None = None  # time of the last decoded frame
        last: av.VideoFrame | None = None
        i = 0
        sought = -1  # index of the target we last sought to (each target triggers at most one seek)
        while i < len(targets):
            target = targets[i]
            if tb and sought != i and target - (pos if pos is not None else 0.0) > _SEEK_GAP:
                sought = i
                try:
                    container.seek(int((target + start) / tb), stream=stream, backward=True)
                except av.FFmpegError:
                    pass
            exhausted = True
            for frame in decode_frames(container, stream):
                t = _frame_seconds(frame, start)
                pos = t if t is not None else (pos or 0.0)
                last = frame
                while i < len(targets) and pos >= targets[i] - eps:
                    picked.append(to_image(frame))
                    i += 1
                if i == len(targets) or (tb and sought != i and targets[i] - pos > _SEEK_GAP):
                    exhausted = False
                    break
            if exhausted:
                break
        if last is None:
            raise MediaError("video stream has no decodable frames")
        while i < len(targets):
            picked.append(to_image(last))
            i += 1
    return picked, info


def _save_atomic(img: Image.Image, out: Path, **save_kw: Any) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, **save_kw)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


THUMBNAIL_AT = 1 / 3


def _sheet_fractions(tiles: int) -> list[float]:
    return [(i + 0.5) / tiles for i in range(tiles)]


def _save_thumbnail(img: Image.Image, out: Path, max_side: int) -> None:
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    _save_atomic(img, out, format="WEBP", quality=80, method=4)


def _save_sheet(frames: list[Image.Image], info: VideoInfo, out: Path, *, tiles: int, columns: int, width: int) -> None:
    width = min(width, info.width)  # never upscales (a larger tile shows nothing more and costs a resize)
    tile_h = max(1, round(width * info.height / info.width))
    cols = min(columns, tiles)
    rows = math.ceil(tiles / columns)
    sheet = Image.new("RGB", (cols * width, rows * tile_h), (0, 0, 0))
    for i, img in enumerate(frames):
        tile = img.resize((width, tile_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
        sheet.paste(tile, ((i % cols) * width, (i // cols) * tile_h))
    _save_atomic(sheet, out, format="JPEG", quality=80, optimize=False)


def make_thumbnail(video: Path, out: Path, *, max_side: int = 640) -> None:
    """WebP of the frame at ~1/3 of the clip, downscaled so its longer side is <= ``max_side``."""
    if max_side < 1:
        raise ValueError("max_side must be positive")
    (img,), _ = _sample(Path(video), [THUMBNAIL_AT])
    _save_thumbnail(img, out, max_side)


def make_spritesheet(video: Path, out: Path, *, tiles: int = 10, columns: int = 5, tile_width: int = 256) -> None:
    """JPEG grid of ``tiles`` evenly spaced frames (centres of equal time slices), row-major.

    Grid: ``min(columns, tiles)`` x ``ceil(tiles / columns)`` tiles of ``tile_width`` (at most the clip's
    width) x ``round(tile_width * h / w)`` pixels; unused cells are black.
    """
    if tiles < 1 or columns < 1 or tile_width < 1:
        raise ValueError("tiles, columns and tile_width must be positive")
    frames, info = _sample(Path(video), _sheet_fractions(tiles))
    _save_sheet(frames, info, out, tiles=tiles, columns=columns, width=tile_width)


def make_variants(video: Path, thumbnail: Path, spritesheet: Path, *, tiles: int = 10) -> None:
    """Both of the above with their defaults, from one probe and one decoding pass over the clip (the
    engine derives both for every finished video: this halves what that costs)."""
    fractions = _sheet_fractions(tiles)
    at = sorted([*fractions, THUMBNAIL_AT])
    frames, info = _sample(Path(video), at)
    thumb = at.index(THUMBNAIL_AT)
    _save_thumbnail(frames[thumb], thumbnail, 640)
    _save_sheet(frames[:thumb] + frames[thumb + 1 :], info, spritesheet, tiles=tiles, columns=5, width=256)
