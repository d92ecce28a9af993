"""Runway adapter: the model table, golden request bodies, status and error tables, and the adapter against
the fake Runway server (which checks `Authorization: Bearer` and `X-Runway-Version` on every call)."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
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
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.runway import (
    API_VERSION,
    DEFAULT_BASE_URL,
    MODELS,
    SCHEMAS,
    STATUS,
    RunwayProvider,
    build_body,
    duration_for,
    endpoint_for,
    map_error,
    ratio_for,
    snapshot,
)
from app.providers.runway.body import DATA_URI_LIMIT
from app.providers.vendors import VENDORS
from tests.fakes import runway as fake_runway
from tests.fakes.runway import AUDIO_VIDEO_BYTES, KEY, VIDEO_BYTES, FakeRunwayState, make_app, validate
from tests.support.media import solid_image

BASE = "https://api.dev.runwayml.com"
JPEG = solid_image((10, 120, 200), size=(64, 36))
IMG = ImageInput(data=JPEG, mime="image/jpeg")
IMG_URL = ImageInput(url="https://cdn.example.com/first.png")
LAST_URL = ImageInput(url="https://cdn.example.com/last.png")


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": "gen4.5", "prompt": "a fox in the snow"}
    base |= {"width": 1280, "height": 720, "seconds": 5}
    return GenerationRequest(**(base | kw))


def caps(name: str) -> Any:
    return next(m for m in MODELS if m.name == name)


@pytest.fixture
def fake() -> tuple[Any, FakeRunwayState]:
    return make_app()


@pytest.fixture
def state(fake: tuple[Any, FakeRunwayState]) -> FakeRunwayState:
    return fake[1]


@pytest.fixture
async def client(fake: tuple[Any, FakeRunwayState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


@pytest.fixture
def provider(client: httpx.AsyncClient) -> RunwayProvider:
    return RunwayProvider(client, api_key=KEY, base_url=BASE, timeout=5.0)


async def run_to_end(provider: RunwayProvider, task: VendorTask, limit: int = 10) -> list[Any]:
    snaps = []
    for _ in range(limit):
        snaps.append(snap := await provider.poll(task))
        if snap.status in {VideoStatus.completed, VideoStatus.failed}:
            break
    return snaps


# ---------------------------------------------------------------------------------------------
# the model table


class TestModels:
    def test_names_constants_and_row(self) -> None:
        assert [m.name for m in MODELS] == [
            "gen4.5",
            "gen4_turbo",
            "veo3.1",
            "veo3.1_fast",
            "veo3",
            "kling2.5_turbo_pro",
            "gemini_omni_flash",
        ]
        assert all(m.provider == "runway" and m.default_size in m.sizes for m in MODELS)
        assert (DEFAULT_BASE_URL, API_VERSION) == ("https://api.dev.runwayml.com", "2024-11-06")
        row = VENDORS["runway"]
        assert (row.title, row.image_transport, row.credential_fields) == ("Runway", "either", ("api_key",))
        assert row.base_url == DEFAULT_BASE_URL and row.env_names() == [
            "VIDGATE_RUNWAY_API_KEY",
            "VIDGATE_RUNWAY_BASE_URL",
        ]

    @pytest.mark.parametrize(
        ("name", "image", "last_frame", "audio", "seconds", "seconds_range", "n_sizes"),
        [
            ("gen4.5", "optional", False, False, (), (2, 10), 6),
            ("gen4_turbo", "required", False, False, (), (2, 10), 6),
            ("veo3.1", "optional", True, True, (4, 6, 8), None, 4),
            ("veo3.1_fast", "optional", True, True, (4, 6, 8), None, 4),
            ("veo3", "optional", False, False, (8,), None, 4),
            ("kling2.5_turbo_pro", "optional", True, False, (5, 10), None, 6),
            ("gemini_omni_flash", "optional", False, False, (), (3, 10), 2),
        ],
    )
    def test_caps(
        self, name: str, image: str, last_frame: bool, audio: bool, seconds: Any, seconds_range: Any, n_sizes: int
    ) -> None:
        c = caps(name)
        assert (c.image, c.last_frame, c.audio, c.seconds, len(c.sizes)) == (image, last_frame, audio, seconds, n_sizes)
        if seconds_range:
            assert c.seconds_range == seconds_range
        assert c.default_seconds in (c.seconds or range(c.seconds_range[0], c.seconds_range[1] + 1))

    def test_not_recoverable_but_cancellable(self, provider: RunwayProvider) -> None:
        assert isinstance(provider, VideoProvider) and isinstance(provider, Cancellable)
        assert not isinstance(provider, Recoverable)  # no client reference, no listing

    async def test_every_allowed_combination_passes_the_fakes_validation(self) -> None:
        """Whatever the caps let through, the adapter turns into a body the fake's zod-like schemas accept."""
        checked = 0
        for c in MODELS:
            seconds = c.seconds or tuple(range(c.seconds_range[0], c.seconds_range[1] + 1))
            inputs: list[dict[str, Any]] = [{"image": IMG}]
            if c.image != "required":
                inputs.append({})
            if c.last_frame:
                inputs.append({"image": IMG_URL, "last_frame": LAST_URL})
            for extra in inputs:
                for w, h in c.sizes:
                    for s in seconds:
                        req = make_req(model=c.name, width=w, height=h, seconds=s, **extra)
                        body = build_body(req)
                        issues, _ = await validate(endpoint_for(req), body)
                        assert issues == [], (c.name, extra, w, h, s, body, issues)
                        checked += 1
        assert checked > 300


class TestSizeAndSeconds:
    @pytest.mark.parametrize(
        ("size", "ratios", "expected"),
        [
            ((1280, 720), ("1280:720", "720:1280"), "1280:720"),
            ((720, 1280), ("1280:720", "720:1280"), "720:1280"),
            ((960, 960), SCHEMAS["image_to_video"]["gen4.5"].ratios, "960:960"),
            ((1584, 672), SCHEMAS["image_to_video"]["gen4_turbo"].ratios, "1584:672"),
            ((1920, 1080), SCHEMAS["text_to_video"]["veo3.1"].ratios, "1920:1080"),
            ((1080, 1920), SCHEMAS["text_to_video"]["veo3.1"].ratios, "1080:1920"),
            ((1024, 768), SCHEMAS["image_to_video"]["gen4.5"].ratios, "1104:832"),  # 4:3 → closest aspect
            ((1104, 832), ("1280:720", "720:1280"), "1280:720"),  # t2v of gen4.5 has only the 16:9 pair
            ((832, 1104), ("1280:720", "720:1280"), "720:1280"),
            ((1920, 1080), ("1280:720", "720:1280"), "1280:720"),
        ],
    )
    def test_ratio(self, size: tuple[int, int], ratios: tuple[str, ...], expected: str) -> None:
        assert ratio_for(*size, ratios) == expected

    @pytest.mark.parametrize(
        ("seconds", "durations", "expected"),
        [(5, (4, 6, 8), 6), (8, (8,), 8), (7, (5, 10), 5), (8, (5, 10), 10), (10, tuple(range(2, 11)), 10)],
    )
    def test_duration(self, seconds: int, durations: tuple[int, ...], expected: int) -> None:
        assert duration_for(seconds, durations) == expected

    def test_a_size_only_the_other_endpoint_has_is_snapped_per_endpoint(self) -> None:
        assert build_body(make_req(width=960, height=960))["ratio"] == "1280:720"
        assert build_body(make_req(width=960, height=960, image=IMG))["ratio"] == "960:960"

    def test_kling_image_to_video_sends_no_ratio(self) -> None:
        body = build_body(make_req(model="kling2.5_turbo_pro", image=IMG_URL, seconds=10))
        assert "ratio" not in body and body["duration"] == 10


# ---------------------------------------------------------------------------------------------
# golden bodies


class TestGoldenBodies:
    def test_text_to_video(self) -> None:
        req = make_req(model="veo3.1", seconds=8, extras={"seed": "42", "audio": "false"})
        assert endpoint_for(req) == "text_to_video"
        assert build_body(req) == {
            "model": "veo3.1",
            "promptText": "a fox in the snow",
            "ratio": "1280:720",
            "duration": 8,
            "seed": 42,
            "audio": False,
        }

    def test_image_to_video_with_uploaded_bytes_is_a_data_uri(self) -> None:
        req = make_req(model="gen4_turbo", image=IMG, prompt="", width=720, height=1280)
        assert endpoint_for(req) == "image_to_video"
        assert build_body(req) == {
            "model": "gen4_turbo",
            "promptImage": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
            "ratio": "720:1280",
            "duration": 5,
        }

    def test_bytes_win_over_a_signed_url(self) -> None:
        img = ImageInput(data=JPEG, mime="image/jpeg", url="http://127.0.0.1:8000/files/inputs/x")
        assert build_body(make_req(model="gen4_turbo", image=img))["promptImage"].startswith("data:image/jpeg;")

    def test_first_and_last_frame(self) -> None:
        req = make_req(model="veo3.1_fast", image=IMG_URL, last_frame=LAST_URL, width=720, height=1280, seconds=6)
        assert build_body(req) == {
            "model": "veo3.1_fast",
            "promptText": "a fox in the snow",
            "promptImage": [
                {"uri": "https://cdn.example.com/first.png", "position": "first"},
                {"uri": "https://cdn.example.com/last.png", "position": "last"},
            ],
            "ratio": "720:1280",
            "duration": 6,
        }

    def test_metadata_maps_to_the_models_fields_and_nothing_else(self) -> None:
        extras = {
            "model": "gen4_turbo",
            "promptText": "evil",
            "ratio": "960:960",
            "duration": 3,
            "seed": 7,
            "public_figure_threshold": "low",
            "audio": True,  # not a gen4.5 field: dropped
            "user_tag": "campaign-7",  # OpenAI metadata is free-form: dropped
            "last_frame_url": "https://cdn.example.com/last.png",  # the service made it req.last_frame
            "outputFormat": "mp4",
        }
        body = build_body(make_req(extras=extras))
        assert body == {
            "model": "gen4.5",
            "promptText": "a fox in the snow",
            "ratio": "1280:720",
            "duration": 5,
            "seed": 7,
            "contentModeration": {"publicFigureThreshold": "low"},
            "outputFormat": "mp4",
        }

    @pytest.mark.parametrize(
        ("model", "extras", "expected"),
        [
            (
                "gen4_turbo",
                {"contentModeration": '{"publicFigureThreshold": "auto"}'},
                {"contentModeration": {"publicFigureThreshold": "auto"}},
            ),
            (
                "gen4_turbo",
                {"contentModeration": {"publicFigureThreshold": "low"}},
                {"contentModeration": {"publicFigureThreshold": "low"}},
            ),
            (
                "veo3.1",
                {"negative_prompt": "blur", "generate_audio": "true"},
                {"negativePrompt": "blur", "audio": True},
            ),
            ("kling2.5_turbo_pro", {"cfg_scale": "0.7"}, {"cfgScale": 0.7}),
            ("veo3", {"seed": 3, "audio": True}, {}),  # veo3 has neither
            ("gemini_omni_flash", {"seed": 3}, {}),
        ],
    )
    def test_metadata_spellings(self, model: str, extras: dict[str, Any], expected: dict[str, Any]) -> None:
        req = make_req(model=model, image=IMG_URL, extras=extras, seconds=caps(model).default_seconds)
        body = build_body(req)
        assert {
            k: v for k, v in body.items() if k not in {"model", "promptText", "promptImage", "ratio", "duration"}
        } == expected

    @pytest.mark.parametrize(
        "extras",
        [
            {"seed": "abc"},
            {"seed": -1},
            {"seed": 4_294_967_296},
            {"seed": True},
            {"contentModeration": {"publicFigureThreshold": "none"}},
            {"contentModeration": "not json"},
            {"outputFormat": "prores"},
        ],
    )
    def test_bad_metadata_is_rejected(self, extras: dict[str, Any]) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(extras=extras))
        assert exc.value.vendor_code == "invalid_metadata"

    @pytest.mark.parametrize(
        ("kw", "code"),
        [
            ({"model": "gen4_turbo"}, "model_endpoint"),  # image only
            ({"image": IMG, "last_frame": LAST_URL}, "last_frame"),  # gen4.5 takes a first frame only
            ({"prompt": ""}, "prompt_required"),
            ({"prompt": "😀" * 501}, "prompt_too_long"),  # 1002 UTF-16 code units
            ({"model": "gen4_turbo", "image": ImageInput(url="http://cdn.example.com/a.png")}, "image_url"),
            ({"model": "gen4_turbo", "image": ImageInput(url="https://10.0.0.1/a.png")}, "image_url"),
            (
                {"model": "gen4_turbo", "image": ImageInput(data=b"x" * DATA_URI_LIMIT, mime="image/png")},
                "image_too_large",
            ),
        ],
    )
    def test_refused_before_any_call(self, kw: dict[str, Any], code: str) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(**kw))
        assert exc.value.vendor_code == code

    def test_prompt_of_exactly_1000_utf16_units_passes(self) -> None:
        assert build_body(make_req(prompt="😀" * 500))["promptText"] == "😀" * 500

    def test_large_upload_goes_by_its_https_url(self) -> None:
        img = ImageInput(
            data=b"x" * DATA_URI_LIMIT, mime="image/png", url="https://gw.example.com/files/inputs/v/first"
        )
        assert build_body(make_req(model="gen4_turbo", image=img))["promptImage"] == img.url


# ---------------------------------------------------------------------------------------------
# statuses and errors


class TestStatus:
    @pytest.mark.parametrize(
        ("raw", "status", "progress"),
        [
            ({"status": "PENDING"}, VideoStatus.queued, 0),
            ({"status": "THROTTLED"}, VideoStatus.queued, 0),
            ({"status": "RUNNING", "progress": 0.454}, VideoStatus.in_progress, 45),
            ({"status": "RUNNING", "progress": 1.7}, VideoStatus.in_progress, 100),
            ({"status": "RUNNING"}, VideoStatus.in_progress, 50),
        ],
    )
    def test_live_states(self, raw: dict[str, Any], status: VideoStatus, progress: int) -> None:
        snap = snapshot({"id": "t", "createdAt": "2026-08-11T06:12:01.171Z", **raw})
        assert (snap.status, snap.progress, snap.poll_after) == (status, progress, 6.0)

    def test_every_documented_status_is_mapped(self) -> None:
        assert set(STATUS) == {"PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}

    def test_succeeded(self) -> None:
        url = "https://dnznrvs05pmza.cloudfront.net/x/video.mp4?_jwt=abc"
        snap = snapshot({"id": "t", "status": "SUCCEEDED", "output": [url], "cost": {"credits": 60}})
        assert (snap.status, snap.progress, snap.video_url, snap.usage) == (
            VideoStatus.completed,
            100,
            url,
            {"credits": 60.0},
        )

    def test_succeeded_without_output_is_a_failure(self) -> None:
        snap = snapshot({"id": "t", "status": "SUCCEEDED", "output": []})
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "no_output")

    @pytest.mark.parametrize(
        ("raw", "code", "message"),
        [
            (
                {
                    "failureCode": "SAFETY.INPUT.TEXT",
                    "failure": "The input was flagged by our content moderation system.",
                },
                "SAFETY.INPUT.TEXT",
                "The input was flagged by our content moderation system.",
            ),
            ({"failureCode": "INTERNAL.BAD_OUTPUT.CODE01", "failure": "bad"}, "INTERNAL.BAD_OUTPUT.CODE01", "bad"),
            ({"failure": "Something went wrong"}, "generation_failed", "Something went wrong"),
            ({}, "generation_failed", "Runway could not generate it."),
        ],
    )
    def test_failed(self, raw: dict[str, Any], code: str, message: str) -> None:
        snap = snapshot({"id": "t", "status": "FAILED", "cost": {"credits": 0}, **raw})
        assert (snap.status, snap.error_code, snap.error_message, snap.usage) == (
            VideoStatus.failed,
            code,
            message,
            {"credits": 0.0},
        )

    def test_cancelled(self) -> None:
        snap = snapshot({"id": "t", "status": "CANCELLED"})
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "cancelled")

    def test_unknown_status_keeps_polling_and_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            snap = snapshot({"id": "t", "status": "ARCHIVED"})
        assert snap.status is VideoStatus.in_progress and "ARCHIVED" in caplog.text


class TestErrors:
    @pytest.mark.parametrize(
        ("http", "body", "cls", "code"),
        [
            (
                400,
                {
                    "error": "Validation of body failed",
                    "issues": [{"code": "invalid_value", "path": ["ratio"], "message": "Invalid option"}],
                },
                Rejected,
                "validation_failed",
            ),
            (400, {"error": "Invalid parameter 'promptText'"}, Rejected, "http_400"),
            (400, {"error": "You do not have enough credits to run this task."}, Rejected, "insufficient_credits"),
            (
                400,
                {"error": "Your prompt was flagged by our content moderation system."},
                Rejected,
                "moderation_blocked",
            ),
            (
                400,
                {"error": "Validation of body failed", "issues": [{"path": ["contentModeration"], "message": "bad"}]},
                Rejected,
                "validation_failed",
            ),
            (400, {"error": "The X-Runway-Version header is required."}, Rejected, "api_version"),
            (401, {"error": "Invalid API key."}, AuthFailed, "unauthorized"),
            (401, None, AuthFailed, "unauthorized"),
            (403, {"error": "Model variant gen4.5 is not available"}, Rejected, "model_not_available"),
            (404, {"error": "Task not found"}, NotFoundAtVendor, "not_found"),
            (429, {"error": "daily limit"}, RateLimited, "rate_limited"),
            (500, None, Unavailable, "http_500"),
            (502, "<html>", Unavailable, "http_502"),
            (503, {"error": "busy"}, Unavailable, "http_503"),
            (504, {}, Unavailable, "http_504"),
        ],
    )
    def test_table(self, http: int, body: Any, cls: type, code: str) -> None:
        err = map_error(http, body)
        assert type(err) is cls and err.vendor_code == code and err.status_code == http

    def test_issues_reach_the_message(self) -> None:
        body = {
            "error": "Validation of body failed",
            "issues": [
                {"code": "invalid_value", "path": ["ratio"], "message": 'Invalid option: expected one of "1280:720"'},
                {"code": "too_big", "path": ["duration"], "message": "Too big: expected number to be <=10"},
            ],
        }
        assert map_error(400, body).message == (
            'Validation of body failed: ratio: Invalid option: expected one of "1280:720"; '
            "duration: Too big: expected number to be <=10"
        )

    def test_retry_after_is_kept(self) -> None:
        assert map_error(429, {"error": "x"}, retry_after=7.0).retry_after == 7.0


# ---------------------------------------------------------------------------------------------
# against the fake


class TestLifecycle:
    async def test_text_to_video_end_to_end(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        task = await provider.submit(make_req(seconds=10))
        assert task.meta == {
            "endpoint": "text_to_video",
            "model": "gen4.5",
            "duration": 10,
            "ratio": "1280:720",
            "estimated_credits": 120,
        }
        snaps = await run_to_end(provider, task)
        assert [s.status for s in snaps] == [
            VideoStatus.queued,
            VideoStatus.in_progress,
            VideoStatus.in_progress,
            VideoStatus.completed,
        ]
        progress = [s.progress for s in snaps]
        assert progress == sorted(progress) and progress[-1] == 100
        done = snaps[-1]
        assert (done.width, done.height, done.seconds, done.usage, done.has_audio) == (
            1280,
            720,
            10,
            {"credits": 120.0},
            None,
        )
        data = b"".join([c async for c in provider.download(task, done)])
        assert data == VIDEO_BYTES
        api = [r for r in state.requests if r["path"].startswith("/v1/")]
        assert all(
            r["headers"]["authorization"] == f"Bearer {KEY}" and r["headers"]["x-runway-version"] == "2024-11-06"
            for r in api
        )
        cdn = [r for r in state.requests if r["path"].startswith("/outputs/")]
        assert cdn and "authorization" not in cdn[0]["headers"]  # no key travels to the CDN
        assert state.creates() == [
            {"model": "gen4.5", "promptText": "a fox in the snow", "ratio": "1280:720", "duration": 10}
        ]

    async def test_image_to_video_with_bytes(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        task = await provider.submit(make_req(model="gen4_turbo", image=IMG))
        assert task.meta["endpoint"] == "image_to_video"
        assert state.images == [{"kind": "data", "media": "image/jpeg", "size": (64, 36), "position": "first"}]
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    async def test_veo_with_audio_says_so_and_serves_sound(self, provider: RunwayProvider) -> None:
        task = await provider.submit(make_req(model="veo3.1", seconds=8, extras={"audio": True}))
        done = (await run_to_end(provider, task))[-1]
        assert done.has_audio is True
        assert b"".join([c async for c in provider.download(task, done)]) == AUDIO_VIDEO_BYTES

    async def test_kling_image_to_video_reports_no_size(self, provider: RunwayProvider) -> None:
        task = await provider.submit(make_req(model="kling2.5_turbo_pro", image=IMG_URL, last_frame=LAST_URL))
        done = (await run_to_end(provider, task))[-1]
        assert (done.status, done.width, done.height, done.seconds) == (VideoStatus.completed, None, None, 5)

    async def test_failure_is_a_snapshot(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        state.task_failure = ("SAFETY.OUTPUT.VIDEO", "The output was flagged.")
        done = (await run_to_end(provider, await provider.submit(make_req())))[-1]
        assert (done.status, done.error_code, done.error_message, done.usage) == (
            VideoStatus.failed,
            "SAFETY.OUTPUT.VIDEO",
            "The output was flagged.",
            {"credits": 0.0},
        )

    async def test_throttled_is_queued(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        state.throttle = True
        task = await provider.submit(make_req())
        first = await provider.poll(task)
        assert (first.status, first.meta["status"]) == (VideoStatus.queued, "THROTTLED")
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    async def test_base_url_with_v1_suffix(self, client: httpx.AsyncClient) -> None:
        p = RunwayProvider(client, api_key=KEY, base_url=f"{BASE}/v1/")
        assert (await p.submit(make_req())).vendor_task_id

    async def test_expired_output_is_not_found(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        task = await provider.submit(make_req())
        done = (await run_to_end(provider, task))[-1]
        state.expire_outputs = True
        with pytest.raises(NotFoundAtVendor):
            _ = [c async for c in provider.download(task, done)]


class TestCancel:
    async def test_cancel_live_task_reads_cancelled(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        task = await provider.submit(make_req())
        await provider.cancel(task)
        snap = await provider.poll(task)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "cancelled")
        delete = next(r for r in state.requests if r["method"] == "DELETE")
        assert delete["headers"]["x-runway-version"] == "2024-11-06"

    async def test_cancel_finished_task_deletes_it_and_again_is_fine(self, provider: RunwayProvider) -> None:
        task = await provider.submit(make_req())
        await run_to_end(provider, task)
        await provider.cancel(task)
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(task)
        await provider.cancel(task)  # already gone: nothing to do


class TestFailures:
    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient) -> None:
        p = RunwayProvider(client, api_key="key_" + "f" * 128, base_url=BASE)
        with pytest.raises(AuthFailed):
            await p.submit(make_req())

    async def test_429_is_rate_limited_with_retry_after(self, provider: RunwayProvider, state: FakeRunwayState) -> None:
        state.fail_next("429")
        with pytest.raises(RateLimited) as exc:
            await provider.submit(make_req())
        assert exc.value.retry_after == 7.0

    @pytest.mark.parametrize("kind", ["500", "502", "503", "garbage"])
    async def test_server_faults_are_unavailable(
        self, provider: RunwayProvider, state: FakeRunwayState, kind: str
    ) -> None:
        state.fail_next(kind, on="create")
        with pytest.raises(Unavailable):
            await provider.submit(make_req())
        task = await provider.submit(make_req())
        state.fail_next(kind, on="poll")
        with pytest.raises(Unavailable):
            await provider.poll(task)
        assert (await run_to_end(provider, task))[-1].status is VideoStatus.completed

    @pytest.mark.parametrize(
        ("kind", "code", "text"),
        [
            ("moderation", "moderation_blocked", "content moderation"),
            ("credits", "insufficient_credits", "enough credits"),
            ("asset", "validation_failed", "promptImage: Failed to fetch asset"),
        ],
    )
    async def test_synchronous_rejections(
        self, provider: RunwayProvider, state: FakeRunwayState, kind: str, code: str, text: str
    ) -> None:
        state.fail_next(kind)
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == code and text in exc.value.message

    async def test_vendor_validation_names_the_field(self, provider: RunwayProvider) -> None:
        # the fake refuses what the adapter never sends; call it through a body the table would not build
        with pytest.raises(Rejected) as exc:
            await provider._call("POST", "/v1/text_to_video", {"model": "gen4_turbo", "promptText": "x"})
        assert exc.value.vendor_code == "validation_failed" and "model" in exc.value.message

    async def test_transport_error_is_unavailable(self) -> None:
        def boom(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(boom)) as c:
            with pytest.raises(Unavailable) as exc:
                await RunwayProvider(c, api_key=KEY).submit(make_req())
        assert exc.value.vendor_code == "transport"

    async def test_unknown_task_is_not_found(self, provider: RunwayProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(VendorTask("runway", "3086d332-1963-4c9d-8103-0f90efa72e20"))


class TestFake:
    @pytest.mark.parametrize(
        ("headers", "status"),
        [
            ({}, 401),
            ({"Authorization": KEY, "X-Runway-Version": API_VERSION}, 401),  # no "Bearer"
            ({"Authorization": f"Bearer {KEY}x", "X-Runway-Version": API_VERSION}, 401),
            ({"Authorization": f"Bearer {KEY}"}, 400),  # no version
            ({"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-09-13"}, 400),
            ({"Authorization": f"Bearer {KEY}", "X-Runway-Version": API_VERSION}, 200),
        ],
    )
    async def test_auth_and_version_are_exact_on_every_route(
        self, client: httpx.AsyncClient, headers: dict[str, str], status: int
    ) -> None:
        good = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": API_VERSION}
        body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}
        task_id = (await client.post(f"{BASE}/v1/text_to_video", json=body, headers=good)).json()["id"]
        r = await client.post(f"{BASE}/v1/text_to_video", json=body, headers=headers)
        assert r.status_code == status and ("error" in r.json() or status == 200)
        assert (await client.get(f"{BASE}/v1/tasks/{task_id}", headers=headers)).status_code == status
        delete = await client.delete(f"{BASE}/v1/tasks/{task_id}", headers=headers)
        assert delete.status_code == (204 if status == 200 else status)

    async def test_validation_answers_every_issue_at_once(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": API_VERSION}
        body = {"model": "gen4.5", "prompt": "x", "ratio": "1920:1080", "duration": "5"}
        r = await client.post(f"{BASE}/v1/text_to_video", json=body, headers=headers)
        assert r.status_code == 400
        data = r.json()
        assert data["error"] == "Validation of body failed" and data["docUrl"]
        assert {i["code"] for i in data["issues"]} == {"unrecognized_keys", "invalid_type", "invalid_value"}
        paths = {tuple(i["path"]) for i in data["issues"]}
        assert {("promptText",), ("ratio",), ("duration",), ()} <= paths

    async def test_model_on_the_wrong_endpoint(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": API_VERSION}
        r = await client.post(f"{BASE}/v1/text_to_video", json={"model": "gen4_turbo"}, headers=headers)
        assert r.json()["issues"][0]["code"] == "invalid_union"

    async def test_wrong_method_is_405(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(f"{BASE}/v1/text_to_video")).status_code == 405

    async def test_organization(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": API_VERSION}
        data = (await client.get(f"{BASE}/v1/organization", headers=headers)).json()
        assert data["creditBalance"] == 1000 and "gen4_turbo" in data["tier"]["models"]

    @pytest.mark.parametrize(
        ("uri", "message"),
        [
            ("http://cdn.example.com/a.png", "Only HTTPS URLs are allowed."),
            ("https://10.1.2.3/a.png", "URLs must be hosted on a domain."),
            ("data:text/plain;base64,aGk=", "Invalid data URI."),
            ("data:image/png;base64,!!!", "Invalid data URI."),
            ("https://cdn.example.com/redirect.png", 'Failed to fetch asset. Received HTTP response code "302"'),
            ("https://cdn.example.com/octet.png", "Unsupported asset type."),
        ],
    )
    async def test_images_are_checked_like_runway(self, uri: str, message: str) -> None:
        def assets(request: httpx.Request) -> httpx.Response:
            assert request.method == "HEAD"
            if request.url.path == "/redirect.png":
                return httpx.Response(302, headers={"Location": "https://elsewhere.example.com/a.png"})
            return httpx.Response(200, headers={"Content-Type": "application/octet-stream", "Content-Length": "9"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(assets)) as heads:
            body = {"model": "gen4_turbo", "promptImage": uri, "ratio": "1280:720"}
            issues, _ = await validate("image_to_video", body, heads)
        assert [i["message"] for i in issues] == [message]

    async def test_a_good_url_passes_the_head_check(self) -> None:
        def assets(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"Content-Type": "image/png", "Content-Length": "1234"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(assets)) as heads:
            body = {"model": "gen4_turbo", "promptImage": "https://cdn.example.com/ok.png", "ratio": "1280:720"}
            assert (await validate("image_to_video", body, heads))[0] == []

    async def test_last_frame_only_where_the_model_takes_one(self) -> None:
        items = [
            {"uri": "https://a.example.com/1.png", "position": "first"},
            {"uri": "https://a.example.com/2.png", "position": "last"},
        ]
        assert (await validate("image_to_video", {"model": "veo3.1", "promptImage": items, "ratio": "1280:720"}))[
            0
        ] == []
        issues, _ = await validate("image_to_video", {"model": "gen4_turbo", "promptImage": items, "ratio": "1280:720"})
        assert issues and issues[0]["path"] == ["promptImage", 1, "position"]

    def test_fake_knows_the_same_models(self) -> None:
        for endpoint in ("text_to_video", "image_to_video"):
            assert fake_runway.RULES[endpoint].keys() == SCHEMAS[endpoint].keys()


# ---------------------------------------------------------------------------------------------
# through the gateway (in-process), for the rules the e2e table does not cover


@pytest.fixture
async def gw(database_url: str, tmp_path: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient, dict[str, str], Any]]:
    from tests.conftest import new_key
    from tests.providers.test_vendor_rules import gateway_with

    app_, st = make_app()
    gen = gateway_with(app_, database_url, tmp_path, runway_api_key=KEY, runway_base_url=BASE)
    app = await gen.__anext__()
    key = await new_key(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield app, c, {"Authorization": f"Bearer {key}"}, st
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()


class TestThroughTheGateway:
    async def test_moderation_at_submit_is_a_400_moderation_blocked(self, gw: Any) -> None:
        from tests.videos.test_http import assert_error

        _, c, auth, st = gw
        st.fail_next("moderation")
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "gen4.5"})
        err = assert_error(r, 400, code="moderation_blocked")
        assert "content moderation" in err["message"]

    async def test_strict_names_the_allowed_values_before_any_call(self, gw: Any) -> None:
        from tests.videos.test_http import assert_error

        app, c, auth, st = gw
        app.state.gateway.settings.param_policy = "strict"
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "veo3.1", "seconds": "5"})
        err = assert_error(r, 400, param="seconds")
        assert all(v in err["message"] for v in ("4", "6", "8"))
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "veo3.1", "size": "1024x1024"})
        assert "1920x1080" in assert_error(r, 400, param="size")["message"]
        assert st.creates() == []

    async def test_nearest_snaps_and_metadata_cannot_override_the_model(self, gw: Any) -> None:
        from tests.videos.test_http import finish

        _, c, auth, st = gw
        body = {
            "prompt": "x",
            "model": "veo3.1",
            "seconds": "5",
            "size": "1024x1024",
            "metadata": {"model": "veo3", "seed": "11", "ratio": "1:1", "negative_prompt": "rain"},
        }
        r = await c.post("/v1/videos", headers=auth, json=body)
        assert r.status_code == 200, r.text
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"
        assert st.creates()[-1] == {
            "model": "veo3.1",
            "promptText": "x",
            "ratio": "1280:720",
            "duration": 6,
            "seed": 11,
            "negativePrompt": "rain",
        }

    async def test_first_and_last_frame_uploads_reach_runway_inline(self, gw: Any) -> None:
        import io

        from tests.videos.test_http import finish

        _, c, auth, st = gw
        first, last = solid_image((200, 0, 0), size=(128, 72)), solid_image((0, 0, 200), size=(128, 72))
        r = await c.post(
            "/v1/videos",
            headers=auth,
            data={"prompt": "x", "model": "veo3.1_fast", "seconds": "4"},
            files={
                "input_reference": ("a.jpg", io.BytesIO(first), "image/jpeg"),
                "last_frame": ("b.jpg", io.BytesIO(last), "image/jpeg"),
            },
        )
        assert r.status_code == 200, r.text
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"
        sent = st.creates()[-1]["promptImage"]
        assert [i["position"] for i in sent] == ["first", "last"]
        assert all(i["uri"].startswith("data:image/jpeg;base64,") for i in sent)
        assert [i["size"] for i in st.images] == [(128, 72), (128, 72)]
