"""Jimeng (Volcengine cv) adapter: mapping tables, golden native bodies, the adapter against the fake."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.providers.base import (
    AuthFailed,
    Cancellable,
    GenerationRequest,
    ImageInput,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.jimeng import (
    DEFAULT_BASE_URL,
    MAX_IMAGE_BYTES,
    MODELS,
    STATUS,
    JimengProvider,
    build_body,
    map_error,
    req_key_for,
    snapshot,
)
from app.providers.vendors import VENDORS
from app.providers.volc_sign import VolcV4Auth
from tests.fakes.jimeng import (
    ACCESS_KEY,
    SECRET_KEY,
    VIDEO_BYTES,
    FakeState,
    make_app,
    validate_submit,
    verify_signature,
)

CAPS = {c.name: c for c in MODELS}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
SUBMIT = "CVSync2AsyncSubmitTask"
RESULT = "CVSync2AsyncGetResult"


def make_req(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "video_abc",
        "model": "jimeng_t2v_v30",
        "prompt": "a red fox running through snow",
        "width": 1280,
        "height": 720,
        "seconds": 5,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


@pytest.fixture
def now() -> list[float]:
    return [time.time()]


@pytest.fixture
def fake(now: list[float]) -> tuple[Any, FakeState]:
    return make_app(clock=lambda: now[0])


@pytest.fixture
def state(fake: tuple[Any, FakeState]) -> FakeState:
    return fake[1]


@pytest.fixture
async def client(fake: tuple[Any, FakeState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


@pytest.fixture
def provider(client: httpx.AsyncClient) -> JimengProvider:
    return JimengProvider(client, access_key=ACCESS_KEY, secret_key=SECRET_KEY, base_url=DEFAULT_BASE_URL)


# ---------------------------------------------------------------------------------------------
# Tables


class TestCapabilities:
    def test_every_model_is_declared_for_jimeng(self) -> None:
        assert set(CAPS) == {
            "jimeng_vgfm_t2v_l20",
            "jimeng_vgfm_i2v_l20",
            "jimeng_t2v_v30",
            "jimeng_t2v_v30_1080p",
            "jimeng_i2v_first_v30",
            "jimeng_i2v_first_v30_1080",
            "jimeng_i2v_first_tail_v30",
            "jimeng_i2v_first_tail_v30_1080",
            "jimeng_ti2v_v30_pro",
        }
        for caps in MODELS:
            assert caps.provider == "jimeng"
            assert caps.default_size in caps.sizes
            assert caps.default_seconds in caps.seconds
            assert (caps.remix, caps.edit, caps.extend) == (False, False, False)
        assert VENDORS["jimeng"].image_transport == "either"

    @pytest.mark.parametrize(
        ("model", "image", "last_frame", "seconds"),
        [
            ("jimeng_vgfm_t2v_l20", "optional", False, (5,)),
            ("jimeng_vgfm_i2v_l20", "required", False, (5,)),
            ("jimeng_t2v_v30", "optional", True, (5, 10)),
            ("jimeng_t2v_v30_1080p", "optional", True, (5, 10)),
            ("jimeng_i2v_first_v30", "required", True, (5, 10)),
            ("jimeng_i2v_first_v30_1080", "required", True, (5, 10)),
            ("jimeng_i2v_first_tail_v30", "required", True, (5, 10)),
            ("jimeng_i2v_first_tail_v30_1080", "required", True, (5, 10)),
            ("jimeng_ti2v_v30_pro", "optional", False, (5, 10)),
        ],
    )
    def test_image_modes_and_seconds(self, model: str, image: str, last_frame: bool, seconds: tuple) -> None:
        caps = CAPS[model]
        assert (caps.image, caps.last_frame, caps.seconds) == (image, last_frame, seconds)

    def test_resolution_class_follows_the_model_name(self) -> None:
        for name, caps in CAPS.items():
            short = 1088 if "1080" in name or "pro" in name else 720
            assert min(caps.default_size) == short, name
            assert caps.default_size[0] > caps.default_size[1]  # the vendor's default 16:9


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ((1280, 720), "16:9"),
        ((720, 1280), "9:16"),
        ((960, 960), "1:1"),
        ((960, 720), "4:3"),
        ((720, 960), "3:4"),
        ((1680, 720), "21:9"),
        ((1920, 1088), "16:9"),
        ((1088, 1920), "9:16"),
        ((1440, 1440), "1:1"),
        ((1664, 1248), "4:3"),
        ((1248, 1664), "3:4"),
        ((2176, 928), "21:9"),
    ],
)
def test_size_to_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    model = "jimeng_t2v_v30" if min(size) == 720 or size == (960, 960) else "jimeng_t2v_v30_1080p"
    assert size in CAPS[model].sizes
    body = build_body(make_req(model=model, width=size[0], height=size[1]))
    assert body["aspect_ratio"] == ratio


def test_every_listed_size_has_a_ratio() -> None:
    for caps in MODELS:
        for w, h in caps.sizes:
            if caps.image != "required":
                assert build_body(make_req(model=caps.name, width=w, height=h))["aspect_ratio"]


@pytest.mark.parametrize(("seconds", "frames"), [(5, 121), (10, 241), (4, 121), (8, 241), (15, 241)])
def test_seconds_to_frames(seconds: int, frames: int) -> None:
    assert build_body(make_req(seconds=seconds))["frames"] == frames


@pytest.mark.parametrize(
    ("model", "image", "last", "key"),
    [
        ("jimeng_t2v_v30", False, False, "jimeng_t2v_v30"),
        ("jimeng_t2v_v30", True, False, "jimeng_i2v_first_v30"),
        ("jimeng_t2v_v30", True, True, "jimeng_i2v_first_tail_v30"),
        ("jimeng_t2v_v30_1080p", False, False, "jimeng_t2v_v30_1080p"),
        ("jimeng_t2v_v30_1080p", True, False, "jimeng_i2v_first_v30_1080"),
        ("jimeng_t2v_v30_1080p", True, True, "jimeng_i2v_first_tail_v30_1080"),
        ("jimeng_i2v_first_v30", True, False, "jimeng_i2v_first_v30"),
        ("jimeng_i2v_first_v30", True, True, "jimeng_i2v_first_tail_v30"),
        ("jimeng_i2v_first_v30_1080", True, True, "jimeng_i2v_first_tail_v30_1080"),
        ("jimeng_i2v_first_tail_v30", True, True, "jimeng_i2v_first_tail_v30"),
        ("jimeng_i2v_first_tail_v30_1080", True, True, "jimeng_i2v_first_tail_v30_1080"),
        ("jimeng_ti2v_v30_pro", False, False, "jimeng_ti2v_v30_pro"),
        ("jimeng_ti2v_v30_pro", True, False, "jimeng_ti2v_v30_pro"),
        ("jimeng_vgfm_t2v_l20", False, False, "jimeng_vgfm_t2v_l20"),
        ("jimeng_vgfm_t2v_l20", True, False, "jimeng_vgfm_i2v_l20"),
        ("jimeng_vgfm_i2v_l20", True, False, "jimeng_vgfm_i2v_l20"),
    ],
)
def test_req_key_routing(model: str, image: bool, last: bool, key: str) -> None:
    assert req_key_for(model, image=image, last_frame=last) == key


@pytest.mark.parametrize(
    ("model", "image", "last", "words"),
    [
        ("jimeng_i2v_first_v30", False, False, "needs an image"),
        ("jimeng_vgfm_i2v_l20", False, False, "needs an image"),
        ("jimeng_i2v_first_tail_v30", True, False, "needs both"),
        ("jimeng_i2v_first_tail_v30_1080", False, False, "needs both"),
        ("jimeng_ti2v_v30_pro", True, True, "takes no last frame"),
        ("jimeng_vgfm_t2v_l20", True, True, "takes no last frame"),
        ("jimeng_t2v_v30", False, True, "needs a first frame"),
        ("sora-2", False, False, "Unknown Jimeng model"),
    ],
)
def test_req_key_refusals(model: str, image: bool, last: bool, words: str) -> None:
    with pytest.raises(Rejected, match=words):
        req_key_for(model, image=image, last_frame=last)


# ---------------------------------------------------------------------------------------------
# Golden native bodies


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class TestBuildBody:
    def test_t2v_matches_the_doc_example_bytes(self) -> None:
        # the body of the §5.3 signature worked example
        assert _dump(build_body(make_req())) == (
            b'{"req_key":"jimeng_t2v_v30","prompt":"a red fox running through snow",'
            b'"seed":-1,"frames":121,"aspect_ratio":"16:9"}'
        )

    def test_t2v_1080p_portrait_10s(self) -> None:
        body = build_body(make_req(model="jimeng_t2v_v30_1080p", width=1088, height=1920, seconds=10))
        assert body == {
            "req_key": "jimeng_t2v_v30_1080p",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "frames": 241,
            "aspect_ratio": "9:16",
        }

    def test_i2v_upload_goes_as_plain_base64(self) -> None:
        body = build_body(make_req(image=ImageInput(data=PNG, mime="image/png")))
        assert body == {
            "req_key": "jimeng_i2v_first_v30",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "frames": 121,
            "binary_data_base64": [base64.b64encode(PNG).decode()],
        }

    def test_i2v_url(self) -> None:
        body = build_body(make_req(model="jimeng_i2v_first_v30_1080", image=ImageInput(url="https://x/a.png")))
        assert body == {
            "req_key": "jimeng_i2v_first_v30_1080",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "frames": 121,
            "image_urls": ["https://x/a.png"],
        }

    def test_bytes_win_over_a_url_when_both_are_present(self) -> None:
        body = build_body(make_req(image=ImageInput(data=JPEG, mime="image/jpeg", url="https://x/a.jpg")))
        assert "image_urls" not in body
        assert body["binary_data_base64"] == [base64.b64encode(JPEG).decode()]

    def test_first_and_last_frame(self) -> None:
        req = make_req(image=ImageInput(data=PNG), last_frame=ImageInput(data=JPEG))
        body = build_body(req)
        assert body["req_key"] == "jimeng_i2v_first_tail_v30"
        assert body["binary_data_base64"] == [base64.b64encode(PNG).decode(), base64.b64encode(JPEG).decode()]
        assert "aspect_ratio" not in body
        urls = build_body(make_req(image=ImageInput(url="https://x/1"), last_frame=ImageInput(url="https://x/2")))
        assert urls["image_urls"] == ["https://x/1", "https://x/2"]

    def test_mixed_frame_transports_are_refused(self) -> None:
        req = make_req(image=ImageInput(data=PNG), last_frame=ImageInput(url="https://x/2"))
        with pytest.raises(Rejected) as err:
            build_body(req)
        assert err.value.vendor_code == "mixed_image_inputs"

    def test_pro_t2v_and_i2v(self) -> None:
        t2v = build_body(make_req(model="jimeng_ti2v_v30_pro", width=2176, height=928))
        assert t2v == {
            "req_key": "jimeng_ti2v_v30_pro",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "frames": 121,
            "aspect_ratio": "21:9",
        }
        i2v = build_body(
            make_req(model="jimeng_ti2v_v30_pro", width=2176, height=928, image=ImageInput(url="https://x/a"))
        )
        assert i2v == {
            "req_key": "jimeng_ti2v_v30_pro",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "frames": 121,
            "image_urls": ["https://x/a"],
        }

    def test_s20_pro_sends_no_frames(self) -> None:
        body = build_body(make_req(model="jimeng_vgfm_t2v_l20", width=720, height=960))
        assert body == {
            "req_key": "jimeng_vgfm_t2v_l20",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "aspect_ratio": "3:4",
        }
        i2v = build_body(make_req(model="jimeng_vgfm_t2v_l20", image=ImageInput(url="https://x/a")))
        assert i2v == {
            "req_key": "jimeng_vgfm_i2v_l20",
            "prompt": "a red fox running through snow",
            "seed": -1,
            "image_urls": ["https://x/a"],
        }

    def test_image_over_4_7_mb_is_refused(self) -> None:
        big = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG) + 1)
        with pytest.raises(Rejected, match="4.7 MB") as err:
            build_body(make_req(image=ImageInput(data=big, mime="image/png")))
        assert err.value.vendor_code == "image_too_large"
        exact = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG))
        assert build_body(make_req(image=ImageInput(data=exact)))["binary_data_base64"]

    @pytest.mark.parametrize("data", [b"GIF89a" + b"\x00" * 10, b"RIFF\x00\x00\x00\x00WEBPVP8 ", b""])
    def test_only_jpeg_and_png(self, data: bytes) -> None:
        with pytest.raises(Rejected, match="JPEG or PNG") as err:
            build_body(make_req(image=ImageInput(data=data, mime="image/png")))
        assert err.value.vendor_code == "image_format"


class TestExtras:
    def test_known_keys_are_coerced(self) -> None:
        body = build_body(make_req(extras={"seed": "42", "frames": "241", "aspect_ratio": "1:1"}))
        assert (body["seed"], body["frames"], body["aspect_ratio"]) == (42, 241, "1:1")

    def test_model_prompt_and_images_cannot_be_overridden(self) -> None:
        extras = {
            "req_key": "jimeng_ti2v_v30_pro",
            "prompt": "other",
            "image_urls": ["https://evil/x"],
            "binary_data_base64": ["AAAA"],
            "task_id": "1",
            "sandbox_fail": "true",
        }
        assert _dump(build_body(make_req(extras=extras))) == _dump(build_body(make_req()))

    def test_unknown_keys_pass_through(self) -> None:
        assert build_body(make_req(extras={"camera_strength": "weak"}))["camera_strength"] == "weak"

    def test_aspect_ratio_is_dropped_for_image_to_video(self) -> None:
        body = build_body(make_req(image=ImageInput(url="https://x/a"), extras={"aspect_ratio": "1:1"}))
        assert "aspect_ratio" not in body

    @pytest.mark.parametrize(
        "extras",
        [{"seed": "abc"}, {"seed": True}, {"seed": "1.5"}, {"frames": "120"}, {"aspect_ratio": "2:1"}],
    )
    def test_bad_values_are_rejected(self, extras: dict[str, Any]) -> None:
        with pytest.raises(Rejected) as err:
            build_body(make_req(extras=extras))
        assert err.value.vendor_code == "invalid_metadata"


# ---------------------------------------------------------------------------------------------
# Result and error tables


def _result(status: str | None, code: int = 10000, **data: Any) -> dict[str, Any]:
    body = None if status is None else {"status": status, **data}
    return {"code": code, "data": body, "message": "Success", "request_id": "r", "status": code}


class TestSnapshot:
    def test_status_table_covers_every_documented_state(self) -> None:
        assert STATUS == {
            "in_queue": VideoStatus.queued,
            "generating": VideoStatus.in_progress,
            "processing": VideoStatus.in_progress,
            "done": VideoStatus.completed,
            "not_found": VideoStatus.failed,
            "expired": VideoStatus.failed,
        }

    @pytest.mark.parametrize(
        ("status", "expected", "progress"),
        [
            ("in_queue", VideoStatus.queued, 0),
            ("generating", VideoStatus.in_progress, 50),
            ("processing", VideoStatus.in_progress, 50),
        ],
    )
    def test_running_states(self, status: str, expected: VideoStatus, progress: int) -> None:
        snap = snapshot(_result(status, video_url=""))
        assert (snap.status, snap.progress, snap.video_url) == (expected, progress, None)

    def test_done(self) -> None:
        snap = snapshot(_result("done", video_url="https://tos/v.mp4", aigc_meta_tagged=True))
        assert snap == TaskSnapshot(status=VideoStatus.completed, progress=100, video_url="https://tos/v.mp4")

    def test_done_falls_back_to_resp_data_urls(self) -> None:
        raw = _result("done", video_url="", resp_data=json.dumps({"urls": ["https://tos/l20.mp4"]}))
        assert snapshot(raw).video_url == "https://tos/l20.mp4"

    def test_done_without_any_url_fails(self) -> None:
        snap = snapshot(_result("done", resp_data="not json"))
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "no_video_url")

    @pytest.mark.parametrize("status", ["not_found", "expired"])
    def test_gone(self, status: str) -> None:
        snap = snapshot(_result(status))
        assert (snap.status, snap.error_code) == (VideoStatus.failed, status)
        assert "12 hours" in (snap.error_message or "")

    def test_outer_code_decides_even_when_done(self) -> None:
        snap = snapshot(_result("done", code=50516, video_url="https://tos/v.mp4") | {"message": "Post Video"})
        assert (snap.status, snap.error_code, snap.error_message) == (VideoStatus.failed, "50516", "Post Video")
        assert snap.video_url is None

    def test_post_moderation_failure_with_null_data(self) -> None:
        snap = snapshot({"code": 50516, "data": None, "message": "Post Video Risk Not Pass"})
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "50516")
        assert snap.error_message == "Post Video Risk Not Pass"

    @pytest.mark.parametrize("status", ["rendering", None])
    def test_unknown_states_keep_polling(self, status: str | None, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            snap = snapshot(_result(status))
        assert snap.status is VideoStatus.in_progress
        assert "unknown task status" in caplog.text


class TestMapError:
    @pytest.mark.parametrize(
        ("http", "code", "cls"),
        [
            (429, 50429, RateLimited),
            (429, 50430, RateLimited),
            (500, 50500, Unavailable),
            (500, 50501, Unavailable),
            *[
                (400, c, Rejected)
                for c in (50411, 50412, 50413, 50511, 50512, 50516, 50517, 50518, 50519, 50520, 50521, 50522)
            ],
            (400, 50400, Rejected),  # undocumented parameter error
            (200, 50429, RateLimited),  # an error code on HTTP 200 is still an error
            (200, 50500, Unavailable),
            (200, 50412, Rejected),
            (200, 59999, Rejected),
            (503, 59999, Unavailable),
            (403, 59999, AuthFailed),
        ],
    )
    def test_service_codes(self, http: int, code: int, cls: type[ProviderError]) -> None:
        err = map_error(http, {"code": code, "message": "Text Risk Not Pass", "data": None}, retry_after=3.0)
        assert type(err) is cls
        assert (err.vendor_code, err.message, err.status_code) == (str(code), "Text Risk Not Pass", http)
        assert err.retry_after == 3.0

    @pytest.mark.parametrize(
        ("code", "http", "cls"),
        [
            ("SignatureDoesNotMatch", 401, AuthFailed),
            ("InvalidAccessKey", 401, AuthFailed),
            ("MissingAuthenticationToken", 401, AuthFailed),
            ("MissingSignature", 401, AuthFailed),
            ("MissingRequestInfo", 400, AuthFailed),
            ("InvalidTimestamp", 400, AuthFailed),
            ("AccessDenied", 403, AuthFailed),
            ("LackPolicy", 403, AuthFailed),
            ("MissingParameter", 400, Unavailable),
            ("InvalidActionOrVersion", 404, Unavailable),
            ("ServiceNotFound", 404, Unavailable),
            ("FlowLimitExceeded", 429, RateLimited),
            ("InternalError", 500, Unavailable),
            ("SomethingNew", 400, Rejected),
        ],
    )
    def test_gateway_shape(self, code: str, http: int, cls: type[ProviderError]) -> None:
        body = {"ResponseMetadata": {"RequestId": "r", "Error": {"CodeN": 1, "Code": code, "Message": "m"}}}
        err = map_error(http, body)
        assert type(err) is cls
        assert err.vendor_code == code
        assert code in err.message

    def test_gateway_error_wins_over_other_fields(self) -> None:
        body = {"code": 10000, "ResponseMetadata": {"Error": {"Code": "SignatureDoesNotMatch", "Message": "x"}}}
        assert isinstance(map_error(200, body), AuthFailed)

    @pytest.mark.parametrize(
        ("http", "cls"), [(200, Unavailable), (400, Unavailable), (429, RateLimited), (502, Unavailable)]
    )
    def test_unparsable_bodies(self, http: int, cls: type[ProviderError]) -> None:
        assert type(map_error(http, None)) is cls


# ---------------------------------------------------------------------------------------------
# The adapter against the fake server


async def _walk(provider: JimengProvider, task: VendorTask) -> list[TaskSnapshot]:
    return [await provider.poll(task) for _ in range(3)]


class TestAgainstFake:
    def test_is_a_video_provider(self, provider: JimengProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert provider.name == "jimeng"

    async def test_t2v_end_to_end(self, provider: JimengProvider, state: FakeState) -> None:
        task = await provider.submit(make_req(extras={"seed": "7"}))
        assert task.provider == "jimeng"
        assert task.vendor_task_id.isdigit()
        assert task.meta == {"req_key": "jimeng_t2v_v30"}
        assert state.bodies(SUBMIT) == [
            {
                "req_key": "jimeng_t2v_v30",
                "prompt": "a red fox running through snow",
                "seed": 7,
                "frames": 121,
                "aspect_ratio": "16:9",
            }
        ]
        snaps = await _walk(provider, task)
        assert [s.status for s in snaps] == [VideoStatus.queued, VideoStatus.in_progress, VideoStatus.completed]
        assert [s.progress for s in snaps] == [0, 50, 100]
        assert state.bodies(RESULT) == [{"req_key": "jimeng_t2v_v30", "task_id": task.vendor_task_id}] * 3
        chunks = [c async for c in provider.download(task, snaps[-1])]
        assert len(chunks) > 1
        assert b"".join(chunks) == VIDEO_BYTES

    async def test_signed_headers_are_sent(self, provider: JimengProvider, state: FakeState) -> None:
        await provider.submit(make_req())
        headers = state.requests[-1].headers
        assert headers["host"] == "visual.volcengineapi.com"
        assert headers["content-type"] == "application/json"
        assert headers["authorization"].startswith(f"HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert "SignedHeaders=content-type;host;x-content-sha256;x-date, " in headers["authorization"]

    async def test_image_on_t2v_model_polls_with_the_i2v_key(self, provider: JimengProvider, state: FakeState) -> None:
        task = await provider.submit(make_req(image=ImageInput(data=JPEG, mime="image/jpeg")))
        assert task.meta["req_key"] == "jimeng_i2v_first_v30"
        assert state.bodies(SUBMIT)[0]["binary_data_base64"] == [base64.b64encode(JPEG).decode()]
        snaps = await _walk(provider, task)
        assert snaps[-1].status is VideoStatus.completed
        assert {b["req_key"] for b in state.bodies(RESULT)} == {"jimeng_i2v_first_v30"}

    async def test_first_and_last_frame_urls(self, provider: JimengProvider, state: FakeState) -> None:
        req = make_req(
            model="jimeng_t2v_v30_1080p",
            width=1920,
            height=1088,
            image=ImageInput(url="https://img/1.png"),
            last_frame=ImageInput(url="https://img/2.png"),
        )
        task = await provider.submit(req)
        assert task.meta["req_key"] == "jimeng_i2v_first_tail_v30_1080"
        assert state.bodies(SUBMIT)[0]["image_urls"] == ["https://img/1.png", "https://img/2.png"]

    async def test_req_json_is_sent_on_get_result(self, provider: JimengProvider, state: FakeState) -> None:
        meta = {"aigc_meta": {"producer_id": "p1", "content_propagator": "vidgate"}}
        task = await provider.submit(make_req(extras={"req_json": meta}))
        assert "req_json" not in state.bodies(SUBMIT)[0]
        await provider.poll(task)
        sent = state.bodies(RESULT)[0]
        assert json.loads(sent["req_json"]) == meta

    async def test_post_moderation_failure(self, provider: JimengProvider, state: FakeState) -> None:
        state.doom_next_task(50516, "Post Video Risk Not Pass")
        task = await provider.submit(make_req())
        snaps = await _walk(provider, task)
        assert snaps[-1] == TaskSnapshot(
            status=VideoStatus.failed, error_code="50516", error_message="Post Video Risk Not Pass"
        )

    async def test_unknown_and_expired_tasks(self, provider: JimengProvider, state: FakeState) -> None:
        ghost = VendorTask("jimeng", "123", {"req_key": "jimeng_t2v_v30"})
        assert (await provider.poll(ghost)).error_code == "not_found"
        task = await provider.submit(make_req())
        state.expire(task.vendor_task_id)
        assert (await provider.poll(task)).error_code == "expired"

    async def test_task_older_than_12h_is_not_found(self, provider: JimengProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        state.tasks[task.vendor_task_id].created -= 13 * 3600
        snap = await provider.poll(task)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "not_found")

    async def test_expired_video_url(self, provider: JimengProvider, state: FakeState, now: list[float]) -> None:
        task = await provider.submit(make_req())
        done = (await _walk(provider, task))[-1]
        now[0] += 2 * 3600  # the URL is valid for one hour
        with pytest.raises(NotFoundAtVendor, match="1 hour"):
            _ = [c async for c in provider.download(task, done)]

    async def test_wrong_secret_is_auth_failed(self, client: httpx.AsyncClient, state: FakeState) -> None:
        bad = JimengProvider(client, access_key=ACCESS_KEY, secret_key=SECRET_KEY + "x")
        with pytest.raises(AuthFailed) as err:
            await bad.submit(make_req())
        assert (err.value.vendor_code, err.value.status_code) == ("SignatureDoesNotMatch", 401)
        assert not state.tasks

    async def test_secret_is_used_verbatim(self, client: httpx.AsyncClient) -> None:
        decoded = base64.b64decode(SECRET_KEY).decode()
        bad = JimengProvider(client, access_key=ACCESS_KEY, secret_key=decoded)
        with pytest.raises(AuthFailed):
            await bad.submit(make_req())

    async def test_unknown_access_key(self, client: httpx.AsyncClient) -> None:
        bad = JimengProvider(client, access_key="AKLTnobody", secret_key=SECRET_KEY)
        with pytest.raises(AuthFailed) as err:
            await bad.poll(VendorTask("jimeng", "1", {"req_key": "jimeng_t2v_v30"}))
        assert err.value.vendor_code == "InvalidAccessKey"

    async def test_clock_skew_is_refused(self, provider: JimengProvider, now: list[float]) -> None:
        now[0] += 20 * 60
        with pytest.raises(AuthFailed) as err:
            await provider.submit(make_req())
        assert err.value.vendor_code == "InvalidTimestamp"

    async def test_rate_limited_on_submit_and_poll(self, provider: JimengProvider, state: FakeState) -> None:
        state.fail_next(SUBMIT, http=429, code=50430, message="Concurrent Limit", retry_after="2")
        with pytest.raises(RateLimited) as err:
            await provider.submit(make_req())
        assert (err.value.vendor_code, err.value.retry_after) == ("50430", 2.0)
        task = await provider.submit(make_req())
        state.fail_next(RESULT, http=429, code=50429, message="API Limit")
        with pytest.raises(RateLimited):
            await provider.poll(task)
        assert (await provider.poll(task)).status is VideoStatus.queued  # the task is untouched

    @pytest.mark.parametrize(("http", "code"), [(500, 50500), (500, 50501), (200, 50500)])
    async def test_server_errors_are_unavailable(
        self, provider: JimengProvider, state: FakeState, http: int, code: int
    ) -> None:
        state.fail_next(http=http, code=code)
        with pytest.raises(Unavailable) as err:
            await provider.submit(make_req())
        assert err.value.vendor_code == str(code)
        task = await provider.submit(make_req())
        state.fail_next(http=http, code=code)
        with pytest.raises(Unavailable):
            await provider.poll(task)

    @pytest.mark.parametrize("http", [200, 502])
    async def test_garbage_is_unavailable(self, provider: JimengProvider, state: FakeState, http: int) -> None:
        state.fail_next(garbage=True, http=http)
        with pytest.raises(Unavailable):
            await provider.submit(make_req())

    @pytest.mark.parametrize(("http", "code"), [(400, 50412), (200, 50411), (400, 50413)])
    async def test_moderation_at_submit_is_rejected(
        self, provider: JimengProvider, state: FakeState, http: int, code: int
    ) -> None:
        state.fail_next(SUBMIT, http=http, code=code, message="Text Risk Not Pass")
        with pytest.raises(Rejected) as err:
            await provider.submit(make_req())
        assert (err.value.vendor_code, err.value.message) == (str(code), "Text Risk Not Pass")

    async def test_poll_with_an_error_code_on_http_200_fails_the_task(
        self, provider: JimengProvider, state: FakeState
    ) -> None:
        task = await provider.submit(make_req())
        state.fail_next(RESULT, http=200, code=50519, message="Post Img Risk Not Pass: Copyright")
        snap = await provider.poll(task)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "50519")

    async def test_hang_is_unavailable(self, fake: tuple[Any, FakeState], state: FakeState) -> None:
        class Deadline(httpx.AsyncBaseTransport):
            def __init__(self) -> None:
                self.inner = httpx.ASGITransport(app=fake[0])

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                try:
                    return await asyncio.wait_for(self.inner.handle_async_request(request), 0.2)
                except TimeoutError:
                    raise httpx.ReadTimeout("timed out", request=request) from None

        state.fail_next(SUBMIT, hang=True)
        async with httpx.AsyncClient(transport=Deadline()) as c:
            provider = JimengProvider(c, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
            with pytest.raises(Unavailable, match="unreachable"):
                await provider.submit(make_req())

    async def test_transport_errors_are_unavailable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as c:
            provider = JimengProvider(c, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
            with pytest.raises(Unavailable):
                await provider.submit(make_req())
            snap = TaskSnapshot(status=VideoStatus.completed, video_url="https://tos/v.mp4")
            with pytest.raises(Unavailable):
                _ = [c async for c in provider.download(VendorTask("jimeng", "1"), snap)]

    async def test_success_without_task_id_is_unavailable(self) -> None:
        def ok(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"code": 10000, "data": None, "message": "Success"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(ok)) as c:
            provider = JimengProvider(c, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
            with pytest.raises(Unavailable, match="task_id"):
                await provider.submit(make_req())

    async def test_base_url_is_honoured(self) -> None:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"code": 10000, "data": {"task_id": 7392616336519610409}})

        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as c:
            provider = JimengProvider(c, access_key="ak", secret_key="sk", base_url="http://127.0.0.1:8080/")
            task = await provider.submit(make_req())
        assert task.vendor_task_id == "7392616336519610409"
        assert str(seen[0].url) == "http://127.0.0.1:8080/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31"

    async def test_cancel_is_unsupported(self, provider: JimengProvider) -> None:
        assert not isinstance(provider, Cancellable)  # the engine skips it


# ---------------------------------------------------------------------------------------------
# The fake itself: signature verification and body validation as the vendor does


VECTOR_NOW = datetime(2025, 6, 15, 8, 30, tzinfo=UTC).timestamp()
DOC_AK = "AKLTtestAccessKeyId0000000000000000000000000"
DOC_SK = "dGVzdFNlY3JldEFjY2Vzc0tleTAwMDAwMDAwMDAwMDA="
DOC_BODY = (
    b'{"req_key":"jimeng_t2v_v30","prompt":"a red fox running through snow",'
    b'"seed":-1,"frames":121,"aspect_ratio":"16:9"}'
)
DOC_AUTH = (
    f"HMAC-SHA256 Credential={DOC_AK}/20250615/cn-north-1/cv/request, "
    "SignedHeaders=content-type;host;x-content-sha256;x-date, "
    "Signature=e805236fd0c9894d2dc2d832e0dec2aac2e4ba8a4aeec4ab242fdac04e388bb2"
)
DOC_HEADERS = {
    "host": "visual.volcengineapi.com",
    "content-type": "application/json",
    "x-date": "20250615T083000Z",
    "x-content-sha256": "f7f47d7127d105c1ca67e3f4f524a6c21491b85da32a9b540036d2be3fcf439c",
    "authorization": DOC_AUTH,
}


def _verify(headers: dict[str, str] = DOC_HEADERS, body: bytes = DOC_BODY, **kw: Any) -> str | None:
    args: dict[str, Any] = {
        "method": "POST",
        "path": "/",
        "query": [("Action", "CVSync2AsyncSubmitTask"), ("Version", "2022-08-31")],
        "headers": headers,
        "body": body,
        "secrets_by_ak": {DOC_AK: DOC_SK},
        "now": VECTOR_NOW,
    }
    return verify_signature(**(args | kw))


class TestFakeVerifier:
    def test_accepts_the_doc_vectors(self) -> None:
        assert _verify() is None
        minimal = {
            "host": "visual.volcengineapi.com",
            "x-date": "20250615T083000Z",
            "authorization": (
                f"HMAC-SHA256 Credential={DOC_AK}/20250615/cn-north-1/cv/request, SignedHeaders=host;x-date, "
                "Signature=b726b3fc7583f49d86f67dcade00467bce190b20b65ee6b57ecb56e9ad58af03"
            ),
        }
        assert _verify(minimal) is None
        result_headers = DOC_HEADERS | {
            "x-content-sha256": "fb9ad4e9500a5f8ce1fba86a5f8708142a074934631f559598ad89fbf5a8c123",
            "authorization": DOC_AUTH.replace(
                "e805236fd0c9894d2dc2d832e0dec2aac2e4ba8a4aeec4ab242fdac04e388bb2",
                "58963bf22d878e67668d73357761403656f42e4fe5490f39a7b27303a47afa2a",
            ),
        }
        assert (
            _verify(
                result_headers,
                b'{"req_key":"jimeng_t2v_v30","task_id":"7392616336519610409"}',
                query=[("Action", "CVSync2AsyncGetResult"), ("Version", "2022-08-31")],
            )
            is None
        )

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"secrets_by_ak": {DOC_AK: DOC_SK + "x"}}, "SignatureDoesNotMatch"),
            ({"secrets_by_ak": {"other": DOC_SK}}, "InvalidAccessKey"),
            ({"body": DOC_BODY.replace(b"fox", b"cat")}, "SignatureDoesNotMatch"),
            ({"query": [("Action", "CVSync2AsyncGetResult"), ("Version", "2022-08-31")]}, "SignatureDoesNotMatch"),
            ({"headers": DOC_HEADERS | {"host": "127.0.0.1:8080"}}, "SignatureDoesNotMatch"),
            ({"headers": {k: v for k, v in DOC_HEADERS.items() if k != "content-type"}}, "SignatureDoesNotMatch"),
            ({"headers": {k: v for k, v in DOC_HEADERS.items() if k != "authorization"}}, "MissingAuthenticationToken"),
            ({"headers": DOC_HEADERS | {"authorization": "Bearer sk-x"}}, "MissingSignature"),
            ({"headers": DOC_HEADERS | {"authorization": DOC_AUTH.replace("/cv/", "/iam/")}}, "ServiceNotFound"),
            (
                {"headers": DOC_HEADERS | {"authorization": DOC_AUTH.replace("cn-north-1", "ap-1")}},
                "SignatureDoesNotMatch",
            ),
            ({"now": VECTOR_NOW + 16 * 60}, "InvalidTimestamp"),
            ({"now": VECTOR_NOW - 16 * 60}, "InvalidTimestamp"),
            ({"headers": DOC_HEADERS | {"x-date": "garbage"}}, "InvalidTimestamp"),
        ],
    )
    def test_refusals(self, change: dict[str, Any], code: str) -> None:
        assert _verify(**change) == code

    def test_skew_inside_the_window_is_fine(self) -> None:
        assert _verify(now=VECTOR_NOW + 14 * 60) is None


class TestFakeHttp:
    async def _post(self, client: httpx.AsyncClient, query: str, body: Any, **kw: Any) -> httpx.Response:
        auth = VolcV4Auth(kw.pop("ak", ACCESS_KEY), kw.pop("sk", SECRET_KEY))
        return await client.post(
            f"{DEFAULT_BASE_URL}/?{query}",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            auth=auth,
        )

    async def test_wrong_secret_gets_the_gateway_shape(self, client: httpx.AsyncClient) -> None:
        resp = await self._post(client, f"Action={SUBMIT}&Version=2022-08-31", {}, sk="nope")
        assert resp.status_code == 401
        meta = resp.json()["ResponseMetadata"]
        assert meta["Error"]["Code"] == "SignatureDoesNotMatch"
        assert meta["Error"]["CodeN"] == 100010
        assert (meta["Action"], meta["Service"], meta["Region"]) == (SUBMIT, "cv", "cn-north-1")

    @pytest.mark.parametrize(
        ("query", "status", "code"),
        [
            ("Version=2022-08-31", 400, "MissingParameter"),
            (f"Action={SUBMIT}", 400, "MissingParameter"),
            ("Action=CVProcess&Version=2022-08-31", 404, "InvalidActionOrVersion"),
            (f"Action={SUBMIT}&Version=2020-01-01", 404, "InvalidActionOrVersion"),
        ],
    )
    async def test_routing_errors(self, client: httpx.AsyncClient, query: str, status: int, code: str) -> None:
        resp = await self._post(client, query, {})
        assert resp.status_code == status
        assert resp.json()["ResponseMetadata"]["Error"]["Code"] == code

    async def test_bad_body_is_400_in_the_service_shape(self, client: httpx.AsyncClient) -> None:
        resp = await self._post(client, f"Action={SUBMIT}&Version=2022-08-31", {"req_key": "jimeng_t2v_v30"})
        assert resp.status_code == 400
        body = resp.json()
        assert (body["code"], body["status"], body["data"]) == (50400, 50400, None)
        assert body["message"] == "Invalid Parameter: prompt is required"
        assert body["request_id"]
        assert body["time_elapsed"].endswith("ms")

    async def test_submit_success_shape(self, client: httpx.AsyncClient) -> None:
        resp = await self._post(
            client, f"Action={SUBMIT}&Version=2022-08-31", {"req_key": "jimeng_t2v_v30", "prompt": "p"}
        )
        body = resp.json()
        assert (resp.status_code, body["code"], body["status"], body["message"]) == (200, 10000, 10000, "Success")
        assert body["data"]["task_id"].isdigit()

    async def test_get_result_with_another_req_key_is_not_found(self, client: httpx.AsyncClient) -> None:
        sub = await self._post(
            client, f"Action={SUBMIT}&Version=2022-08-31", {"req_key": "jimeng_t2v_v30", "prompt": "p"}
        )
        task_id = sub.json()["data"]["task_id"]
        res = await self._post(
            client, f"Action={RESULT}&Version=2022-08-31", {"req_key": "jimeng_vgfm_t2v_l20", "task_id": task_id}
        )
        assert res.json()["data"]["status"] == "not_found"


B64_PNG = base64.b64encode(PNG).decode()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"req_key": "jimeng_t2v_v30", "prompt": "p", "frames": 121, "aspect_ratio": "16:9"}, None),
        ({"req_key": "jimeng_i2v_first_v30", "prompt": "p", "image_urls": ["https://x"]}, None),
        ({"req_key": "jimeng_ti2v_v30_pro", "binary_data_base64": [B64_PNG]}, None),
        ({"req_key": "jimeng_vgfm_t2v_l20", "prompt": "p", "frames": 7}, None),
        ({"req_key": "jimeng_t2v_v40", "prompt": "p"}, "unknown req_key"),
        ({"prompt": "p"}, "unknown req_key"),
        ({"req_key": "jimeng_t2v_v30"}, "prompt is required"),
        ({"req_key": "jimeng_t2v_v30", "prompt": "p", "frames": 120}, "frames"),
        ({"req_key": "jimeng_t2v_v30", "prompt": "p", "aspect_ratio": ""}, "aspect_ratio"),
        ({"req_key": "jimeng_t2v_v30", "prompt": "p", "seed": "1"}, "seed"),
        ({"req_key": "jimeng_t2v_v30", "prompt": "p", "image_urls": ["https://x"]}, "takes 0 image"),
        ({"req_key": "jimeng_i2v_first_v30", "prompt": "p"}, "takes 1 image"),
        ({"req_key": "jimeng_i2v_first_tail_v30", "prompt": "p", "image_urls": ["https://x"]}, "takes 2 image"),
        (
            {
                "req_key": "jimeng_i2v_first_v30",
                "prompt": "p",
                "image_urls": ["https://x"],
                "binary_data_base64": [B64_PNG],
            },
            "not both",
        ),
        ({"req_key": "jimeng_i2v_first_v30", "prompt": "p", "binary_data_base64": ["!!"]}, "not valid base64"),
        (
            {
                "req_key": "jimeng_i2v_first_v30",
                "prompt": "p",
                "binary_data_base64": [base64.b64encode(b"GIF89a").decode()],
            },
            "JPEG or PNG",
        ),
        (
            {
                "req_key": "jimeng_i2v_first_v30",
                "prompt": "p",
                "binary_data_base64": [base64.b64encode(PNG + b"\x00" * MAX_IMAGE_BYTES).decode()],
            },
            "4.7MB",
        ),
        ({"req_key": "jimeng_i2v_first_v30", "prompt": "p", "image_urls": ["ftp://x"]}, "http"),
    ],
)
def test_fake_validates_bodies(body: dict[str, Any], problem: str | None) -> None:
    found = validate_submit(body)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_adapter_bodies_pass_the_fake_validation() -> None:
    for caps in MODELS:
        image = ImageInput(data=PNG) if caps.image == "required" else None
        last = ImageInput(data=JPEG) if "tail" in caps.name else None
        w, h = caps.default_size
        body = build_body(make_req(model=caps.name, width=w, height=h, image=image, last_frame=last))
        assert validate_submit(body) is None, caps.name
