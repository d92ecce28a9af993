"""The OpenAI-format upstream adapter: pure mapping tables, golden wire bodies, and the fake upstream."""

from __future__ import annotations

import asyncio
import email.utils
import io
import logging
import socket
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from openai import AsyncOpenAI
from PIL import Image

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
from app.providers.openai_compat import (
    DEFAULT_BASE_URL,
    MODELS,
    STATUS,
    OpenAICompatProvider,
    build_body,
    form_fields,
    map_error,
    model_caps,
    retry_after,
    snapshot,
)
from app.providers.vendors import VENDORS
from tests.fakes.openai_upstream import FakeState, make_app, sample_image, sample_mp4

pytestmark = pytest.mark.engine  # these tests watch videos finish

KEY = "sk-upstream-test"
BASE = "http://upstream.test/v1"


def make_req(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "video_local1",
        "model": "sora-2",
        "prompt": "A calico cat playing a piano on stage",
        "width": 1280,
        "height": 720,
        "seconds": 8,
    }
    return GenerationRequest(**(fields | overrides))


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def source(vendor_id: str) -> VendorTask:
    return VendorTask("openai_compat", vendor_id)


async def collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in stream]


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
def provider(client: httpx.AsyncClient) -> OpenAICompatProvider:
    return OpenAICompatProvider(client, api_key=KEY, base_url=BASE)


async def finish(provider: OpenAICompatProvider, task: VendorTask) -> list[TaskSnapshot]:
    snaps = [await provider.poll(task)]
    while snaps[-1].status not in (VideoStatus.completed, VideoStatus.failed):
        snaps.append(await provider.poll(task))
        assert len(snaps) < 10
    return snaps


# ---------------------------------------------------------------------------------------------
# Tables


class TestModels:
    def test_names_and_constants(self) -> None:
        assert [m.name for m in MODELS] == [
            "sora-2",
            "sora-2-pro",
            "sora-2-2025-10-06",
            "sora-2-pro-2025-10-06",
            "sora-2-2025-12-08",
        ]
        assert DEFAULT_BASE_URL == "https://api.openai.com/v1"
        assert VENDORS["openai_compat"].image_transport == "either"

    def test_sizes_seconds_and_flags(self) -> None:
        base = ((720, 1280), (1280, 720), (1024, 1792), (1792, 1024))
        for caps in MODELS:
            assert caps.provider == "openai_compat"
            expected = (*base, (1920, 1080), (1080, 1920)) if "pro" in caps.name else base
            assert caps.sizes == expected
            assert caps.seconds == (4, 8, 12, 16, 20)
            assert caps.default_size in caps.sizes
            assert caps.default_size == (720, 1280)
            assert caps.default_seconds == 4
            assert (caps.image, caps.last_frame) == ("optional", False)
            assert caps.remix
            assert caps.edit
            assert caps.extend
            assert caps.max_total_seconds == 120

    def test_operator_models_get_the_sora2_table(self, client: httpx.AsyncClient) -> None:
        p = OpenAICompatProvider(client, api_key=KEY, base_url=BASE, models=("wan2.5-t2v", "sora-2-pro"))
        relay, pro = p.models
        assert relay.name == "wan2.5-t2v"
        assert relay.provider == "openai_compat"
        assert relay.sizes == MODELS[0].sizes
        assert relay.seconds == MODELS[0].seconds
        assert pro is MODELS[1]
        assert model_caps(["a", "a"])[0].name == "a"
        assert len(model_caps(["a", "a"])) == 1
        assert OpenAICompatProvider(client, api_key=KEY).models == MODELS

    def test_satisfies_the_protocol(self, provider: OpenAICompatProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert provider.name == "openai_compat"
        assert OpenAICompatProvider(provider._client, api_key=KEY, base_url=BASE + "/").base_url == BASE


class TestStatus:
    @pytest.mark.parametrize(
        ("spelling", "expected"),
        [
            ("queued", VideoStatus.queued),
            ("pending", VideoStatus.queued),
            ("submitted", VideoStatus.queued),
            ("in_progress", VideoStatus.in_progress),
            ("processing", VideoStatus.in_progress),
            ("running", VideoStatus.in_progress),
            ("completed", VideoStatus.completed),
            ("succeeded", VideoStatus.completed),
            ("success", VideoStatus.completed),
            ("SUCCESS", VideoStatus.completed),
            ("failed", VideoStatus.failed),
            ("failure", VideoStatus.failed),
            ("cancelled", VideoStatus.failed),
            ("canceled", VideoStatus.failed),
            ("expired", VideoStatus.failed),
        ],
    )
    def test_every_spelling(self, spelling: str, expected: VideoStatus) -> None:
        assert snapshot({"id": "v", "status": spelling}).status is expected
        assert STATUS[spelling.lower()] is expected

    @pytest.mark.parametrize("spelling", ["rendering", "", None])
    def test_unknown_stays_in_progress_and_warns(self, spelling: Any, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, "vidgate.providers.openai_compat"):
            snap = snapshot({"id": "v", "status": spelling})
        assert snap.status is VideoStatus.in_progress
        assert snap.error_code is None
        assert "unknown upstream status" in caplog.text


class TestSnapshot:
    def test_progress_and_creation_time_imply_the_time_left(self) -> None:
        # a quarter done after 30 s: the other three quarters take about 90 s more
        snap = snapshot({"status": "in_progress", "progress": 25, "created_at": 1000}, now=1030.0)
        assert snap.eta == pytest.approx(90.0)
        # no estimate without a reported progress strictly between 0 and 100, or a usable creation time
        for raw in (
            {"status": "in_progress", "created_at": 1000},
            {"status": "queued", "progress": 0, "created_at": 1000},
            {"status": "in_progress", "progress": 25},
            {"status": "in_progress", "progress": 25, "created_at": 2000},
            {"status": "completed", "progress": 99, "created_at": 1000},
        ):
            assert snapshot(raw, now=1030.0).eta is None, raw

    def test_completed_reports_what_was_produced(self) -> None:
        raw = {
            "id": "video_1",
            "status": "completed",
            "progress": 97,
            "seconds": "8",
            "size": "1792x1024",
            "expires_at": 1712784100,
            "url": "https://cdn.example/v.mp4",
            "error": None,
        }
        snap = snapshot(raw)
        assert (snap.status, snap.progress, snap.seconds, snap.width, snap.height) == (
            VideoStatus.completed,
            100,
            8,
            1792,
            1024,
        )
        assert snap.meta == {"url": "https://cdn.example/v.mp4", "expires_at": 1712784100}
        assert snap.error_code is None
        assert snap.video_url is None

    @pytest.mark.parametrize(
        ("raw", "progress"),
        [
            ({"status": "queued"}, 0),
            ({"status": "in_progress"}, 50),
            ({"status": "in_progress", "progress": 33}, 33),
            ({"status": "processing", "progress": "40%"}, 40),
            ({"status": "processing", "progress": 140}, 100),
            ({"status": "pending", "progress": "soon"}, 0),
        ],
    )
    def test_progress(self, raw: dict[str, Any], progress: int) -> None:
        assert snapshot(raw).progress == progress

    @pytest.mark.parametrize(
        ("raw", "code", "message"),
        [
            (
                {"status": "failed", "error": {"code": "moderation_blocked", "message": "Blocked."}},
                "moderation_blocked",
                "Blocked.",
            ),
            ({"status": "failed", "error": {"type": "server_error", "message": "Boom"}}, "server_error", "Boom"),
            ({"status": "failed", "error": "exploded"}, "generation_failed", "exploded"),
            ({"status": "failed", "error": None}, "generation_failed", "The upstream reported the video as failed."),
            ({"status": "cancelled"}, "cancelled", "The upstream reported the video as cancelled."),
            ({"status": "canceled"}, "cancelled", "The upstream reported the video as canceled."),
            ({"status": "expired"}, "expired", "The upstream reported the video as expired."),
        ],
    )
    def test_failures_are_in_band(self, raw: dict[str, Any], code: str, message: str) -> None:
        snap = snapshot(raw)
        assert (snap.status, snap.error_code, snap.error_message) == (VideoStatus.failed, code, message)

    @pytest.mark.parametrize(
        ("size", "seconds", "expected"),
        [
            ("1920*1080", 5, (5, 1920, 1080)),
            ("1024x1808", "8.0", (8, 1024, 1808)),
            ("720P", "12s", (12, None, None)),
            (None, None, (None, None, None)),
        ],
    )
    def test_relay_sizes_and_seconds(self, size: Any, seconds: Any, expected: tuple[Any, ...]) -> None:
        snap = snapshot({"status": "succeeded", "size": size, "seconds": seconds})
        assert (snap.seconds, snap.width, snap.height) == expected


class TestBuildBody:
    def test_t2v(self) -> None:
        body = build_body(make_req())
        assert body == {
            "prompt": "A calico cat playing a piano on stage",
            "model": "sora-2",
            "seconds": "8",
            "size": "1280x720",
        }
        assert form_fields(body) == [
            ("prompt", "A calico cat playing a piano on stage"),
            ("model", "sora-2"),
            ("seconds", "8"),
            ("size", "1280x720"),
        ]

    def test_i2v_bytes_travel_as_a_file_not_in_the_body(self) -> None:
        req = make_req(image=ImageInput(data=b"png", mime="image/png", url="https://vidgate/signed.png"))
        assert "input_reference" not in build_body(req)

    def test_i2v_url(self) -> None:
        body = build_body(make_req(image=ImageInput(url="https://example.com/a.png")))
        assert body["input_reference"] == {"image_url": "https://example.com/a.png"}
        assert ("input_reference[image_url]", "https://example.com/a.png") in form_fields(body)

    def test_metadata_as_bracket_fields_never_overriding(self) -> None:
        extras = {
            "watermark": True,
            "duration": 10,
            "model": "evil",
            "nested": {"y": 1},
            "arr": ["a", "b"],
            "sandbox_fail": "x",
            "none": None,
        }
        body = build_body(make_req(extras=extras))
        assert body["model"] == "sora-2"
        assert form_fields(body)[4:] == [
            ("metadata[watermark]", "true"),
            ("metadata[duration]", "10"),
            ("metadata[model]", "evil"),
            ("metadata[nested][y]", "1"),
            ("metadata[arr][]", "a"),
            ("metadata[arr][]", "b"),
        ]

    def test_remix_edit_extend(self) -> None:
        src = source("video_up1")
        assert build_body(make_req(operation="remix", prompt="again", source=src)) == {"prompt": "again"}
        assert build_body(make_req(operation="edit", prompt="edit", source=src)) == {
            "prompt": "edit",
            "video": {"id": "video_up1"},
        }
        ext = build_body(make_req(operation="extend", prompt="more", seconds=4, source=src, source_seconds=8))
        assert ext == {"prompt": "more", "seconds": "4", "video": {"id": "video_up1"}}
        assert form_fields(ext) == [("prompt", "more"), ("seconds", "4"), ("video[id]", "video_up1")]

    def test_edit_of_a_foreign_source_names_the_model_for_an_upload(self) -> None:
        body = build_body(make_req(operation="edit", prompt="e", source=VendorTask("kling", "k1")))
        assert body == {"prompt": "e", "model": "sora-2"}


class TestMapError:
    @pytest.mark.parametrize(
        ("status", "body", "kind", "code"),
        [
            (
                400,
                {
                    "error": {
                        "message": "m",
                        "type": "invalid_request_error",
                        "param": "seconds",
                        "code": "invalid_value",
                    }
                },
                Rejected,
                "invalid_value",
            ),
            (
                400,
                {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}},
                Rejected,
                "invalid_request_error",
            ),
            (
                401,
                {"error": {"message": "m", "type": "invalid_request_error", "code": "invalid_api_key"}},
                AuthFailed,
                "invalid_api_key",
            ),
            (
                403,
                {"error": {"message": "m", "type": "permission_error", "code": "insufficient_permissions"}},
                AuthFailed,
                "insufficient_permissions",
            ),
            (
                404,
                {"error": {"message": "m", "type": "invalid_request_error"}},
                NotFoundAtVendor,
                "invalid_request_error",
            ),
            (
                429,
                {"error": {"message": "m", "type": "requests", "code": "rate_limit_exceeded"}},
                RateLimited,
                "rate_limit_exceeded",
            ),
            (
                429,
                {"error": {"message": "m", "type": "insufficient_quota", "code": "insufficient_quota"}},
                Rejected,
                "insufficient_quota",
            ),
            (
                500,
                {"error": {"message": "m", "type": "server_error", "code": "internal_error"}},
                Unavailable,
                "internal_error",
            ),
            (502, "<html>Bad Gateway</html>", Unavailable, "http_502"),
            (503, None, Unavailable, "http_503"),
            (408, {}, Unavailable, "http_408"),
            (409, {}, Unavailable, "http_409"),
            (413, "too big", Rejected, "http_413"),
            (422, {"detail": "bad"}, Rejected, "http_422"),
            (400, {"error": "plain string"}, Rejected, "http_400"),
            (400, {"code": "invalid_parameter", "message": "relay shape"}, Rejected, "invalid_parameter"),
            (
                200,
                {"error": {"message": "Blocked", "type": "invalid_request_error", "code": "moderation_blocked"}},
                Rejected,
                "moderation_blocked",
            ),
            (
                200,
                {"error": {"message": "slow", "type": "rate_limit_error", "code": "rate_limit_exceeded"}},
                RateLimited,
                "rate_limit_exceeded",
            ),
            (
                200,
                {"error": {"message": "key", "type": "authentication_error", "code": "invalid_api_key"}},
                AuthFailed,
                "invalid_api_key",
            ),
            (200, {"error": {"message": "oops", "type": "server_error"}}, Unavailable, "server_error"),
            (200, {"error": {}}, Unavailable, "http_200"),
        ],
    )
    def test_table(self, status: int, body: Any, kind: type[ProviderError], code: str) -> None:
        err = map_error(status, body, retry_after=3.0)
        assert type(err) is kind
        assert err.vendor_code == code
        assert err.provider == "openai_compat"
        assert err.status_code == status
        assert err.message
        assert err.retry_after == (3.0 if kind is RateLimited else None)

    def test_keeps_the_vendor_message(self) -> None:
        err = map_error(400, {"error": {"message": "Inpaint image must match the requested width and height"}})
        assert err.message == "Inpaint image must match the requested width and height"

    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
            ({"retry-after": "7"}, 7.0),
            ({"retry-after": "soon"}, None),
            ({"retry-after-ms": "x", "retry-after": "2"}, 2.0),
            ({}, None),
        ],
    )
    def test_retry_after(self, headers: dict[str, str], expected: float | None) -> None:
        assert retry_after(httpx.Headers(headers)) == expected

    def test_retry_after_http_date(self) -> None:
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        value = retry_after(httpx.Headers({"retry-after": when}))
        assert value is not None
        assert 25 <= value <= 31


# ---------------------------------------------------------------------------------------------
# Against the fake upstream


class TestCreateAndPoll:
    async def test_t2v_walks_every_state_and_downloads(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        sent = state.last("/v1/videos")
        assert sent.encoding == "multipart"
        assert sent.files == []
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.fields == [
            ("prompt", "A calico cat playing a piano on stage"),
            ("model", "sora-2"),
            ("seconds", "8"),
            ("size", "1280x720"),
        ]
        assert task.provider == "openai_compat"
        assert task.vendor_task_id in state.tasks
        assert task.meta == {"operation": "create", "model": "sora-2"}

        snaps = await finish(provider, task)
        assert [s.status for s in snaps] == [VideoStatus.queued, VideoStatus.in_progress, VideoStatus.completed]
        assert [s.progress for s in snaps] == [0, 50, 100]
        assert [s.poll_after for s in snaps] == [1.5, 1.5, None]
        done = snaps[-1]
        assert (done.seconds, done.width, done.height) == (8, 1280, 720)
        assert done.video_url == f"{BASE}/videos/{task.vendor_task_id}/content"

        provider.chunk_size = 256
        chunks = await collect(provider.download(task, done))
        assert b"".join(chunks) == sample_mp4()
        assert len(chunks) > 1
        assert state.last("/content").headers["accept"] == "application/binary"

    async def test_i2v_bytes_are_a_file_part(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        image = png(1280, 720)
        await provider.submit(make_req(image=ImageInput(data=image, mime="image/png")))
        sent = state.last("/v1/videos")
        assert sent.files == [("input_reference", "reference.png", "image/png", image)]
        assert [name for name, _ in sent.fields] == ["prompt", "model", "seconds", "size"]

    async def test_i2v_url_is_a_bracket_field(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        await provider.submit(make_req(image=ImageInput(url="https://example.com/a.png")))
        sent = state.last("/v1/videos")
        assert sent.files == []
        assert sent.body["input_reference"] == {"image_url": "https://example.com/a.png"}

    async def test_wire_matches_the_openai_sdk(
        self, fake: tuple[Any, FakeState], provider: OpenAICompatProvider
    ) -> None:
        app, state = fake
        extras = {"watermark": True, "duration": 10, "nested": {"y": 1}}
        await provider.submit(make_req(extras=extras, image=ImageInput(data=png(1280, 720), mime="image/png")))
        ours = state.last("/v1/videos")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            sdk = AsyncOpenAI(api_key=KEY, base_url=BASE, http_client=http, max_retries=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await sdk.videos.create(
                    prompt="A calico cat playing a piano on stage",
                    model="sora-2",
                    seconds="8",
                    size="1280x720",
                    input_reference=("reference.png", png(1280, 720), "image/png"),
                    extra_body={"metadata": extras},
                )
        theirs = state.last("/v1/videos")
        assert ours.fields == theirs.fields
        assert ours.files == theirs.files
        assert ours.body["metadata"] == {"watermark": "true", "duration": "10", "nested": {"y": "1"}}

    async def test_relay_variant_201_and_spellings(self) -> None:
        app, state = make_app(
            api_key=KEY,
            create_status=201,
            include_url=True,
            spellings={"queued": "pending", "in_progress": "processing", "completed": "succeeded"},
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            p = OpenAICompatProvider(c, api_key=KEY, base_url=BASE)
            task = await p.submit(make_req())
            snaps = await finish(p, task)
            assert [s.status for s in snaps] == [VideoStatus.queued, VideoStatus.in_progress, VideoStatus.completed]
            assert snaps[-1].meta["url"] == f"http://upstream.test/cdn/{task.vendor_task_id}.mp4"
            assert b"".join(await collect(p.download(task, snaps[-1]))) == sample_mp4()

    async def test_operator_model_names_reach_the_relay(self) -> None:
        app, state = make_app(api_key=KEY, models={"wan2.5-t2v-preview": ("1280x720",)})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            p = OpenAICompatProvider(c, api_key=KEY, base_url=BASE, models=("wan2.5-t2v-preview",))
            task = await p.submit(make_req(model="wan2.5-t2v-preview"))
            assert state.tasks[task.vendor_task_id]["model"] == "wan2.5-t2v-preview"

    @pytest.mark.parametrize(("outcome", "code"), [("failed", "moderation_blocked"), ("cancelled", "cancelled")])
    async def test_failed_task_is_a_snapshot_not_an_exception(
        self, provider: OpenAICompatProvider, state: FakeState, outcome: str, code: str
    ) -> None:
        state.outcome = outcome
        task = await provider.submit(make_req())
        last = (await finish(provider, task))[-1]
        assert (last.status, last.error_code) == (VideoStatus.failed, code)
        assert last.error_message
        assert last.video_url is None


class TestUpstreamRejections:
    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"width": 1920, "height": 1080}, "invalid_value"),  # pro-only size on sora-2
            ({"model": "sora-3"}, "invalid_value"),
            ({"seconds": 5}, "invalid_value"),
            ({"prompt": ""}, "invalid_value"),
        ],
    )
    async def test_bad_params_are_rejected(
        self, provider: OpenAICompatProvider, overrides: dict[str, Any], code: str
    ) -> None:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_req(**overrides))
        assert info.value.vendor_code == code
        assert info.value.status_code == 400

    async def test_image_must_match_size(self, provider: OpenAICompatProvider) -> None:
        with pytest.raises(Rejected, match="must match the requested width and height"):
            await provider.submit(make_req(image=ImageInput(data=png(64, 64), mime="image/png")))

    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient, state: FakeState) -> None:
        p = OpenAICompatProvider(client, api_key="sk-wrong", base_url=BASE)
        with pytest.raises(AuthFailed) as info:
            await p.submit(make_req())
        assert info.value.vendor_code == "invalid_api_key"
        assert info.value.status_code == 401
        assert state.tasks == {}
        with pytest.raises(AuthFailed):
            await p.poll(source("video_x"))

    async def test_unknown_task_is_not_found(self, provider: OpenAICompatProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(source("video_gone"))


class TestFaults:
    @pytest.mark.parametrize(
        ("fault", "kind", "code", "retry"),
        [
            ("429", RateLimited, "rate_limit_exceeded", 1.5),
            ("429_seconds", RateLimited, "rate_limit_error", 7.0),
            ("quota", Rejected, "insufficient_quota", None),
            ("500", Unavailable, "server_error", None),
            ("502", Unavailable, "http_502", None),
            ("garbage", Unavailable, None, None),
            ("error_200", Rejected, "moderation_blocked", None),
            ("403", AuthFailed, "permission_error", None),
        ],
    )
    async def test_submit_and_poll(
        self,
        provider: OpenAICompatProvider,
        state: FakeState,
        fault: str,
        kind: type[ProviderError],
        code: str | None,
        retry: float | None,
    ) -> None:
        task = await provider.submit(make_req())
        for call in (lambda: provider.submit(make_req()), lambda: provider.poll(task)):
            state.arm(fault)
            with pytest.raises(kind) as info:
                await call()
            assert type(info.value) is kind
            assert info.value.vendor_code == code
            assert info.value.retry_after == retry
        assert len(state.tasks) == 1  # faulted creates left nothing behind

    async def test_download_errors(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        with pytest.raises(Rejected):  # not finished yet: a plain 4xx
            await collect(provider.download(task, TaskSnapshot(status=VideoStatus.completed)))
        await finish(provider, task)
        done = TaskSnapshot(status=VideoStatus.completed)
        for fault, kind in (("500", Unavailable), ("404", NotFoundAtVendor), ("error_200", Rejected)):
            state.arm(fault)
            with pytest.raises(kind):
                await collect(provider.download(task, done))
        with pytest.raises(NotFoundAtVendor):
            await collect(provider.download(source("video_gone"), done))

    async def test_transport_error_is_unavailable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as c:
            p = OpenAICompatProvider(c, api_key=KEY, base_url=BASE)
            with pytest.raises(Unavailable):
                await p.submit(make_req())
            with pytest.raises(Unavailable):
                await p.poll(source("video_1"))
            with pytest.raises(Unavailable):
                await collect(p.download(source("video_1"), TaskSnapshot(status=VideoStatus.completed)))

    async def test_hanging_upstream_times_out(self) -> None:
        app, state = make_app(api_key=KEY)
        state.hang_seconds = 0.6
        sock = socket.create_server(("127.0.0.1", 0))  # listening already, so no wait for startup
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with httpx.AsyncClient(timeout=0.2) as c:
                p = OpenAICompatProvider(c, api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1")
                assert (await p.submit(make_req())).vendor_task_id in state.tasks
                state.arm("hang")
                started = time.monotonic()
                with pytest.raises(Unavailable, match="Timeout"):
                    await p.submit(make_req())
                assert time.monotonic() - started < 0.5
        finally:
            server.should_exit = True
            await serving


class TestDerivedVideos:
    async def completed(self, provider: OpenAICompatProvider) -> VendorTask:
        task = await provider.submit(make_req())
        await finish(provider, task)
        return task

    async def test_remix(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        src = await self.completed(provider)
        task = await provider.submit(make_req(operation="remix", prompt="again", source=src))
        sent = state.last("/remix")
        assert sent.path == f"/v1/videos/{src.vendor_task_id}/remix"
        assert (sent.encoding, sent.body) == ("json", {"prompt": "again"})
        assert state.tasks[task.vendor_task_id]["remixed_from"] == src.vendor_task_id
        assert task.meta["operation"] == "remix"

    async def test_edit(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        src = await self.completed(provider)
        task = await provider.submit(make_req(operation="edit", prompt="make it night", source=src))
        sent = state.last("/v1/videos/edits")
        assert sent.fields == [("prompt", "make it night"), ("video[id]", src.vendor_task_id)]
        assert (await finish(provider, task))[-1].status is VideoStatus.completed

    async def test_extend_reports_the_stitched_total(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        src = await self.completed(provider)
        req = make_req(operation="extend", prompt="and then", seconds=12, source=src, source_seconds=8)
        task = await provider.submit(req)
        assert state.last("/v1/videos/extensions").fields == [
            ("prompt", "and then"),
            ("seconds", "12"),
            ("video[id]", src.vendor_task_id),
        ]
        assert (await finish(provider, task))[-1].seconds == 20

    async def test_edit_uploads_a_foreign_source(
        self, provider: OpenAICompatProvider, state: FakeState, tmp_path: Path
    ) -> None:
        clip = tmp_path / "source.mp4"
        clip.write_bytes(sample_mp4())
        req = make_req(operation="edit", prompt="e", source=VendorTask("kling", "k1"), source_video=clip)
        await provider.submit(req)
        sent = state.last("/v1/videos/edits")
        assert sent.fields == [("prompt", "e"), ("model", "sora-2")]
        assert sent.files == [("video", "source.mp4", "video/mp4", sample_mp4())]

    async def test_missing_source_is_rejected_without_a_request(
        self, provider: OpenAICompatProvider, state: FakeState
    ) -> None:
        for op in ("remix", "edit", "extend"):
            with pytest.raises(Rejected) as info:
                await provider.submit(make_req(operation=op, source=VendorTask("vidu", "1")))
            assert info.value.vendor_code == "missing_source"
        assert state.requests == []

    async def test_unknown_source_is_rejected(self, provider: OpenAICompatProvider) -> None:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_req(operation="remix", prompt="x", source=source("video_gone")))
        assert info.value.status_code == 404


class TestContent:
    async def test_variants(self, provider: OpenAICompatProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        await finish(provider, task)
        thumb = b"".join(await collect(provider.download_variant(task, "thumbnail")))
        assert thumb == sample_image("WEBP")
        assert state.last("/content").query == {"variant": "thumbnail"}
        sprite = b"".join(await collect(provider.download_variant(task, "spritesheet")))
        assert sprite == sample_image("JPEG", (256, 36))
        assert b"".join(await collect(provider.download_variant(task, "video"))) == sample_mp4()
        requests = len(state.requests)
        with pytest.raises(Rejected):
            await collect(provider.download_variant(task, "poster"))
        assert len(state.requests) == requests

    async def test_follows_a_redirect_to_the_asset(self) -> None:
        app, state = make_app(api_key=KEY, content_redirect=True)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            p = OpenAICompatProvider(c, api_key=KEY, base_url=BASE)
            task = await p.submit(make_req())
            done = (await finish(p, task))[-1]
            assert b"".join(await collect(p.download(task, done))) == sample_mp4()
            assert state.requests[-1].path == f"/cdn/{task.vendor_task_id}.mp4"

    async def test_key_never_goes_to_a_foreign_host(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42", headers={"content-type": "video/mp4"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
            p = OpenAICompatProvider(c, api_key=KEY, base_url=BASE)
            foreign = TaskSnapshot(status=VideoStatus.completed, video_url="https://cdn.example/v.mp4")
            await collect(p.download(source("v"), foreign))
            await collect(p.download(source("v"), TaskSnapshot(status=VideoStatus.completed)))
        assert "authorization" not in seen[0].headers
        assert seen[1].headers["authorization"] == f"Bearer {KEY}"
        assert seen[1].url == httpx.URL(f"{BASE}/videos/v/content")

    async def test_upstream_ids_are_quoted_in_paths(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"id": "x", "status": "queued"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
            await OpenAICompatProvider(c, api_key=KEY, base_url=BASE).poll(source("a/../b?c"))
        assert seen[0].url.raw_path == b"/v1/videos/a%2F..%2Fb%3Fc"


async def test_cancel_is_unsupported(provider: OpenAICompatProvider) -> None:
    assert not isinstance(provider, Cancellable)  # the engine skips it
