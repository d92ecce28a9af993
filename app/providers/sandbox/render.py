"""The sandbox's clips: synthetic H.264 MP4s rendered, edited and extended locally (PyAV + Pillow + numpy).

Everything here is synchronous and CPU-bound: the provider runs it with ``asyncio.to_thread``.
Video is always streamed frame by frame (decode -> draw -> encode); no function holds
a whole clip in memory.  Outputs are written to a temporary sibling file and moved
into place atomically, so a failed render never leaves a half-written ``out``.

What is drawn on the frames lives in `drawing` (and its fonts in `fonts`).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image, ImageOps

from app.media.probe import (
    DECODE_ERRORS,
    SWAPS_SIDES,
    MediaError,
    VideoInfo,
    decode_frames,
    exif_orientation,
    frame_rate,
    open_video,
    probe_video,
    to_image,
)
from app.providers.sandbox.drawing import Decor, Patch, Rows, crop_rows, palette

__all__ = ["MAX_FPS", "MAX_SECONDS", "MAX_SIDE", "MIN_SIDE", "edit_video", "extend_video", "frame_png", "render_video"]

MIN_SIDE = 16
MAX_SIDE = 4096
MAX_FPS = 120
MAX_SECONDS = 600

_EDIT_BAND_ALPHA = 235  # edit_video: cover whatever band the source already has
_ZOOM = 1.12  # total slow zoom over an image-seeded clip


# --------------------------------------------------------------------------- images


def _open_image(data: bytes, *, cover: tuple[int, int] | None = None) -> Image.Image:
    """Decode image bytes (EXIF orientation applied); MediaError if undecodable. With `cover` (w, h), no
    larger than it takes to cover that size: a JPEG is decoded at a DCT scale (1/2..1/8), other formats
    are reduced by a whole factor right after decoding, so a big reference never lingers at full size."""
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        swap = exif_orientation(img) in SWAPS_SIDES
        if cover is not None:
            cw, ch = (cover[1], cover[0]) if swap else cover  # the stored image's sides, before turning it
            cw, ch = max(1, cw), max(1, ch)
            if img.format == "JPEG":
                scale = max(cw / img.width, ch / img.height)
                if scale < 1:
                    img.draft(img.mode, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
            img.load()
            factor = min(img.width // cw, img.height // ch)
            if factor >= 2:
                img = img.reduce(factor)
        else:
            img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except DECODE_ERRORS as e:
        raise MediaError(f"not a decodable image: {e}") from e
    if img.width < 1 or img.height < 1:
        raise MediaError("image has no pixels")
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (0, 0, 0))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height, then centre-crop (CSS ``object-fit: cover``)."""
    return ImageOps.fit(img, (width, height), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


# --------------------------------------------------------------------------- encoding / decoding


AUDIO_RATE = 44100


def tone(start: int, count: int, *, rate: int = AUDIO_RATE) -> np.ndarray:
    """Samples [start, start + count) of the sandbox's sound track: a quiet 440 Hz tone with an 880 Hz
    beep on every whole second, so a player's audio and seeking can be checked by ear."""
    t = np.arange(start, start + count, dtype=np.float64) / rate
    beep = (t % 1.0) < 0.12
    freq = np.where(beep, 880.0, 440.0)
    amp = np.where(beep, 0.3, 0.12)
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class _Encoder:
    """H.264 (libx264, yuv420p, ultrafast) MP4 writer with moov-at-front, written atomically; with `audio`,
    an AAC mono track as long as the video, written frame by frame so the streams interleave."""

    def __init__(self, out: Path, width: int, height: int, rate: Fraction, *, audio: bool = False):
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part.mp4", dir=out.parent)
        os.close(fd)
        self.out, self.tmp = out, Path(tmp)
        self.time_base = 1 / rate
        self.count = 0
        try:
            self.container = av.open(tmp, mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self.container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = self.time_base
            stream.codec_context.gop_size = max(1, round(float(rate) * 2))  # keyframe every ~2 s: cheap seeks
            stream.options = {"preset": "ultrafast", "crf": "23"}
            self.stream = stream
            self.rate = rate
            self.samples = 0  # audio samples written so far
            self.audio = self.container.add_stream("aac", rate=AUDIO_RATE) if audio else None
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.count
        frame.time_base = self.time_base
        self.container.mux(self.stream.encode(frame))
        self.count += 1
        if self.audio is not None:
            until = int(self.count * AUDIO_RATE / self.rate)
            self._sound(until - self.samples)

    def _sound(self, count: int) -> None:
        assert self.audio is not None
        if count <= 0:
            return
        block = av.AudioFrame.from_ndarray(tone(self.samples, count).reshape(1, -1), format="flt", layout="mono")
        block.rate, block.pts = AUDIO_RATE, self.samples
        self.container.mux(self.audio.encode(block))
        self.samples += count

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc_type is None:
                if self.count == 0:
                    raise MediaError("no frames to encode")
                self.container.mux(self.stream.encode(None))
                if self.audio is not None:
                    self.container.mux(self.audio.encode(None))
            self.container.close()
        except BaseException:
            with contextlib.suppress(Exception):
                self.container.close()
            self.tmp.unlink(missing_ok=True)
            raise
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        os.replace(self.tmp, self.out)


def _cfr_rgb(path: Path, rate: Fraction, total: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Decoded frames as RGB arrays on a constant ``rate`` grid of exactly ``total`` frames.

    Frames are duplicated/dropped by timestamp as needed (a no-op for CFR sources at their own rate);
    the same array object is yielded again for a duplicated frame.
    """
    emitted = 0
    prev: np.ndarray | None = None
    with open_video(path) as (container, stream):
        start = None
        for idx, frame in enumerate(decode_frames(container, stream)):
            t = frame.time
            if t is None:
                slot = idx
            else:
                start = t if start is None else start
                slot = round((t - start) * rate)
            if prev is not None:
                while emitted < slot and emitted < total:
                    yield prev
                    emitted += 1
            if emitted >= total:
                return
            if prev is None or slot >= emitted:
                prev = frame.to_ndarray(format="rgb24", width=width, height=height)
    if prev is None:
        raise MediaError("video stream has no decodable frames")
    while emitted < total:
        yield prev
        emitted += 1


def _source(path: Path) -> tuple[VideoInfo, Fraction, int, int]:
    info = probe_video(path)
    with open_video(path) as (_, stream):
        rate = frame_rate(stream)
    width, height = info.width & ~1, info.height & ~1  # yuv420p needs even sizes
    if width < 2 or height < 2:
        raise MediaError(f"video too small: {info.width}x{info.height}")
    return info, rate, width, height


# --------------------------------------------------------------------------- generators


def _check_size(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or not MIN_SIDE <= v <= MAX_SIDE or v % 2:
            raise ValueError(f"{name} must be an even integer in [{MIN_SIDE}, {MAX_SIDE}], got {v!r}")


def _synthetic_frames(
    width: int, height: int, n: int, rate: Fraction, prompt: str, seed: int, label: str | None
) -> Iterator[np.ndarray]:
    pal = palette(seed, prompt)
    decor = Decor(width, height, prompt, label, pal["accent"])
    decor.timecode_for(n)
    top, bottom = np.array(pal["top"], np.float32), np.array(pal["bottom"], np.float32)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-0.08, 0.08, width, dtype=np.float32)[None, :, None]
    grad = np.clip(ramp + xs, 0.0, 1.0)
    static = np.ascontiguousarray((top * (1 - grad) + bottom * grad).astype(np.uint8))
    if decor.band is not None:
        decor.band.apply(static)

    # Anti-aliased ball bouncing in the area between the top chrome and the band.
    r = max(3, round(min(width, height) * 0.08))
    yy, xx = np.mgrid[-r - 1 : r + 2, -r - 1 : r + 2].astype(np.float32)
    alpha = np.clip(r + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)
    ball = Patch(0, 0, np.array(pal["accent"], np.uint16)[None, None, :], np.rint(alpha * 256)[..., None])
    y_lo = decor.tc_top + decor.pill_h + r + 1
    y_hi = max(y_lo, decor.band_top - r - 2)
    x_lo, x_hi = r + 2, max(r + 2, width - r - 3)
    phase = float(pal["phase"])
    secs = float(n / rate)
    for i in range(n):
        t = float(i / rate)
        p = t / secs if secs else 0.0
        # Triangle waves: the ball sweeps the width ~1.5x and the height ~2.5x per clip.
        u = abs(((p * 1.5 + phase / (2 * math.pi)) % 2.0) - 1.0)
        v = abs(((p * 2.5 + phase / math.pi) % 2.0) - 1.0)
        cx = round(x_lo + (x_hi - x_lo) * u)
        cy = round(y_lo + (y_hi - y_lo) * v)
        frame = static.copy()
        ball.apply(frame, x=cx - r - 1, y=cy - r - 1)
        decor.draw_dynamic(frame, i, n, t)
        yield frame


def _animate_from(
    img: Image.Image,
    first: np.ndarray,
    decor: Decor,
    n: int,
    rate: Fraction,
    *,
    pan: tuple[float, float] = (0.0, 0.0),
    index_offset: int = 0,
    total: int | None = None,
) -> Iterator[np.ndarray]:
    """Frame 0 is ``first`` verbatim; then a slow zoom/pan of ``img`` with overlays fading in."""
    width, height = decor.width, decor.height
    yield first
    if n <= 1:
        return
    total = total or n
    zw, zh = math.ceil(width * _ZOOM), math.ceil(height * _ZOOM)
    hi = _cover(img, zw, zh)
    fade = max(1, round(float(rate) * 0.5))
    for i in range(1, n):
        p = i / (n - 1)
        e = p * p * (3 - 2 * p)  # smoothstep
        z = 1.0 + (_ZOOM - 1.0) * e
        cw, ch = zw / z, zh / z
        cx = zw / 2 + pan[0] * (zw - cw) / 2 * e
        cy = zh / 2 + pan[1] * (zh - ch) / 2 * e
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        frame = np.array(hi.resize((width, height), Image.Resampling.BILINEAR, box=box))
        strength = min(256, round(256 * i / fade))
        if decor.band is not None:
            decor.band.apply(frame, strength)
        g = index_offset + i
        decor.draw_dynamic(frame, g, total, float(g / rate), strength)
        yield frame


# --------------------------------------------------------------------------- public renderers


def render_video(
    out: Path,
    *,
    width: int,
    height: int,
    seconds: int,
    prompt: str,
    fps: int = 24,
    first_frame: bytes | None = None,
    seed: int = 0,
    label: str | None = None,
    audio: bool = False,
) -> VideoInfo:
    """Render a synthetic H.264 MP4 of exactly ``width`` x ``height`` and ``seconds * fps`` frames
    (with ``audio``, and an AAC track of the same length: see `tone`).

    Frames show the prompt on a band, a moving ball, a timecode/frame counter and a progress bar
    over a seed/prompt-derived gradient.  With ``first_frame`` (image bytes) frame 0 is that image
    scaled to cover the frame; the clip then slowly zooms/pans while the overlays fade in.
    """
    _check_size(width, height)
    if not isinstance(seconds, int) or not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be an integer in [1, {MAX_SECONDS}], got {seconds!r}")
    if not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        raise ValueError(f"fps must be an integer in [1, {MAX_FPS}], got {fps!r}")
    out = Path(out)
    rate = Fraction(fps)
    n = seconds * fps
    if first_frame is not None:
        img = _to_rgb(_open_image(first_frame, cover=(math.ceil(width * _ZOOM), math.ceil(height * _ZOOM))))
        first = np.array(_cover(img, width, height))
        pal = palette(seed, prompt)
        decor = Decor(width, height, prompt, label, pal["accent"])
        decor.timecode_for(n)
        motion = palette(seed, "")  # camera move depends on the seed only, not on the prompt
        frames = _animate_from(img, first, decor, n, rate, pan=(motion["pan_x"], motion["pan_y"]))
    else:
        frames = _synthetic_frames(width, height, n, rate, prompt, seed, label)
    with _Encoder(out, width, height, rate, audio=audio) as enc:
        for frame in frames:
            enc.write(frame)
    return probe_video(out)


def edit_video(
    src: Path,
    out: Path,
    *,
    prompt: str,
    fps: int | None = None,
    clean_rows: Rows | None = None,
    label: str | None = None,
) -> VideoInfo:
    """Re-encode ``src`` (same size and duration; same fps unless ``fps`` is given) with ``prompt``
    overlaid on every frame.

    ``clean_rows``: ``src`` is a clip of ours and these rows carry no overlay; every frame is cut to
    them (scaled back to cover the frame) and gets a fresh label, timecode and progress bar, so the
    source's overlay never shows through. Without it only the prompt band is drawn, nearly opaque.
    """
    if fps is not None and (not isinstance(fps, int) or not 1 <= fps <= MAX_FPS):
        raise ValueError(f"fps must be an integer in [1, {MAX_FPS}], got {fps!r}")
    src, out = Path(src), Path(out)
    info, rate, width, height = _source(src)
    if fps is not None:
        rate = Fraction(fps)
    total = max(1, round(info.seconds * rate)) if fps is not None or not info.frames else info.frames
    if clean_rows is not None:
        decor = Decor(width, height, prompt, label, palette(0, prompt)["accent"])
        decor.timecode_for(total)
        with _Encoder(out, width, height, rate) as enc:
            for i, rgb in enumerate(_cfr_rgb(src, rate, total, width, height)):
                frame = np.array(_cover(crop_rows(Image.fromarray(rgb), clean_rows), width, height))
                if decor.band is not None:
                    decor.band.apply(frame)
                decor.draw_dynamic(frame, i, total, float(i / rate))
                enc.write(frame)
        return probe_video(out)
    # Nearly opaque band so a band already burnt into the source (e.g. a sandbox clip) barely shows.
    decor = Decor(width, height, prompt, None, band_alpha=_EDIT_BAND_ALPHA)
    with _Encoder(out, width, height, rate) as enc:
        last_in: np.ndarray | None = None
        last_out: np.ndarray | None = None
        for rgb in _cfr_rgb(src, rate, total, width, height):
            if rgb is not last_in:
                last_in = rgb
                last_out = rgb.copy() if not rgb.flags.writeable else rgb
                if decor.band is not None:
                    decor.band.apply(last_out)
            assert last_out is not None  # set on the first frame
            enc.write(last_out)
    return probe_video(out)


def extend_video(src: Path, out: Path, *, seconds: int, prompt: str, clean_rows: Rows | None = None) -> VideoInfo:
    """All of ``src``'s frames, then a ``seconds``-long segment animating from its last frame.

    ``clean_rows``: ``src`` is a clip of ours and these rows carry no overlay; the segment animates
    from that part of the last frame only, so the source's caption, label and timecode stay out of it.
    """
    if not isinstance(seconds, int) or not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be an integer in [1, {MAX_SECONDS}], got {seconds!r}")
    src, out = Path(src), Path(out)
    info, rate, width, height = _source(src)
    src_total = info.frames
    n = max(1, round(seconds * rate))
    pal = palette(0, prompt)
    decor = Decor(width, height, prompt, None, pal["accent"])
    decor.timecode_for(src_total + n)
    with _Encoder(out, width, height, rate) as enc:
        last: np.ndarray | None = None
        for rgb in _cfr_rgb(src, rate, src_total, width, height):
            enc.write(rgb)
            last = rgb
        assert last is not None  # _cfr_rgb raises on an empty source
        img = Image.fromarray(last)
        if clean_rows is not None:
            img = crop_rows(img, clean_rows)
            last = np.array(_cover(img, width, height))
        for frame in _animate_from(
            img,
            last,
            decor,
            n,
            rate,
            pan=(pal["pan_x"], pal["pan_y"]),
            index_offset=src_total,
            total=src_total + n,
        ):
            enc.write(frame)
    return probe_video(out)


# --------------------------------------------------------------------------- frames


def _last_frame(path: Path) -> Image.Image:
    with open_video(path) as (container, stream):
        last = None
        if stream.duration and stream.time_base:
            try:
                container.seek((stream.start_time or 0) + stream.duration, stream=stream, backward=True)
                for frame in decode_frames(container, stream):
                    last = frame
            except (av.FFmpegError, MediaError):
                last = None
        if last is not None:
            return to_image(last)
    with open_video(path) as (container, stream):  # no index / seek failed: decode through
        for frame in decode_frames(container, stream):
            last = frame
        if last is None:
            raise MediaError("video stream has no decodable frames")
        return to_image(last)


def frame_png(path: Path, *, which: Literal["first", "last"] = "first", rows: Rows | None = None) -> bytes:
    """The first or last frame of a video as PNG bytes; only ``rows`` ``[top, bottom)`` of it when given."""
    path = Path(path)
    if which == "first":
        with open_video(path) as (container, stream):
            for frame in decode_frames(container, stream):
                img = to_image(frame)
                break
            else:
                raise MediaError("video stream has no decodable frames")
    elif which == "last":
        img = _last_frame(path)
    else:
        raise ValueError(f"which must be 'first' or 'last', got {which!r}")
    img = crop_rows(img, rows)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
