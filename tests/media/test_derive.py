"""media.derive: the thumbnail and spritesheet made from a finished clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.media.derive import make_spritesheet, make_thumbnail, make_variants
from tests.fakes.assets import real_mp4
from tests.support.media import CLIP_FPS, CLIP_H, CLIP_PROMPT, CLIP_SECONDS, CLIP_W, decode, mad, render_base_clip

W, H, SECONDS, FPS = CLIP_W, CLIP_H, CLIP_SECONDS, CLIP_FPS
PROMPT = CLIP_PROMPT


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def base(clips: Path) -> Path:
    return render_base_clip(clips / "base.mp4")


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


def test_both_variants_in_one_pass_are_the_ones_made_apart(base: Path, tmp_path: Path) -> None:
    make_variants(base, tmp_path / "t.webp", tmp_path / "s.jpg")
    make_thumbnail(base, tmp_path / "t1.webp")
    make_spritesheet(base, tmp_path / "s1.jpg")
    assert (tmp_path / "t.webp").read_bytes() == (tmp_path / "t1.webp").read_bytes()
    assert (tmp_path / "s.jpg").read_bytes() == (tmp_path / "s1.jpg").read_bytes()


def test_spritesheet_tiles_are_never_wider_than_the_clip(tmp_path: Path) -> None:
    small = tmp_path / "small.mp4"
    small.write_bytes(real_mp4(frames=16, width=96, height=64, fps=8, noise=False))
    make_spritesheet(small, tmp_path / "s.jpg", tiles=10, columns=5, tile_width=256)
    assert Image.open(tmp_path / "s.jpg").size == (5 * 96, 2 * 64)
