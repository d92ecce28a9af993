"""Vidu adapter: mapping tables, golden request bodies, and the adapter against the fake Vidu server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    NotFoundAtVendor,
    RateLimited,
    Rejected,
    Unavailable,
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.vendors import VENDORS
from app.providers.vidu import (
    DEFAULT_BASE_URL,
    MODELS,
    STATUS,
    ViduProvider,
    build_body,
    endpoint_for,
    map_error,
    snapshot,
)
from tests.fakes.vidu import VIDEO_BYTES, FakeViduState, _validate, make_app, sign, signing_string

KEY = "vda_test_key"
BASE = "http://vidu.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
IMG = ImageInput(data=PNG, mime="image/png")
IMG_URL = ImageInput(url="https://example.com/first.png")
LAST_URL = ImageInput(url="https://example.com/last.png")
PNG_DATA_URL = IMG.data_url()


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": "viduq3-pro", "prompt": "a cat surfing"}
    base |= {"width": 1280, "height": 720, "seconds": 5}
    return GenerationRequest(**(base | kw))


class _TimeoutASGI(httpx.AsyncBaseTransport):
    """ASGITransport ignores timeouts; enforce the request's read timeout so a hanging fake times out."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self._inner.handle_async_request(request), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out", request=request) from None


@pytest.fixture
def fake() -> tuple[Any, FakeViduState]:
    return make_app(api_key=KEY)


@pytest.fixture
async def client(fake: tuple[Any, FakeViduState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=_TimeoutASGI(fake[0])) as c:
        yield c


@pytest.fixture
def state(fake: tuple[Any, FakeViduState]) -> FakeViduState:
    return fake[1]


@pytest.fixture
def provider(client: httpx.AsyncClient) -> ViduProvider:
    return ViduProvider(client, api_key=KEY, base_url=BASE, timeout=2.0)


async def run_to_end(provider: ViduProvider, task: VendorTask, limit: int = 10) -> list[Any]:
    snaps = []
    for _ in range(limit):
        snap = await provider.poll(task)
        snaps.append(snap)
        if snap.status in {VideoStatus.completed, VideoStatus.failed}:
            break
    return snaps


# ---------------------------------------------------------------------------------------------
# capability table


class TestModels:
    def test_names_and_constants(self) -> None:
        assert {m.name for m in MODELS} == {
            "viduq1", "vidu2.0", "vidu1.5", "viduq2", "viduq2-pro", "viduq2-turbo", "viduq2-pro-fast",
            "viduq3-pro", "viduq3-turbo", "viduq3-pro-fast",
        }  # fmt: skip
        assert all(m.provider == "vidu" and m.default_size in m.sizes for m in MODELS)
        assert DEFAULT_BASE_URL == "https://api.vidu.com"
        assert VENDORS["vidu"].image_transport == "either"
        assert not any(m.remix or m.edit or m.extend for m in MODELS)

    @pytest.mark.parametrize(
        ("name", "image", "last_frame", "seconds", "seconds_range"),
        [
            ("viduq1", "optional", True, (5,), None),
            ("vidu2.0", "required", True, (4, 8), None),
            ("vidu1.5", "optional", True, (4, 8), None),
            ("viduq2", "optional", False, (), (1, 10)),
            ("viduq2-pro", "required", True, (), (1, 10)),
            ("viduq3-turbo", "optional", True, (), (1, 16)),
            ("viduq3-pro-fast", "required", False, (), (1, 16)),
        ],
    )
    def test_model_modes(
        self, name: str, image: str, last_frame: bool, seconds: tuple[int, ...], seconds_range: Any
    ) -> None:
        caps = next(m for m in MODELS if m.name == name)
        assert (caps.image, caps.last_frame, caps.seconds) == (image, last_frame, seconds)
        if seconds_range:
            assert caps.seconds_range == seconds_range

    def test_every_allowed_combination_passes_the_fakes_validation(self) -> None:
        """Whatever the service lets through the caps, the adapter turns into a body Vidu accepts."""
        checked = 0
        for caps in MODELS:
            seconds = caps.seconds or tuple(range(caps.seconds_range[0], caps.seconds_range[1] + 1))
            inputs: list[dict[str, Any]] = []
            if caps.image != "required":
                inputs.append({})
            if caps.image != "none":
                inputs.append({"image": IMG_URL})
            if caps.last_frame:
                inputs.append({"image": IMG_URL, "last_frame": LAST_URL})
            for (w, h), s, extra in ((sz, s, x) for sz in caps.sizes for s in seconds for x in inputs):
                req = make_req(model=caps.name, width=w, height=h, seconds=s, **extra)
                error, _ = _validate(endpoint_for(req), build_body(req))
                assert error is None, (caps.name, w, h, s, extra, json.loads(error.body))
                checked += 1
        assert checked > 1000


# ---------------------------------------------------------------------------------------------
# pure mappings


class TestSizeMapping:
    @pytest.mark.parametrize(
        ("model", "size", "resolution", "aspect"),
        [
            ("viduq3-pro", (1280, 720), "720p", "16:9"),
            ("viduq3-pro", (720, 1280), "720p", "9:16"),
            ("viduq3-pro", (720, 720), "720p", "1:1"),
            ("viduq3-pro", (720, 960), "720p", "3:4"),
            ("viduq3-pro", (1440, 1080), "1080p", "4:3"),
            ("viduq2", (540, 960), "540p", "9:16"),
            ("viduq2", (720, 540), "540p", "4:3"),
            ("viduq1", (1920, 1080), "1080p", "16:9"),
            ("viduq1", (1080, 1920), "1080p", "9:16"),
            ("vidu1.5", (640, 360), "360p", "16:9"),
            ("vidu1.5", (360, 360), "360p", "1:1"),
            ("vidu1.5", (1080, 1920), "1080p", "9:16"),
        ],
    )
    def test_text2video_size_to_resolution_and_aspect(
        self, model: str, size: tuple[int, int], resolution: str, aspect: str
    ) -> None:
        w, h = size
        body = build_body(make_req(model=model, width=w, height=h, seconds=5 if model == "viduq1" else 4))
        assert (body["resolution"], body["aspect_ratio"]) == (resolution, aspect)

    def test_image_endpoints_send_resolution_only(self) -> None:
        body = build_body(make_req(width=720, height=1280, image=IMG_URL))
        assert body["resolution"] == "720p"
        assert "aspect_ratio" not in body


class TestSecondsMapping:
    @pytest.mark.parametrize(
        ("model", "size", "seconds", "inputs", "duration", "resolution"),
        [
            ("viduq1", (1920, 1080), 5, {}, 5, "1080p"),
            ("vidu1.5", (1920, 1080), 4, {}, 4, "1080p"),
            ("vidu1.5", (1920, 1080), 8, {}, 8, "720p"),  # 8 s exists at 720p only
            ("vidu1.5", (640, 360), 8, {}, 8, "720p"),
            ("vidu2.0", (640, 360), 8, {"image": IMG_URL}, 8, "720p"),
            ("vidu2.0", (1920, 1080), 8, {"extras": {"mode": "reference"}, "image": IMG_URL}, 4, "720p"),
            ("viduq2-pro", (1280, 720), 10, {"image": IMG_URL}, 10, "720p"),
            ("viduq2-pro", (1280, 720), 10, {"image": IMG_URL, "last_frame": LAST_URL}, 8, "720p"),
            ("viduq2", (1280, 720), 1, {}, 1, "720p"),
            ("viduq3-pro", (1920, 1080), 16, {"image": IMG_URL, "last_frame": LAST_URL}, 16, "1080p"),
        ],
    )
    def test_seconds_to_duration(
        self,
        model: str,
        size: tuple[int, int],
        seconds: int,
        inputs: dict[str, Any],
        duration: int,
        resolution: str,
    ) -> None:
        body = build_body(make_req(model=model, width=size[0], height=size[1], seconds=seconds, **inputs))
        assert (body["duration"], body["resolution"]) == (duration, resolution)
        assert isinstance(body["duration"], int)


class TestEndpoint:
    @pytest.mark.parametrize(
        ("inputs", "endpoint"),
        [
            ({}, "text2video"),
            ({"image": IMG}, "img2video"),
            ({"image": IMG, "last_frame": LAST_URL}, "start-end2video"),
            ({"extras": {"reference_images": ["https://e.com/a.png"]}}, "reference2video"),
            ({"extras": {"reference_images": '["https://e.com/a.png"]'}}, "reference2video"),
            ({"image": IMG, "extras": {"mode": "reference"}}, "reference2video"),
            ({"image": IMG, "extras": {"action": "reference2video"}}, "reference2video"),
            ({"extras": {"subjects": [{"id": "1", "images": ["https://e.com/a.png"]}]}}, "reference2video"),
            ({"model": "viduq2", "image": IMG}, "reference2video"),  # bare q2 has no img2video
            ({"extras": {"reference_images": []}}, "text2video"),
        ],
    )
    def test_inputs_pick_the_endpoint(self, inputs: dict[str, Any], endpoint: str) -> None:
        assert endpoint_for(make_req(**inputs)) == endpoint

    def test_last_frame_without_first_frame_is_rejected(self) -> None:
        with pytest.raises(Rejected):
            endpoint_for(make_req(last_frame=LAST_URL))


class TestGoldenBodies:
    def test_text2video(self) -> None:
        assert build_body(make_req()) == {
            "model": "viduq3-pro",
            "prompt": "a cat surfing",
            "duration": 5,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "payload": "video_abc",
        }

    def test_img2video_with_uploaded_bytes_uses_a_data_uri(self) -> None:
        body = build_body(make_req(model="viduq1", width=1920, height=1080, image=IMG))
        assert body == {
            "model": "viduq1",
            "prompt": "a cat surfing",
            "images": [PNG_DATA_URL],
            "duration": 5,
            "resolution": "1080p",
            "payload": "video_abc",
        }
        assert PNG_DATA_URL.startswith("data:image/png;base64,")

    def test_img2video_with_url_passes_it_through(self) -> None:
        body = build_body(make_req(image=IMG_URL))
        assert body["images"] == ["https://example.com/first.png"]

    def test_start_end(self) -> None:
        body = build_body(make_req(model="vidu2.0", seconds=4, image=IMG_URL, last_frame=LAST_URL))
        assert body == {
            "model": "vidu2.0",
            "prompt": "a cat surfing",
            "images": ["https://example.com/first.png", "https://example.com/last.png"],
            "duration": 4,
            "resolution": "720p",
            "payload": "video_abc",
        }

    def test_reference_rewrites_q2_variants_and_appends_reference_images(self) -> None:
        req = make_req(
            model="viduq2-pro",
            width=720,
            height=960,
            image=IMG_URL,
            extras={"mode": "reference", "reference_images": ["https://e.com/b.png"]},
        )
        assert build_body(req) == {
            "model": "viduq2",
            "prompt": "a cat surfing",
            "images": ["https://example.com/first.png", "https://e.com/b.png"],
            "duration": 5,
            "resolution": "720p",
            "aspect_ratio": "3:4",
            "payload": "video_abc",
        }

    def test_reference_keeps_a_last_frame_as_one_more_subject(self) -> None:
        req = make_req(image=IMG_URL, last_frame=LAST_URL, extras={"mode": "reference"}, model="viduq1")
        assert build_body(req)["images"] == ["https://example.com/first.png", "https://example.com/last.png"]

    def test_metadata_is_coerced_and_cannot_touch_model(self) -> None:
        extras = {
            "bgm": "true",
            "off_peak": "1",
            "watermark": "false",
            "seed": "42",
            "wm_position": "2",
            "movement_amplitude": "large",
            "callback_url": "https://hooks.example.com/vidu",
            "subjects": '[{"id": "1", "images": ["https://e.com/a.png"]}]',
            "meta_data": {"k": "v"},
            "model": "vidu1.5",
            "images": ["https://evil.example.com/x.png"],
            "sandbox_outcome": "fail",
            "payload": "custom",
        }
        body = build_body(make_req(extras=extras))
        assert body["model"] == "viduq3-pro"
        assert "images" not in body
        assert "sandbox_outcome" not in body
        assert body["bgm"] is True
        assert body["off_peak"] is True
        assert body["watermark"] is False
        assert body["seed"] == 42
        assert body["wm_position"] == 2
        assert body["movement_amplitude"] == "large"
        assert body["callback_url"] == "https://hooks.example.com/vidu"
        assert body["subjects"] == [{"id": "1", "images": ["https://e.com/a.png"]}]
        assert body["meta_data"] == '{"k": "v"}'
        assert body["payload"] == "custom"

    @pytest.mark.parametrize("extras", [{"seed": "abc"}, {"reference_images": "[not json"}])
    def test_bad_metadata_is_rejected(self, extras: dict[str, Any]) -> None:
        with pytest.raises(Rejected):
            build_body(make_req(extras=extras))


class TestStatus:
    @pytest.mark.parametrize(
        ("state", "status", "progress"),
        [
            ("created", VideoStatus.queued, 0),
            ("queueing", VideoStatus.queued, 0),
            ("scheduled", VideoStatus.queued, 0),
            ("processing", VideoStatus.in_progress, 50),
        ],
    )
    def test_pending_states(self, state: str, status: VideoStatus, progress: int) -> None:
        snap = snapshot({"state": state, "err_code": "", "creations": []})
        assert (snap.status, snap.progress, snap.video_url) == (status, progress, None)

    def test_every_documented_state_is_mapped(self) -> None:
        assert {"created", "queueing", "processing", "success", "failed"} <= STATUS.keys()

    def test_success(self) -> None:
        raw = {
            "state": "success",
            "err_code": "",
            "credits": 4,
            "creations": [{"id": "c1", "url": "https://cdn/v.mp4", "cover_url": "https://cdn/c.jpg"}],
        }
        snap = snapshot(raw)
        assert snap.status is VideoStatus.completed
        assert snap.progress == 100
        assert snap.video_url == "https://cdn/v.mp4"
        assert snap.meta["cover_url"] == "https://cdn/c.jpg"

    def test_watermarked_url_preferred_when_present(self) -> None:
        raw = {
            "state": "success",
            "creations": [{"url": "https://cdn/v.mp4", "watermarked_url": "https://cdn/w.mp4"}],
        }
        assert snapshot(raw).video_url == "https://cdn/w.mp4"

    def test_success_without_creations_is_a_failure(self) -> None:
        snap = snapshot({"state": "success", "creations": []})
        assert snap.status is VideoStatus.failed
        assert snap.error_code == "NoCreation"

    @pytest.mark.parametrize(
        ("err_code", "message"),
        [
            ("CreationPolicyViolation", "the output failed the safety review"),
            ("UserCancelled", "cancelled by the user"),
            ("SomethingNew", "SomethingNew"),
            ("", "failed"),
        ],
    )
    def test_failed(self, err_code: str, message: str) -> None:
        snap = snapshot({"state": "failed", "err_code": err_code, "creations": []})
        assert snap.status is VideoStatus.failed
        assert snap.error_code == (err_code or "failed")
        assert snap.error_message == message

    def test_unknown_state_stays_in_progress_and_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            snap = snapshot({"state": "rendering"})
        assert snap.status is VideoStatus.in_progress
        assert "rendering" in caplog.text

    def test_vendor_progress_and_off_peak_hint(self) -> None:
        snap = snapshot({"state": "processing", "progress": 73.0, "off_peak": True})
        assert snap.progress == 73
        assert snap.poll_after == 300.0
        assert snapshot({"state": "processing"}).poll_after is None


def _err(code: int, reason: str) -> dict[str, Any]:
    return {"code": code, "reason": reason, "message": f"msg {reason}", "metadata": {"trace_id": "ab"}}


class TestErrors:
    @pytest.mark.parametrize(
        ("http", "reason", "cls"),
        [
            (400, "BadRequest", Rejected),
            (400, "FieldLacking", Rejected),
            (400, "FieldUnwanted", Rejected),
            (400, "FieldItemCountOutOfRange", Rejected),
            (400, "FieldInvalid", Rejected),
            (400, "PageSizeOutOfRange", Rejected),
            (400, "ImageDownloadFailure", Rejected),
            (400, "ImageFormatInvalid", Rejected),
            (400, "ImageCheckBodyJointsFailed", Rejected),
            (400, "ImageCheckFaceFailed", Rejected),
            (400, "ImageObjectsUndetected", Rejected),
            (400, "OperationInProcess", RateLimited),
            (400, "TaskPromptPolicyViolation", Rejected),
            (400, "AuditSubmitIllegal", Rejected),
            (400, "CreationPolicyViolation", Rejected),
            (400, "CreditInsufficient", Rejected),
            (400, "ModelUnavailable", Rejected),
            (400, "UserCancelled", Rejected),
            (401, "Unauthorized", AuthFailed),
            (403, "Forbidden", AuthFailed),
            (404, "TaskNotFound", NotFoundAtVendor),
            (404, "CreationNotFound", NotFoundAtVendor),
            (404, "NotFound", NotFoundAtVendor),
            (409, "Conflict", Rejected),
            (429, "QuotaExceeded", RateLimited),
            (429, "TooManyRequests", RateLimited),
            (429, "SystemThrottling", RateLimited),
            (499, "Canceled", Unavailable),
            (500, "InternalServiceFailure", Unavailable),
        ],
    )
    def test_documented_codes(self, http: int, reason: str, cls: type) -> None:
        err = map_error(http, _err(http, reason))
        assert type(err) is cls
        assert err.vendor_code == reason
        assert err.message == f"msg {reason}"
        assert err.provider == "vidu"

    @pytest.mark.parametrize(
        ("http", "body", "cls", "code"),
        [
            (500, None, Unavailable, "http_500"),
            (502, "<html>", Unavailable, "http_502"),
            (429, None, RateLimited, "http_429"),
            (401, None, AuthFailed, "http_401"),
            (404, None, NotFoundAtVendor, "http_404"),
            (400, None, Rejected, "http_400"),
            (200, _err(400, "CreditInsufficient"), Rejected, "CreditInsufficient"),
            (200, _err(429, "QuotaExceeded"), RateLimited, "QuotaExceeded"),
            (200, _err(500, "InternalServiceFailure"), Unavailable, "InternalServiceFailure"),
        ],
    )
    def test_shapes_and_bare_statuses(self, http: int, body: Any, cls: type, code: str) -> None:
        err = map_error(http, body)
        assert type(err) is cls
        assert err.vendor_code == code

    def test_retry_after_is_kept(self) -> None:
        assert map_error(429, _err(429, "TooManyRequests"), retry_after=3.0).retry_after == 3.0


# ---------------------------------------------------------------------------------------------
# adapter against the fake


class TestLifecycle:
    def test_is_a_video_provider(self, provider: ViduProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert provider.name == "vidu"

    async def test_text2video_end_to_end(self, provider: ViduProvider, state: FakeViduState) -> None:
        req = make_req(width=720, height=1280, seconds=7)
        task = await provider.submit(req)
        sent = state.requests[0]
        assert sent["path"] == "/ent/v2/text2video"
        assert sent["json"] == build_body(req)
        assert sent["headers"]["authorization"] == f"Token {KEY}"
        assert sent["headers"]["content-type"] == "application/json"
        assert task.vendor_task_id == "885482446060003328"
        assert task.meta["endpoint"] == "text2video"
        assert task.meta["model"] == "viduq3-pro"

        snaps = await run_to_end(provider, task)
        assert [s.meta["state"] for s in snaps] == ["created", "queueing", "processing", "success"]
        assert [s.status for s in snaps] == [
            VideoStatus.queued,
            VideoStatus.queued,
            VideoStatus.in_progress,
            VideoStatus.completed,
        ]
        done = snaps[-1]
        assert (done.seconds, done.width, done.height) == (7, 720, 1280)
        assert done.video_url == f"{BASE}/files/{task.vendor_task_id}.mp4"
        assert done.meta["cover_url"].endswith(".jpg")
        poll = state.requests[1]
        assert poll["method"] == "GET"
        assert poll["path"] == f"/ent/v2/tasks/{task.vendor_task_id}/creations"
        assert poll["headers"]["authorization"] == f"Token {KEY}"

        chunks = [c async for c in provider.download(task, done)]
        assert b"".join(chunks) == VIDEO_BYTES
        assert len(chunks) > 1  # streamed, not one blob
        fetch = state.requests[-1]
        assert fetch["path"].startswith("/files/")
        assert "authorization" not in fetch["headers"]

    async def test_img2video_with_bytes(self, provider: ViduProvider, state: FakeViduState) -> None:
        task = await provider.submit(make_req(model="vidu2.0", seconds=8, image=IMG))
        assert task.meta["endpoint"] == "img2video"
        assert state.requests[0]["json"]["images"] == [PNG_DATA_URL]
        done = (await run_to_end(provider, task))[-1]
        assert done.status is VideoStatus.completed
        assert done.seconds == 8
        assert done.width is None

    @pytest.mark.parametrize(
        ("inputs", "endpoint", "model"),
        [
            ({"model": "viduq1", "image": IMG, "last_frame": LAST_URL}, "start-end2video", "viduq1"),
            (
                {"model": "viduq2-turbo", "image": IMG_URL, "extras": {"mode": "reference"}},
                "reference2video",
                "viduq2",
            ),
            (
                {"model": "viduq2", "extras": {"reference_images": [PNG_DATA_URL] * 3}},
                "reference2video",
                "viduq2",
            ),
        ],
    )
    async def test_other_endpoints(
        self, provider: ViduProvider, state: FakeViduState, inputs: dict[str, Any], endpoint: str, model: str
    ) -> None:
        req = make_req(**({"width": 1920, "height": 1080} | inputs))
        task = await provider.submit(req)
        assert task.meta["endpoint"] == endpoint
        assert task.meta["model"] == model
        assert state.requests[0]["path"] == f"/ent/v2/{endpoint}"
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    async def test_watermark_download_uses_watermarked_url(self, provider: ViduProvider) -> None:
        task = await provider.submit(make_req(extras={"watermark": "true"}))
        done = (await run_to_end(provider, task))[-1]
        assert done.video_url is not None
        assert done.video_url.endswith("-wm.mp4")

    async def test_task_failure_is_a_snapshot(self, provider: ViduProvider, state: FakeViduState) -> None:
        state.fail_task = "CreationPolicyViolation"
        task = await provider.submit(make_req())
        done = (await run_to_end(provider, task))[-1]
        assert done.status is VideoStatus.failed
        assert done.error_code == "CreationPolicyViolation"
        assert done.video_url is None

    async def test_base_url_with_ent_v2_suffix(self, client: httpx.AsyncClient, state: FakeViduState) -> None:
        p = ViduProvider(client, api_key=KEY, base_url=f"{BASE}/ent/v2/")
        await p.submit(make_req())
        assert state.requests[0]["path"] == "/ent/v2/text2video"

    async def test_concurrency_keeps_extras_queueing(self, fake: Any) -> None:
        app, state = make_app(api_key=KEY, concurrency=1)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            p = ViduProvider(c, api_key=KEY, base_url=BASE)
            first, second = await p.submit(make_req()), await p.submit(make_req())
            for _ in range(2):
                await p.poll(first)
            assert state.tasks[first.vendor_task_id].state == "processing"
            states = [(await p.poll(second)).meta["state"] for _ in range(4)]
            assert states == ["created", "queueing", "queueing", "queueing"]
            await p.poll(first)  # first finishes, freeing the slot
            assert [(await p.poll(second)).meta["state"] for _ in range(2)] == ["queueing", "processing"]


class TestCancel:
    async def test_cancel_queued_task(self, provider: ViduProvider, state: FakeViduState) -> None:
        task = await provider.submit(make_req())
        await provider.cancel(task)
        sent = state.requests[-1]
        assert sent["path"] == f"/ent/v2/tasks/{task.vendor_task_id}/cancel"
        assert sent["json"] == {"id": task.vendor_task_id}
        snap = await provider.poll(task)
        assert snap.status is VideoStatus.failed
        assert snap.error_code == "UserCancelled"

    async def test_cancel_running_task_is_rejected(self, provider: ViduProvider) -> None:
        task = await provider.submit(make_req())
        for _ in range(3):
            await provider.poll(task)
        with pytest.raises(Rejected) as exc:
            await provider.cancel(task)
        assert exc.value.vendor_code == "BadRequest"
        assert "can not cancel" in exc.value.message

    async def test_cancel_unknown_task(self, provider: ViduProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.cancel(VendorTask(provider="vidu", vendor_task_id="1"))


class TestFailures:
    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient) -> None:
        p = ViduProvider(client, api_key="vda_wrong", base_url=BASE)
        with pytest.raises(AuthFailed) as exc:
            await p.submit(make_req())
        assert exc.value.vendor_code == "Unauthorized"
        assert exc.value.status_code == 401
        with pytest.raises(AuthFailed):
            await p.poll(VendorTask(provider="vidu", vendor_task_id="1"))

    async def test_429_is_rate_limited(self, provider: ViduProvider, state: FakeViduState) -> None:
        state.fail = "429"
        with pytest.raises(RateLimited) as exc:
            await provider.submit(make_req())
        assert exc.value.retry_after == 7.0
        assert exc.value.vendor_code == "TooManyRequests"

    @pytest.mark.parametrize(("fault", "code"), [("500", "InternalServiceFailure"), ("html502", "http_502")])
    async def test_server_errors_are_unavailable(
        self, provider: ViduProvider, state: FakeViduState, fault: str, code: str
    ) -> None:
        task = await provider.submit(make_req())
        state.fail = fault
        with pytest.raises(Unavailable) as exc:
            await provider.poll(task)
        assert exc.value.vendor_code == code

    async def test_garbage_json_is_unavailable(self, provider: ViduProvider, state: FakeViduState) -> None:
        state.fail = "garbage"
        with pytest.raises(Unavailable):
            await provider.submit(make_req())

    async def test_http_200_with_error_code(self, provider: ViduProvider, state: FakeViduState) -> None:
        state.fail = "200_error"
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == "CreditInsufficient"
        assert exc.value.message == "insufficient credits"

    async def test_hang_times_out_as_unavailable(self, client: httpx.AsyncClient, state: FakeViduState) -> None:
        state.fail = "hang"
        p = ViduProvider(client, api_key=KEY, base_url=BASE, timeout=0.2)
        with pytest.raises(Unavailable):
            await p.submit(make_req())

    async def test_transport_error_is_unavailable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as c:
            with pytest.raises(Unavailable):
                await ViduProvider(c, api_key=KEY).submit(make_req())

    async def test_vendor_validation_error_is_rejected(self, provider: ViduProvider) -> None:
        # metadata may override resolution; Vidu refuses 1080p for an 8-second vidu1.5 video
        req = make_req(model="vidu1.5", seconds=8, extras={"resolution": "1080p"})
        with pytest.raises(Rejected) as exc:
            await provider.submit(req)
        assert exc.value.vendor_code == "FieldInvalid"
        assert "resolution" in exc.value.message

    async def test_unknown_task_poll(self, provider: ViduProvider) -> None:
        with pytest.raises(NotFoundAtVendor) as exc:
            await provider.poll(VendorTask(provider="vidu", vendor_task_id="42"))
        assert exc.value.vendor_code == "TaskNotFound"

    async def test_expired_result_url(self, provider: ViduProvider, state: FakeViduState) -> None:
        task = await provider.submit(make_req())
        done = (await run_to_end(provider, task))[-1]
        state.expire_files = True
        with pytest.raises(NotFoundAtVendor):
            _ = [c async for c in provider.download(task, done)]


# ---------------------------------------------------------------------------------------------
# the fake itself


class TestFake:
    async def _post(self, client: httpx.AsyncClient, path: str, body: Any, auth: str = f"Token {KEY}") -> Any:
        return await client.post(f"{BASE}/ent/v2/{path}", json=body, headers={"Authorization": auth})

    @pytest.mark.parametrize("auth", [f"Bearer {KEY}", "", "Token nope"])
    async def test_auth_is_exact(self, client: httpx.AsyncClient, auth: str) -> None:
        resp = await self._post(client, "text2video", {"model": "viduq1", "prompt": "x"}, auth=auth)
        assert resp.status_code == 401
        assert resp.json()["reason"] == "Unauthorized"
        assert resp.json()["code"] == 401
        assert resp.json()["metadata"]["trace_id"]

    @pytest.mark.parametrize(
        ("path", "body", "reason"),
        [
            ("text2video", {"prompt": "x"}, "FieldLacking"),
            ("text2video", {"model": "viduq1"}, "FieldLacking"),
            ("text2video", {"model": "sora", "prompt": "x"}, "FieldInvalid"),
            ("text2video", {"model": "vidu2.0", "prompt": "x"}, "FieldInvalid"),
            ("text2video", {"model": "vidu1.5", "prompt": "x", "duration": 5}, "FieldInvalid"),
            ("text2video", {"model": "vidu1.5", "prompt": "x", "duration": 8, "resolution": "1080p"},
             "FieldInvalid"),
            ("text2video", {"model": "viduq1", "prompt": "x", "aspect_ratio": "4:3"}, "FieldInvalid"),
            ("img2video", {"model": "viduq1", "images": []}, "FieldItemCountOutOfRange"),
            ("start-end2video", {"model": "viduq1", "images": ["https://a"]}, "FieldItemCountOutOfRange"),
            ("img2video", {"model": "viduq1", "images": ["ftp://a"]}, "FieldInvalid"),
            ("img2video", {"model": "viduq1", "images": ["data:image/png;base64,@@@"]}, "ImageFormatInvalid"),
            ("img2video", {"model": "viduq1", "images": ["https://a/1.png"], "bgm": "true"}, "FieldInvalid"),
            ("start-end2video", {"model": "viduq2-pro", "images": ["https://a", "https://b"], "duration": 10},
             "FieldInvalid"),
        ],
    )  # fmt: skip
    async def test_validation(self, client: httpx.AsyncClient, path: str, body: dict[str, Any], reason: str) -> None:
        resp = await self._post(client, path, body)
        assert resp.status_code == 400
        assert resp.json()["reason"] == reason

    async def test_create_echo_applies_defaults(self, client: httpx.AsyncClient) -> None:
        resp = await self._post(client, "img2video", {"model": "vidu1.5", "images": ["https://a/1.png"]})
        body = resp.json()
        assert resp.status_code == 200
        assert body["state"] == "created"
        assert body["task_id"].isdigit()
        assert (body["duration"], body["resolution"], body["movement_amplitude"]) == (4, "360p", "auto")
        assert body["seed"] > 0
        assert body["created_at"].endswith("Z")
        assert "." in body["created_at"]

    async def test_cancel_accepts_an_empty_body(self, client: httpx.AsyncClient) -> None:
        task_id = (await self._post(client, "text2video", {"model": "viduq1", "prompt": "x"})).json()["task_id"]
        resp = await client.post(f"{BASE}/ent/v2/tasks/{task_id}/cancel", headers={"Authorization": f"Token {KEY}"})
        assert resp.status_code == 200
        assert resp.json() == {}

    def test_signing_string_matches_the_docs_worked_example(self) -> None:
        date = "Tue, 06 May 2025 12:09:42 GMT"
        nonce = "123e4567-e89b-12d3-a456-426614174000"
        text = signing_string(
            "post",
            "http://127.0.0.1:8080/vidu/callback?name=james&age=36",
            date,
            [("Date", date), ("x-request-nonce", nonce)],
        )
        assert text == (
            "POST\n/vidu/callback\nname=james&age=36\nvidu\nTue, 06 May 2025 12:09:42 GMT\n"
            "Date:Tue, 06 May 2025 12:09:42 GMT\nx-request-nonce:123e4567-e89b-12d3-a456-426614174000\n"
        )

    async def test_callbacks_are_signed_and_retried(self) -> None:
        received: list[httpx.Request] = []

        def receiver(request: httpx.Request) -> httpx.Response:
            received.append(request)
            body = json.loads(request.content)
            return httpx.Response(500 if body["state"] == "success" else 200)

        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as hooks:
            app, state = make_app(api_key=KEY, callback_client=hooks)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
                p = ViduProvider(c, api_key=KEY, base_url=BASE)
                task = await p.submit(make_req(extras={"callback_url": "https://hooks.example.com/cb?x=1"}))
                await run_to_end(p, task)
        states = [json.loads(r.content)["state"] for r in received]
        assert states == ["processing"] + ["success"] * 4  # first try + 3 retries on a failing receiver
        first = received[0]
        signed = [(h, first.headers[h]) for h in first.headers["X-HMAC-SIGNED-HEADERS"].split(";")]
        expected = sign(KEY, signing_string("POST", str(first.url), first.headers["Date"], signed))
        assert first.headers["X-HMAC-SIGNATURE"] == expected
        assert first.headers["X-HMAC-ACCESS-KEY"] == "vidu"
        assert json.loads(first.content)["payload"] == "video_abc"
        assert len(state.callbacks) == 5
