"""The sandbox's frames: Chinese prompts show real glyphs, and derived clips (remix, extend) show their own
overlay only, never the source clip's burned-in caption, label and timecode (issue #10, item 14)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.providers.base import GenerationRequest, ImageInput, TaskSnapshot, VendorTask, VideoStatus
from app.providers.sandbox import SandboxProvider, drawing, fonts, render
from tests.support.media import decode, mad

pytestmark = pytest.mark.engine  # these tests watch videos finish

W, H, FPS = 320, 240, 8
GREY = (128, 128, 128)


def grey_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (W, H), GREY).save(buf, format="PNG")
    return buf.getvalue()


def need_cjk_font() -> None:
    """CI installs one (.ci/run): there the CJK path is tested, never skipped."""
    if fonts.cjk_font_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no CJK font found in CI: .ci/run installs fonts-wqy-microhei")
        pytest.skip("no CJK font on this machine (apt-get install fonts-wqy-microhei)")


# -- CJK prompts ------------------------------------------------------------------------------------


def band_of(tmp_path: Path, prompt: str) -> np.ndarray:
    out = tmp_path / f"{abs(hash(prompt))}.mp4"
    render.render_video(out, width=W, height=H, seconds=1, fps=FPS, prompt=prompt, first_frame=grey_png())
    return decode(out)[1][-1][H - 28 :]  # a one-line band at 320x240


def test_chinese_prompts_render_as_glyphs_not_boxes(tmp_path: Path) -> None:
    need_cjk_font()
    # same length, different characters: tofu boxes would draw the very same band
    a, b = band_of(tmp_path, "猫咪慢慢睁开眼睛"), band_of(tmp_path, "小狗在草地上奔跑")
    assert mad(a, b) > 3.0
    luma = a.mean(axis=2)
    assert (luma > 200).mean() > 0.01  # white strokes on the dark band


def test_the_font_has_the_glyphs(tmp_path: Path) -> None:
    need_cjk_font()
    font = fonts.text_font(24, "猫")
    masks = {ch: bytes(font.getmask(ch)) for ch in "猫狗山水"}
    assert len(set(masks.values())) == 4  # four distinct shapes, not one box four times


def test_latin_prompts_keep_the_default_font() -> None:
    assert fonts.text_font(24, "a red fox").getname() == fonts.text_font(24, "").getname()


def test_without_a_cjk_font_it_falls_back_and_says_what_to_install_once(monkeypatch, caplog) -> None:
    monkeypatch.setattr(fonts, "cjk_font_path", lambda: None)
    fonts._warn_no_cjk_font.cache_clear()
    with caplog.at_level("WARNING", logger="vidgate.media"):
        drawn = [fonts.text_font(24, "猫咪"), fonts.text_font(24, "小狗")]
    assert all(f.getname() == fonts.text_font(24, "").getname() for f in drawn)
    warnings = [r.getMessage() for r in caplog.records if r.name == "vidgate.media"]
    assert len(warnings) == 1 and "fonts-wqy-microhei" in warnings[0]
    fonts._warn_no_cjk_font.cache_clear()


# -- derived clips ----------------------------------------------------------------------------------


def sandbox(tmp_path: Path) -> SandboxProvider:
    return SandboxProvider(work_dir=tmp_path / "work", latency_ms=0, fps=FPS)


async def produce(sbx: SandboxProvider, req: GenerationRequest, out: Path) -> VendorTask:
    task = await sbx.submit(req)
    snap = await sbx.poll(task)
    assert snap.status == VideoStatus.completed
    with out.open("wb") as fh:
        async for chunk in sbx.download(task, TaskSnapshot(status=VideoStatus.completed)):
            fh.write(chunk)
    return task


async def source_clip(
    sbx: SandboxProvider, tmp_path: Path, prompt: str, *, grey: bool = True
) -> tuple[VendorTask, Path]:
    """A sandbox clip; over a plain grey picture (everything in it but grey is its overlay) or synthetic."""
    out = tmp_path / f"src-{abs(hash(prompt))}-{grey}.mp4"
    req = GenerationRequest(
        task_id="video_src",
        model="sandbox",
        prompt=prompt,
        width=W,
        height=H,
        seconds=2,
        image=ImageInput(data=grey_png(), mime="image/png") if grey else None,
    )
    return await produce(sbx, req, out), out


def derived(op: str, src: VendorTask, path: Path, prompt: str, seconds: int) -> GenerationRequest:
    return GenerationRequest(
        task_id=f"video_{op}",
        model="sandbox",
        prompt=prompt,
        width=W,
        height=H,
        seconds=seconds,
        operation=op,  # type: ignore[arg-type]
        source=src,
        source_video=path,
        source_seconds=2,
    )


OLD = "A corgi surfing a giant wave at sunset, cinematic lighting, 35mm film grain, golden hour"
NEW = "rain"


async def test_remix_shows_only_the_new_overlay(tmp_path: Path) -> None:
    sbx = sandbox(tmp_path)
    # a synthetic clip: its first frame, which a remix starts from, carries its full overlay
    src, path = await source_clip(sbx, tmp_path, OLD, grey=False)
    remix = tmp_path / "remix.mp4"
    await produce(sbx, derived("remix", src, path, NEW, 2), remix)
    got, src_frames = decode(remix)[1], decode(path)[1]
    rows = drawing.clean_rows(W, H, OLD, "vidgate sandbox · create")  # the source's overlay-free rows
    assert rows[0] >= 20 and rows[1] <= H - 40  # a label/timecode strip above, a two-line caption below
    band = slice(rows[1], H)
    assert (src_frames[0][band].mean(axis=2) > 200).mean() > 0.01  # (white text there)
    assert mad(got[0][band], src_frames[0][band]) > 10.0, "the remix starts with the source's caption"
    # the remix is a fresh clip of the new prompt over the overlay-free part of the source's first frame
    clean = render.frame_png(path, which="first", rows=rows)
    fresh = tmp_path / "fresh.mp4"
    label = "vidgate sandbox · remix"
    render.render_video(fresh, width=W, height=H, seconds=2, fps=FPS, prompt=NEW, first_frame=clean, label=label)
    want = decode(fresh)[1]
    assert len(got) == len(want)
    for i in (0, len(got) // 2, len(got) - 1):
        # caption band, label and timecode (the new clip's) exactly where a fresh render draws them
        assert mad(got[i][H // 2 :], want[i][H // 2 :]) < 1.5, f"frame {i}: the old caption shows"
        assert mad(got[i][: H // 6], want[i][: H // 6]) < 1.5, f"frame {i}: the old label/timecode shows"


async def test_edit_of_a_sandbox_clip_shows_only_the_new_overlay(tmp_path: Path) -> None:
    sbx = sandbox(tmp_path)
    src, path = await source_clip(sbx, tmp_path, OLD)
    edit = tmp_path / "edit.mp4"
    await produce(sbx, derived("edit", src, path, NEW, 2), edit)
    fresh = tmp_path / "fresh.mp4"
    label = "vidgate sandbox · edit"
    render.render_video(fresh, width=W, height=H, seconds=2, fps=FPS, prompt=NEW, first_frame=grey_png(), label=label)
    got, want = decode(edit)[1][-1], decode(fresh)[1][-1]
    assert mad(got, want) < 1.5  # grey with the new caption, label and timecode, nothing of the old


async def test_extend_segment_shows_only_the_new_overlay(tmp_path: Path) -> None:
    sbx = sandbox(tmp_path)
    src, path = await source_clip(sbx, tmp_path, OLD)
    ext = tmp_path / "ext.mp4"
    await produce(sbx, derived("extend", src, path, NEW, 1), ext)
    frames = decode(ext)[1]
    assert len(frames) == 3 * FPS
    fresh = tmp_path / "fresh.mp4"
    render.render_video(fresh, width=W, height=H, seconds=1, fps=FPS, prompt=NEW, first_frame=grey_png())
    want = decode(fresh)[1][-1]
    last = frames[-1]
    assert mad(last[H // 2 :], want[H // 2 :]) < 1.5  # the new caption band over a clean picture
    # nothing of the source's chrome in the segment's first frame: plain grey
    first_of_segment = frames[2 * FPS].astype(np.int16)
    assert np.abs(first_of_segment - np.array(GREY)).max() < 12


async def test_remix_through_http_starts_without_the_source_caption(client, auth, tmp_path: Path) -> None:
    from tests.support.api import finish

    body = {"prompt": OLD, "model": "sora-2", "size": f"{W}x{H}", "seconds": "1", "metadata": {"sandbox_latency_ms": 0}}
    r = await client.post("/v1/videos", headers=auth, json=body)
    assert r.status_code == 200, r.text
    src_id = (await finish(client, auth, r.json()["id"]))["id"]
    r = await client.post(f"/v1/videos/{src_id}/remix", headers=auth, json={"prompt": NEW})
    assert r.status_code == 200, r.text
    remix = await finish(client, auth, r.json()["id"])
    assert remix["status"] == "completed", remix
    frames = {}
    for name, vid in (("src", src_id), ("remix", remix["id"])):
        r = await client.get(f"/v1/videos/{vid}/content", headers=auth)
        assert r.status_code == 200
        (tmp_path / f"{name}.mp4").write_bytes(r.content)
        frames[name] = decode(tmp_path / f"{name}.mp4")[1][0]
    top, bottom = drawing.clean_rows(W, H, OLD, "vidgate sandbox · create")
    assert mad(frames["remix"][bottom:], frames["src"][bottom:]) > 10.0  # the old caption is gone
    assert mad(frames["remix"][:top], frames["src"][:top]) > 3.0  # and so are its label and timecode
