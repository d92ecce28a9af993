"""Is it a video, is it an image: the checks behind every input and every downloaded asset (PyAV + Pillow).

Synchronous and CPU-bound: callers run these with ``asyncio.to_thread``. Images are judged from their
headers (dimensions, EXIF orientation, structure) without decoding a big image's pixels; a video is
probed from its container and its first decodable frame.

The video helpers (`open_video`, `decode_frames`, `frame_rate`) and the image constants are shared with
`app.media.derive` and the sandbox's renderer.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

__all__ = [
    "DECODE_ERRORS",
    "SWAPS_SIDES",
    "ImageTooLarge",
    "MediaError",
    "VideoInfo",
    "decode_frames",
    "exif_orientation",
    "frame_rate",
    "image_size",
    "open_video",
    "to_image",
    "probe_video",
    "sniff_image",
]


class MediaError(ValueError):
    """Input is not a decodable video/image (or has no usable video stream)."""


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` found: picture size, duration, codec and frame count of the first video stream,
    and whether the file carries an audio stream at all (it is not decoded)."""

    width: int
    height: int
    seconds: float
    codec: str
    frames: int
    has_audio: bool = False


# --------------------------------------------------------------------------- images


def sniff_image(data: bytes) -> str | None:
    """MIME type of JPEG/PNG/WebP bytes judged by magic numbers, else ``None``."""
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


class ImageTooLarge(MediaError):
    """More pixels than the caller takes (judged from the header, before any decoding)."""

    def __init__(self, size: tuple[int, int] | None, limit: int) -> None:
        what = f"{size[0]}x{size[1]} = {size[0] * size[1]} pixels" if size else "far too many pixels"
        super().__init__(f"image is {what}, more than {limit}")
        self.size, self.limit = size, limit


# Pillow warns from ~89 Mpx and refuses from ~179 Mpx; callers here pass their own, lower limit.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_ORIENTATION = 0x0112
SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90 degrees
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, struct.error, EOFError, Image.DecompressionBombError)


def _png_check(data: bytes) -> bytes | None:
    """Walk a PNG's chunks without inflating anything: lengths, CRCs and the IEND. Returns the eXIf chunk
    (which may follow the pixels, where Pillow would decode the whole image to reach it)."""
    pos, exif = len(_PNG_MAGIC), None
    view = memoryview(data)
    while True:
        if pos + 12 > len(data):
            raise MediaError("not a decodable image: truncated PNG file")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise MediaError("not a decodable image: truncated PNG file")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise MediaError(f"not a decodable image: broken PNG chunk {kind!r}")
        if kind == b"eXIf":
            exif = bytes(view[pos + 8 : end - 4])
        if kind == b"IEND":
            return exif
        pos = end


def exif_orientation(img: Image.Image, png_exif: bytes | None = None) -> int:
    """The EXIF orientation from the header (JPEG APP1, WebP EXIF chunk, PNG eXIf), never the pixels."""
    raw = png_exif if png_exif is not None else img.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except DECODE_ERRORS:
        return 1
    value = exif.get(_ORIENTATION, 1)
    return value if isinstance(value, int) else 1


def image_size(data: bytes, *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), read from the header; MediaError if the
    file is not a well-formed image, ImageTooLarge past `max_pixels`.

    Only as much is decoded as it takes to tell a broken file: a PNG's chunks are checked, not inflated; a
    JPEG is decoded at 1/8 scale (DCT scaling); a WebP, which Pillow cannot scale, is decoded once the
    pixel count is known to be within `max_pixels`. Memory stays far below the image's decoded size."""
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width < 1 or height < 1:
            raise MediaError("image has no pixels")
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge((width, height), max_pixels)
        png_exif = None
        if img.format == "PNG":
            png_exif = _png_check(data)
        else:
            if img.format == "JPEG":
                img.draft(img.mode, (1, 1))  # the smallest DCT scale: 1/8 of each side
            img.load()
        orientation = exif_orientation(img, png_exif)
    except Image.DecompressionBombError as e:  # past twice Pillow's own limit: the header says enough
        raise ImageTooLarge(None, max_pixels or Image.MAX_IMAGE_PIXELS or 0) from e
    except MediaError:
        raise
    except DECODE_ERRORS as e:
        raise MediaError(f"not a decodable image: {e}") from e
    return (height, width) if orientation in SWAPS_SIDES else (width, height)


# --------------------------------------------------------------------------- video


@contextlib.contextmanager
def open_video(path: Path) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """The open container and its first video stream; MediaError for a still image or no usable stream."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as e:
        raise MediaError(f"not a decodable video: {e}") from e
    try:
        fmt = container.format.name or ""
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise MediaError(f"still image ({fmt}), not a video")
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        if not stream.codec_context or not stream.codec_context.width or not stream.codec_context.height:
            raise MediaError("video stream has no decodable picture size")
        yield container, stream
    finally:
        container.close()


def to_image(frame: av.VideoFrame) -> Image.Image:
    """The frame as an RGB Pillow image (PyAV leaves `to_image` untyped)."""
    img: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    return img


def decode_frames(container: InputContainer, stream: VideoStream) -> Iterator[av.VideoFrame]:
    """The stream's frames; a decoding failure is a MediaError."""
    try:
        yield from container.decode(stream)
    except av.FFmpegError as e:
        raise MediaError(f"video decode failed: {e}") from e


def frame_rate(stream: VideoStream) -> Fraction:
    """The stream's frame rate as a fraction (24 when the container states none that is plausible)."""
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r and 0 < r <= 1000:
            return Fraction(r).limit_denominator(1001)
    return Fraction(24)


def _info(container: InputContainer, stream: VideoStream) -> VideoInfo:
    cc = stream.codec_context
    tb = stream.time_base
    seconds = float(stream.duration * tb) if stream.duration and tb else 0.0
    if seconds <= 0 and container.duration:
        seconds = container.duration / av.time_base
    frames = stream.frames or 0
    if frames <= 0 or seconds <= 0:
        # No index (e.g. Matroska/WebM): count packets by demuxing (no decoding).
        count, end, start = 0, None, None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                count += 1
                if packet.pts is not None:
                    start = packet.pts if start is None else min(start, packet.pts)
                    stop = packet.pts + (packet.duration or 0)
                    end = stop if end is None else max(end, stop)
        except av.FFmpegError as e:
            raise MediaError(f"video demux failed: {e}") from e
        frames = frames or count
        if seconds <= 0 and start is not None and end is not None and tb:
            seconds = float((end - start) * tb)
        if seconds <= 0 and frames:
            seconds = float(frames / frame_rate(stream))
    if frames <= 0:
        raise MediaError("video stream has no frames")
    return VideoInfo(
        width=cc.width,
        height=cc.height,
        seconds=round(seconds, 6),
        codec=cc.name,
        frames=int(frames),
        has_audio=bool(container.streams.audio),
    )


def probe_video(path: Path) -> VideoInfo:
    """Size/duration/codec/frame count; MediaError unless ``path`` holds a decodable video stream."""
    with open_video(path) as (container, stream):
        info = _info(container, stream)
    with open_video(path) as (container, stream):
        for _ in decode_frames(container, stream):
            break
        else:
            raise MediaError("video stream has no decodable frames")
    return info
