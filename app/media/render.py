"""Synthetic video rendering and asset derivation (PyAV + Pillow + numpy).

Everything here is synchronous and CPU-bound: callers run it with ``asyncio.to_thread``.
Video is always streamed frame by frame (decode -> draw -> encode); no function holds
a whole clip in memory.  Outputs are written to a temporary sibling file and moved
into place atomically, so a failed render never leaves a half-written ``out``.

Used by the offline ``sandbox`` provider (render/edit/extend) and for asset
derivation (probe, first/last frame, thumbnail, spritesheet).

Text: labels and timecodes use Pillow's built-in font. A prompt with characters that font lacks (Chinese,
Japanese, Korean — every seed relay document uses Chinese prompts) is drawn with a CJK font found on
the machine: known Debian/Fedora/macOS/Windows paths first, then whatever ``fc-list :lang=zh`` lists.
No font is bundled and no PyPI font package is used: the maintained CJK fonts are 5-20 MB (Noto Sans
CJK far more), a subset cannot cover arbitrary prompts, and the PyPI packages that carry one are
small projects' side artefacts; a system package (``fonts-wqy-microhei``, 1.6 MB, in the Docker image
and installed by CI) is the sound dependency. Without one the prompt renders as boxes and a warning
is logged once, saying what to install.

Derived clips (remix, extend) must not show their source's overlay: the sandbox knows which rows of
its own clips carry no overlay (``clean_rows``) and derived renders start from those rows only.
"""

from __future__ import annotations

import colorsys
import contextlib
import functools
import hashlib
import io
import logging
import math
import os
import shutil
import struct
import subprocess
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

log = logging.getLogger("vidgate.media")

__all__ = [
    "ImageTooLarge",
    "MediaError",
    "VideoInfo",
    "cjk_font_path",
    "clean_rows",
    "edit_video",
    "extend_video",
    "frame_png",
    "image_size",
    "make_spritesheet",
    "make_thumbnail",
    "probe_video",
    "render_video",
    "sniff_image",
    "text_font",
]

MIN_SIDE = 16
MAX_SIDE = 4096
MAX_FPS = 120
MAX_SECONDS = 600

_BAND_ALPHA = 180  # opacity of the prompt band background (0..255)
_EDIT_BAND_ALPHA = 235  # edit_video: cover whatever band the source already has
_ZOOM = 1.12  # total slow zoom over an image-seeded clip
_SEEK_GAP = 3.0  # when sampling frames, seek instead of decoding through gaps longer than this


class MediaError(ValueError):
    """Input is not a decodable video/image (or has no usable video stream)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    seconds: float
    codec: str
    frames: int


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
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90 degrees
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, struct.error, EOFError, Image.DecompressionBombError)


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


def _orientation(img: Image.Image, png_exif: bytes | None = None) -> int:
    """The EXIF orientation from the header (JPEG APP1, WebP EXIF chunk, PNG eXIf), never the pixels."""
    raw = png_exif if png_exif is not None else img.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except _DECODE_ERRORS:
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
        orientation = _orientation(img, png_exif)
    except Image.DecompressionBombError as e:  # past twice Pillow's own limit: the header says enough
        raise ImageTooLarge(None, max_pixels or Image.MAX_IMAGE_PIXELS or 0) from e
    except MediaError:
        raise
    except _DECODE_ERRORS as e:
        raise MediaError(f"not a decodable image: {e}") from e
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def _open_image(data: bytes, *, cover: tuple[int, int] | None = None) -> Image.Image:
    """Decode image bytes (EXIF orientation applied); MediaError if undecodable. With `cover` (w, h), no
    larger than it takes to cover that size: a JPEG is decoded at a DCT scale (1/2..1/8), other formats
    are reduced by a whole factor right after decoding, so a big reference never lingers at full size."""
    try:
        img = Image.open(io.BytesIO(data))
        swap = _orientation(img) in _SWAPS_SIDES
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
    except _DECODE_ERRORS as e:
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


# --------------------------------------------------------------------------- drawing


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# Fonts with CJK glyphs, best first: Debian/Ubuntu (fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei,
# fonts-droid-fallback, fonts-arphic-uming), Fedora, macOS, Windows. fontconfig finds any other.
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
_NOTDEF = "\U0010fffd"  # a private-use code point no font has: draws the font's "missing glyph" box
_CJK_PROBE = "猫狗山水"


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _fontconfig_cjk() -> list[str]:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())


@functools.cache
def cjk_font_path() -> str | None:
    """A font file on this machine that draws Chinese (and Japanese/Korean) text, or ``None``."""
    for path in dict.fromkeys([*_CJK_FONTS, *_fontconfig_cjk()]):
        if not os.path.isfile(path):
            continue
        try:
            font = ImageFont.truetype(path, 16)
        except OSError:
            continue
        if not _missing(font, _CJK_PROBE) and len({_glyph(font, ch) for ch in _CJK_PROBE}) == len(_CJK_PROBE):
            return path
    return None


def _glyph(font: Font, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


def _missing(font: Font, text: str) -> bool:
    """True when ``font`` would draw some character of ``text`` as its missing-glyph box ("tofu")."""
    notdef = _glyph(font, _NOTDEF)
    return any(_glyph(font, ch) == notdef for ch in set(text) if not ch.isspace())


def text_font(size: int, text: str) -> Font:
    """The font to draw ``text`` (a prompt) in: Pillow's default font, unless it lacks glyphs that
    a CJK font on this machine has (Chinese prompts would otherwise render as boxes)."""
    default = _font(size)
    if not _missing(default, text):
        return default
    path = cjk_font_path()
    if path is None:
        _warn_no_cjk_font()
        return default
    return ImageFont.truetype(path, size)


@functools.cache  # once per process
def _warn_no_cjk_font() -> None:
    log.warning(
        "the sandbox found no font with CJK glyphs, so Chinese prompts render as boxes; install one "
        "(Debian/Ubuntu: apt-get install fonts-wqy-microhei, or any font fontconfig lists for :lang=zh)"
    )


class _Patch:
    """An RGBA sprite pre-multiplied for fast uint16 alpha compositing onto RGB frames."""

    def __init__(self, x: int, y: int, rgb: np.ndarray, alpha: np.ndarray):
        # alpha is scaled to 0..256 so that (src * (256 - a) + rgb * a) >> 8 is exact at both ends.
        self.x, self.y = x, y
        self.h, self.w = alpha.shape[:2]
        self.rgb = rgb.astype(np.uint16)
        self.a = alpha.astype(np.uint16)
        self.premul = self.rgb * self.a
        self.inv = 256 - self.a

    @classmethod
    def from_rgba(cls, x: int, y: int, img: Image.Image) -> _Patch:
        arr = np.asarray(img.convert("RGBA"))
        a = (arr[..., 3:4].astype(np.uint32) * 256 + 127) // 255
        return cls(x, y, arr[..., :3], a)

    def apply(self, frame: np.ndarray, strength: int = 256, *, x: int | None = None, y: int | None = None):
        """Composite onto ``frame`` in place; ``strength`` 0..256 fades the whole patch."""
        if strength <= 0:
            return
        x = self.x if x is None else x
        y = self.y if y is None else y
        fh, fw = frame.shape[:2]
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + self.w, fw), min(y + self.h, fh)
        if x0 >= x1 or y0 >= y1:
            return
        sy, sx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
        region = frame[y0:y1, x0:x1]
        if strength >= 256:
            premul, inv = self.premul[sy, sx], self.inv[sy, sx]
        else:
            a = (self.a[sy, sx] * strength) >> 8
            rgb = self.rgb if self.rgb.shape[0] == 1 else self.rgb[sy, sx]
            premul, inv = rgb * a, 256 - a
        region[...] = ((region * inv + premul) >> 8).astype(np.uint8)


def _wrap(text: str, font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap (long words are hard-broken); overflow is ellipsized."""
    words = " ".join(text.split())[:4000].split(" ")
    lines: list[str] = []
    cur = ""

    def fit_prefix(word: str) -> int:
        lo, hi = 1, len(word)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if font.getlength(word[:mid]) <= max_width:
                lo = mid
            else:
                hi = mid - 1
        return lo

    for word in words:
        if not word:
            continue
        cand = f"{cur} {word}" if cur else word
        if font.getlength(cand) <= max_width:
            cur = cand
            continue
        if cur:
            lines.append(cur)
        while len(lines) <= max_lines and font.getlength(word) > max_width:
            cut = fit_prefix(word)
            lines.append(word[:cut])
            word = word[cut:]
        cur = word
        if len(lines) > max_lines:
            break
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + "...") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "..."
    return lines


def _palette(seed: int, prompt: str) -> dict[str, tuple[int, int, int] | float]:
    h = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    hue = h[0] / 255

    def rgb(hh: float, s: float, v: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hsv_to_rgb(hh % 1.0, s, v)
        return round(r * 255), round(g * 255), round(b * 255)

    return {
        "top": rgb(hue, 0.55 + h[1] / 255 * 0.3, 0.50 + h[2] / 255 * 0.2),
        "bottom": rgb(hue + 0.06 + h[3] / 255 * 0.2, 0.7, 0.18 + h[4] / 255 * 0.12),
        "accent": rgb(hue + 0.5, 0.65, 0.97),
        "phase": h[5] / 255 * 2 * math.pi,
        "pan_x": h[6] / 255 * 2 - 1,
        "pan_y": h[7] / 255 * 2 - 1,
    }


class _Decor:
    """Per-clip overlays: prompt band, label, timecode box and progress bar.

    Everything static is rasterised once here; per frame only the timecode text is drawn.
    """

    def __init__(
        self,
        width: int,
        height: int,
        prompt: str,
        label: str | None,
        accent=(255, 255, 255),
        band_alpha: int = _BAND_ALPHA,
    ):
        self.width, self.height = width, height
        short = min(width, height)
        self.fs = max(10, round(short * 0.055))
        self.small = max(9, round(self.fs * 0.62))
        self.pad = max(3, self.fs // 2)
        self.bar_h = max(2, height // 90)
        self.accent = np.array(accent, dtype=np.uint8)
        text = " ".join(prompt.split())
        font = text_font(self.fs, text[:4000])
        small = _font(self.small)
        self.small_font = small

        # Prompt band (bottom).
        self.band: _Patch | None = None
        self.band_top = height
        if text:
            asc, desc = font.getmetrics()
            line_h = round((asc + desc) * 1.12)
            max_lines = max(1, min(6, int((height * 0.42 - 2 * self.pad) // line_h)))
            lines = _wrap(text, font, width - 2 * self.pad, max_lines)
            band_h = min(height, len(lines) * line_h + 2 * self.pad)
            img = Image.new("RGBA", (width, band_h), (0, 0, 0, band_alpha))
            draw = ImageDraw.Draw(img)
            for i, line in enumerate(lines):
                draw.text((self.pad, self.pad + i * line_h), line, font=font, fill=(255, 255, 255, 255))
            self.band_top = height - band_h
            self.band = _Patch.from_rgba(0, self.band_top, img)

        # Label pill (top-left) and timecode box (top-right), below the progress bar.
        sasc, sdesc = small.getmetrics()
        self.pill_h = sasc + sdesc + self.pad
        top = self.bar_h + max(2, self.pad // 2)
        self.label: _Patch | None = None
        if label:
            lab = " ".join(label.split())[:120]
            lw = min(width // 2, math.ceil(small.getlength(lab)) + self.pad)
            img = Image.new("RGBA", (lw, self.pill_h), (0, 0, 0, 150))
            ImageDraw.Draw(img).text((self.pad // 2, self.pad // 2), lab, font=small, fill=(255, 255, 255, 235))
            self.label = _Patch.from_rgba(max(2, self.pad // 2), top, img)
        self.tc_top = top
        self.tc_w = 0
        self.tc_box: _Patch | None = None
        self.tc_n = 0

    def timecode_for(self, total_frames: int) -> None:
        """Size the timecode box for a clip of ``total_frames`` frames."""
        digits = len(str(total_frames))
        sample = f"88:88.88  {'8' * digits}/{'8' * digits}"
        self.tc_w = min(self.width, math.ceil(self.small_font.getlength(sample) * 1.06) + self.pad)
        self.tc_n = total_frames
        img = Image.new("RGBA", (self.tc_w, self.pill_h), (0, 0, 0, 150))
        self.tc_box = _Patch.from_rgba(self.width - self.tc_w - max(2, self.pad // 2), self.tc_top, img)

    def draw_dynamic(self, frame: np.ndarray, index: int, count: int, t: float, strength: int = 256) -> None:
        """Label, timecode and progress bar for frame ``index`` (0-based) of ``count``."""
        if self.label is not None:
            self.label.apply(frame, strength)
        if self.tc_box is not None:
            self.tc_box.apply(frame, strength)
            minutes, secs = divmod(t, 60.0)
            text = f"{int(minutes):02d}:{secs:05.2f}  {index + 1}/{self.tc_n}"
            mask = Image.new("L", (self.tc_box.w, self.tc_box.h), 0)
            ImageDraw.Draw(mask).text((self.pad // 2, self.pad // 2), text, font=self.small_font, fill=235)
            m = np.asarray(mask).astype(np.uint16)[..., None]
            m = ((m + (m >> 7)) * strength) >> 8
            x, y = self.tc_box.x, self.tc_box.y
            region = frame[y : y + m.shape[0], x : x + m.shape[1]]
            m = m[: region.shape[0], : region.shape[1]]
            region[...] = ((region * (256 - m) + 255 * m) >> 8).astype(np.uint8)
        if strength > 0 and count > 0:
            filled = max(1, round(self.width * (index + 1) / count))
            frame[: self.bar_h, :filled] = self.accent
            frame[: self.bar_h, filled:] //= 2


Rows = tuple[int, int]


def clean_rows(width: int, height: int, prompt: str, label: str | None = None) -> Rows:
    """Rows ``[top, bottom)`` of a frame this module renders that no overlay touches: below the
    progress bar, label and timecode, above the prompt band."""
    decor = _Decor(width, height, prompt, label)
    return decor.tc_top + decor.pill_h, decor.band_top


def _crop_rows(img: Image.Image, rows: Rows | None) -> Image.Image:
    """Only ``rows`` of ``img`` (e.g. the overlay-free part of a sandbox frame); all of it when unusable."""
    if rows is None:
        return img
    top, bottom = max(0, int(rows[0])), min(img.height, int(rows[1]))
    if bottom - top < max(2, img.height // 8):
        return img
    return img.crop((0, top, img.width, bottom))


# --------------------------------------------------------------------------- encoding / decoding


class _Encoder:
    """H.264 (libx264, yuv420p, ultrafast) MP4 writer with moov-at-front, written atomically."""

    def __init__(self, out: Path, width: int, height: int, rate: Fraction):
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
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.count
        frame.time_base = self.time_base
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.count == 0:
                    raise MediaError("no frames to encode")
                self.container.mux(self.stream.encode(None))
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


@contextlib.contextmanager
def _open_video(path: Path) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
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


def _decode(container, stream) -> Iterator[av.VideoFrame]:
    try:
        yield from container.decode(stream)
    except av.FFmpegError as e:
        raise MediaError(f"video decode failed: {e}") from e


def _start_seconds(stream) -> float:
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _frame_seconds(frame: av.VideoFrame, start: float) -> float | None:
    t = frame.time
    return None if t is None else t - start


def _rate(stream) -> Fraction:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r and 0 < r <= 1000:
            return Fraction(r).limit_denominator(1001)
    return Fraction(24)


def _info(container, stream) -> VideoInfo:
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
        if seconds <= 0 and end is not None and tb:
            seconds = float((end - start) * tb)
        if seconds <= 0 and frames:
            seconds = float(frames / _rate(stream))
    if frames <= 0:
        raise MediaError("video stream has no frames")
    return VideoInfo(width=cc.width, height=cc.height, seconds=round(seconds, 6), codec=cc.name, frames=int(frames))


def probe_video(path: Path) -> VideoInfo:
    """Size/duration/codec/frame count; MediaError unless ``path`` holds a decodable video stream."""
    with _open_video(path) as (container, stream):
        info = _info(container, stream)
    with _open_video(path) as (container, stream):
        for _ in _decode(container, stream):
            break
        else:
            raise MediaError("video stream has no decodable frames")
    return info


def _cfr_rgb(path: Path, rate: Fraction, total: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Decoded frames as RGB arrays on a constant ``rate`` grid of exactly ``total`` frames.

    Frames are duplicated/dropped by timestamp as needed (a no-op for CFR sources at their own rate);
    the same array object is yielded again for a duplicated frame.
    """
    emitted = 0
    prev: np.ndarray | None = None
    with _open_video(path) as (container, stream):
        start = None
        for idx, frame in enumerate(_decode(container, stream)):
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
    with _open_video(path) as (_, stream):
        rate = _rate(stream)
    width, height = info.width & ~1, info.height & ~1  # yuv420p needs even sizes
    if width < 2 or height < 2:
        raise MediaError(f"video too small: {info.width}x{info.height}")
    return info, rate, width, height


# --------------------------------------------------------------------------- generators


def _check_size(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or not MIN_SIDE <= v <= MAX_SIDE or v % 2:
            raise ValueError(f"{name} must be an even integer in [{MIN_SIDE}, {MAX_SIDE}], got {v!r}")


def _synthetic_frames(width: int, height: int, n: int, rate: Fraction, prompt: str, seed: int, label):
    pal = _palette(seed, prompt)
    decor = _Decor(width, height, prompt, label, pal["accent"])
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
    ball = _Patch(0, 0, np.array(pal["accent"], np.uint16)[None, None, :], np.rint(alpha * 256)[..., None])
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
    decor: _Decor,
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
) -> VideoInfo:
    """Render a synthetic H.264 MP4 of exactly ``width`` x ``height`` and ``seconds * fps`` frames.

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
        pal = _palette(seed, prompt)
        decor = _Decor(width, height, prompt, label, pal["accent"])
        decor.timecode_for(n)
        motion = _palette(seed, "")  # camera move depends on the seed only, not on the prompt
        frames = _animate_from(img, first, decor, n, rate, pan=(motion["pan_x"], motion["pan_y"]))
    else:
        frames = _synthetic_frames(width, height, n, rate, prompt, seed, label)
    with _Encoder(out, width, height, rate) as enc:
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
        decor = _Decor(width, height, prompt, label, _palette(0, prompt)["accent"])
        decor.timecode_for(total)
        with _Encoder(out, width, height, rate) as enc:
            for i, rgb in enumerate(_cfr_rgb(src, rate, total, width, height)):
                frame = np.array(_cover(_crop_rows(Image.fromarray(rgb), clean_rows), width, height))
                if decor.band is not None:
                    decor.band.apply(frame)
                decor.draw_dynamic(frame, i, total, float(i / rate))
                enc.write(frame)
        return probe_video(out)
    # Nearly opaque band so a band already burnt into the source (e.g. a sandbox clip) barely shows.
    decor = _Decor(width, height, prompt, None, band_alpha=_EDIT_BAND_ALPHA)
    with _Encoder(out, width, height, rate) as enc:
        last_in: np.ndarray | None = None
        last_out: np.ndarray | None = None
        for rgb in _cfr_rgb(src, rate, total, width, height):
            if rgb is not last_in:
                last_in = rgb
                last_out = rgb.copy() if not rgb.flags.writeable else rgb
                if decor.band is not None:
                    decor.band.apply(last_out)
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
    pal = _palette(0, prompt)
    decor = _Decor(width, height, prompt, None, pal["accent"])
    decor.timecode_for(src_total + n)
    with _Encoder(out, width, height, rate) as enc:
        last: np.ndarray | None = None
        for rgb in _cfr_rgb(src, rate, src_total, width, height):
            enc.write(rgb)
            last = rgb
        assert last is not None  # _cfr_rgb raises on an empty source
        img = Image.fromarray(last)
        if clean_rows is not None:
            img = _crop_rows(img, clean_rows)
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


# --------------------------------------------------------------------------- derived assets


def _sample(path: Path, fractions: list[float]) -> tuple[list[Image.Image], VideoInfo]:
    """Frames at the given fractions (0..1, ascending) of the clip: the first frame at or after each
    target time (the last frame if past the end).  Decodes sequentially, seeking over long gaps."""
    info = probe_video(path)
    targets = [max(0.0, min(1.0, f)) * info.seconds for f in fractions]
    picked: list[Image.Image] = []
    with _open_video(path) as (container, stream):
        start = _start_seconds(stream)
        tb = stream.time_base
        eps = 0.25 / float(_rate(stream))
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
            for frame in _decode(container, stream):
                t = _frame_seconds(frame, start)
                pos = t if t is not None else (pos or 0.0)
                last = frame
                while i < len(targets) and pos >= targets[i] - eps:
                    picked.append(frame.to_image())
                    i += 1
                if i == len(targets) or (tb and sought != i and targets[i] - pos > _SEEK_GAP):
                    exhausted = False
                    break
            if exhausted:
                break
        if last is None:
            raise MediaError("video stream has no decodable frames")
        while i < len(targets):
            picked.append(last.to_image())
            i += 1
    return picked, info


def _last_frame(path: Path) -> Image.Image:
    with _open_video(path) as (container, stream):
        last = None
        if stream.duration and stream.time_base:
            try:
                container.seek((stream.start_time or 0) + stream.duration, stream=stream, backward=True)
                for frame in _decode(container, stream):
                    last = frame
            except (av.FFmpegError, MediaError):
                last = None
        if last is not None:
            return last.to_image()
    with _open_video(path) as (container, stream):  # no index / seek failed: decode through
        for frame in _decode(container, stream):
            last = frame
        if last is None:
            raise MediaError("video stream has no decodable frames")
        return last.to_image()


def frame_png(path: Path, *, which: Literal["first", "last"] = "first", rows: Rows | None = None) -> bytes:
    """The first or last frame of a video as PNG bytes; only ``rows`` ``[top, bottom)`` of it when given."""
    path = Path(path)
    if which == "first":
        with _open_video(path) as (container, stream):
            for frame in _decode(container, stream):
                img = frame.to_image()
                break
            else:
                raise MediaError("video stream has no decodable frames")
    elif which == "last":
        img = _last_frame(path)
    else:
        raise ValueError(f"which must be 'first' or 'last', got {which!r}")
    img = _crop_rows(img, rows)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def _save_atomic(img: Image.Image, out: Path, **save_kw) -> None:
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


def make_thumbnail(video: Path, out: Path, *, max_side: int = 640) -> None:
    """WebP of the frame at ~1/3 of the clip, downscaled so its longer side is <= ``max_side``."""
    if max_side < 1:
        raise ValueError("max_side must be positive")
    (img,), _ = _sample(Path(video), [1 / 3])
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    _save_atomic(img, out, format="WEBP", quality=80, method=4)


def make_spritesheet(video: Path, out: Path, *, tiles: int = 10, columns: int = 5, tile_width: int = 256) -> None:
    """JPEG grid of ``tiles`` evenly spaced frames (centres of equal time slices), row-major.

    Grid: ``min(columns, tiles)`` x ``ceil(tiles / columns)`` tiles of ``tile_width`` x
    ``round(tile_width * h / w)`` pixels; unused cells are black.
    """
    if tiles < 1 or columns < 1 or tile_width < 1:
        raise ValueError("tiles, columns and tile_width must be positive")
    frames, info = _sample(Path(video), [(i + 0.5) / tiles for i in range(tiles)])
    tile_h = max(1, round(tile_width * info.height / info.width))
    cols = min(columns, tiles)
    rows = math.ceil(tiles / columns)
    sheet = Image.new("RGB", (cols * tile_width, rows * tile_h), (0, 0, 0))
    for i, img in enumerate(frames):
        tile = img.resize((tile_width, tile_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
        sheet.paste(tile, ((i % cols) * tile_width, (i // cols) * tile_h))
    _save_atomic(sheet, out, format="JPEG", quality=80, optimize=False)
