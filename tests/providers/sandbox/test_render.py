"""The sandbox's renderer: exact H.264 clips of the prompt, edits and extensions of any source, and the
reference image decoded no larger than it takes to cover the frame."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageOps

from app.media.probe import MediaError, VideoInfo, probe_video
from app.providers.sandbox.render import _open_image, edit_video, extend_video, frame_png, render_video
from tests.support.media import (
    CLIP_FPS,
    CLIP_H,
    CLIP_PROMPT,
    CLIP_SECONDS,
    CLIP_W,
    decode,
    encode_image,
    mad,
    reference_image,
    render_base_clip,
    solid_image,
)

W, H, SECONDS, FPS = CLIP_W, CLIP_H, CLIP_SECONDS, CLIP_FPS
PROMPT = CLIP_PROMPT


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def base(clips: Path) -> Path:
    return render_base_clip(clips / "base.mp4")


# ----------------------------------------------------------------------------- render_video


def test_render_is_exact_h264(base: Path) -> None:
    facts, frames = decode(base)
    assert facts["codec"] == "h264"
    assert facts["pix_fmt"] == "yuv420p"
    assert (facts["width"], facts["height"]) == (W, H)
    assert facts["rate"] == FPS
    assert len(frames) == SECONDS * FPS
    assert all(f.shape == (H, W, 3) for f in frames)
    assert abs(facts["duration"] - SECONDS) <= 1 / FPS
    assert abs(facts["stream_duration"] - SECONDS) <= 1 / FPS
    head = base.read_bytes()[:4096]
    assert head.find(b"moov") != -1  # +faststart: index before media data
    assert head.find(b"moov") < base.read_bytes().find(b"mdat")


def test_render_returns_probe(base: Path) -> None:
    info = probe_video(base)
    assert info == VideoInfo(width=W, height=H, seconds=float(SECONDS), codec="h264", frames=SECONDS * FPS)


@pytest.mark.parametrize(("width", "height", "seconds", "fps"), [(640, 360, 1, 30), (240, 320, 2, 10)])
def test_render_other_sizes(tmp_path: Path, width: int, height: int, seconds: int, fps: int) -> None:
    out = tmp_path / "v.mp4"
    info = render_video(out, width=width, height=height, seconds=seconds, prompt="hello", fps=fps)
    assert info == VideoInfo(width=width, height=height, seconds=float(seconds), codec="h264", frames=seconds * fps)
    facts, frames = decode(out)
    assert (facts["width"], facts["height"], len(frames)) == (width, height, seconds * fps)


def test_render_has_motion(base: Path) -> None:
    _, frames = decode(base)
    assert mad(frames[0], frames[len(frames) // 2]) > 1.0
    assert mad(frames[len(frames) // 2], frames[-1]) > 1.0
    # consecutive frames differ too (moving ball, timecode, progress bar)
    assert all(mad(a, b) > 0.05 for a, b in zip(frames[:10], frames[1:11], strict=True))


def test_render_shows_prompt_band(tmp_path: Path) -> None:
    """Same seed and background image, different prompts: only the band area differs."""
    card = encode_image(reference_image((W, H)), "PNG")
    outs = []
    for i, prompt in enumerate(["a red fox in the snow", "an astronaut riding a horse on the moon"]):
        out = tmp_path / f"p{i}.mp4"
        render_video(out, width=W, height=H, seconds=1, fps=12, prompt=prompt, first_frame=card)
        outs.append(decode(out)[1][-1])
    a, b = outs
    band = slice(H - 28, H)  # a one-line band at 320x240
    middle = slice(int(H * 0.3), int(H * 0.6))
    assert mad(a[band], b[band]) > 3.0
    assert mad(a[middle], b[middle]) < 1.0
    # white text on a dark band is readable: many bright and many dark pixels in the band rows
    luma = a[band].mean(axis=2)
    assert (luma > 200).mean() > 0.01
    assert (luma < 70).mean() > 0.5


def test_render_background_depends_on_seed(tmp_path: Path) -> None:
    firsts = []
    for seed in (1, 2):
        out = tmp_path / f"s{seed}.mp4"
        render_video(out, width=W, height=H, seconds=1, fps=8, prompt="same prompt", seed=seed)
        firsts.append(decode(out)[1][0])
    assert mad(firsts[0][: H // 2], firsts[1][: H // 2]) > 3.0


@pytest.mark.parametrize(
    ("ref_size", "fmt"),
    [((640, 480), "PNG"), ((300, 500), "JPEG"), ((1000, 400), "WEBP")],
)
def test_first_frame_is_cover_scaled_reference(tmp_path: Path, ref_size: tuple[int, int], fmt: str) -> None:
    ref = reference_image(ref_size)
    out = tmp_path / "i2v.mp4"
    info = render_video(out, width=W, height=H, seconds=1, fps=12, prompt=PROMPT, first_frame=encode_image(ref, fmt))
    assert (info.width, info.height, info.frames) == (W, H, 12)
    _, frames = decode(out)
    expected = np.asarray(ImageOps.fit(ref, (W, H), method=Image.Resampling.BICUBIC))
    assert mad(frames[0], expected) < 4.0  # frame 0 is the image itself (no overlay)
    # ... and a wrong crop (plain squash) would be clearly further away for non-4:3 references
    if ref_size[0] * 3 != ref_size[1] * 4:
        squashed = np.asarray(ref.resize((W, H), Image.Resampling.BICUBIC))
        assert mad(frames[0], squashed) > mad(frames[0], expected) + 2.0
    # then it animates and the overlay appears
    assert mad(frames[0], frames[-1]) > 3.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 321, "height": 240},
        {"width": 320, "height": 0},
        {"width": 320, "height": 240, "seconds": 0},
        {"width": 320, "height": 240, "fps": 0},
    ],
)
def test_render_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"seconds": 1, "prompt": "x", **kwargs}
    with pytest.raises(ValueError, match=r"width|height|seconds|fps"):
        render_video(tmp_path / "bad.mp4", **args)
    assert not list(tmp_path.iterdir())


def test_render_rejects_bad_first_frame(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        render_video(tmp_path / "x.mp4", width=W, height=H, seconds=1, prompt="x", first_frame=b"not an image")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- edit / extend


def test_edit_keeps_geometry_and_overlays_prompt(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "edit.mp4"
    info = edit_video(base, out, prompt="make it purple and rainy")
    src_facts, src_frames = decode(base)
    facts, frames = decode(out)
    assert info == VideoInfo(W, H, float(SECONDS), "h264", SECONDS * FPS)
    assert (facts["width"], facts["height"], len(frames)) == (W, H, len(src_frames))
    assert facts["rate"] == src_facts["rate"]
    assert abs(facts["duration"] - src_facts["duration"]) <= 1 / FPS
    band = slice(H - 30, H)
    top = slice(int(H * 0.15), int(H * 0.5))
    for i in (0, len(frames) // 2, len(frames) - 1):
        assert mad(frames[i][band], src_frames[i][band]) > 5.0
        assert mad(frames[i][top], src_frames[i][top]) < 2.0  # rest of the frame is the source's


def test_edit_with_fps_resamples(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "edit12.mp4"
    info = edit_video(base, out, prompt="slower", fps=12)
    assert (info.frames, info.seconds) == (SECONDS * 12, float(SECONDS))
    assert decode(out)[0]["rate"] == 12


def test_extend_appends_segment_from_last_frame(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "ext.mp4"
    info = extend_video(base, out, seconds=2, prompt="then it starts to rain")
    _, src_frames = decode(base)
    facts, frames = decode(out)
    n_src = len(src_frames)
    assert info == VideoInfo(W, H, float(SECONDS + 2), "h264", (SECONDS + 2) * FPS)
    assert len(frames) == n_src + 2 * FPS
    assert abs(facts["duration"] - (SECONDS + 2)) <= 1 / FPS
    assert facts["rate"] == FPS
    for i in (0, n_src // 2, n_src - 1):
        assert mad(frames[i], src_frames[i]) < 2.5  # source frames kept (re-encoded)
    assert mad(frames[n_src], src_frames[-1]) < 2.5  # segment starts from the last frame
    assert mad(frames[-1], src_frames[-1]) > 2.0  # ... and moves on


def test_extend_twice_accumulates(base: Path, tmp_path: Path) -> None:
    once = extend_video(base, tmp_path / "e1.mp4", seconds=1, prompt="one")
    twice = extend_video(tmp_path / "e1.mp4", tmp_path / "e2.mp4", seconds=1, prompt="two")
    assert once.seconds == SECONDS + 1
    assert twice.seconds == SECONDS + 2
    assert twice.frames == (SECONDS + 2) * FPS


def test_edit_and_extend_foreign_source(tmp_path: Path) -> None:
    """A 29.97 fps MPEG-4 Part 2 Matroska source (no frame index) with an odd size."""
    src = tmp_path / "src.mkv"
    rate = Fraction(30000, 1001)
    with av.open(str(src), "w", format="matroska") as c:
        s = c.add_stream("mpeg4", rate=rate)
        s.width, s.height, s.pix_fmt = 161, 121, "yuv420p"
        for i in range(30):
            f = av.VideoFrame.from_ndarray(np.full((121, 161, 3), i * 8, np.uint8), format="rgb24")
            f.pts, f.time_base = i, 1 / rate
            c.mux(s.encode(f))
        c.mux(s.encode())
    src_info = probe_video(src)
    assert (src_info.codec, src_info.frames, src_info.width) == ("mpeg4", 30, 161)
    edited = edit_video(src, tmp_path / "e.mp4", prompt="hi")
    assert (edited.width, edited.height, edited.frames) == (160, 120, 30)
    assert abs(edited.seconds - src_info.seconds) <= 1 / 29.97
    extended = extend_video(src, tmp_path / "x.mp4", seconds=1, prompt="more")
    assert extended.frames == 30 + 30
    assert abs(extended.seconds - (src_info.seconds + 1)) <= 1 / 29.97


# ----------------------------------------------------------------------------- frames


def test_frame_png_first_and_last(base: Path) -> None:
    _, frames = decode(base)
    first = Image.open(io.BytesIO(frame_png(base)))
    last = Image.open(io.BytesIO(frame_png(base, which="last")))
    assert first.format == last.format == "PNG"
    assert first.size == last.size == (W, H)
    assert mad(np.asarray(first.convert("RGB")), frames[0]) < 0.5
    assert mad(np.asarray(last.convert("RGB")), frames[-1]) < 0.5


# ----------------------------------------------------------------------------- reference images


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
