"""What the sandbox draws on its frames: a seed/prompt palette, the prompt band, a label, a timecode and a
progress bar, composited with pre-multiplied numpy sprites.

Derived clips (remix, extend) must not show their source's overlay: `clean_rows` says which rows of a
clip drawn here carry no overlay, and derived renders start from those rows only (`crop_rows`).
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from typing import TypedDict

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.providers.sandbox.fonts import default_font, text_font

__all__ = ["Decor", "Patch", "Rows", "clean_rows", "crop_rows", "palette"]

_BAND_ALPHA = 180  # opacity of the prompt band background (0..255)


class Patch:
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
    def from_rgba(cls, x: int, y: int, img: Image.Image) -> Patch:
        arr = np.asarray(img.convert("RGBA"))
        a = (arr[..., 3:4].astype(np.uint32) * 256 + 127) // 255
        return cls(x, y, arr[..., :3], a)

    def apply(self, frame: np.ndarray, strength: int = 256, *, x: int | None = None, y: int | None = None) -> None:
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
            a: np.ndarray = (self.a[sy, sx] * strength) >> 8
            rgb = self.rgb if self.rgb.shape[0] == 1 else self.rgb[sy, sx]
            premul, inv = rgb * a, 256 - a
        region[...] = ((region * inv + premul) >> 8).astype(np.uint8)


def _metrics(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[int, int]:
    """Ascent and descent; Pillow's bitmap fallback font (no FreeType) has no metrics, so measure it."""
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.getmetrics()
    top, bottom = font.getbbox("Ay")[1::2]
    return int(bottom), max(0, int(top))


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float, max_lines: int) -> list[str]:
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


RGB = tuple[int, int, int]


class Palette(TypedDict):
    top: RGB
    bottom: RGB
    accent: RGB
    phase: float
    pan_x: float
    pan_y: float


def palette(seed: int, prompt: str) -> Palette:
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


class Decor:
    """Per-clip overlays: prompt band, label, timecode box and progress bar.

    Everything static is rasterised once here; per frame only the timecode text is drawn.
    """

    def __init__(
        self,
        width: int,
        height: int,
        prompt: str,
        label: str | None,
        accent: RGB = (255, 255, 255),
        band_alpha: int = _BAND_ALPHA,
    ) -> None:
        self.width, self.height = width, height
        short = min(width, height)
        self.fs = max(10, round(short * 0.055))
        self.small = max(9, round(self.fs * 0.62))
        self.pad = max(3, self.fs // 2)
        self.bar_h = max(2, height // 90)
        self.accent = np.array(accent, dtype=np.uint8)
        text = " ".join(prompt.split())
        font = text_font(self.fs, text[:4000])
        small = default_font(self.small)
        self.small_font = small

        # Prompt band (bottom).
        self.band: Patch | None = None
        self.band_top = height
        if text:
            asc, desc = _metrics(font)
            line_h = round((asc + desc) * 1.12)
            max_lines = max(1, min(6, int((height * 0.42 - 2 * self.pad) // line_h)))
            lines = _wrap(text, font, width - 2 * self.pad, max_lines)
            band_h = min(height, len(lines) * line_h + 2 * self.pad)
            img = Image.new("RGBA", (width, band_h), (0, 0, 0, band_alpha))
            draw = ImageDraw.Draw(img)
            for i, line in enumerate(lines):
                draw.text((self.pad, self.pad + i * line_h), line, font=font, fill=(255, 255, 255, 255))
            self.band_top = height - band_h
            self.band = Patch.from_rgba(0, self.band_top, img)

        # Label pill (top-left) and timecode box (top-right), below the progress bar.
        sasc, sdesc = _metrics(small)
        self.pill_h = sasc + sdesc + self.pad
        top = self.bar_h + max(2, self.pad // 2)
        self.label: Patch | None = None
        if label:
            lab = " ".join(label.split())[:120]
            lw = min(width // 2, math.ceil(small.getlength(lab)) + self.pad)
            img = Image.new("RGBA", (lw, self.pill_h), (0, 0, 0, 150))
            ImageDraw.Draw(img).text((self.pad // 2, self.pad // 2), lab, font=small, fill=(255, 255, 255, 235))
            self.label = Patch.from_rgba(max(2, self.pad // 2), top, img)
        self.tc_top = top
        self.tc_w = 0
        self.tc_box: Patch | None = None
        self.tc_n = 0

    def timecode_for(self, total_frames: int) -> None:
        """Size the timecode box for a clip of ``total_frames`` frames."""
        digits = len(str(total_frames))
        sample = f"88:88.88  {'8' * digits}/{'8' * digits}"
        self.tc_w = min(self.width, math.ceil(self.small_font.getlength(sample) * 1.06) + self.pad)
        self.tc_n = total_frames
        img = Image.new("RGBA", (self.tc_w, self.pill_h), (0, 0, 0, 150))
        self.tc_box = Patch.from_rgba(self.width - self.tc_w - max(2, self.pad // 2), self.tc_top, img)

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
            m: np.ndarray = np.asarray(mask).astype(np.uint16)[..., None]
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
    decor = Decor(width, height, prompt, label)
    return decor.tc_top + decor.pill_h, decor.band_top


def crop_rows(img: Image.Image, rows: Rows | None) -> Image.Image:
    """Only ``rows`` of ``img`` (e.g. the overlay-free part of a sandbox frame); all of it when unusable."""
    if rows is None:
        return img
    top, bottom = max(0, int(rows[0])), min(img.height, int(rows[1]))
    if bottom - top < max(2, img.height // 8):
        return img
    return img.crop((0, top, img.width, bottom))
