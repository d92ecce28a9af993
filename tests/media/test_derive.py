"""media.derive: the thumbnail and spritesheet made from a finished clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.media.derive import make_spritesheet, make_thumbnail
from app.providers.sandbox.render import render_video
from tests.support.media import decode, mad

W, H, SECONDS, FPS = 320, 240, 4, 24
PROMPT = "A corgi surfing a giant wave at sunset, cinematic lighting, 35mm film grain"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def base(clips: Path) -> Path:
    out = clips / "base.mp4"
    render_video(out, width=W, height=H, seconds=SECONDS, prompt=PROMPT, seed=7, label="sandbox · text")
    return out


def test_thumbnail_is_webp(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "thumb.webp"
    make_thumbnail(base, out, max_side=200)
    img = Image.open(out)
    assert img.format == "WEBP"
    assert img.size == (200, 150)
    big = tmp_path / "big.webp"
    make_thumbnail(base, big)  # never upscales
    assert Image.open(big).size == (W, H)
    _, frames = decode(base)
    third = frames[len(frames) // 3]
    assert mad(np.asarray(Image.open(big).convert("RGB")), third) < 6.0


def test_spritesheet_grid(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.jpg"
    make_spritesheet(base, out, tiles=10, columns=5, tile_width=128)
    img = Image.open(out)
    assert img.format == "JPEG"
    assert img.size == (5 * 128, 2 * 96)
    arr = np.asarray(img)
    tiles = [arr[r * 96 : (r + 1) * 96, c * 128 : (c + 1) * 128] for r in range(2) for c in range(5)]
    assert all(mad(a, b) > 0.5 for a, b in zip(tiles, tiles[1:], strict=False))  # evenly spaced, distinct
    make_spritesheet(base, tmp_path / "s3.jpg", tiles=3, columns=5, tile_width=64)
    assert Image.open(tmp_path / "s3.jpg").size == (3 * 64, 48)
