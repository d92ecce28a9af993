"""Fonts for the sandbox's captions.

Labels and timecodes use Pillow's built-in font. A prompt with characters that font lacks (Chinese,
Japanese, Korean — every seed relay document uses Chinese prompts) is drawn with a CJK font found on
the machine: known Debian/Fedora/macOS/Windows paths first, then whatever ``fc-list :lang=zh`` lists.
No font is bundled and no PyPI font package is used: the maintained CJK fonts are 5-20 MB (Noto Sans
CJK far more), a subset cannot cover arbitrary prompts, and the PyPI packages that carry one are
small projects' side artefacts; a system package (``fonts-wqy-microhei``, 1.6 MB, in the Docker image
and installed by CI) is the sound dependency. Without one the prompt renders as boxes and a warning
is logged once, saying what to install.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess

from PIL import ImageFont

log = logging.getLogger("vidgate.media")

__all__ = ["Font", "cjk_font_path", "default_font", "text_font"]

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


def default_font(size: int) -> Font:
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
    default = default_font(size)
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
