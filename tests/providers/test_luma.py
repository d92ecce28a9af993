"""Luma adapter: mapping tables, golden request bodies, and the adapter against the fake Luma server."""

from __future__ import annotations

import asyncio
import logging
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
    RateLimited,
    Recoverable,
    Rejected,
    Unavailable,
    Unsupported,
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.capabilities import CapabilityError, SizeSpec
from app.providers.luma import (
    ASPECTS,
    DEFAULT_BASE_URL,
    FAILURES,
    MODELS,
    STATUS,
    LumaProvider,
    aspect_for,
    build_body,
    duration_for,
    error_text,
    failure_code,
    map_error,
    pixels,
    resolution_for,
    snapshot,
    synthetic_progress,
)
from app.providers.vendors import VENDORS
from tests.fakes.luma import API_KEY, FAILURE_REASONS, PREFIX, FakeLumaState, make_app
from tests.support.media import solid_image

BASE = "http://luma.test/dream-machine/v1"
JPEG = solid_image((10, 200, 10), size=(640, 360))
IMG = ImageInput(data=JPEG, mime="image/jpeg", url="https://img.test/first.jpg")
LAST = ImageInput(url="https://img.test/last.jpg")
CALLBACK = "https://vidgate.example.com/callbacks/luma/video_abc/tok123"


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": "ray-2", "prompt": "a red fox in snow"}
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


def _images(request: httpx.Request) -> httpx.Response:
    if request.url.host == "img.test" and request.url.path.endswith(".jpg"):
        return httpx.Response(200, content=JPEG, headers={"content-type": "image/jpeg"})
    return httpx.Response(404)


class _Callbacks:
    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        self.received.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def callbacks() -> _Callbacks:
    return _Callbacks()


@pytest.fixture
def fake(callbacks: _Callbacks) -> tuple[Any, FakeLumaState]:
    return make_app(
        image_client=httpx.AsyncClient(transport=httpx.MockTransport(_images)),
        callback_client=httpx.AsyncClient(transport=httpx.MockTransport(callbacks)),
    )


@pytest.fixture
async def client(fake: tuple[Any, FakeLumaState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=_TimeoutASGI(fake[0])) as c:
        yield c


@pytest.fixture
def state(fake: tuple[Any, FakeLumaState]) -> FakeLumaState:
    return fake[1]


@pytest.fixture
def provider(client: httpx.AsyncClient) -> LumaProvider:
    return LumaProvider(client, api_key=API_KEY, base_url=BASE, timeout=2.0)


async def run_to_end(provider: LumaProvider, task: VendorTask, limit: int = 10) -> list[Any]:
    snaps = []
    for _ in range(limit):
        snap = await provider.poll(task)
        snaps.append(snap)
        if snap.status in {VideoStatus.completed, VideoStatus.failed}:
            break
    return snaps


# ---------------------------------------------------------------------------------------------
# the VendorSpec row and the capability table


class TestSpec:
    def test_row(self) -> None:
        spec = VENDORS["luma"]
        assert spec.title == "Luma Dream Machine"
        assert spec.image_transport == "url"
        assert spec.credential_fields == ("api_key",)
        assert spec.base_url == DEFAULT_BASE_URL == "https://api.lumalabs.ai/dream-machine/v1"
        assert spec.callback is not None and spec.callback.scheme == "token"
        assert spec.env_names() == ["VIDGATE_LUMA_API_KEY", "VIDGATE_LUMA_BASE_URL"]
        assert {c.name for c in spec.model_caps()} == {"ray-2", "ray-flash-2", "ray-1-6"}

    @pytest.mark.parametrize(
        "base",
        ["https://api.lumalabs.ai", "https://api.lumalabs.ai/", DEFAULT_BASE_URL, DEFAULT_BASE_URL + "/"],
    )
    def test_base_url_with_or_without_the_api_prefix(self, base: str) -> None:
        p = LumaProvider(httpx.AsyncClient(), api_key="k", base_url=base)
        assert p.base_url == DEFAULT_BASE_URL

    def test_caps(self) -> None:
        caps = {c.name: c for c in MODELS}
        for name in ("ray-2", "ray-flash-2"):
            assert caps[name].seconds == (5, 9)
            assert len(caps[name].sizes) == 7 * 4
            assert (1280, 720) in caps[name].sizes and (3840, 2160) in caps[name].sizes
        assert caps["ray-1-6"].seconds == (5,)
        assert all(min(s) == 720 for s in caps["ray-1-6"].sizes)
        for c in MODELS:
            assert c.default_size == (1280, 720) and c.default_seconds == 5
            assert c.last_frame and c.extend and not c.remix and not c.audio
            assert c.image == "optional"
            assert {"loop", "concepts", "callback_url"} <= c.extras

    def test_nearest_and_strict(self) -> None:
        ray2 = next(c for c in MODELS if c.name == "ray-2")
        assert ray2.resolve_seconds(4, "nearest") == 5
        assert ray2.resolve_seconds(8, "nearest") == 9
        assert ray2.resolve_seconds(10, "nearest") == 9
        with pytest.raises(CapabilityError) as exc:
            ray2.resolve_seconds(8, "strict")
        assert "5, 9" in exc.value.message
        assert ray2.resolve_size(SizeSpec(1000, 1000), "nearest") == (1080, 1080)
        with pytest.raises(CapabilityError):
            ray2.resolve_size(SizeSpec(1000, 1000), "strict")


# ---------------------------------------------------------------------------------------------
# pure mapping


class TestMapping:
    @pytest.mark.parametrize(
        ("size", "aspect", "resolution"),
        [
            ((1280, 720), "16:9", "720p"),
            ((720, 1280), "9:16", "720p"),
            ((1920, 1080), "16:9", "1080p"),
            ((960, 540), "16:9", "540p"),
            ((1080, 1080), "1:1", "1080p"),
            ((960, 720), "4:3", "720p"),
            ((720, 960), "3:4", "720p"),
            ((1680, 720), "21:9", "720p"),
            ((720, 1680), "9:21", "720p"),
            ((3840, 2160), "16:9", "4k"),
        ],
    )
    def test_size_to_aspect_and_resolution(self, size: tuple[int, int], aspect: str, resolution: str) -> None:
        assert aspect_for(*size) == aspect
        assert resolution_for(*size) == resolution

    def test_every_catalog_size_maps_back_to_itself(self) -> None:
        for caps in MODELS:
            for w, h in caps.sizes:
                ar = aspect_for(w, h)
                assert ar in ASPECTS
                assert pixels(min(w, h), ar) == (w, h)

    @pytest.mark.parametrize(("seconds", "duration"), [(5, "5s"), (9, "9s"), (4, "5s"), (8, "9s"), (10, "9s")])
    def test_seconds_to_duration(self, seconds: int, duration: str) -> None:
        assert duration_for(seconds) == duration


class TestGoldenBodies:
    def test_text_to_video(self) -> None:
        assert build_body(make_req()) == {
            "model": "ray-2",
            "prompt": "a red fox in snow",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "duration": "5s",
        }

    def test_image_to_video_with_end_frame(self) -> None:
        body = build_body(make_req(model="ray-flash-2", width=720, height=1280, seconds=9, image=IMG, last_frame=LAST))
        assert body == {
            "model": "ray-flash-2",
            "prompt": "a red fox in snow",
            "aspect_ratio": "9:16",
            "resolution": "720p",
            "duration": "9s",
            "keyframes": {
                "frame0": {"type": "image", "url": "https://img.test/first.jpg"},
                "frame1": {"type": "image", "url": "https://img.test/last.jpg"},
            },
        }

    def test_uploaded_bytes_without_a_url_are_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(image=ImageInput(data=JPEG, mime="image/jpeg")))
        assert exc.value.vendor_code == "image_url_required"
        assert "VIDGATE_PUBLIC_BASE_URL" in exc.value.message

    def test_legacy_model_sends_no_resolution_or_duration(self) -> None:
        assert build_body(make_req(model="ray-1-6")) == {
            "model": "ray-1-6",
            "prompt": "a red fox in snow",
            "aspect_ratio": "16:9",
        }
        with pytest.raises(Rejected):
            build_body(make_req(model="ray-1-6", extras={"concepts": ["orbit_left"]}))

    def test_extras(self) -> None:
        extras = {
            "loop": "true",
            "concepts": '["dolly_zoom", {"key": "orbit_left"}]',
            "callback_url": CALLBACK,
            "model": "ray-1-6",  # never overrides the model
            "prompt": "something else",  # nor the prompt
            "resolution": "4k",  # nor what size/seconds mapped to
            "aspect_ratio": "1:1",
            "api_key": "stolen",
            "user": "client-tag",  # the client's own metadata stays out of the body
        }
        body = build_body(make_req(extras=extras))
        assert body == {
            "model": "ray-2",
            "prompt": "a red fox in snow",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "duration": "5s",
            "loop": True,
            "concepts": [{"key": "dolly_zoom"}, {"key": "orbit_left"}],
            "callback_url": CALLBACK,
        }
        assert build_body(make_req(extras={"concepts": "handheld, orbit_left"}))["concepts"] == [
            {"key": "handheld"},
            {"key": "orbit_left"},
        ]
        assert build_body(make_req(extras={"loop": False}))["loop"] is False

    @pytest.mark.parametrize(
        "extras",
        [
            {"loop": "maybe"},
            {"concepts": "[not json"},
            {"concepts": [1, 2]},
            {"keyframes": {"frame2": {}}},
            {"keyframes": {"frame1": {"type": "image", "url": "data:image/png;base64,AAAA"}}},
            {"keyframes": {"frame1": {"type": "generation"}}},
        ],
    )
    def test_bad_metadata_is_rejected(self, extras: dict[str, Any]) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(extras=extras))
        assert exc.value.vendor_code == "invalid_metadata"

    def test_metadata_keyframes_fill_only_missing_frames(self) -> None:
        gen = {"type": "generation", "id": "3ce343aa-5746-4ab3-b167-4e29f83d3f42"}
        body = build_body(make_req(image=IMG, extras={"keyframes": {"frame0": gen, "frame1": gen}}))
        assert body["keyframes"] == {"frame0": {"type": "image", "url": IMG.url}, "frame1": gen}

    def test_extend_continues_the_source_generation(self) -> None:
        source = VendorTask(provider="luma", vendor_task_id="3ce343aa-5746-4ab3-b167-4e29f83d3f42")
        body = build_body(make_req(operation="extend", source=source, seconds=9, image=IMG))
        assert body["keyframes"] == {"frame0": {"type": "generation", "id": source.vendor_task_id}}
        assert body["duration"] == "9s"

    def test_extend_needs_a_luma_source_and_remix_is_unsupported(self) -> None:
        with pytest.raises(Unsupported):
            build_body(make_req(operation="extend"))
        with pytest.raises(Unsupported):
            build_body(make_req(operation="extend", source=VendorTask(provider="kling", vendor_task_id="x")))
        with pytest.raises(Unsupported):
            build_body(make_req(operation="remix"))

    def test_empty_prompt_is_left_out(self) -> None:
        assert "prompt" not in build_body(make_req(prompt="", image=IMG))


# ---------------------------------------------------------------------------------------------
# status and errors


def _gen(state: str, **kw: Any) -> dict[str, Any]:
    return {"id": "g1", "state": state, "created_at": "2026-01-01T00:00:00.000000Z", **kw}


T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class TestStatus:
    def test_every_state(self) -> None:
        assert STATUS == {
            "queued": VideoStatus.queued,
            "dreaming": VideoStatus.in_progress,
            "completed": VideoStatus.completed,
            "failed": VideoStatus.failed,
        }

    def test_pending(self) -> None:
        queued = snapshot(_gen("queued"), now=T0 + 5)
        assert (queued.status, queued.progress) == (VideoStatus.queued, 0)
        dreaming = snapshot(_gen("dreaming", assets={"progress_video": "https://x/p.mp4"}), now=T0 + 90)
        assert dreaming.status is VideoStatus.in_progress
        assert 50 <= (dreaming.progress or 0) <= 60
        assert dreaming.video_url is None

    def test_synthetic_progress_is_monotone_and_bounded(self) -> None:
        created = datetime(2026, 1, 1, tzinfo=UTC)
        seen = [synthetic_progress(VideoStatus.queued, created, T0 + t) for t in range(0, 300, 10)]
        seen += [synthetic_progress(VideoStatus.in_progress, created, T0 + t) for t in range(0, 3600, 30)]
        seen.append(synthetic_progress(VideoStatus.completed, created, T0))
        assert seen == sorted(seen)
        assert seen[0] == 0 and max(seen[:-1]) <= 99 and seen[-1] == 100
        assert synthetic_progress(VideoStatus.in_progress, None, T0) == 10

    def test_completed(self) -> None:
        snap = snapshot(_gen("completed", assets={"video": "https://cdn/v.mp4", "image": "https://cdn/t.jpg"}))
        assert snap.status is VideoStatus.completed
        assert (snap.progress, snap.video_url, snap.has_audio) == (100, "https://cdn/v.mp4", False)
        assert snap.meta["thumbnail_url"] == "https://cdn/t.jpg"

    def test_completed_without_video_is_a_failure(self) -> None:
        snap = snapshot(_gen("completed", assets={"image": "https://cdn/t.jpg"}))
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "no_output")

    @pytest.mark.parametrize("reason", FAILURE_REASONS)
    def test_every_documented_failure_reason(self, reason: str) -> None:
        snap = snapshot(_gen("failed", failure_reason=reason))
        assert snap.status is VideoStatus.failed
        assert snap.error_message == reason
        assert snap.error_code == FAILURES[reason.lower()]

    @pytest.mark.parametrize(
        ("reason", "code"),
        [
            ("Contains blacklisted words", "moderation_blocked"),
            ("Frame moderation failed.", "moderation_blocked"),
            ("Prompt processing failed", "prompt_processing_failed"),
            ("Job failed", "generation_failed"),
            ("Something new", "generation_failed"),
            ("New NSFW filter tripped", "moderation_blocked"),
            (None, "generation_failed"),
        ],
    )
    def test_failure_codes(self, reason: str | None, code: str) -> None:
        assert failure_code(reason) == code

    def test_unknown_state_keeps_polling(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            snap = snapshot(_gen("upscaling"))
        assert snap.status is VideoStatus.in_progress
        assert "upscaling" in caplog.text


class TestErrors:
    @pytest.mark.parametrize(
        ("http", "body", "cls", "code"),
        [
            (401, {"detail": "Invalid API key is provided"}, AuthFailed, "invalid_api_key"),
            (403, {"detail": "Forbidden"}, AuthFailed, "http_403"),
            (402, {"detail": "402: Insufficient credits"}, Rejected, "insufficient_quota"),
            (400, {"detail": "400: Insufficient credits to create generation"}, Rejected, "insufficient_quota"),
            (403, {"detail": "Your credit balance is too low"}, Rejected, "insufficient_quota"),
            (429, {"detail": "Too many requests"}, RateLimited, "rate_limited"),
            (429, None, RateLimited, "rate_limited"),
            (400, {"detail": "400: failed to moderate image"}, Rejected, "moderation_blocked"),
            (400, {"detail": "400: Advanced prompt moderation failed"}, Rejected, "moderation_blocked"),
            (400, {"detail": "400: Prompt is required"}, Rejected, "invalid_request"),
            (400, {"detail": "400: concepts are not supported for this model"}, Rejected, "invalid_request"),
            (
                422,
                {"detail": [{"loc": ["body", "aspect_ratio"], "msg": "Input should be '16:9'"}]},
                Rejected,
                "invalid_request",
            ),
            (404, {"detail": "Generation not found"}, NotFoundAtVendor, "not_found"),
            (500, {"detail": "Internal Server Error"}, Unavailable, "http_500"),
            (502, None, Unavailable, "http_502"),
            (503, None, Unavailable, "http_503"),
            (409, None, Unavailable, "http_409"),
        ],
    )
    def test_statuses_and_texts(self, http: int, body: Any, cls: type, code: str) -> None:
        exc = map_error(http, body)
        assert type(exc) is cls
        assert exc.vendor_code == code
        assert exc.status_code == http
        assert not exc.message.startswith(f"{http}:")

    def test_texts(self) -> None:
        assert error_text({"detail": "400: Prompt is required"}) == "Prompt is required"
        assert error_text({"detail": [{"loc": ["body", "duration"], "msg": "bad"}, {"msg": "x"}]}) == "duration: bad; x"
        assert error_text(None) is None
        assert map_error(503, None).message == "Luma answered HTTP 503"

    def test_retry_after_is_kept(self) -> None:
        exc = map_error(429, {"detail": "slow down"}, retry_after=7.0)
        assert exc.retry_after == 7.0


# ---------------------------------------------------------------------------------------------
# the adapter against the fake


class TestLifecycle:
    def test_protocols(self, provider: LumaProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert isinstance(provider, Recoverable)
        assert isinstance(provider, Cancellable)
        assert provider.name == "luma"

    async def test_text_to_video(self, provider: LumaProvider, state: FakeLumaState) -> None:
        req = make_req(width=1920, height=1080, seconds=9)
        task = await provider.submit(req)
        sent = state.requests[0]
        assert (sent["method"], sent["path"]) == ("POST", f"{PREFIX}/generations/video")
        assert sent["json"] == build_body(req)
        assert sent["headers"]["authorization"] == f"Bearer {API_KEY}"
        assert sent["headers"]["content-type"] == "application/json"
        assert task.meta == {"model": "ray-2", "aspect_ratio": "16:9", "resolution": "1080p", "duration": "9s"}
        gen = state.generations[task.vendor_task_id]
        assert gen.request["resolution"] == "1080p"

        snaps = await run_to_end(provider, task)
        assert [s.meta["state"] for s in snaps] == ["queued", "dreaming", "completed"]
        assert [s.status for s in snaps] == [VideoStatus.queued, VideoStatus.in_progress, VideoStatus.completed]
        progress = [s.progress for s in snaps]
        assert progress == sorted(progress) and progress[-1] == 100
        poll = state.requests[1]
        assert (poll["method"], poll["path"]) == ("GET", f"{PREFIX}/generations/{task.vendor_task_id}")
        assert poll["headers"]["authorization"] == f"Bearer {API_KEY}"

        done = snaps[-1]
        chunks = [c async for c in provider.download(task, done)]
        assert b"".join(chunks) == state.asset
        assert len(chunks) > 1  # streamed
        fetch = state.requests[-1]
        assert fetch["path"].startswith("/cdn/")
        assert "authorization" not in fetch["headers"]

    async def test_image_to_video_fetches_the_keyframes(self, provider: LumaProvider, state: FakeLumaState) -> None:
        task = await provider.submit(make_req(image=IMG, last_frame=LAST))
        assert [i["url"] for i in state.images] == [IMG.url, LAST.url]
        assert state.images[0]["size"] == (640, 360)
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    async def test_unreadable_image_is_a_moderation_rejection(self, provider: LumaProvider) -> None:
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req(image=ImageInput(url="https://img.test/missing.png")))
        assert exc.value.vendor_code == "moderation_blocked"
        assert exc.value.message == "failed to moderate image"

    async def test_legacy_model_against_the_fake(self, provider: LumaProvider) -> None:
        task = await provider.submit(make_req(model="ray-1-6", width=720, height=720))
        assert task.meta == {"model": "ray-1-6", "aspect_ratio": "1:1"}

    async def test_extras_reach_the_fake(self, provider: LumaProvider, state: FakeLumaState) -> None:
        await provider.submit(make_req(extras={"loop": True, "concepts": ["dolly_zoom"]}))
        gen = next(iter(state.generations.values()))
        assert gen.request["loop"] is True and gen.request["concepts"] == [{"key": "dolly_zoom"}]

    async def test_vendor_validation_error(self, provider: LumaProvider) -> None:
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req(image=IMG, last_frame=LAST, extras={"loop": True}))
        assert exc.value.message == "Loop is not supported for keyframes"
        assert exc.value.vendor_code == "invalid_request"

    async def test_extend(self, provider: LumaProvider, state: FakeLumaState) -> None:
        source = await provider.submit(make_req())
        early = make_req(operation="extend", source=source, prompt="the fox jumps")
        with pytest.raises(Rejected):  # Luma extends only a completed generation
            await provider.submit(early)
        await run_to_end(provider, source)
        task = await provider.submit(early)
        assert task.meta["extends"] == source.vendor_task_id
        assert state.generations[task.vendor_task_id].request["keyframes"] == {
            "frame0": {"type": "generation", "id": source.vendor_task_id}
        }
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    async def test_failure_is_a_snapshot(self, provider: LumaProvider, state: FakeLumaState) -> None:
        state.fail_task = "Contains blacklisted words"
        task = await provider.submit(make_req())
        done = (await run_to_end(provider, task))[-1]
        assert (done.status, done.error_code, done.error_message) == (
            VideoStatus.failed,
            "moderation_blocked",
            "Contains blacklisted words",
        )

    async def test_callbacks_are_posted_by_the_fake(
        self, provider: LumaProvider, state: FakeLumaState, callbacks: _Callbacks
    ) -> None:
        task = await provider.submit(make_req(extras={"callback_url": CALLBACK}))
        await run_to_end(provider, task)
        assert [body["state"] for _, body in callbacks.received] == ["dreaming", "completed"]
        assert all(url == CALLBACK for url, _ in callbacks.received)

    async def test_cancel_deletes(self, provider: LumaProvider, state: FakeLumaState) -> None:
        task = await provider.submit(make_req())
        await provider.cancel(task)
        assert task.vendor_task_id not in state.generations
        assert state.requests[-1]["method"] == "DELETE"
        await provider.cancel(task)  # already gone: fine
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(task)

    async def test_older_create_route_fallback(self, state: FakeLumaState) -> None:
        def only_old(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/generations/video"):
                return httpx.Response(404, json={"detail": "Not Found"})
            return httpx.Response(201, json=_gen("queued", id="old-1"))

        async with httpx.AsyncClient(transport=httpx.MockTransport(only_old)) as c:
            task = await LumaProvider(c, api_key="k").submit(make_req())
        assert task.vendor_task_id == "old-1"


class TestRecover:
    async def test_finds_the_generation_by_our_callback_url(self, provider: LumaProvider, state: FakeLumaState) -> None:
        await provider.submit(
            make_req(task_id="video_other", extras={"callback_url": CALLBACK.replace("abc", "other")})
        )
        task = await provider.submit(make_req(extras={"callback_url": CALLBACK}))
        await provider.submit(make_req(task_id="video_third"))
        found = await provider.recover(make_req())  # as the engine rebuilds it: no callback in extras
        assert found is not None and found.vendor_task_id == task.vendor_task_id
        listing = state.requests[-1]
        assert (listing["method"], listing["path"]) == ("GET", f"{PREFIX}/generations")
        assert listing["query"] == {"limit": "100", "offset": "0"}
        assert listing["headers"]["authorization"] == f"Bearer {API_KEY}"

    async def test_nothing_found(self, provider: LumaProvider) -> None:
        await provider.submit(make_req())  # no callback URL: nothing ties it to our id
        assert await provider.recover(make_req()) is None

    async def test_pages_through_the_listing(self, client: httpx.AsyncClient, state: FakeLumaState) -> None:
        p = LumaProvider(client, api_key=API_KEY, base_url=BASE, recover_pages=3)
        await p.submit(make_req(extras={"callback_url": CALLBACK}))
        for i in range(120):
            await p.submit(make_req(task_id=f"video_{i}"))
        assert await p.recover(make_req()) is not None
        assert [r["query"].get("offset") for r in state.requests if r["method"] == "GET"] == ["0", "100"]

    async def test_client_callback_means_no_lookup(self, provider: LumaProvider, state: FakeLumaState) -> None:
        assert await provider.recover(make_req(extras={"callback_url": "https://client.example/hook"})) is None
        assert state.requests == []


class TestFailures:
    async def test_wrong_key(self, client: httpx.AsyncClient) -> None:
        p = LumaProvider(client, api_key="luma-wrong", base_url=BASE)
        with pytest.raises(AuthFailed) as exc:
            await p.submit(make_req())
        assert (exc.value.vendor_code, exc.value.status_code) == ("invalid_api_key", 401)

    async def test_429(self, provider: LumaProvider, state: FakeLumaState) -> None:
        state.fail_next("429", on="create")
        with pytest.raises(RateLimited) as exc:
            await provider.submit(make_req())
        assert exc.value.retry_after == 7.0
        assert state.generations == {}

    async def test_402_is_a_balance_rejection(self, provider: LumaProvider, state: FakeLumaState) -> None:
        state.fail_next("402", on="create")
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == "insufficient_quota"

    async def test_moderation_at_submit(self, provider: LumaProvider, state: FakeLumaState) -> None:
        state.fail_next("moderation", on="create")
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == "moderation_blocked"

    @pytest.mark.parametrize(("fault", "code"), [("500", "http_500"), ("502html", "http_502")])
    async def test_server_errors(self, provider: LumaProvider, state: FakeLumaState, fault: str, code: str) -> None:
        task = await provider.submit(make_req())
        state.fail_next(fault, on="get")
        with pytest.raises(Unavailable) as exc:
            await provider.poll(task)
        assert exc.value.vendor_code == code
        assert (await provider.poll(task)).status is VideoStatus.queued  # one-shot fault

    async def test_garbage(self, provider: LumaProvider, state: FakeLumaState) -> None:
        state.fail_next("garbage", on="create")
        with pytest.raises(Unavailable) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == "bad_body"

    async def test_hang_times_out(self, client: httpx.AsyncClient, state: FakeLumaState) -> None:
        state.fail_next("hang", on="create")
        p = LumaProvider(client, api_key=API_KEY, base_url=BASE, timeout=0.2)
        with pytest.raises(Unavailable):
            await p.submit(make_req())

    async def test_transport_error(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as c:
            with pytest.raises(Unavailable):
                await LumaProvider(c, api_key="k").submit(make_req())

    async def test_unknown_generation(self, provider: LumaProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(VendorTask(provider="luma", vendor_task_id="00000000-0000-4000-8000-000000000000"))

    async def test_expired_asset(self, provider: LumaProvider, state: FakeLumaState) -> None:
        task = await provider.submit(make_req())
        done = (await run_to_end(provider, task))[-1]
        state.expire_assets = True
        with pytest.raises(NotFoundAtVendor):
            _ = [c async for c in provider.download(task, done)]


# ---------------------------------------------------------------------------------------------
# the fake itself


class TestFake:
    async def _post(self, client: httpx.AsyncClient, body: Any, auth: str = f"Bearer {API_KEY}") -> httpx.Response:
        return await client.post(f"{BASE}/generations/video", json=body, headers={"Authorization": auth})

    @pytest.mark.parametrize("auth", [f"Token {API_KEY}", "", f"Bearer {API_KEY}x", f"bearer {API_KEY}", API_KEY])
    async def test_auth_is_exact(self, client: httpx.AsyncClient, auth: str) -> None:
        resp = await self._post(client, {"model": "ray-2", "prompt": "a cat"}, auth=auth)
        assert resp.status_code == 401
        assert resp.json() == {"detail": "Invalid API key is provided"}

    @pytest.mark.parametrize(
        ("body", "status", "detail"),
        [
            ({"prompt": "a cat"}, 422, None),
            ({"model": "ray-9", "prompt": "a cat"}, 422, None),
            ({"model": "ray-2", "prompt": "a cat", "duration": 5}, 422, None),
            ({"model": "ray-2", "prompt": "a cat", "duration": "7s"}, 400, None),
            ({"model": "ray-2", "prompt": "a cat", "resolution": "720P"}, 400, None),
            ({"model": "ray-2", "prompt": "a cat", "aspect_ratio": "2:1"}, 422, None),
            ({"model": "ray-2"}, 400, "400: Prompt is required"),
            ({"model": "ray-2", "prompt": "ab"}, 400, "400: Prompt is too short, minimum length is 3 characters"),
            ({"model": "ray-2", "prompt": "a cat", "keyframes": {}}, 400, "400: No keyframes provided"),
            ({"model": "ray-1-6", "prompt": "a cat", "duration": "5s"}, 400, None),
            ({"model": "ray-1-6", "prompt": "a cat", "concepts": [{"key": "orbit_left"}]}, 400, None),
            (
                {"model": "ray-2", "prompt": "a cat", "keyframes": {"frame0": {"type": "image", "url": "data:x"}}},
                400,
                "400: failed to moderate image",
            ),
        ],
    )
    async def test_validation(self, client: httpx.AsyncClient, body: Any, status: int, detail: str | None) -> None:
        resp = await self._post(client, body)
        assert resp.status_code == status, resp.text
        if detail:
            assert resp.json() == {"detail": detail}

    async def test_created_shape_and_unknown_fields(self, client: httpx.AsyncClient) -> None:
        resp = await self._post(client, {"model": "ray-2", "prompt": "a cat", "enhance_prompt": True})
        assert resp.status_code == 201
        body = resp.json()
        assert body["state"] == "queued" and body["assets"] is None and body["failure_reason"] is None
        assert body["generation_type"] == "video" and body["request"]["prompt"] == "a cat"
        assert "enhance_prompt" not in body["request"]

    async def test_other_routes(self, client: httpx.AsyncClient) -> None:
        h = {"Authorization": f"Bearer {API_KEY}"}
        assert (await client.get(f"{BASE}/ping", headers=h)).json() == {"message": "pong"}
        assert "credit_balance" in (await client.get(f"{BASE}/credits", headers=h)).json()
        old = await client.post(f"{BASE}/generations", json={"model": "ray-2", "prompt": "a cat"}, headers=h)
        assert old.status_code == 201
        listing = (await client.get(f"{BASE}/generations", params={"limit": 5}, headers=h)).json()
        assert listing["count"] == 1 and listing["has_more"] is False


# ---------------------------------------------------------------------------------------------
# through the gateway: uploads become signed vidgate URLs Luma fetches, and Luma's callbacks reach vidgate


def test_upload_goes_as_a_signed_url_and_callbacks_reach_the_gateway(database_url: str, tmp_path: Any) -> None:
    import io

    from tests.providers.test_vendor_e2e import VENDORS as E2E
    from tests.providers.test_vendor_e2e import _rig, wait

    vendor = next(v for v in E2E if v.name == "luma")
    for rig in _rig(vendor, database_url, tmp_path):
        ref = solid_image((200, 30, 30), size=(1280, 720))
        created = rig.client.videos.create(
            prompt="the red card turns",
            model="ray-2",
            input_reference=("ref.jpg", io.BytesIO(ref), "image/jpeg"),
            extra_body={"metadata": {"loop": "true", "concepts": "orbit_left"}},
        )
        assert wait(rig.client, created.id).status == "completed"
        state: FakeLumaState = rig.fake_state
        (gen,) = state.generations.values()
        url = gen.request["keyframes"]["frame0"]["url"]
        assert url.startswith(rig.gateway_url + "/")  # a signed link to vidgate itself
        assert state.images == [{"url": url, "size": (1280, 720), "format": "JPEG"}]
        assert gen.request["loop"] is True and gen.request["concepts"] == [{"key": "orbit_left"}]
        assert gen.request["callback_url"].startswith(f"{rig.gateway_url}/callbacks/luma/{created.id}/")
        assert [c["json"]["state"] for c in state.callbacks] == ["dreaming", "completed"]
        assert all(c["status"] == 200 for c in state.callbacks)
