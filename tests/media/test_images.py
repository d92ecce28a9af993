"""Reference images are judged from their headers: dimensions, EXIF orientation and structure, without
decoding the pixels of a big image (issue #10)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from app.media.probe import ImageTooLarge, MediaError, image_size
from app.providers.sandbox.render import _open_image
from tests.support.media import big_png, solid_image


def _with_exif_after_pixels(png: bytes, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    raw = exif.tobytes()
    chunk = struct.pack(">I", len(raw)) + b"eXIf" + raw + struct.pack(">I", zlib.crc32(b"eXIf" + raw))
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]


def test_a_huge_png_is_measured_and_refused_from_its_header() -> None:
    data = big_png(13000, 13000)
    with pytest.raises(ImageTooLarge) as info:
        image_size(data, max_pixels=40_000_000)
    assert info.value.size == (13000, 13000)
    assert image_size(big_png(6000, 4000), max_pixels=40_000_000) == (6000, 4000)


def test_png_orientation_is_read_even_after_the_pixels() -> None:
    png = _with_exif_after_pixels(solid_image((1, 2, 3), size=(40, 30), fmt="PNG"), 6)
    assert image_size(png) == (30, 40)


def test_a_png_with_a_broken_chunk_is_refused() -> None:
    png = bytearray(solid_image((1, 2, 3), size=(40, 30), fmt="PNG"))
    png[png.index(b"IDAT") + 6] ^= 0xFF
    with pytest.raises(MediaError):
        image_size(bytes(png))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_decoding_to_cover_a_size_scales_down(fmt: str) -> None:
    data = solid_image((10, 200, 30), size=(2000, 1000), fmt=fmt)
    img = _open_image(data, cover=(100, 100))
    assert 100 <= img.height <= 250 and img.width >= 200, img.size
    assert img.getpixel((img.width // 2, img.height // 2))[1] > 150


def test_decoding_to_cover_keeps_the_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (2000, 1000), (1, 2, 3)).save(buf, format="JPEG", exif=exif)
    img = _open_image(buf.getvalue(), cover=(50, 100))
    assert img.height > img.width and img.width >= 50 and img.height >= 100, img.size
