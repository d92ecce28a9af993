"""Decoding helpers for assertions: what a user's player or image viewer would see."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image


def mp4_info(data: bytes | Path) -> tuple[str, int, int, float, int]:
    """(codec, width, height, seconds, frames) decoded from an MP4."""
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(src) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        seconds = float(c.duration / 1_000_000) if c.duration else float(v.duration * v.time_base)
        return v.codec_context.name, v.width, v.height, seconds, frames


def first_frame(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as c:
        for frame in c.decode(video=0):
            return frame.to_ndarray(format="rgb24")
    raise AssertionError("no frames")


def image_format(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as im:
        return str(im.format), im.size


def solid_image(color: tuple[int, int, int], size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()
