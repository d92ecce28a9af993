"""MiniMax Hailuo adapter: mapping tables, golden request bodies, the adapter against the fake MiniMax server,
and MiniMax's callback (URL verification challenge, then status posts) through the gateway."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    NotFoundAtVendor,
    RateLimited,
    Recoverable,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.capabilities import CapabilityError, parse_size
from app.providers.minimax import (
    DEFAULT_BASE_URL,
    MATRIX,
    MODELS,
    PROGRESS,
    STATUS,
    MiniMaxProvider,
    build_body,
    map_error,
    mode_of,
    parse_query,
    resolve,
)
from app.providers.vendors import VENDORS
from tests.conftest import make_settings, new_key
from tests.fakes.minimax import CDN, VIDEO_BYTES, VIDEO_SIZE, FakeMiniMaxState, Invalid, make_app, validate
from tests.support.api import assert_error, finish
from tests.support.media import solid_image

KEY = "sk-api-test-minimax"
BASE = "https://api.minimax.io"
JPEG = solid_image((10, 120, 200), size=(640, 360))
IMG = ImageInput(data=JPEG, mime="image/jpeg")
IMG_URL = ImageInput(url="https://example.com/first.png")
LAST = ImageInput(data=solid_image((200, 20, 20), size=(640, 360)), mime="image/jpeg")
CAPS = {m.name: m for m in MODELS}


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": "MiniMax-Hailuo-2.3", "prompt": "a cat surfing"}
    base |= {"width": 1366, "height": 768, "seconds": 6}
    return GenerationRequest(**(base | kw))


@pytest.fixture
def fake() -> tuple[Any, FakeMiniMaxState]:
    return make_app(api_key=KEY)


@pytest.fixture
def state(fake: tuple[Any, FakeMiniMaxState]) -> FakeMiniMaxState:
    return fake[1]


@pytest.fixture
async def client(fake: tuple[Any, FakeMiniMaxState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


@pytest.fixture
def provider(client: httpx.AsyncClient) -> MiniMaxProvider:
    return MiniMaxProvider(client, api_key=KEY, base_url=BASE)


async def run_to_end(provider: MiniMaxProvider, task: VendorTask, limit: int = 10) -> list[TaskSnapshot]:
    snaps = []
    for _ in range(limit):
        snaps.append(snap := await provider.poll(task))
        if snap.status in {VideoStatus.completed, VideoStatus.failed}:
            break
    return snaps


async def read(provider: MiniMaxProvider, task: VendorTask, snap: TaskSnapshot) -> bytes:
    return b"".join([chunk async for chunk in provider.download(task, snap)])


# ---------------------------------------------------------------------------------------------
# capability table


class TestModels:
    def test_names_and_the_vendor_row(self) -> None:
        assert set(CAPS) == {
            "MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast", "MiniMax-Hailuo-02", "T2V-01-Director", "T2V-01",
            "I2V-01-Director", "I2V-01-live", "I2V-01", "S2V-01",
        }  # fmt: skip
        spec = VENDORS["minimax"]
        assert spec.title == "MiniMax Hailuo" and spec.image_transport == "either"
        assert spec.base_url == DEFAULT_BASE_URL == "https://api.minimax.io"
        assert spec.env_names() == ["VIDGATE_MINIMAX_API_KEY", "VIDGATE_MINIMAX_BASE_URL"]
        assert spec.callback is not None and spec.callback.scheme == "token"
        assert spec.callback.challenge == "challenge"
        assert all(m.provider == "minimax" and m.default_size in m.sizes and not m.audio for m in MODELS)
        assert not any(m.remix or m.edit or m.extend for m in MODELS)

    @pytest.mark.parametrize(
        ("name", "image", "last_frame", "seconds", "default"),
        [
            ("MiniMax-Hailuo-2.3", "optional", False, (6, 10), (1366, 768)),
            ("MiniMax-Hailuo-2.3-Fast", "required", False, (6, 10), (1366, 768)),
            ("MiniMax-Hailuo-02", "optional", True, (6, 10), (1366, 768)),
            ("T2V-01", "none", False, (6,), (1280, 720)),
            ("T2V-01-Director", "none", False, (6,), (1280, 720)),
            ("I2V-01", "required", False, (6,), (1280, 720)),
            ("I2V-01-live", "required", False, (6,), (1280, 720)),
            ("S2V-01", "optional", False, (6,), (1280, 720)),
        ],
    )
    def test_model_modes(
        self, name: str, image: str, last_frame: bool, seconds: tuple[int, ...], default: tuple[int, int]
    ) -> None:
        caps = CAPS[name]
        assert (caps.image, caps.last_frame, caps.seconds, caps.default_size) == (image, last_frame, seconds, default)
        assert caps.default_seconds == 6

    def test_sizes(self) -> None:
        assert CAPS["MiniMax-Hailuo-2.3"].sizes == ((1366, 768), (1920, 1080))  # no portrait text-to-video
        assert CAPS["MiniMax-Hailuo-02"].sizes == ((910, 512), (1366, 768), (1920, 1080))
        # the output follows the image: either orientation of a tier
        assert set(CAPS["MiniMax-Hailuo-2.3-Fast"].sizes) == {(1366, 768), (1920, 1080), (768, 1366), (1080, 1920)}
        assert CAPS["T2V-01"].sizes == ((1280, 720),)

    def test_extras_are_the_documented_keys(self) -> None:
        assert "fast_pretreatment" in CAPS["MiniMax-Hailuo-02"].extras
        assert "fast_pretreatment" not in CAPS["T2V-01"].extras
        assert "last_frame_image" in CAPS["MiniMax-Hailuo-02"].extras
        assert "last_frame_image" not in CAPS["MiniMax-Hailuo-2.3"].extras
        assert "subject_reference" in CAPS["S2V-01"].extras
        assert {"prompt_optimizer", "aigc_watermark", "watermark", "callback_url"} <= CAPS["I2V-01"].extras

    def test_every_combination_passes_the_fakes_validation(self) -> None:
        for model, modes in MATRIX.items():
            for mode, table in modes.items():
                for resolution, durations in table.items():
                    for duration in durations:
                        w, h = {"512P": (910, 512), "720P": (1280, 720), "768P": (1366, 768)}.get(
                            resolution, (1920, 1080)
                        )
                        kw: dict[str, Any] = {"model": model, "width": w, "height": h, "seconds": duration}
                        if mode in {"i2v", "fl2v", "s2v"}:
                            kw["image"] = IMG
                        if mode == "fl2v":
                            kw["last_frame"] = LAST
                        body = build_body(make_req(**kw))
                        assert (body["resolution"], body["duration"]) == (resolution, duration)
                        assert validate(body)[0] == mode, (model, mode, resolution, duration)


class TestSnapping:
    """What the service does with these caps before the adapter runs (nearest / strict)."""

    @pytest.mark.parametrize(
        ("model", "size", "nearest"),
        [
            ("MiniMax-Hailuo-2.3", "1280x720", (1366, 768)),  # Hailuo models have no 720P
            ("MiniMax-Hailuo-2.3", "720x1280", (1366, 768)),  # no portrait t2v: the landscape of the tier
            ("MiniMax-Hailuo-2.3", "1080x1920", (1920, 1080)),
            ("MiniMax-Hailuo-2.3", "1080p", (1920, 1080)),
            ("MiniMax-Hailuo-02", "512P", (910, 512)),
            ("MiniMax-Hailuo-2.3-Fast", "720x1280", (768, 1366)),
            ("T2V-01", "1920x1080", (1280, 720)),
        ],
    )
    def test_sizes_snap(self, model: str, size: str, nearest: tuple[int, int]) -> None:
        assert CAPS[model].resolve_size(parse_size(size), "nearest") == nearest

    def test_strict_refuses_naming_the_sizes(self) -> None:
        with pytest.raises(CapabilityError) as exc:
            CAPS["MiniMax-Hailuo-2.3"].resolve_size(parse_size("1280x720"), "strict")
        assert exc.value.param == "size" and "1366x768, 1920x1080" in exc.value.message

    @pytest.mark.parametrize(("asked", "got"), [(4, 6), (6, 6), (8, 10), (10, 10), (12, 10), (20, 10)])
    def test_seconds_snap(self, asked: int, got: int) -> None:
        assert CAPS["MiniMax-Hailuo-2.3"].resolve_seconds(asked, "nearest") == got
        assert CAPS["I2V-01"].resolve_seconds(asked, "nearest") == 6

    def test_strict_seconds(self) -> None:
        with pytest.raises(CapabilityError) as exc:
            CAPS["MiniMax-Hailuo-02"].resolve_seconds(4, "strict")
        assert exc.value.param == "seconds" and "6, 10" in exc.value.message


# ---------------------------------------------------------------------------------------------
# mapping


class TestResolve:
    H = MATRIX["MiniMax-Hailuo-2.3"]["t2v"]
    I2V_02 = MATRIX["MiniMax-Hailuo-02"]["i2v"]
    T2V_02 = MATRIX["MiniMax-Hailuo-02"]["t2v"]

    @pytest.mark.parametrize(
        ("table", "size", "seconds", "expected"),
        [
            (H, (1366, 768), 6, ("768P", 6)),
            (H, (1366, 768), 10, ("768P", 10)),
            (H, (1920, 1080), 6, ("1080P", 6)),
            (H, (1920, 1080), 10, ("768P", 10)),  # 10 s is not offered at 1080P: the tier drops
            (H, (1080, 1920), 6, ("1080P", 6)),
            (I2V_02, (910, 512), 10, ("512P", 10)),
            (T2V_02, (910, 512), 6, ("768P", 6)),  # 512P is image-to-video only
            (MATRIX["T2V-01"]["t2v"], (1280, 720), 6, ("720P", 6)),
            (MATRIX["T2V-01"]["t2v"], (1280, 720), 10, ("720P", 6)),
        ],
    )
    def test_table(
        self, table: dict[str, tuple[int, ...]], size: tuple[int, int], seconds: int, expected: tuple[str, int]
    ) -> None:
        assert resolve(table, *size, seconds) == expected

    @pytest.mark.parametrize(
        ("kw", "mode"),
        [
            ({}, "t2v"),
            ({"image": IMG}, "i2v"),
            ({"model": "MiniMax-Hailuo-02", "image": IMG, "last_frame": LAST}, "fl2v"),
            ({"model": "MiniMax-Hailuo-02", "image": IMG, "extras": {"last_frame_image": "https://x/l.png"}}, "fl2v"),
            ({"model": "S2V-01"}, "s2v"),
            ({"model": "S2V-01", "image": IMG}, "s2v"),
        ],
    )
    def test_mode(self, kw: dict[str, Any], mode: str) -> None:
        assert mode_of(make_req(**kw)) == mode


class TestGoldenBodies:
    def test_text_to_video(self) -> None:
        body = build_body(make_req(model="MiniMax-Hailuo-02", width=1920, height=1080))
        assert body == {
            "model": "MiniMax-Hailuo-02",
            "prompt": "a cat surfing",
            "duration": 6,
            "resolution": "1080P",
        }

    def test_image_bytes_become_a_data_url(self) -> None:
        body = build_body(make_req(model="MiniMax-Hailuo-2.3-Fast", image=IMG, seconds=10))
        assert body == {
            "model": "MiniMax-Hailuo-2.3-Fast",
            "prompt": "a cat surfing",
            "first_frame_image": IMG.data_url(),
            "duration": 10,
            "resolution": "768P",
        }
        assert body["first_frame_image"].startswith("data:image/jpeg;base64,")

    def test_image_url_is_passed_as_is(self) -> None:
        body = build_body(make_req(model="I2V-01-Director", image=IMG_URL, width=1280, height=720))
        assert body == {
            "model": "I2V-01-Director",
            "prompt": "a cat surfing",
            "first_frame_image": "https://example.com/first.png",
            "duration": 6,
            "resolution": "720P",
        }

    def test_first_and_last_frame(self) -> None:
        body = build_body(make_req(model="MiniMax-Hailuo-02", image=IMG_URL, last_frame=LAST, prompt=""))
        assert body == {
            "model": "MiniMax-Hailuo-02",
            "first_frame_image": "https://example.com/first.png",
            "last_frame_image": LAST.data_url(),
            "duration": 6,
            "resolution": "768P",
        }

    def test_last_frame_without_a_first_is_refused(self) -> None:
        with pytest.raises(Rejected, match="first frame"):
            build_body(make_req(model="MiniMax-Hailuo-02", last_frame=LAST))

    def test_last_frame_on_a_model_without_it_is_refused(self) -> None:
        with pytest.raises(Rejected, match="first and a last frame"):
            build_body(make_req(model="MiniMax-Hailuo-2.3", image=IMG, last_frame=LAST))

    def test_subject_reference_from_the_input_image(self) -> None:
        body = build_body(make_req(model="S2V-01", image=IMG_URL, width=1280, height=720))
        assert body == {
            "model": "S2V-01",
            "prompt": "a cat surfing",
            "subject_reference": [{"type": "character", "image": ["https://example.com/first.png"]}],
            "duration": 6,
            "resolution": "720P",
        }

    @pytest.mark.parametrize(
        "value",
        [
            "https://example.com/face.jpg",
            '[{"type": "character", "image": ["https://example.com/face.jpg"]}]',
            [{"type": "character", "image": ["https://example.com/face.jpg"]}],
        ],
    )
    def test_subject_reference_from_metadata(self, value: Any) -> None:
        body = build_body(make_req(model="S2V-01", extras={"subject_reference": value}, width=1280, height=720))
        assert body["subject_reference"] == [{"type": "character", "image": ["https://example.com/face.jpg"]}]

    def test_s2v_without_a_subject_is_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(model="S2V-01", width=1280, height=720))
        assert exc.value.vendor_code == "missing_required_parameter"

    def test_metadata_switches_are_coerced_and_cannot_touch_model_or_prompt(self) -> None:
        extras = {
            "prompt_optimizer": "false",
            "fast_pretreatment": "true",
            "watermark": True,
            "callback_url": "https://gw.example/callbacks/minimax/video_abc/tok",
            "model": "T2V-01",
            "prompt": "something else",
            "first_frame_image": "https://evil.example/x.png",
            "seed": 7,  # not a MiniMax field: dropped
            "sandbox_latency_ms": 5,
        }
        body = build_body(make_req(extras=extras))
        assert body == {
            "model": "MiniMax-Hailuo-2.3",
            "prompt": "a cat surfing",
            "duration": 6,
            "resolution": "768P",
            "prompt_optimizer": False,
            "fast_pretreatment": True,
            "aigc_watermark": True,
            "callback_url": "https://gw.example/callbacks/minimax/video_abc/tok",
        }

    def test_fast_pretreatment_is_not_sent_to_the_01_series(self) -> None:
        body = build_body(make_req(model="T2V-01", width=1280, height=720, extras={"fast_pretreatment": True}))
        assert "fast_pretreatment" not in body

    def test_metadata_cannot_change_duration_or_resolution(self) -> None:
        body = build_body(make_req(width=1920, height=1080, extras={"resolution": "768P", "duration": "10"}))
        assert (body["resolution"], body["duration"]) == ("1080P", 6)  # what was checked and priced

    @pytest.mark.parametrize("extras", [{"prompt_optimizer": "maybe"}, {"subject_reference": "[not json"}])
    def test_bad_metadata_is_rejected(self, extras: dict[str, Any]) -> None:
        model = "S2V-01" if "subject_reference" in extras else "MiniMax-Hailuo-2.3"
        with pytest.raises(Rejected) as exc:
            build_body(make_req(model=model, extras=extras))
        assert exc.value.vendor_code == "invalid_value"

    def test_unknown_model_is_rejected(self) -> None:
        with pytest.raises(Rejected):
            build_body(make_req(model="MiniMax-H3"))


# ---------------------------------------------------------------------------------------------
# responses


def _q(status: str, code: int = 0, msg: str = "success", **kw: Any) -> dict[str, Any]:
    return {
        "task_id": "1",
        "status": status,
        "file_id": "",
        **kw,
        "base_resp": {"status_code": code, "status_msg": msg},
    }


class TestStatus:
    @pytest.mark.parametrize(
        ("state", "status"),
        [
            ("Preparing", VideoStatus.queued),
            ("Queueing", VideoStatus.queued),
            ("Processing", VideoStatus.in_progress),
            ("processing", VideoStatus.in_progress),  # the callback's spelling
        ],
    )
    def test_pending(self, state: str, status: VideoStatus) -> None:
        q = parse_query(_q(state))
        assert q.snapshot.status is status and q.file_id is None and q.snapshot.poll_after == 10.0

    def test_every_documented_state_is_mapped_and_progress_is_monotone(self) -> None:
        assert {"preparing", "queueing", "processing", "success", "fail"} <= set(STATUS)
        order = ["Preparing", "Queueing", "Processing"]
        seen = [parse_query(_q(s)).snapshot.progress or 0 for s in order]
        assert seen == sorted(seen) and len(set(seen)) == 3 and seen[-1] < PROGRESS["success"]

    def test_success_names_the_file(self) -> None:
        q = parse_query(_q("Success", file_id="362088325627994", video_width=1920, video_height=1080))
        assert q.file_id == "362088325627994"
        snap = q.snapshot
        assert (snap.status, snap.progress, snap.width, snap.height, snap.has_audio) == (
            VideoStatus.completed, 100, 1920, 1080, False,
        )  # fmt: skip

    def test_success_without_a_file_is_a_failure(self) -> None:
        snap = parse_query(_q("Success")).snapshot
        assert snap.status is VideoStatus.failed and snap.error_code == "no_file_id"

    @pytest.mark.parametrize(
        ("code", "msg"),
        [(1027, "output new_sensitive"), (1026, "input new_sensitive, input first_frame_image sensitive")],
    )
    def test_fail_carries_the_code(self, code: int, msg: str) -> None:
        snap = parse_query(_q("Fail", code, msg)).snapshot
        assert (snap.status, snap.error_code, snap.error_message) == (VideoStatus.failed, str(code), msg)

    def test_fail_without_a_code(self) -> None:
        snap = parse_query(_q("Fail")).snapshot
        assert snap.status is VideoStatus.failed and snap.error_code == "failed" and snap.error_message

    def test_a_code_outside_fail_is_the_querys_own_error(self) -> None:
        with pytest.raises(RateLimited):
            parse_query(_q("Processing", 1002, "rate limit"))

    def test_unknown_state_stays_in_progress_and_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            snap = parse_query(_q("Rendering")).snapshot
        assert snap.status is VideoStatus.in_progress and "Rendering" in caplog.text


class TestErrors:
    @pytest.mark.parametrize(
        ("code", "cls", "vendor_code"),
        [
            (1000, Unavailable, "1000"),
            (1001, Unavailable, "1001"),
            (1002, RateLimited, "1002"),
            (1004, AuthFailed, "1004"),
            (1008, Rejected, "1008"),
            (1024, Unavailable, "1024"),
            (1026, Rejected, "moderation_blocked"),
            (1027, Rejected, "moderation_blocked"),
            (1033, Unavailable, "1033"),
            (1039, RateLimited, "1039"),
            (1041, RateLimited, "1041"),
            (1042, Rejected, "1042"),
            (2013, Rejected, "2013"),
            (2038, AuthFailed, "2038"),
            (2045, RateLimited, "2045"),
            (2049, AuthFailed, "2049"),
            (2056, RateLimited, "2056"),
            (9999, Rejected, "9999"),
        ],
    )
    def test_documented_codes(self, code: int, cls: type, vendor_code: str) -> None:
        exc = map_error(200, {"task_id": "", "base_resp": {"status_code": code, "status_msg": "m"}})
        assert type(exc) is cls and exc.vendor_code == vendor_code and str(code) in exc.message

    def test_rate_limits_get_a_wait(self) -> None:
        body = {"base_resp": {"status_code": 1002, "status_msg": "rate limit"}}
        assert map_error(200, body).retry_after == 12.0
        assert map_error(200, body, retry_after=3.0).retry_after == 3.0

    @pytest.mark.parametrize(
        ("http", "body", "cls"),
        [
            (500, None, Unavailable),
            (502, "<html>", Unavailable),
            (500, {"base_resp": {"status_code": 1000, "status_msg": "unknown error"}}, Unavailable),
            (429, None, RateLimited),
            (401, {}, AuthFailed),
            (404, None, Unavailable),
            (400, {"error": "x"}, Rejected),
            (200, None, Unavailable),
        ],
    )
    def test_bare_statuses(self, http: int, body: Any, cls: type) -> None:
        assert type(map_error(http, body)) is cls


# ---------------------------------------------------------------------------------------------
# the adapter against the fake


class TestLifecycle:
    def test_shape(self, provider: MiniMaxProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert not isinstance(provider, Recoverable)  # no listing, no client reference (see the docstring)

    async def test_text_to_video_end_to_end(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        task = await provider.submit(make_req(seconds=10))
        assert len(task.vendor_task_id) == 15 and task.meta["duration"] == 10
        snaps = await run_to_end(provider, task)
        assert [s.status for s in snaps] == ["queued", "queued", "in_progress", "completed"]
        progress = [s.progress or 0 for s in snaps]
        assert progress == sorted(progress) and progress[-1] == 100
        done = snaps[-1]
        assert done.video_url and done.video_url.startswith(f"{CDN}/inference_output/video/")
        assert (done.width, done.height, done.seconds, done.has_audio) == (*VIDEO_SIZE, 10, False)
        assert await read(provider, task, done) == VIDEO_BYTES
        api = [r for r in state.requests if r["path"].startswith("/v1/")]
        assert [r["path"] for r in api][-2:] == ["/v1/query/video_generation", "/v1/files/retrieve"]
        assert all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in api)
        assert api[0]["headers"]["content-type"] == "application/json"
        assert api[-1]["query"] == {"file_id": done.meta["file_id"]}
        cdn = [r for r in state.requests if r["path"].startswith("/inference_output/")]
        assert cdn and all("authorization" not in r["headers"] for r in cdn)  # the key stays home

    async def test_image_to_video_with_bytes(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        task = await provider.submit(make_req(model="MiniMax-Hailuo-02", image=IMG, width=910, height=512))
        assert state.tasks[task.vendor_task_id].mode == "i2v"
        assert state.bodies("/v1/video_generation")[0]["resolution"] == "512P"
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    async def test_first_last_and_subject(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        fl = await provider.submit(make_req(model="MiniMax-Hailuo-02", image=IMG, last_frame=LAST))
        s2v = await provider.submit(make_req(model="S2V-01", image=IMG, width=1280, height=720))
        assert [state.tasks[t.vendor_task_id].mode for t in (fl, s2v)] == ["fl2v", "s2v"]

    async def test_failure_is_a_snapshot(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        state.fail_task = (1027, "output new_sensitive")
        snap = (await run_to_end(provider, await provider.submit(make_req())))[-1]
        assert (snap.status, snap.error_code, snap.error_message) == ("failed", "1027", "output new_sensitive")

    async def test_base_url_with_v1_suffix(self, client: httpx.AsyncClient) -> None:
        provider = MiniMaxProvider(client, api_key=KEY, base_url="https://api.minimaxi.com/v1/")
        assert (await provider.submit(make_req())).vendor_task_id

    async def test_expired_url_is_not_found(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        task = await provider.submit(make_req())
        state.expire_urls = True
        done = (await run_to_end(provider, task))[-1]
        with pytest.raises(NotFoundAtVendor):
            await read(provider, task, done)
        state.expire_urls = False  # the next poll retrieves a fresh URL
        assert await read(provider, task, await provider.poll(task)) == VIDEO_BYTES

    async def test_backup_url_when_the_first_fails(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        task = await provider.submit(make_req())
        done = (await run_to_end(provider, task))[-1]
        state.break_primary = True
        assert await read(provider, task, done) == VIDEO_BYTES
        assert "backup=1" in state.requests[-1]["query"] or state.requests[-1]["query"].get("backup") == "1"


class TestFailures:
    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient) -> None:
        with pytest.raises(AuthFailed) as exc:
            await MiniMaxProvider(client, api_key="sk-wrong", base_url=BASE).submit(make_req())
        assert exc.value.vendor_code == "2049"

    @pytest.mark.parametrize(
        ("code", "http", "cls", "vendor_code"),
        [
            (1002, 200, RateLimited, "1002"),
            (1004, 200, AuthFailed, "1004"),
            (1008, 200, Rejected, "1008"),
            (1026, 200, Rejected, "moderation_blocked"),
            (2013, 200, Rejected, "2013"),
            (2056, 200, RateLimited, "2056"),
            (1000, 500, Unavailable, "1000"),
        ],
    )
    async def test_create_faults(
        self, provider: MiniMaxProvider, state: FakeMiniMaxState, code: int, http: int, cls: type, vendor_code: str
    ) -> None:
        state.fail_next(code, on="create", http=http)
        with pytest.raises(cls) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == vendor_code
        assert not state.tasks

    async def test_retry_after_header_is_kept(self, provider: MiniMaxProvider, state: FakeMiniMaxState) -> None:
        state.fail_next(1002, on="create", retry_after="7")
        with pytest.raises(RateLimited) as exc:
            await provider.submit(make_req())
        assert exc.value.retry_after == 7.0

    @pytest.mark.parametrize("route", ["query", "retrieve"])
    async def test_throttled_poll_is_an_error_not_a_failure(
        self, provider: MiniMaxProvider, state: FakeMiniMaxState, route: str
    ) -> None:
        task = await provider.submit(make_req())
        for _ in range(3):
            await provider.poll(task)  # up to Processing; the next query says Success
        state.fail_next(1002, on=route)
        with pytest.raises(RateLimited):
            await provider.poll(task)

    async def test_vendor_validation_is_rejected(self, provider: MiniMaxProvider) -> None:
        with pytest.raises(Rejected) as exc:  # no prompt for text-to-video
            await provider.submit(make_req(prompt=""))
        assert exc.value.vendor_code == "2013" and "prompt" in exc.value.message

    async def test_unknown_task(self, provider: MiniMaxProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(VendorTask(provider="minimax", vendor_task_id="999"))

    async def test_transport_error_is_unavailable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as c:
            with pytest.raises(Unavailable) as exc:
                await MiniMaxProvider(c, api_key=KEY).submit(make_req())
        assert exc.value.vendor_code == "transport"

    async def test_garbage_is_unavailable(self) -> None:
        garbage = httpx.MockTransport(lambda r: httpx.Response(200, text="{nope"))
        async with httpx.AsyncClient(transport=garbage) as c:
            with pytest.raises(Unavailable):
                await MiniMaxProvider(c, api_key=KEY).submit(make_req())


class TestFake:
    @pytest.mark.parametrize(
        ("auth", "code"),
        [(None, 1004), ("Basic abc", 1004), ("Bearer ", 1004), (f"bearer {KEY}", 1004), ("Bearer sk-other", 2049)],
    )
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/v1/video_generation"),
            ("GET", "/v1/query/video_generation?task_id=1"),
            ("GET", "/v1/files/retrieve?file_id=1"),
        ],
    )
    async def test_auth_is_exact(
        self, client: httpx.AsyncClient, auth: str | None, code: int, method: str, path: str
    ) -> None:
        headers = {"Authorization": auth} if auth is not None else {}
        r = await client.request(method, f"{BASE}{path}", headers=headers, json={})
        assert r.status_code == 200 and r.json()["base_resp"]["status_code"] == code

    async def test_group_id_is_tolerated_and_wrong_methods_are_405(self, client: httpx.AsyncClient) -> None:
        auth = {"Authorization": f"Bearer {KEY}"}
        r = await client.post(
            f"{BASE}/v1/video_generation?GroupId=123", headers=auth, json={"model": "T2V-01", "prompt": "x"}
        )
        assert r.json()["base_resp"]["status_code"] == 0 and len(r.json()["task_id"]) == 15
        assert (await client.get(f"{BASE}/v1/video_generation", headers=auth)).status_code == 405

    @pytest.mark.parametrize(
        "body",
        [
            {"prompt": "x"},
            {"model": "Nope", "prompt": "x"},
            {"model": "T2V-01", "prompt": "x", "first_frame_image": "https://x/a.png"},
            {"model": "I2V-01", "prompt": "x"},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "last_frame_image": "https://x/a.png"},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "resolution": "768p"},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "resolution": "1080P", "duration": 10},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "duration": "6"},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "resolution": "512P"},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x" * 2001},
            {"model": "MiniMax-Hailuo-2.3", "prompt": " "},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "prompt_optimizer": "false"},
            {"model": "MiniMax-Hailuo-2.3", "prompt": "x", "subject_reference": []},
            {"model": "S2V-01", "prompt": "x"},
            {"model": "MiniMax-Hailuo-2.3", "first_frame_image": "data:image/png;base64,!!"},
            {"model": "MiniMax-Hailuo-2.3", "first_frame_image": ImageInput(data=solid_image((1, 2, 3))).data_url()},
            {
                "model": "MiniMax-Hailuo-2.3",
                "first_frame_image": ImageInput(data=solid_image((1, 2, 3), size=(1800, 320))).data_url(),
            },
        ],
    )
    def test_validation(self, body: dict[str, Any]) -> None:
        with pytest.raises(Invalid):
            validate(body)


# ---------------------------------------------------------------------------------------------
# callbacks: MiniMax verifies the URL (challenge echo) at create, then posts each state change


class GatewayTransport(httpx.AsyncBaseTransport):
    app: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


@pytest.mark.engine  # watches the video finish
async def test_callbacks_are_verified_then_update_the_task_at_once(database_url: str, tmp_path: Any) -> None:
    to_gateway = GatewayTransport()
    fake, state = make_app(api_key=KEY, callback_client=httpx.AsyncClient(transport=to_gateway))
    settings = make_settings(
        database_url,
        tmp_path / "d",
        sandbox_enabled=False,
        minimax_api_key=KEY,
        minimax_base_url=BASE,
        public_base_url="http://gw",
        poll_interval_ms=60_000,  # polling alone would take a minute
        poll_max_interval_ms=60_000,
    )
    app = create_app(settings, http=httpx.AsyncClient(transport=httpx.ASGITransport(app=fake)))
    to_gateway.app = app
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "cb", "model": "MiniMax-Hailuo-2.3"})
            assert r.status_code == 200, r.text
            vid = r.json()["id"]
            task = next(iter(state.tasks.values()))
            assert task.body["callback_url"].startswith(f"http://gw/callbacks/minimax/{vid}/")
            assert state.callbacks[0]["verified"] is True  # the challenge was echoed during the create
            # time passes at MiniMax: the task moves on and MiniMax posts the change
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url=BASE) as v:
                for _ in range(3):
                    await v.get(
                        f"/v1/query/video_generation?task_id={task.id}", headers={"Authorization": f"Bearer {KEY}"}
                    )
            body = await finish(c, auth, vid, timeout=10)
            assert body["status"] == "completed", body
            assert any(cb.get("status") == 200 for cb in state.callbacks[1:])
            # a challenge to a wrong token is not answered
            bad = await c.post(f"/callbacks/minimax/{vid}/{'0' * 43}", json={"challenge": "x"})
            assert bad.status_code == 404


# ---------------------------------------------------------------------------------------------
# through the gateway: the parameter policy, moderation and vendor faults as a client sees them


@pytest.fixture
async def gw(database_url: str, tmp_path: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient, dict[str, str], Any]]:
    fake, state = make_app(api_key=KEY)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), timeout=10)
    settings = make_settings(
        database_url,
        tmp_path / "data",
        sandbox_enabled=False,
        poll_interval_ms=50,
        poll_max_interval_ms=100,
        minimax_api_key=KEY,
        minimax_base_url=BASE,
    )
    app = create_app(settings, http=http)
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            yield app, c, auth, state
    await http.aclose()


def _creates(state: FakeMiniMaxState) -> list[Any]:
    return state.bodies("/v1/video_generation")


@pytest.mark.engine  # these tests watch videos finish
class TestThroughTheGateway:
    async def test_nearest_snaps_and_reports_what_is_sent(self, gw: Any) -> None:
        _, c, auth, state = gw
        json = {"prompt": "x", "model": "MiniMax-Hailuo-2.3", "seconds": "4", "size": "1280x720"}
        r = await c.post("/v1/videos", headers=auth, json=json)
        assert r.status_code == 200, r.text
        assert (r.json()["seconds"], r.json()["size"]) == ("6", "1366x768")
        assert {k: _creates(state)[-1][k] for k in ("duration", "resolution")} == {"duration": 6, "resolution": "768P"}
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"

    async def test_ten_seconds_at_1080p_is_snapped_to_six_or_refused_under_strict(self, gw: Any) -> None:
        """1080P is 6 s only: nearest keeps the size and makes 6 s; strict answers 400 before any vendor call."""
        app, c, auth, state = gw
        json = {"prompt": "x", "model": "MiniMax-Hailuo-02", "seconds": "10", "size": "1920x1080"}
        r = await c.post("/v1/videos", headers=auth, json=json)
        assert r.status_code == 200 and (r.json()["size"], r.json()["seconds"]) == ("1920x1080", "6")
        assert (_creates(state)[-1]["duration"], _creates(state)[-1]["resolution"]) == (6, "1080P")
        app.state.gateway.settings.param_policy = "strict"
        err = assert_error(await c.post("/v1/videos", headers=auth, json=json), 400, param="seconds")
        assert "1920x1080 videos of 6 seconds only" in err["message"]
        assert len(_creates(state)) == 1

    @pytest.mark.parametrize(
        ("field", "value", "allowed"), [("seconds", "4", "6, 10"), ("size", "1280x720", "1366x768, 1920x1080")]
    )
    async def test_strict_names_the_allowed_values(self, gw: Any, field: str, value: str, allowed: str) -> None:
        app, c, auth, state = gw
        app.state.gateway.settings.param_policy = "strict"
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "MiniMax-Hailuo-2.3", field: value})
        err = assert_error(r, 400, param=field)
        assert allowed in err["message"]
        assert _creates(state) == []

    async def test_moderation_at_submit_is_a_400_moderation_blocked(self, gw: Any) -> None:
        _, c, auth, state = gw
        state.fail_next(1026, on="create", msg="input new_sensitive")
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "MiniMax-Hailuo-2.3"})
        err = assert_error(r, 400, code="moderation_blocked")
        assert "new_sensitive" in err["message"]
        assert (await c.get("/v1/videos", headers=auth)).json()["data"] == []

    async def test_5xx_at_submit_is_retried_and_the_task_completes(self, gw: Any) -> None:
        _, c, auth, state = gw
        state.fail_next(1000, on="create", http=500)
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "MiniMax-Hailuo-2.3"})
        assert r.status_code == 200, r.text
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"
        assert len(_creates(state)) == 2

    async def test_throttled_queries_are_waited_out(self, gw: Any) -> None:
        _, c, auth, state = gw
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "MiniMax-Hailuo-2.3"})
        state.fail_next(1002, on="query")
        state.fail_next(1000, on="retrieve", http=500)
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"

    async def test_multipart_image_and_metadata(self, gw: Any) -> None:
        _, c, auth, state = gw
        r = await c.post(
            "/v1/videos",
            headers=auth,
            data={
                "prompt": "x",
                "model": "MiniMax-Hailuo-2.3-Fast",
                "metadata": '{"model": "T2V-01", "prompt_optimizer": "false", "watermark": "true"}',
            },
            files={"input_reference": ("ref.jpg", JPEG, "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        body = _creates(state)[-1]
        assert body["model"] == "MiniMax-Hailuo-2.3-Fast"
        assert body["first_frame_image"].startswith("data:image/jpeg;base64,")
        assert (body["prompt_optimizer"], body["aigc_watermark"]) == (False, True)
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"
