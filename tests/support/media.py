"""Decoding helpers for assertions: what a user's player or image viewer would see."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw


def mp4_info(data: bytes | Path) -> tuple[str, int, int, float, int]:
    """(codec, width, height, seconds, frames) decoded from an MP4."""
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(src) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        seconds = float(c.duration / 1_000_000) if c.duration else float(v.duration * v.time_base)
        return v.codec_context.name, v.width, v.height, seconds, frames


def audio_seconds(data: bytes) -> float | None:
    """How long the MP4's sound track plays by its decoded samples; None when it has none."""
    with av.open(io.BytesIO(data)) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        return sum(f.samples for f in c.decode(a)) / a.rate


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


def big_png(width: int, height: int, *, color_type: int = 6) -> bytes:
    """A valid all-zero PNG of any size in a small file (a 13000x13000 RGBA one is ~660 KB): the deflate
    stream is one fully flushed block of rows repeated, so crafting it costs nothing like decoding it."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = b"\0" * (1 + width * channels)  # filter byte 0, then zero samples
    batch = min(100, height)

    def block(rows: int) -> bytes:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; a full flush makes blocks independent
        return z.compress(row * rows) + z.flush(zlib.Z_FULL_FLUSH)

    full, rest = divmod(height, batch)
    n = len(row) * height
    adler = ((n % 65521) << 16) | 1  # Adler-32 of n zero bytes
    stream = b"\x78\xda" + block(batch) * full + (block(rest) if rest else b"") + b"\x03\x00" + struct.pack(">I", adler)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def decode(path: Path) -> tuple[dict, list[np.ndarray]]:
    """Container/stream facts plus every frame as an RGB array (test clips are tiny)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        facts = {
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "duration": c.duration / av.time_base,
            "stream_duration": float(s.duration * s.time_base),
            "rate": s.average_rate,
        }
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    return facts, frames


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two frames (0..255)."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def reference_image(size: tuple[int, int]) -> Image.Image:
    """A structured test card (gradient + shapes) so scaling/cropping mistakes show up."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    arr = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 96.0)], axis=-1)
    img = Image.fromarray(arr.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.ellipse((w * 0.3, h * 0.3, w * 0.7, h * 0.7), fill=(250, 240, 20))
    draw.rectangle((w * 0.05, h * 0.05, w * 0.2, h * 0.2), fill=(10, 10, 200))
    return img


def encode_image(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


# the clip the derive and sandbox-render tests share
CLIP_W, CLIP_H, CLIP_SECONDS, CLIP_FPS = 320, 240, 4, 24
CLIP_PROMPT = "A corgi surfing a giant wave at sunset, cinematic lighting, 35mm film grain"


def render_base_clip(out: Path) -> Path:
    from app.providers.sandbox.render import render_video

    render_video(
        out, width=CLIP_W, height=CLIP_H, seconds=CLIP_SECONDS, prompt=CLIP_PROMPT, seed=7, label="sandbox · text"
    )
    return out
