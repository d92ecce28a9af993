"""media.probe: what is a decodable image or video. Reference images are judged from their headers
(dimensions, EXIF orientation and structure) without decoding the pixels of a big image (issue #10)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from app.media.probe import ImageTooLarge, MediaError, image_size, probe_video, sniff_image
from app.providers.sandbox.render import frame_png, render_video
from tests.support.media import big_png, encode_image, reference_image, solid_image

W, H = 320, 240


# ----------------------------------------------------------------------------- videos


def test_probe_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 1000)
    with pytest.raises(MediaError):
        probe_video(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError):
        probe_video(empty)
    still = tmp_path / "still.png"
    still.write_bytes(encode_image(reference_image((64, 48)), "PNG"))
    with pytest.raises(MediaError):
        probe_video(still)
    truncated = tmp_path / "trunc.mp4"
    render_video(tmp_path / "ok.mp4", width=W, height=H, seconds=1, fps=8, prompt="x")
    truncated.write_bytes((tmp_path / "ok.mp4").read_bytes()[:300])
    with pytest.raises(MediaError):
        probe_video(truncated)
    with pytest.raises(MediaError):
        frame_png(bad)


def _clip_with_audio(path: Path) -> None:
    """One second of black H.264 video with an AAC tone beside it."""
    with av.open(str(path), "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=8)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        for i in range(8):
            f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode())
        tone = (np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000) * 0.2).astype(np.float32)
        for start in range(0, 48000, 1024):
            chunk = tone[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            c.mux(a.encode(frame))
        c.mux(a.encode())


def test_probe_tells_whether_there_is_audio(tmp_path: Path) -> None:
    _clip_with_audio(tmp_path / "sound.mp4")
    info = probe_video(tmp_path / "sound.mp4")
    assert (info.codec, info.width, info.frames, info.has_audio) == ("h264", 64, 8, True)
    render_video(tmp_path / "silent.mp4", width=64, height=48, seconds=1, fps=8, prompt="x")
    assert probe_video(tmp_path / "silent.mp4").has_audio is False


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_sniff_and_size(fmt: str, mime: str) -> None:
    data = encode_image(reference_image((40, 30)), fmt)
    assert sniff_image(data) == mime
    assert image_size(data) == (40, 30)


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"hello world" * 10])
def test_sniff_garbage(data: bytes) -> None:
    assert sniff_image(data) is None


def test_image_size_rejects_garbage() -> None:
    with pytest.raises(MediaError):
        image_size(b"\xff\xd8\xff garbage that is not a jpeg")
    png = encode_image(reference_image((40, 30)), "PNG")
    with pytest.raises(MediaError):
        image_size(png[: len(png) // 2])


def test_image_size_applies_exif_orientation() -> None:
    img = reference_image((40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: displayed as 30x40
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert image_size(buf.getvalue()) == (30, 40)


# ----------------------------------------------------------------------------- images judged from their headers


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
