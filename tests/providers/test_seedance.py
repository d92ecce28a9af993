"""Seedance adapter: mapping tables, golden request bodies, and the adapter against the fake Ark server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest

from app.providers.base import (
    AuthFailed,
    Cancellable,
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
from app.providers.seedance import (
    BYTEPLUS_BASE_URL,
    DEFAULT_BASE_URL,
    MODELS,
    NOMINAL,
    STATUS,
    SeedanceProvider,
    build_body,
    map_error,
    output_pixels,
    platform_model,
    running_progress,
    size_params,
    snapshot,
)
from app.providers.vendors import VENDORS
from tests.fakes.seedance import FAKE_MODELS, FakeState, Invalid, make_app, text_commands, validate
from tests.support.media import solid_image

KEY = "ark-test-key"
BASE = "http://ark.test"
PRO = "doubao-seedance-1-0-pro-250528"
JPEG = solid_image((200, 30, 30), size=(1280, 720))
IMG = ImageInput(data=JPEG, mime="image/jpeg")
IMG_URL = ImageInput(url="https://example.com/first.png")
LAST_URL = ImageInput(url="https://example.com/last.png")


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": PRO, "prompt": "a cat surfing"}
    base |= {"width": 1920, "height": 1080, "seconds": 5}
    return GenerationRequest(**(base | kw))


@pytest.fixture
def fake() -> tuple[Any, FakeState]:
    return make_app(api_key=KEY)


@pytest.fixture
def state(fake: tuple[Any, FakeState]) -> FakeState:
    return fake[1]


@pytest.fixture
async def client(fake: tuple[Any, FakeState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


@pytest.fixture
def provider(client: httpx.AsyncClient) -> SeedanceProvider:
    return SeedanceProvider(client, api_key=KEY, base_url=BASE)


async def finish(provider: SeedanceProvider, task: VendorTask, *, limit: int = 10) -> TaskSnapshot:
    for _ in range(limit):
        snap = await provider.poll(task)
        if snap.status in (VideoStatus.completed, VideoStatus.failed):
            return snap
    raise AssertionError("task never finished")


async def read_all(provider: SeedanceProvider, task: VendorTask, snap: TaskSnapshot) -> bytes:
    return b"".join([chunk async for chunk in provider.download(task, snap)])


# ---------------------------------------------------------------------------------------------


class TestModels:
    def test_vendor_row(self) -> None:
        spec = VENDORS["seedance"]
        assert spec.title == "Seedance (Volcengine Ark / BytePlus)"
        assert spec.env_names() == ["VIDGATE_SEEDANCE_API_KEY", "VIDGATE_SEEDANCE_BASE_URL"]
        assert spec.base_url == DEFAULT_BASE_URL
        assert spec.callback is not None and spec.callback.scheme == "token"
        assert {c.name for c in spec.model_caps()} == {c.name for c in MODELS}

    def test_both_id_families_are_listed(self) -> None:
        names = {c.name for c in MODELS}
        assert {PRO, "seedance-1-0-pro-250528", "dreamina-seedance-2-0-260128", "doubao-seedance-2-0-260128"} <= names
        assert names == set(FAKE_MODELS)

    @pytest.mark.parametrize(
        ("name", "audio", "last", "image", "seconds"),
        [
            (PRO, False, True, "optional", (2, 12)),
            ("doubao-seedance-1-0-pro-fast-251015", False, False, "optional", (2, 12)),
            ("doubao-seedance-1-0-lite-t2v-250428", False, False, "none", (2, 12)),
            ("doubao-seedance-1-0-lite-i2v-250428", False, True, "required", (2, 12)),
            ("doubao-seedance-1-5-pro-251215", True, True, "optional", (4, 12)),
            ("dreamina-seedance-2-0-260128", True, True, "optional", (4, 15)),
            ("doubao-seedance-2-0-fast-260128", True, True, "optional", (4, 15)),
        ],
    )
    def test_model_rows(self, name: str, audio: bool, last: bool, image: str, seconds: tuple[int, int]) -> None:
        caps = next(c for c in MODELS if c.name == name)
        assert (caps.audio, caps.last_frame, caps.image, caps.seconds_range) == (audio, last, image, seconds)
        assert caps.default_seconds == 5
        assert ("generate_audio" in caps.extras) is audio

    def test_defaults(self) -> None:
        caps = {c.name: c for c in MODELS}
        assert caps[PRO].default_size == (1920, 1080)
        assert caps["doubao-seedance-1-5-pro-251215"].default_size == (1280, 720)
        assert (1920, 1080) not in caps["doubao-seedance-2-0-fast-260128"].sizes

    def test_every_size_and_duration_passes_the_fakes_validation(self) -> None:
        for caps in MODELS:
            image = IMG if caps.image == "required" else None
            lo, hi = caps.seconds_range
            for w, h in caps.sizes:
                for seconds in (lo, hi):
                    req = make_req(model=caps.name, width=w, height=h, seconds=seconds, image=image)
                    validate(build_body(req), FakeState(api_key=KEY))

    def test_strict_seconds_names_the_range(self) -> None:
        caps = next(c for c in MODELS if c.name == PRO)
        with pytest.raises(ValueError, match="2 to 12"):
            caps.resolve_seconds(20, "strict")
        assert caps.resolve_seconds(20, "nearest") == 12


class TestSizeMapping:
    @pytest.mark.parametrize(
        ("size", "expected"),
        [
            ((1280, 720), ("720p", "16:9")),
            ((720, 1280), ("720p", "9:16")),
            ((1920, 1080), ("1080p", "16:9")),
            ((1080, 1920), ("1080p", "9:16")),
            ((854, 480), ("480p", "16:9")),
            ((960, 960), ("720p", "1:1")),
            ((1440, 1440), ("1080p", "1:1")),
            ((640, 640), ("480p", "1:1")),
            ((1112, 834), ("720p", "4:3")),
            ((1248, 1664), ("1080p", "3:4")),
            ((1470, 630), ("720p", "21:9")),
            # not in the table: nearest ratio, then nearest area
            ((1792, 1024), ("1080p", "16:9")),
            ((1024, 1792), ("1080p", "9:16")),
            ((1248, 704), ("720p", "16:9")),
            ((500, 500), ("480p", "1:1")),
        ],
    )
    def test_size_to_resolution_and_ratio(self, size: tuple[int, int], expected: tuple[str, str]) -> None:
        assert size_params(*size) == expected

    def test_every_nominal_size_round_trips(self) -> None:
        for key, size in NOMINAL.items():
            assert size_params(*size) == key

    @pytest.mark.parametrize(
        ("model", "res", "ratio", "pixels"),
        [
            (PRO, "720p", "16:9", (1248, 704)),
            (PRO, "1080p", "16:9", (1920, 1088)),
            ("doubao-seedance-1-5-pro-251215", "720p", "16:9", (1280, 720)),
            ("dreamina-seedance-2-0-260128", "480p", "9:16", (496, 864)),
            ("doubao-seedance-2-0-260128", "1080p", "21:9", (2206, 946)),
            (PRO, "720p", "adaptive", None),
            (PRO, None, None, None),
        ],
    )
    def test_output_pixels(self, model: str, res: str | None, ratio: str | None, pixels: Any) -> None:
        assert output_pixels(model, res, ratio) == pixels


class TestPlatformModel:
    @pytest.mark.parametrize(
        ("model", "base", "sent"),
        [
            (PRO, BYTEPLUS_BASE_URL, "seedance-1-0-pro-250528"),
            ("doubao-seedance-2-0-260128", BYTEPLUS_BASE_URL, "dreamina-seedance-2-0-260128"),
            ("doubao-seedance-2-0-fast-260128", BYTEPLUS_BASE_URL, "dreamina-seedance-2-0-fast-260128"),
            ("seedance-1-5-pro-251215", BYTEPLUS_BASE_URL, "seedance-1-5-pro-251215"),
            ("seedance-1-0-pro-250528", DEFAULT_BASE_URL, PRO),
            ("dreamina-seedance-2-0-260128", DEFAULT_BASE_URL, "doubao-seedance-2-0-260128"),
            (PRO, DEFAULT_BASE_URL, PRO),
            ("seedance-1-0-pro-250528", "http://127.0.0.1:8000", "seedance-1-0-pro-250528"),
            (PRO, "https://my-proxy.example.com", PRO),
        ],
    )
    def test_ids_follow_the_platform(self, model: str, base: str, sent: str) -> None:
        assert platform_model(model, base) == sent


class TestGoldenBodies:
    def test_text_to_video_1080p(self) -> None:
        assert build_body(make_req()) == {
            "model": PRO,
            "content": [{"type": "text", "text": "a cat surfing"}],
            "resolution": "1080p",
            "ratio": "16:9",
            "duration": 5,
        }

    def test_first_frame_bytes_inline_with_adaptive_ratio(self) -> None:
        body = build_body(make_req(width=1280, height=720, image=IMG))
        assert body["content"][1]["type"] == "image_url"
        assert body["content"][1]["role"] == "first_frame"
        assert body["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")
        assert (body["resolution"], body["ratio"]) == ("720p", "adaptive")

    def test_upper_case_mime_is_lowered(self) -> None:
        body = build_body(make_req(image=ImageInput(data=JPEG, mime="IMAGE/JPEG")))
        assert body["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")

    def test_bytes_win_over_a_signed_gateway_link(self) -> None:
        img = ImageInput(data=JPEG, mime="image/jpeg", url="https://gw.example/files/inputs/x/first.jpg?sig=1")
        assert build_body(make_req(image=img))["content"][1]["image_url"]["url"].startswith("data:")

    def test_first_and_last_frame(self) -> None:
        body = build_body(make_req(image=IMG_URL, last_frame=LAST_URL, seconds=8))
        assert body == {
            "model": PRO,
            "content": [
                {"type": "text", "text": "a cat surfing"},
                {"type": "image_url", "image_url": {"url": "https://example.com/first.png"}, "role": "first_frame"},
                {"type": "image_url", "image_url": {"url": "https://example.com/last.png"}, "role": "last_frame"},
            ],
            "resolution": "1080p",
            "ratio": "adaptive",
            "duration": 8,
        }

    def test_last_frame_without_first_is_rejected(self) -> None:
        with pytest.raises(Rejected):
            build_body(make_req(last_frame=LAST_URL))

    def test_reference_images_on_lite_i2v(self) -> None:
        req = make_req(
            model="doubao-seedance-1-0-lite-i2v-250428",
            image=IMG_URL,
            extras={"reference_images": '["https://example.com/r1.png", "https://example.com/r2.png"]'},
        )
        body = build_body(req)
        assert [i.get("role") for i in body["content"]] == [None, *["reference_image"] * 3]
        assert body["content"][1]["image_url"]["url"] == "https://example.com/first.png"
        assert (body["resolution"], body["ratio"]) == ("720p", "16:9")  # 1.0 references: <= 720p, a fixed ratio
        assert "reference_images" not in body

    def test_seedance_2_multimodal_references(self) -> None:
        req = make_req(
            model="dreamina-seedance-2-0-260128",
            width=1280,
            height=720,
            extras={
                "reference_images": ["https://example.com/r1.png"],
                "reference_videos": "https://example.com/v.mp4",
                "reference_audios": ["https://example.com/a.mp3"],
                "generate_audio": "true",
            },
        )
        body = build_body(req)
        assert body["content"][1:] == [
            {"type": "image_url", "image_url": {"url": "https://example.com/r1.png"}, "role": "reference_image"},
            {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}, "role": "reference_video"},
            {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}, "role": "reference_audio"},
        ]
        assert body["generate_audio"] is True
        assert (body["resolution"], body["ratio"], body["duration"]) == ("720p", "16:9", 5)

    def test_metadata_is_coerced_and_cannot_touch_model_or_prompt(self) -> None:
        extras = {
            "model": "doubao-evil",
            "prompt": "other",
            "content": [{"type": "text", "text": "injected"}],
            "seed": "11",
            "watermark": "false",
            "camera_fixed": "true",
            "return_last_frame": True,
            "execution_expires_after": "3600",
            "service_tier": "FLEX",
            "callback_url": "https://gw.example/callbacks/seedance/video_abc/tok",
            "api_key": "steal",
            "img_url": "https://example.com/x.png",
            "sandbox_fail": "x",
        }
        body = build_body(make_req(extras=extras))
        assert body["model"] == PRO
        assert body["content"] == [{"type": "text", "text": "a cat surfing"}]
        assert body["seed"] == 11 and body["watermark"] is False and body["camera_fixed"] is True
        assert body["return_last_frame"] is True and body["execution_expires_after"] == 3600
        assert body["service_tier"] == "flex"
        assert body["callback_url"] == "https://gw.example/callbacks/seedance/video_abc/tok"
        for key in ("api_key", "img_url", "sandbox_fail", "prompt"):
            assert key not in body

    def test_undeclared_keys_for_the_model_are_not_sent(self) -> None:
        # 1.0 makes no sound, 2.0 has no service tier and no frames
        assert "generate_audio" not in build_body(make_req(extras={"generate_audio": True}))
        body = build_body(make_req(model="dreamina-seedance-2-0-260128", extras={"service_tier": "flex", "frames": 57}))
        assert "service_tier" not in body and "frames" not in body and body["duration"] == 5

    def test_audio_alias(self) -> None:
        req = make_req(model="doubao-seedance-1-5-pro-251215", extras={"audio": "false"})
        assert build_body(req)["generate_audio"] is False
        req = make_req(model="doubao-seedance-1-5-pro-251215", extras={"generate_audio": True, "audio": "false"})
        assert build_body(req)["generate_audio"] is True

    def test_metadata_overrides_ratio_resolution_and_duration(self) -> None:
        req = make_req(
            model="doubao-seedance-1-5-pro-251215", image=IMG_URL, extras={"ratio": "9:16", "duration": "-1"}
        )
        body = build_body(req)
        assert body["ratio"] == "9:16" and body["duration"] == -1
        assert build_body(make_req(extras={"resolution": "720P"}))["resolution"] == "720p"

    def test_frames_replace_duration(self) -> None:
        body = build_body(make_req(extras={"frames": "57"}))
        assert body["frames"] == 57 and "duration" not in body

    def test_draft_is_480p(self) -> None:
        body = build_body(make_req(model="doubao-seedance-1-5-pro-251215", extras={"draft": "true"}))
        assert body["draft"] is True and body["resolution"] == "480p"

    def test_draft_task_sends_only_the_draft_item(self) -> None:
        req = make_req(
            model="doubao-seedance-1-5-pro-251215", width=1280, height=720, extras={"draft_task_id": "cgt-1"}
        )
        assert build_body(req) == {
            "model": "doubao-seedance-1-5-pro-251215",
            "content": [{"type": "draft_task", "draft_task": {"id": "cgt-1"}}],
            "resolution": "720p",
        }

    def test_tools(self) -> None:
        body = build_body(make_req(model="doubao-seedance-2-0-260128", extras={"tools": '["web_search"]'}))
        assert body["tools"] == [{"type": "web_search"}]

    @pytest.mark.parametrize(
        "extras",
        [{"seed": "abc"}, {"watermark": "maybe"}, {"reference_images": "[not json"}, {"frames": "1.5"}],
    )
    def test_bad_metadata_is_rejected(self, extras: dict[str, Any]) -> None:
        req = make_req(model="doubao-seedance-1-0-lite-i2v-250428", image=IMG_URL, extras=extras)
        with pytest.raises(Rejected) as exc:
            build_body(req)
        assert exc.value.vendor_code == "InvalidParameter"

    def test_the_model_id_to_send_can_be_given(self) -> None:
        assert build_body(make_req(), model="seedance-1-0-pro-250528")["model"] == "seedance-1-0-pro-250528"


class TestStatus:
    def test_every_documented_state_is_mapped(self) -> None:
        assert set(STATUS) == {"queued", "running", "succeeded", "failed", "cancelled", "expired"}

    def test_queued_and_running(self) -> None:
        queued = snapshot({"id": "cgt-1", "status": "queued"})
        assert (queued.status, queued.progress) == (VideoStatus.queued, 0)
        running = snapshot({"id": "cgt-1", "status": "running", "created_at": 1000}, now=1030)
        assert running.status is VideoStatus.in_progress and 5 < (running.progress or 0) < 95

    def test_synthetic_progress_is_monotone_and_bounded(self) -> None:
        values = [running_progress(1000, 1000 + t) for t in range(0, 3600, 15)]
        assert values == sorted(values) and values[0] == 5 and values[-1] == 95
        assert running_progress(None, 5) == 5

    def test_flex_tasks_are_polled_slowly(self) -> None:
        assert snapshot({"status": "queued", "service_tier": "flex"}).poll_after == 60.0
        assert snapshot({"status": "queued", "service_tier": "default"}).poll_after is None

    def test_succeeded(self) -> None:
        snap = snapshot(
            {
                "id": "cgt-1",
                "model": "doubao-seedance-1-5-pro-251215",
                "status": "succeeded",
                "content": {"video_url": "https://tos/x.mp4", "last_frame_url": "https://tos/x.png"},
                "usage": {"completion_tokens": 246840, "total_tokens": 246840},
                "seed": 58944,
                "resolution": "1080p",
                "ratio": "16:9",
                "duration": 5,
                "framespersecond": 24,
                "generate_audio": True,
            }
        )
        assert snap.status is VideoStatus.completed and snap.progress == 100
        assert snap.video_url == "https://tos/x.mp4"
        assert (snap.seconds, snap.width, snap.height) == (5, 1920, 1080)
        assert snap.usage == {"completion_tokens": 246840, "total_tokens": 246840}
        assert snap.has_audio is True
        assert snap.meta["last_frame_url"] == "https://tos/x.png" and snap.meta["seed"] == 58944

    def test_silent_models_have_no_audio_and_frames_give_seconds(self) -> None:
        snap = snapshot(
            {
                "status": "succeeded",
                "content": {"video_url": "u"},
                "frames": 121,
                "resolution": "720p",
                "ratio": "16:9",
            },
            model=PRO,
        )
        assert (snap.has_audio, snap.seconds, snap.width, snap.height) == (False, 5, 1248, 704)

    def test_succeeded_without_url_is_a_failure(self) -> None:
        snap = snapshot({"status": "succeeded", "content": {}})
        assert snap.status is VideoStatus.failed and snap.error_code == "no_video_url"

    @pytest.mark.parametrize(
        ("raw", "code"),
        [
            (
                {"status": "failed", "error": {"code": "OutputVideoSensitiveContentDetected", "message": "m"}},
                "OutputVideoSensitiveContentDetected",
            ),
            ({"status": "failed", "error": None}, "failed"),
            ({"status": "cancelled"}, "cancelled"),
            ({"status": "expired"}, "expired"),
        ],
    )
    def test_failed_states(self, raw: dict[str, Any], code: str) -> None:
        snap = snapshot(raw)
        assert snap.status is VideoStatus.failed and snap.error_code == code and snap.error_message

    def test_unknown_state_is_polled_again(self, caplog: pytest.LogCaptureFixture) -> None:
        snap = snapshot({"id": "cgt-1", "status": "processing"})
        assert snap.status is VideoStatus.in_progress
        assert "unknown task status" in caplog.text

    def test_unparsable_body_is_unavailable(self) -> None:
        with pytest.raises(Unavailable):
            snapshot({"no": "status"})


class TestErrors:
    @pytest.mark.parametrize(
        ("http", "code", "cls", "vendor_code"),
        [
            (400, "InputTextSensitiveContentDetected", Rejected, "moderation_blocked"),
            (400, "InputImageSensitiveContentDetected.PrivacyInformation", Rejected, "moderation_blocked"),
            (400, "SensitiveContentDetected.Violence", Rejected, "moderation_blocked"),
            (400, "InputVideoSensitiveContentDetected", Rejected, "moderation_blocked"),
            (400, "InputTextRiskDetection", Rejected, "moderation_blocked"),
            (400, "MissingParameter", Rejected, "MissingParameter"),
            (400, "InvalidParameter", Rejected, "InvalidParameter"),
            (400, "InvalidEndpoint.ClosedEndpoint", Unavailable, "InvalidEndpoint.ClosedEndpoint"),
            (400, "ContentSecurityDetectionError", Unavailable, "ContentSecurityDetectionError"),
            (401, "AuthenticationError", AuthFailed, "AuthenticationError"),
            (403, "AccessDenied", AuthFailed, "AccessDenied"),
            (403, "AccountOverdueError", Rejected, "AccountOverdueError"),
            (404, "InvalidEndpointOrModel.NotFound", Rejected, "InvalidEndpointOrModel.NotFound"),
            (404, "ModelNotOpen", Rejected, "ModelNotOpen"),
            (429, "RateLimitExceeded.EndpointRPMExceeded", RateLimited, "RateLimitExceeded.EndpointRPMExceeded"),
            (429, "ModelAccountRpmRateLimitExceeded", RateLimited, "ModelAccountRpmRateLimitExceeded"),
            (429, "QuotaExceeded", Rejected, "QuotaExceeded"),
            (429, "ServerOverloaded", Unavailable, "ServerOverloaded"),
            (429, "ModelLoadingError", Unavailable, "ModelLoadingError"),
            (500, "InternalServiceError", Unavailable, "InternalServiceError"),
        ],
    )
    def test_documented_codes(self, http: int, code: str, cls: type, vendor_code: str) -> None:
        body = {"error": {"code": code, "message": "Something. Request id: 021", "param": "", "type": "X"}}
        exc = map_error(http, body, retry_after=2.0)
        assert type(exc) is cls and exc.vendor_code == vendor_code and exc.status_code == http
        assert "Request id" in exc.message
        if vendor_code == "moderation_blocked":
            assert code in exc.message  # the Ark code stays visible

    @pytest.mark.parametrize(
        ("http", "body", "cls"),
        [
            (502, None, Unavailable),
            (503, "<html>", Unavailable),
            (401, None, AuthFailed),
            (429, {}, RateLimited),
            (400, None, Unavailable),  # not Ark's envelope: something in between
            (400, {"error": {"message": "x"}}, Rejected),
        ],
    )
    def test_bodies_without_a_code(self, http: int, body: Any, cls: type) -> None:
        exc = map_error(http, body)
        assert type(exc) is cls and exc.vendor_code == f"http_{http}"

    def test_retry_after_is_kept(self) -> None:
        body = {"error": {"code": "RateLimitExceeded.EndpointRPMExceeded", "message": "slow"}}
        assert map_error(429, body, retry_after=7.0).retry_after == 7.0


class TestLifecycle:
    def test_protocols(self, provider: SeedanceProvider) -> None:
        assert isinstance(provider, VideoProvider) and isinstance(provider, Cancellable)
        assert not isinstance(provider, Recoverable)  # see the module docstring

    async def test_text_to_video_end_to_end(self, provider: SeedanceProvider, state: FakeState) -> None:
        task = await provider.submit(make_req(extras={"seed": 7}))
        assert task.vendor_task_id.startswith("cgt-") and task.meta["model"] == PRO
        req = state.requests[-1]
        assert req["headers"]["authorization"] == f"Bearer {KEY}"
        assert req["path"] == "/api/v3/contents/generations/tasks"
        assert req["headers"]["content-type"] == "application/json"
        assert state.unknown_fields == []
        first = await provider.poll(task)
        assert first.status is VideoStatus.queued
        snap = await finish(provider, task)
        assert snap.status is VideoStatus.completed, snap.error_message
        assert snap.usage["completion_tokens"] > 0 and snap.has_audio is False
        assert (snap.seconds, snap.width, snap.height) == (5, 1920, 1088)
        data = await read_all(provider, task, snap)
        assert data[4:8] == b"ftyp"
        assert "authorization" not in state.downloads[-1]["headers"]  # the key never goes to TOS

    async def test_image_to_video_with_bytes(self, provider: SeedanceProvider, state: FakeState) -> None:
        task = await provider.submit(make_req(width=1280, height=720, image=IMG, last_frame=IMG))
        body = state.creates()[-1]
        assert [i.get("role") for i in body["content"]] == [None, "first_frame", "last_frame"]
        assert (await finish(provider, task)).status is VideoStatus.completed

    async def test_audio_model_serves_an_mp4_with_sound(self, provider: SeedanceProvider) -> None:
        req = make_req(model="doubao-seedance-1-5-pro-251215", width=1280, height=720, extras={"generate_audio": True})
        task = await provider.submit(req)
        snap = await finish(provider, task)
        assert snap.has_audio is True
        with av.open(io.BytesIO(await read_all(provider, task, snap))) as container:
            assert container.streams.audio and container.streams.video

    async def test_every_model_completes(self, provider: SeedanceProvider) -> None:
        for caps in MODELS:
            image = IMG if caps.image == "required" else None
            req = make_req(model=caps.name, width=1280, height=720, seconds=caps.seconds_range[0], image=image)
            snap = await finish(provider, await provider.submit(req))
            assert snap.status is VideoStatus.completed, (caps.name, snap.error_message)

    async def test_last_frame_url(self, provider: SeedanceProvider) -> None:
        snap = await finish(provider, await provider.submit(make_req(extras={"return_last_frame": "true"})))
        assert "last_frame_url" in snap.meta

    async def test_failure_in_band(self, provider: SeedanceProvider, state: FakeState) -> None:
        state.fail_task = ("OutputVideoSensitiveContentDetected", "The output video may contain sensitive information.")
        snap = await finish(provider, await provider.submit(make_req()))
        assert snap.status is VideoStatus.failed
        assert snap.error_code == "OutputVideoSensitiveContentDetected" and snap.error_message

    async def test_expired_task(self, provider: SeedanceProvider, state: FakeState) -> None:
        state.expire_tasks = True
        snap = await finish(provider, await provider.submit(make_req()))
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "expired")

    async def test_base_url_with_api_v3_and_byteplus_host(self, client: httpx.AsyncClient, state: FakeState) -> None:
        provider = SeedanceProvider(client, api_key=KEY, base_url=f"{BYTEPLUS_BASE_URL}/api/v3/")
        task = await provider.submit(make_req())
        assert state.requests[-1]["path"] == "/api/v3/contents/generations/tasks"
        assert state.creates()[-1]["model"] == "seedance-1-0-pro-250528"
        assert (await finish(provider, task)).status is VideoStatus.completed

    async def test_callback_url_is_submitted_and_called(self, state: FakeState) -> None:
        received: list[dict[str, Any]] = []

        async def receiver(request: httpx.Request) -> httpx.Response:
            import json

            received.append(json.loads(request.content))
            return httpx.Response(200, json={})

        cb = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
        app, st = make_app(api_key=KEY, callback_client=cb)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            provider = SeedanceProvider(c, api_key=KEY, base_url=BASE)
            url = "https://gw.example/callbacks/seedance/video_abc/token"
            task = await provider.submit(make_req(extras={"callback_url": url}))
            assert st.creates()[-1]["callback_url"] == url
            await finish(provider, task)
        await cb.aclose()
        assert [r["status"] for r in received] == ["running", "succeeded"]
        assert snapshot(received[-1]).status is VideoStatus.completed  # a callback body reads like a GET

    async def test_cancel_queued_then_deleted(self, provider: SeedanceProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        await provider.cancel(task)
        assert state.tasks[task.vendor_task_id].status == "cancelled"
        snap = await provider.poll(task)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "cancelled")

    async def test_cancel_finished_deletes_and_gone_is_fine(self, provider: SeedanceProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        await finish(provider, task)
        await provider.cancel(task)
        assert task.vendor_task_id not in state.tasks
        await provider.cancel(task)  # already gone: nothing to do
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(task)

    async def test_cancel_running_is_rejected(self, provider: SeedanceProvider) -> None:
        task = await provider.submit(make_req())
        await provider.poll(task)  # queued → running
        with pytest.raises(Rejected):
            await provider.cancel(task)

    async def test_list_filters(self, client: httpx.AsyncClient, provider: SeedanceProvider) -> None:
        task = await provider.submit(make_req())
        r = await client.get(
            f"{BASE}/api/v3/contents/generations/tasks",
            params=[("filter.task_ids", task.vendor_task_id), ("filter.model", PRO), ("page_size", "5")],
            headers={"Authorization": f"Bearer {KEY}"},
        )
        body = r.json()
        assert body["total"] == 1 and body["items"][0]["id"] == task.vendor_task_id


class TestFailures:
    @pytest.mark.parametrize("header", [None, "Bearer wrong", f"Token {KEY}", f"bearer {KEY}"])
    async def test_fake_checks_auth_exactly(self, client: httpx.AsyncClient, header: str | None) -> None:
        headers = {"Authorization": header} if header else {}
        r = await client.post(f"{BASE}/api/v3/contents/generations/tasks", json={}, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "AuthenticationError" and r.json()["error"]["type"] == "Unauthorized"

    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient) -> None:
        with pytest.raises(AuthFailed) as exc:
            await SeedanceProvider(client, api_key="wrong", base_url=BASE).submit(make_req())
        assert "wrong" not in exc.value.message

    @pytest.mark.parametrize(
        ("kind", "cls", "code"),
        [
            ("moderation", Rejected, "moderation_blocked"),
            ("image_moderation", Rejected, "moderation_blocked"),
            ("rate_limit", RateLimited, "RateLimitExceeded.EndpointRPMExceeded"),
            ("quota", Rejected, "QuotaExceeded"),
            ("overloaded", Unavailable, "ServerOverloaded"),
            ("overdue", Rejected, "AccountOverdueError"),
            ("access", AuthFailed, "AccessDenied"),
            ("server", Unavailable, "InternalServiceError"),
            ("not_open", Rejected, "ModelNotOpen"),
            ("garbage", Unavailable, None),
            ("html502", Unavailable, "http_502"),
        ],
    )
    async def test_faults_at_submit(
        self, provider: SeedanceProvider, state: FakeState, kind: str, cls: type, code: str | None
    ) -> None:
        state.fail_next(kind, on="create")
        with pytest.raises(cls) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == code
        if kind == "rate_limit":
            assert exc.value.retry_after == 3.0
        assert state.tasks == {}

    async def test_faults_while_polling(self, provider: SeedanceProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        state.fail_next("server", on="get")
        with pytest.raises(Unavailable):
            await provider.poll(task)
        assert (await finish(provider, task)).status is VideoStatus.completed

    async def test_vendor_validation_is_rejected_with_param(self, provider: SeedanceProvider) -> None:
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req(extras={"execution_expires_after": 345600}))
        assert exc.value.vendor_code == "InvalidParameter" and "345600" in exc.value.message

    async def test_unknown_model_is_rejected(self, provider: SeedanceProvider) -> None:
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req(model="doubao-seedance-9-9"))
        assert exc.value.vendor_code == "InvalidEndpointOrModel.NotFound"

    async def test_unknown_task(self, provider: SeedanceProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(VendorTask("seedance", "cgt-20250101000000-nope0"))

    async def test_transport_error_is_unavailable(self) -> None:
        def boom(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(boom)) as c:
            with pytest.raises(Unavailable) as exc:
                await SeedanceProvider(c, api_key=KEY, base_url=BASE).submit(make_req())
        assert exc.value.vendor_code == "transport"

    async def test_create_without_id_is_unavailable(self) -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))) as c:
            with pytest.raises(Unavailable):
                await SeedanceProvider(c, api_key=KEY, base_url=BASE).submit(make_req())

    async def test_expired_result_url(self, provider: SeedanceProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        snap = await finish(provider, task)
        state.expire_files = True
        with pytest.raises(NotFoundAtVendor):
            await read_all(provider, task, snap)


class TestFake:
    def test_text_commands(self) -> None:
        text = "A kitten yawning --rs 720p --rt 9:16 --dur 7 --wm true --seed 11 --cf false --dur x"
        assert text_commands(text) == {
            "resolution": "720p",
            "ratio": "9:16",
            "duration": 7,
            "watermark": True,
            "seed": 11,
            "camera_fixed": False,
        }

    def test_text_commands_apply_when_the_field_is_absent(self) -> None:
        body = {"model": PRO, "content": [{"type": "text", "text": "cat --rs 720p --dur 7"}]}
        _, _, params = validate(body, FakeState(api_key=KEY))
        assert (params["resolution"], params["duration"]) == ("720p", 7)
        _, _, params = validate({**body, "resolution": "480p"}, FakeState(api_key=KEY))
        assert params["resolution"] == "480p"

    @pytest.mark.parametrize(
        ("patch", "param"),
        [
            ({"duration": "5"}, "duration"),
            ({"duration": 13}, "duration"),
            ({"duration": -1}, "duration"),  # 1.0: no -1
            ({"resolution": "1080P"}, "resolution"),
            ({"ratio": "adaptive"}, "ratio"),  # 1.0 text-to-video
            ({"watermark": "false"}, "watermark"),
            ({"frames": 30}, "frames"),
            ({"seed": 2**32}, "seed"),
            ({"service_tier": "cheap"}, "service_tier"),
            ({"execution_expires_after": 100}, "execution_expires_after"),
            ({"content": [{"type": "image_url", "image_url": "https://x"}]}, "content[0].image_url"),
            ({"content": [{"type": "image_url", "image_url": {"url": "data:image/PNG;base64,AAAA"}}]}, None),
            ({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, "content"),
        ],
    )
    def test_fake_refuses_what_ark_refuses(self, patch: dict[str, Any], param: str | None) -> None:
        body = {"model": PRO, "content": [{"type": "text", "text": "cat"}], **patch}
        with pytest.raises(Invalid) as exc:
            validate(body, FakeState(api_key=KEY))
        assert exc.value.status == 400
        if param is not None:
            assert exc.value.param == param

    def test_fake_checks_the_model_first(self) -> None:
        with pytest.raises(Invalid) as exc:
            validate({"model": "nope", "duration": "bad"}, FakeState(api_key=KEY))
        assert (exc.value.status, exc.value.code) == (404, "InvalidEndpointOrModel.NotFound")

    def test_fake_checks_image_rules(self) -> None:
        small = ImageInput(data=solid_image((1, 2, 3), size=(200, 200)), mime="image/jpeg")
        with pytest.raises(Invalid, match="300"):
            validate(build_body(make_req(image=small)), FakeState(api_key=KEY))
        wide = ImageInput(data=solid_image((1, 2, 3), size=(1600, 400)), mime="image/jpeg")
        with pytest.raises(Invalid, match="aspect"):
            validate(build_body(make_req(image=wide)), FakeState(api_key=KEY))

    def test_fake_checks_modes(self) -> None:
        lite = make_req(model="doubao-seedance-1-0-lite-t2v-250428", image=IMG_URL)
        with pytest.raises(Invalid, match="mode"):
            validate(build_body(lite), FakeState(api_key=KEY))
        fast = make_req(model="doubao-seedance-1-0-pro-fast-251015", image=IMG_URL, last_frame=LAST_URL)
        with pytest.raises(Invalid, match="mode"):
            validate(build_body(fast), FakeState(api_key=KEY))
        refs = make_req(
            model="doubao-seedance-1-0-lite-i2v-250428",
            image=IMG_URL,
            extras={"reference_images": [f"https://x/{i}.png" for i in range(4)]},
        )
        with pytest.raises(Invalid, match="at most 4"):
            validate(build_body(refs), FakeState(api_key=KEY))


class TestThroughTheSDK:
    """The issue's example, unchanged OpenAI SDK code, through vidgate to the fake Ark server."""

    @pytest.fixture
    def rig(self, database_url: str, tmp_path: Any) -> Any:
        from tests.providers.test_vendor_e2e import VENDORS as E2E
        from tests.providers.test_vendor_e2e import _rig

        vendor = next(v for v in E2E if v.name == "seedance")
        yield from _rig(vendor, database_url, tmp_path, param_policy="strict")

    def test_issue_example_under_strict_policy(self, rig: Any) -> None:
        video = rig.client.videos.create_and_poll(
            model="doubao-seedance-1-0-pro-250528",
            prompt="a kitten yawning",
            size="1920x1080",
            seconds="5",
            poll_interval_ms=50,
        )
        assert video.status == "completed", video.error
        body = rig.fake_state.creates()[-1]
        assert (body["resolution"], body["ratio"], body["duration"]) == ("1080p", "16:9", 5)
        assert rig.client.videos.download_content(video.id).read()[4:8] == b"ftyp"

    def test_strict_refuses_an_unsupported_duration_before_any_vendor_call(self, rig: Any) -> None:
        import openai

        with pytest.raises(openai.BadRequestError) as exc:
            rig.client.videos.create(model="doubao-seedance-1-0-pro-250528", prompt="x", seconds="20")
        assert "2 to 12" in exc.value.message
        assert rig.fake_state.creates() == []

    def test_audio_model_keeps_its_sound_track(self, rig: Any) -> None:
        from tests.support.media import mp4_info

        video = rig.client.videos.create_and_poll(
            model="doubao-seedance-1-5-pro-251215",
            prompt="rain on a tin roof",
            size="1280x720",
            seconds="4",
            extra_body={"metadata": {"generate_audio": "true", "seed": "3"}},
            poll_interval_ms=50,
        )
        assert video.status == "completed", video.error
        body = rig.fake_state.creates()[-1]
        assert body["generate_audio"] is True and body["seed"] == 3
        data = rig.client.videos.download_content(video.id).read()
        with av.open(io.BytesIO(data)) as container:
            assert container.streams.audio
        assert mp4_info(data)[4] > 0


class _ToGateway(httpx.AsyncBaseTransport):
    """The fake Ark's outgoing callbacks reach the gateway app (set once it exists)."""

    app: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


async def test_ark_callbacks_make_the_gateway_poll_at_once(database_url: str, tmp_path: Any) -> None:
    from app.main import create_app
    from tests.conftest import make_settings, new_key
    from tests.videos.test_http import finish as finish_video

    to_gateway = _ToGateway()
    fake_app, st = make_app(api_key=KEY, callback_client=httpx.AsyncClient(transport=to_gateway))
    settings = make_settings(
        database_url,
        tmp_path / "d",
        sandbox_enabled=False,
        seedance_api_key=KEY,
        seedance_base_url=DEFAULT_BASE_URL,
        public_base_url="http://gw",
        poll_interval_ms=60_000,  # polling alone would take a minute
        poll_max_interval_ms=60_000,
    )
    app = create_app(settings, http=httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app)))
    to_gateway.app = app
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "cb", "model": PRO, "size": "1280x720"})
            assert r.status_code == 200, r.text
            vid = r.json()["id"]
            task = next(iter(st.tasks.values()))
            assert task.params["callback_url"].startswith(f"http://gw/callbacks/seedance/{vid}/")
            # time passes at Ark: the task moves on and Ark POSTs it to the callback URL
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app), base_url=DEFAULT_BASE_URL) as v:
                for _ in range(2):
                    await v.get(
                        f"/api/v3/contents/generations/tasks/{task.id}", headers={"Authorization": f"Bearer {KEY}"}
                    )
            body = await finish_video(c, auth, vid, timeout=10)
            assert body["status"] == "completed", body
            assert st.callbacks and all(cb["status"] == 200 for cb in st.callbacks)
