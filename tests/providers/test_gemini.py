"""Veo on the Gemini API: the shared Veo mapping (pure functions, golden bodies), the error envelope, and the
adapter against the fake Gemini server (auth on every call, the keyless redirect, failures in-band)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.providers import veo
from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    NotFoundAtVendor,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.gemini import DEFAULT_BASE_URL, DIALECT, MODELS, GeminiProvider, snapshot
from app.providers.http import b64_chunks
from app.providers.vendors import VENDORS
from tests.fakes.assets import real_mp4
from tests.fakes.gemini import API_KEY, FILTER_REASON, FakeGeminiState, make_app
from tests.support.media import solid_image

PNG = solid_image((10, 200, 10), size=(64, 36), fmt="PNG")
JPEG = solid_image((200, 10, 10), size=(64, 36))
CAPS = {c.name: c for c in MODELS}


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": "veo-3.1-generate-preview", "prompt": "a red fox"}
    base |= {"width": 1280, "height": 720, "seconds": 8}
    return GenerationRequest(**(base | kw))


def body(**kw: Any) -> dict[str, Any]:
    from app.providers.gemini import BY_NAME

    req = make_req(**kw)
    return veo.build(DIALECT, BY_NAME[req.model], req).body


@pytest.fixture
def fake() -> tuple[Any, FakeGeminiState]:
    return make_app()


@pytest.fixture
def state(fake: tuple[Any, FakeGeminiState]) -> FakeGeminiState:
    return fake[1]


@pytest.fixture
async def client(fake: tuple[Any, FakeGeminiState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(client: httpx.AsyncClient, clock: Clock) -> GeminiProvider:
    return GeminiProvider(client, api_key=API_KEY, clock=clock)


async def run(provider: GeminiProvider, task: VendorTask, limit: int = 10) -> list[TaskSnapshot]:
    snaps = []
    for _ in range(limit):
        snap = await provider.poll(task)
        snaps.append(snap)
        if snap.status in (VideoStatus.completed, VideoStatus.failed):
            break
    return snaps


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in it])


# -- pure mapping --------------------------------------------------------------------------------------


class TestSizeAndSeconds:
    @pytest.mark.parametrize(
        ("size", "expected"),
        [
            ((1280, 720), ("16:9", "720p")),
            ((720, 1280), ("9:16", "720p")),
            ((1920, 1080), ("16:9", "1080p")),
            ((1080, 1920), ("9:16", "1080p")),
            ((3840, 2160), ("16:9", "4k")),
            ((2160, 3840), ("9:16", "4k")),
        ],
    )
    def test_size_fields(self, size: tuple[int, int], expected: tuple[str, str]) -> None:
        assert veo.size_fields(*size) == expected

    @pytest.mark.parametrize(
        ("seconds", "resolution", "refs", "sent"),
        [
            (4, "720p", False, 4),
            (6, "720p", False, 6),
            (4, "1080p", False, 8),
            (6, "4k", False, 8),
            (4, "720p", True, 8),
        ],
    )
    def test_duration_couplings(self, seconds: int, resolution: str, refs: bool, sent: int) -> None:
        assert veo.duration(seconds, resolution, references=refs) == sent

    def test_caps_per_model(self) -> None:
        assert CAPS["veo-3.1-generate-preview"].seconds == (4, 6, 8)
        assert (3840, 2160) in CAPS["veo-3.1-fast-generate-preview"].sizes
        assert (1080, 1920) not in CAPS["veo-3.0-generate-001"].sizes  # Veo 3: 1080p is 16:9 only
        assert CAPS["veo-2.0-generate-001"].seconds == (5, 6, 8)
        assert CAPS["veo-2.0-generate-001"].sizes == ((1280, 720), (720, 1280))
        assert all(c.audio for c in MODELS if c.name.startswith("veo-3"))
        assert not CAPS["veo-2.0-generate-001"].audio
        assert CAPS["veo-3.1-generate-preview"].last_frame and not CAPS["veo-3.0-generate-001"].last_frame
        assert {c.default_size for c in MODELS} == {(1280, 720)} and {c.default_seconds for c in MODELS} == {8}

    def test_nearest_and_strict_come_from_the_caps(self) -> None:
        from app.providers.capabilities import CapabilityError, SizeSpec

        caps = CAPS["veo-3.0-generate-001"]
        assert caps.resolve_seconds(12, "nearest") == 8
        assert caps.resolve_size(SizeSpec(1080, 1920), "nearest") == (720, 1280)
        with pytest.raises(CapabilityError, match="4, 6, 8"):
            caps.resolve_seconds(5, "strict")


class TestSyntheticProgress:
    def test_monotone_below_100(self) -> None:
        values = [veo.synthetic_progress(t, 90) for t in range(0, 3600, 7)]
        assert values == sorted(values)
        assert values[0] == 5 and max(values) == 95

    def test_typical_duration_is_about_two_thirds(self) -> None:
        assert 55 <= veo.synthetic_progress(90, 90) <= 65

    def test_degenerate_inputs(self) -> None:
        assert veo.synthetic_progress(-5, 90) == 5
        assert veo.synthetic_progress(5, 0) == 5


class TestGoldenBodies:
    def test_text_to_video(self) -> None:
        assert body() == {
            "instances": [{"prompt": "a red fox"}],
            "parameters": {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8},
        }

    def test_image_to_video_inlines_the_bytes_with_the_sniffed_type(self) -> None:
        b = body(image=ImageInput(data=PNG, mime="image/jpeg"), width=720, height=1280, seconds=4)
        assert b["instances"] == [
            {
                "prompt": "a red fox",
                "image": {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"},
            }
        ]
        assert b["parameters"] == {"aspectRatio": "9:16", "resolution": "720p", "durationSeconds": 4}

    def test_first_and_last_frame(self) -> None:
        b = body(image=ImageInput(data=PNG), last_frame=ImageInput(data=JPEG))
        assert b["instances"][0]["lastFrame"]["mimeType"] == "image/jpeg"

    def test_1080p_is_sent_as_8_seconds(self) -> None:
        b = body(width=1920, height=1080, seconds=4)
        assert b["parameters"] == {"aspectRatio": "16:9", "resolution": "1080p", "durationSeconds": 8}

    def test_veo2_sends_no_resolution(self) -> None:
        b = body(model="veo-2.0-generate-001", seconds=5)
        assert b["parameters"] == {"aspectRatio": "16:9", "durationSeconds": 5}

    def test_metadata_is_typed_and_renamed(self) -> None:
        b = body(
            extras={
                "negative_prompt": "rain",
                "seed": "42",
                "enhancePrompt": "false",
                "person_generation": "ALLOW_ALL",
                "sample_count": "1",
                "model": "veo-evil",  # never overrides the model
                "prompt": "evil",
                "callback_url": "https://gw.example/cb",  # the gateway's own; Veo has no callbacks
                "last_frame_url": "https://x/last.png",  # consumed by the service
            }
        )
        assert b["instances"] == [{"prompt": "a red fox"}]
        assert b["parameters"] == {
            "aspectRatio": "16:9",
            "resolution": "720p",
            "durationSeconds": 8,
            "negativePrompt": "rain",
            "seed": 42,
            "enhancePrompt": False,
            "personGeneration": "allow_all",
            "sampleCount": 1,
        }

    def test_reference_images_from_data_urls(self) -> None:
        refs = [ImageInput(data=PNG, mime="image/png").data_url(), ImageInput(data=JPEG, mime="image/jpeg").data_url()]
        b = body(seconds=4, extras={"reference_images": refs})
        assert [r["referenceType"] for r in b["instances"][0]["referenceImages"]] == ["asset", "asset"]
        assert b["instances"][0]["referenceImages"][1]["image"]["mimeType"] == "image/jpeg"
        assert b["parameters"]["durationSeconds"] == 8

    @pytest.mark.parametrize(
        ("extras", "kw", "match"),
        [
            ({"generate_audio": "false"}, {}, "generateAudio"),
            ({"storageUri": "gs://b/x"}, {}, "storageUri"),
            ({"fps": 24}, {}, "fps"),
            ({"numberOfVideos": 2}, {}, "numberOfVideos"),
            ({"my_tag": "x"}, {}, "accepted metadata keys"),
            ({"sample_count": 2}, {}, "from 1 to 1"),
            ({"seed": -1}, {}, "integer"),
            ({"seed": 3}, {"model": "veo-2.0-generate-001", "seconds": 5}, "seed"),
            ({"person_generation": "everyone"}, {}, "allow_adult"),
            ({"enhance_prompt": "maybe"}, {}, "true or false"),
            ({"reference_images": ["https://x/a.png"]}, {}, "data:image"),
            ({"reference_images": []}, {}, "1 to 3"),
            ({"reference_images": ["data:image/png;base64,AAAA"]}, {"model": "veo-3.0-generate-001"}, "no reference"),
        ],
    )
    def test_refused_before_any_vendor_call(self, extras: dict[str, Any], kw: dict[str, Any], match: str) -> None:
        with pytest.raises(Rejected, match=match) as exc:
            body(extras=extras, **kw)
        assert exc.value.vendor_code in {"unsupported_parameter", "invalid_value", "invalid_image"}

    def test_last_frame_needs_a_first_frame(self) -> None:
        with pytest.raises(Rejected, match="first frame"):
            body(last_frame=ImageInput(data=PNG))

    def test_references_do_not_mix_with_frames(self) -> None:
        with pytest.raises(Rejected, match="cannot be combined"):
            body(image=ImageInput(data=PNG), extras={"reference_images": [ImageInput(data=PNG).data_url()]})

    def test_not_an_image(self) -> None:
        with pytest.raises(Rejected, match="PNG, JPEG or WebP"):
            body(image=ImageInput(data=b"GIF89a....", mime="image/gif"))


class TestBase64Decoding:
    @pytest.mark.parametrize("size", [0, 1, 2, 3, 100, 65536, 200_003])
    def test_chunks_join_to_the_bytes(self, size: int) -> None:
        data = bytes(i % 251 for i in range(size))
        chunks = list(b64_chunks(base64.b64encode(data).decode(), chunk_size=4096))
        assert b"".join(chunks) == data
        assert all(len(c) <= 4096 for c in chunks)


class TestSnapshots:
    def test_running_operation_has_no_done_field(self) -> None:
        snap = snapshot({"name": "models/m/operations/x"}, elapsed=30, typical=90)
        assert snap.status is VideoStatus.in_progress and 5 < (snap.progress or 0) < 100

    def test_done_with_a_sample(self) -> None:
        raw = {
            "done": True,
            "response": {
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": "https://g/v1beta/files/a"}}]}
            },
        }
        snap = snapshot(raw, elapsed=1, typical=90)
        assert snap.status is VideoStatus.completed and snap.video_url == "https://g/v1beta/files/a"

    @pytest.mark.parametrize(
        "response",
        [
            {"generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["blocked: 64151117"]}},
            {"generateVideoResponse": {}},
            {},
        ],
    )
    def test_done_without_samples_is_never_completed(self, response: dict[str, Any]) -> None:
        snap = snapshot({"done": True, "response": response}, elapsed=1, typical=90)
        assert snap.status is VideoStatus.failed and snap.error_code == "moderation_blocked"
        assert snap.error_message

    @pytest.mark.parametrize(
        ("error", "code"),
        [
            ({"code": 13, "message": "internal"}, "INTERNAL"),
            (
                {"code": 3, "message": "Veo could not generate videos because the input image violates"},
                "moderation_blocked",
            ),
            ({"code": 3, "message": "bad value"}, "INVALID_ARGUMENT"),
            ({"code": 8, "message": "quota"}, "RESOURCE_EXHAUSTED"),
            ({"code": 99, "message": "?"}, "99"),
        ],
    )
    def test_done_with_an_error(self, error: dict[str, Any], code: str) -> None:
        snap = snapshot({"done": True, "error": error}, elapsed=1, typical=90)
        assert (snap.status, snap.error_code, snap.error_message) == (VideoStatus.failed, code, error["message"])


class TestErrors:
    @pytest.mark.parametrize(
        ("http", "status", "message", "reasons", "cls", "code"),
        [
            (400, "INVALID_ARGUMENT", "API key not valid.", ["API_KEY_INVALID"], AuthFailed, "INVALID_ARGUMENT"),
            (403, "PERMISSION_DENIED", "unregistered callers", [], AuthFailed, "PERMISSION_DENIED"),
            (401, "UNAUTHENTICATED", "invalid credentials", [], AuthFailed, "UNAUTHENTICATED"),
            (429, "RESOURCE_EXHAUSTED", "quota", [], RateLimited, "RESOURCE_EXHAUSTED"),
            (500, "INTERNAL", "internal", [], Unavailable, "INTERNAL"),
            (503, "UNAVAILABLE", "overloaded", [], Unavailable, "UNAVAILABLE"),
            (400, "FAILED_PRECONDITION", "region", [], Unavailable, "FAILED_PRECONDITION"),
            (400, "INVALID_ARGUMENT", "`fps` isn't supported by this model.", [], Rejected, "INVALID_ARGUMENT"),
            (
                400,
                "INVALID_ARGUMENT",
                "The prompt could not be submitted. Support codes: 1",
                [],
                Rejected,
                "moderation_blocked",
            ),
            (404, "NOT_FOUND", "models/x is not found", [], Rejected, "NOT_FOUND"),
            (502, None, None, [], Unavailable, "http_502"),
        ],
    )
    def test_envelope(
        self, http: int, status: str | None, message: str | None, reasons: list[str], cls: type, code: str
    ) -> None:
        body = {
            "error": {"code": http, "message": message, "status": status, "details": [{"reason": r} for r in reasons]}
        }
        exc = veo.map_error("gemini", "Gemini API", http, body if status else "<html>")
        assert type(exc) is cls and exc.vendor_code == code

    def test_retry_info(self) -> None:
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]
        exc = veo.map_error("gemini", "G", 429, {"error": {"status": "RESOURCE_EXHAUSTED", "details": details}})
        assert isinstance(exc, RateLimited) and exc.retry_after == 17


# -- the adapter against the fake ------------------------------------------------------------------------


class TestAgainstTheFake:
    def test_vendor_row(self) -> None:
        spec = VENDORS["gemini"]
        assert spec.base_url == DEFAULT_BASE_URL and spec.image_transport == "bytes"
        assert spec.env_names() == ["VIDGATE_GEMINI_API_KEY", "VIDGATE_GEMINI_BASE_URL"]

    async def test_text_to_video_walks_the_states_and_downloads_with_the_key(
        self, provider: GeminiProvider, state: FakeGeminiState, clock: Clock
    ) -> None:
        assert isinstance(provider, VideoProvider)
        task = await provider.submit(make_req(seconds=6))
        assert task.vendor_task_id.startswith("models/veo-3.1-generate-preview/operations/")
        clock.now += 30
        first = await provider.poll(task)
        clock.now += 30
        second = await provider.poll(task)
        assert first.status is second.status is VideoStatus.in_progress
        assert 0 < (first.progress or 0) < (second.progress or 0) < 100
        done = await provider.poll(task)
        assert done.status is VideoStatus.completed
        assert (done.seconds, done.width, done.height, done.has_audio) == (6, 1280, 720, True)
        data = await collect(provider.download(task, done))
        assert data == real_mp4(audio=True)
        # the key went on every API call, the download included, and never to the storage host
        api = [r for r in state.requests if not r["path"].startswith("/storage/")]
        assert api and all(r["headers"].get("x-goog-api-key") == API_KEY for r in api)
        assert state.storage_headers and all("x-goog-api-key" not in h for h in state.storage_headers)

    async def test_image_to_video_and_last_frame_are_accepted(
        self, provider: GeminiProvider, state: FakeGeminiState
    ) -> None:
        task = await provider.submit(make_req(image=ImageInput(data=PNG), last_frame=ImageInput(data=JPEG)))
        assert (await run(provider, task))[-1].status is VideoStatus.completed
        inst = state.creates()[-1]["instances"][0]
        assert set(inst) == {"prompt", "image", "lastFrame"}

    async def test_veo2_is_silent(self, provider: GeminiProvider) -> None:
        task = await provider.submit(make_req(model="veo-2.0-generate-001", seconds=5))
        done = (await run(provider, task))[-1]
        assert done.has_audio is False
        assert await collect(provider.download(task, done)) == real_mp4(audio=False)

    async def test_safety_filtered_result_fails(self, provider: GeminiProvider, state: FakeGeminiState) -> None:
        state.outcome = "filtered"
        snaps = await run(provider, await provider.submit(make_req()))
        assert snaps[-1].status is VideoStatus.failed
        assert (snaps[-1].error_code, snaps[-1].error_message) == ("moderation_blocked", FILTER_REASON)

    async def test_operation_error_fails_with_the_rpc_name(
        self, provider: GeminiProvider, state: FakeGeminiState
    ) -> None:
        state.outcome = "error"
        snaps = await run(provider, await provider.submit(make_req()))
        assert (snaps[-1].status, snaps[-1].error_code) == (VideoStatus.failed, "INTERNAL")

    @pytest.mark.parametrize(
        ("fault", "cls", "code"),
        [
            ("429", RateLimited, "RESOURCE_EXHAUSTED"),
            ("500", Unavailable, "INTERNAL"),
            ("503", Unavailable, "UNAVAILABLE"),
            ("moderation", Rejected, "moderation_blocked"),
        ],
    )
    async def test_create_faults(
        self, provider: GeminiProvider, state: FakeGeminiState, fault: str, cls: type, code: str
    ) -> None:
        state.fail_next(fault)
        with pytest.raises(cls) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == code
        if fault == "429":
            assert exc.value.retry_after == 17

    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient) -> None:
        bad = GeminiProvider(client, api_key="AIzaWrong")
        with pytest.raises(AuthFailed):
            await bad.submit(make_req())

    async def test_the_fake_refuses_bearer_and_missing_keys(self, client: httpx.AsyncClient) -> None:
        url = f"{DEFAULT_BASE_URL}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
        r = await client.post(url, json={}, headers={"Authorization": f"Bearer {API_KEY}"})
        assert r.status_code == 401
        r = await client.post(url, json={})
        assert (r.status_code, r.json()["error"]["status"]) == (403, "PERMISSION_DENIED")

    async def test_the_fake_refuses_what_the_api_refuses(self, client: httpx.AsyncClient) -> None:
        url = f"{DEFAULT_BASE_URL}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
        h = {"x-goog-api-key": API_KEY}
        for bad in (
            {"instances": [{"prompt": "x"}], "parameters": {"generateAudio": True}},
            {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": "8"}},
            {"instances": [{"prompt": "x"}], "parameters": {"resolution": "1080p", "durationSeconds": 4}},
            {"instances": [{"prompt": "x", "image": {"inlineData": {}}}]},
            {"instances": [{"prompt": "x"}], "config": {}},
        ):
            r = await client.post(url, json=bad, headers=h)
            assert r.status_code == 400, bad

    async def test_unknown_operation_is_not_found(self, provider: GeminiProvider) -> None:
        task = VendorTask("gemini", "models/veo-3.1-generate-preview/operations/zzzzzzzzzzzz", {})
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(task)

    async def test_expired_file_is_not_found(self, provider: GeminiProvider, state: FakeGeminiState) -> None:
        task = await provider.submit(make_req())
        done = (await run(provider, task))[-1]
        state.file_ttl = -1
        with pytest.raises(NotFoundAtVendor):
            await collect(provider.download(task, done))

    async def test_key_is_not_sent_to_a_foreign_host(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, content=b"mp4")

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
            p = GeminiProvider(c, api_key=API_KEY)
            snap = TaskSnapshot(status=VideoStatus.completed, video_url="https://cdn.example.com/v.mp4")
            assert await collect(p.download(VendorTask("gemini", "x", {}), snap)) == b"mp4"
        assert "x-goog-api-key" not in seen[0].headers

    async def test_inline_encoded_video_is_decoded(self) -> None:
        mp4 = real_mp4()
        answer = {
            "name": "models/veo-3.0-generate-001/operations/abc",
            "done": True,
            "response": {
                "generateVideoResponse": {
                    "generatedSamples": [{"video": {"encodedVideo": base64.b64encode(mp4).decode()}}]
                }
            },
        }
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=answer))) as c:
            p = GeminiProvider(c, api_key=API_KEY)
            task = VendorTask("gemini", answer["name"], {"model": "veo-3.0-generate-001"})
            snap = await p.poll(task)
            assert await collect(p.download(task, snap)) == mp4
            with pytest.raises(Unavailable):  # held once; a retry polls again first
                await collect(p.download(task, snap))


# -- through the OpenAI SDK and the gateway ---------------------------------------------------------------


def _gemini_vendor() -> Any:
    from tests.providers.test_vendor_e2e import VENDORS as E2E

    return next(v for v in E2E if v.name == "gemini")


def test_sdk_create_and_poll_with_a_png_file(database_url: str, tmp_path: Any) -> None:
    from tests.providers.test_vendor_e2e import _rig

    png = solid_image((30, 60, 200), size=(1280, 720), fmt="PNG")
    first = tmp_path / "first.png"
    first.write_bytes(png)
    for rig in _rig(_gemini_vendor(), database_url, tmp_path):
        with open(first, "rb") as f:
            video = rig.client.videos.create_and_poll(
                model="veo-3.1-generate-preview",
                prompt="the blue card slowly turns",
                size="1280x720",
                seconds="8",
                input_reference=f,
                poll_interval_ms=50,
            )
        assert video.status == "completed", video.error
        assert (video.size, video.seconds) == ("96x64", "1")  # what the fake's MP4 really is
        sent = rig.fake_state.creates()[-1]
        image = sent["instances"][0]["image"]
        assert image["mimeType"] == "image/png" and base64.b64decode(image["bytesBase64Encoded"]) == png
        assert sent["parameters"] == {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8}


def test_strict_policy_refuses_an_unsupported_duration_before_any_vendor_call(database_url: str, tmp_path: Any) -> None:
    import openai

    for rig in _rig_strict(database_url, tmp_path):
        with pytest.raises(openai.BadRequestError) as exc:
            rig.client.videos.create(prompt="x", model="veo-3.1-generate-preview", size="1280x720", seconds="5")
        assert exc.value.param == "seconds" and "4, 6, 8" in str(exc.value.message)
        assert rig.fake_state.creates() == []


def _rig_strict(database_url: str, tmp_path: Any) -> Any:
    from tests.providers.test_vendor_e2e import _rig

    return _rig(_gemini_vendor(), database_url, tmp_path, param_policy="strict")


@pytest.mark.parametrize("caps", MODELS, ids=[c.name for c in MODELS])
async def test_every_size_and_duration_of_the_caps_is_accepted_by_the_fake(
    caps: Any, provider: GeminiProvider, state: FakeGeminiState
) -> None:
    for w, h in caps.sizes:
        for seconds in caps.seconds:
            await provider.submit(make_req(model=caps.name, width=w, height=h, seconds=seconds))
    assert len(state.operations) == len(caps.sizes) * len(caps.seconds)
