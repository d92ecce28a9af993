"""Wanxiang (DashScope) adapter: mapping tables, golden native bodies, and the adapter against the fake."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest

from app.providers.base import (
    AuthFailed,
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
from app.providers.capabilities import parse_size
from app.providers.vendors import VENDORS
from app.providers.wanxiang import (
    DEFAULT_BASE_URL,
    MODELS,
    RATIO_OF,
    SIZE_CLASS,
    STATUS,
    TIERS,
    WanxiangProvider,
    build_body,
    kind_of,
    map_error,
    protocol_of,
    snapshot,
)
from tests.fakes.assets import real_mp4
from tests.fakes.wanxiang import FAKE_MODELS, KF2V_PATH, T2V_PATH, FakeState, make_app

pytestmark = pytest.mark.engine  # these tests watch videos finish

BASE = "https://dashscope.test"
KEY = "sk-test-wanxiang"
CAPS = {caps.name: caps for caps in MODELS}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def has_sound(data: bytes) -> bool:
    with av.open(io.BytesIO(data)) as container:
        return bool(container.streams.audio)


def anchor(model: str) -> dict[str, Any]:
    """The least metadata a model needs besides the OpenAI fields (reference material for r2v / media i2v)."""
    if model == "wan2.6-r2v":
        return {"reference_video_urls": ["https://e.test/ref.mp4"]}
    if model.endswith("r2v"):
        return {"reference_image_urls": ["https://e.test/ref.png"]}
    if model.startswith(("wan2.7", "happyhorse")) and model.endswith("i2v"):
        return {"first_frame_url": "https://e.test/first.png"}
    return {}


def make_req(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "video_abc",
        "model": "wan2.5-t2v-preview",
        "prompt": "A kitten running in the moonlight",
        "width": 1280,
        "height": 720,
        "seconds": 5,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


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
def provider(client: httpx.AsyncClient) -> WanxiangProvider:
    return WanxiangProvider(client, api_key=KEY, base_url=BASE)


async def poll_until_terminal(provider: WanxiangProvider, task: VendorTask) -> list[TaskSnapshot]:
    snaps = []
    for _ in range(10):
        snaps.append(await provider.poll(task))
        if snaps[-1].status in {VideoStatus.completed, VideoStatus.failed}:
            return snaps
    raise AssertionError(f"never terminal: {snaps}")


# ---------------------------------------------------------------------------------------------


class TestModels:
    EXPECTED = {
        # name: (tiers, seconds, image, last_frame, default_size)
        "wan2.5-t2v-preview": (("480P", "720P", "1080P"), (5, 10), "none", False, (1920, 1080)),
        "wan2.2-t2v-plus": (("480P", "1080P"), (5,), "none", False, (1920, 1080)),
        "wanx2.1-t2v-turbo": (("480P", "720P"), (5,), "none", False, (1280, 720)),
        "wanx2.1-t2v-plus": (("720P",), (5,), "none", False, (1280, 720)),
        "wan2.5-i2v-preview": (("480P", "720P", "1080P"), (5, 10), "required", False, (1920, 1080)),
        "wan2.2-i2v-flash": (("480P", "720P", "1080P"), (5,), "required", False, (1280, 720)),
        "wan2.2-i2v-plus": (("480P", "1080P"), (5,), "required", False, (1920, 1080)),
        "wanx2.1-i2v-plus": (("720P",), (5,), "required", False, (1280, 720)),
        "wanx2.1-i2v-turbo": (("480P", "720P"), (3, 4, 5), "required", False, (1280, 720)),
        "wan2.2-kf2v-flash": (("480P", "720P", "1080P"), (5,), "required", True, (1280, 720)),
        "wanx2.1-kf2v-plus": (("720P",), (5,), "required", True, (1280, 720)),
        # the current models (package docstring): legacy wan2.6, media-protocol wan2.7 and HappyHorse
        "wan2.6-t2v": (("720P", "1080P"), (5, 10, 15), "none", False, (1920, 1080)),
        "wan2.6-i2v": (("720P", "1080P"), (5, 10, 15), "required", False, (1920, 1080)),
        "wan2.6-r2v": (("720P", "1080P"), (5, 10), "none", False, (1280, 720)),
    }
    # name: (seconds_range, image, last_frame) for the models with a duration range; all 720P/1080P, 1920x1080
    RANGED = {
        "wan2.6-i2v-flash": ((2, 15), "required", False),
        "wan2.7-t2v": ((2, 15), "none", False),
        "wan2.7-i2v": ((2, 15), "optional", True),
        "wan2.7-r2v": ((2, 15), "optional", False),
        "happyhorse-1.0-t2v": ((3, 15), "none", False),
        "happyhorse-1.0-i2v": ((3, 15), "required", False),
        "happyhorse-1.0-r2v": ((3, 15), "optional", False),
    }
    SOUND = {"wan2.5-t2v-preview", "wan2.5-i2v-preview"} | {n for n in CAPS if n.startswith(("wan2.6", "wan2.7"))}

    def test_every_named_model_is_declared(self) -> None:
        assert set(CAPS) == set(self.EXPECTED) | set(self.RANGED)
        assert set(FAKE_MODELS) - {"wan2.1-kf2v-plus"} == set(CAPS)

    @pytest.mark.parametrize("name", sorted(RANGED))
    def test_ranged_caps(self, name: str) -> None:
        seconds_range, image, last_frame = self.RANGED[name]
        caps = CAPS[name]
        assert caps.seconds == ()
        assert caps.seconds_range == seconds_range
        assert set(caps.sizes) == set(TIERS["720P"] + TIERS["1080P"])
        assert (caps.image, caps.last_frame, caps.default_size, caps.default_seconds) == (
            image,
            last_frame,
            (1920, 1080),
            5,
        )

    @pytest.mark.parametrize("name", sorted(CAPS))
    def test_audio_flag(self, name: str) -> None:
        # Wan 2.5 / 2.6 / 2.7 make sound; HappyHorse's is UNCONFIRMED, so it is not promised
        assert CAPS[name].audio is (name in self.SOUND)
        assert ("audio_url" in CAPS[name].extras) is (name in self.SOUND and not name.endswith("r2v"))

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_caps(self, name: str) -> None:
        tiers, seconds, image, last_frame, default = self.EXPECTED[name]
        caps = CAPS[name]
        assert caps.provider == "wanxiang"
        assert set(caps.sizes) == {size for tier in tiers for size in TIERS[tier]}
        assert caps.seconds == seconds
        assert caps.image == image
        assert caps.last_frame is last_frame
        assert caps.default_size == default
        assert default in caps.sizes
        assert caps.default_seconds == 5
        assert 5 in caps.seconds
        assert not caps.remix
        assert not caps.edit
        assert not caps.extend

    @pytest.mark.parametrize("name", sorted(CAPS))
    def test_table_agrees_with_the_fakes_copy_of_the_doc(self, name: str) -> None:
        caps, fake_model = CAPS[name], FAKE_MODELS[name]
        native = {
            build_body(make_req(model=name, width=w, height=h, extras=anchor(name)))["parameters"].get("size")
            or SIZE_CLASS[(w, h)]
            for w, h in caps.sizes
        }
        assert native == set(fake_model.choices)
        lo, hi = caps.seconds_range
        assert (caps.seconds or tuple(range(lo, hi + 1))) == fake_model.durations

    def test_constants(self) -> None:
        assert DEFAULT_BASE_URL == "https://dashscope.aliyuncs.com"
        assert VENDORS["wanxiang"].image_transport == "either"


class TestSizeAndSeconds:
    @pytest.mark.parametrize(
        ("model", "size", "expected"),
        [
            ("wan2.5-t2v-preview", (1920, 1080), {"size": "1920*1080"}),
            ("wan2.5-t2v-preview", (832, 1088), {"size": "832*1088"}),
            ("wan2.2-t2v-plus", (624, 624), {"size": "624*624"}),
            ("wanx2.1-t2v-plus", (720, 1280), {"size": "720*1280"}),
            ("wan2.5-i2v-preview", (1088, 832), {"resolution": "720P"}),
            ("wan2.5-i2v-preview", (1248, 1632), {"resolution": "1080P"}),
            ("wan2.2-i2v-plus", (480, 832), {"resolution": "480P"}),
            ("wan2.2-kf2v-flash", (1440, 1440), {"resolution": "1080P"}),
            ("wanx2.1-kf2v-plus", (960, 960), {"resolution": "720P"}),
        ],
    )
    def test_size_to_native(self, model: str, size: tuple[int, int], expected: dict[str, str]) -> None:
        params = build_body(make_req(model=model, width=size[0], height=size[1]))["parameters"]
        assert {k: v for k, v in params.items() if k in {"size", "resolution"}} == expected

    @pytest.mark.parametrize(("tier", "size"), [(t, s) for t, sizes in TIERS.items() for s in sizes])
    def test_every_doc_size_maps_to_its_class(self, tier: str, size: tuple[int, int]) -> None:
        assert SIZE_CLASS[size] == tier

    @pytest.mark.parametrize(
        ("model", "requested", "expected"),
        [
            ("wanx2.1-i2v-plus", "1920x1080", "720P"),  # only 720P: snaps down
            ("wan2.2-i2v-plus", "1280x720", "1080P"),  # no 720P tier: nearest 16:9 by area
            ("wanx2.1-i2v-turbo", "1080p", "720P"),
            ("wan2.5-i2v-preview", "480P", "480P"),
        ],
    )
    def test_service_snapping_then_class(self, model: str, requested: str, expected: str) -> None:
        w, h = CAPS[model].resolve_size(parse_size(requested), "nearest")
        assert build_body(make_req(model=model, width=w, height=h))["parameters"]["resolution"] == expected

    @pytest.mark.parametrize(
        ("model", "seconds", "expected"),
        [
            ("wan2.5-t2v-preview", 10, 10),
            ("wan2.5-i2v-preview", 5, 5),
            ("wanx2.1-i2v-turbo", 3, 3),
            ("wanx2.1-i2v-turbo", 4, 4),
            ("wan2.2-t2v-plus", 5, None),  # fixed-duration models get no duration field
            ("wan2.2-kf2v-flash", 5, None),
        ],
    )
    def test_seconds_to_duration(self, model: str, seconds: int, expected: int | None) -> None:
        w, h = CAPS[model].default_size
        params = build_body(make_req(model=model, width=w, height=h, seconds=seconds))["parameters"]
        assert params.get("duration") == expected

    def test_service_snaps_openai_default_four_seconds(self) -> None:
        assert CAPS["wan2.5-t2v-preview"].resolve_seconds(4, "nearest") == 5
        assert CAPS["wanx2.1-i2v-turbo"].resolve_seconds(4, "nearest") == 4


class TestGoldenBodies:
    def test_t2v_matches_the_doc_example(self) -> None:
        extras = {
            "negative_prompt": "blurry",
            "audio_url": "https://example.com/a.mp3",
            "prompt_extend": "true",
            "watermark": "false",
            "seed": "12345",
            "audio": "true",
            "model": "someone-elses-model",
            "sandbox_outcome": "fail",
        }
        assert build_body(make_req(extras=extras)) == {
            "model": "wan2.5-t2v-preview",
            "input": {
                "prompt": "A kitten running in the moonlight",
                "negative_prompt": "blurry",
                "audio_url": "https://example.com/a.mp3",
            },
            "parameters": {
                "size": "1280*720",
                "duration": 5,
                "prompt_extend": True,
                "watermark": False,
                "seed": 12345,
                "audio": True,
            },
        }

    def test_i2v_with_url_matches_the_doc_example(self) -> None:
        req = make_req(
            model="wan2.2-i2v-flash",
            prompt="A cat running on grass",
            image=ImageInput(url="https://example.com/first.png"),
            extras={"prompt_extend": True},
        )
        assert build_body(req) == {
            "model": "wan2.2-i2v-flash",
            "input": {"prompt": "A cat running on grass", "img_url": "https://example.com/first.png"},
            "parameters": {"resolution": "720P", "prompt_extend": True},
        }

    def test_i2v_with_uploaded_bytes_is_a_data_url(self) -> None:
        req = make_req(
            model="wan2.5-i2v-preview",
            width=1920,
            height=1080,
            seconds=10,
            image=ImageInput(data=PNG, mime="image/png"),
        )
        assert build_body(req) == {
            "model": "wan2.5-i2v-preview",
            "input": {
                "prompt": "A kitten running in the moonlight",
                "img_url": ImageInput(PNG, "image/png").data_url(),
            },
            "parameters": {"resolution": "1080P", "duration": 10},
        }

    def test_url_is_preferred_over_bytes(self) -> None:
        image = ImageInput(data=PNG, mime="image/png", url="https://cdn.test/frame.png")
        body = build_body(make_req(model="wan2.5-i2v-preview", image=image))
        assert body["input"]["img_url"] == "https://cdn.test/frame.png"

    def test_i2v_metadata_img_url_only_when_no_image(self) -> None:
        relay = make_req(model="wan2.5-i2v-preview", extras={"img_url": "https://example.com/meta.jpg"})
        assert build_body(relay)["input"]["img_url"] == "https://example.com/meta.jpg"
        both = make_req(
            model="wan2.5-i2v-preview",
            image=ImageInput(url="https://x.test/upload.png"),
            extras={"img_url": "https://example.com/meta.jpg"},
        )
        assert build_body(both)["input"]["img_url"] == "https://x.test/upload.png"

    def test_kf2v_from_request_images(self) -> None:
        req = make_req(
            model="wan2.2-kf2v-flash",
            width=832,
            height=480,
            prompt="Realistic style, a small black cat",
            image=ImageInput(url="https://x.test/first.png"),
            last_frame=ImageInput(data=PNG, mime="image/png"),
            extras={"prompt_extend": "1"},
        )
        assert build_body(req) == {
            "model": "wan2.2-kf2v-flash",
            "input": {
                "prompt": "Realistic style, a small black cat",
                "first_frame_url": "https://x.test/first.png",
                "last_frame_url": "data:image/png;base64," + ImageInput(PNG).b64(),
            },
            "parameters": {"resolution": "480P", "prompt_extend": True},
        }

    def test_kf2v_from_relay_metadata(self) -> None:
        extras = {
            "first_frame_url": "https://e.com/start.jpg",
            "last_frame_url": "https://e.com/end.jpg",
            "resolution": "720p",
            "watermark": False,
        }
        body = build_body(make_req(model="wan2.2-kf2v-flash", width=1920, height=1080, extras=extras))
        assert body["input"] == {
            "prompt": "A kitten running in the moonlight",
            "first_frame_url": "https://e.com/start.jpg",
            "last_frame_url": "https://e.com/end.jpg",
        }
        # The relay convention lets metadata set the class; it is normalised to the vendor's spelling.
        assert body["parameters"] == {"resolution": "720P", "watermark": False}

    def test_kf2v_takes_metadata_img_url_as_first_frame(self) -> None:
        extras = {"img_url": "https://e.com/a.jpg", "last_frame_url": "https://e.com/b.jpg"}
        inp = build_body(make_req(model="wanx2.1-kf2v-plus", extras=extras))["input"]
        assert inp["first_frame_url"] == "https://e.com/a.jpg"
        assert "img_url" not in inp

    def test_nested_metadata_and_template(self) -> None:
        extras = {
            "input": {"template": "flying", "model": "x"},
            "parameters": {"seed": "7", "watermark": "on"},
        }
        body = build_body(make_req(model="wanx2.1-i2v-plus", extras=extras, image=ImageInput(url="https://i")))
        assert body["model"] == "wanx2.1-i2v-plus"
        assert body["input"]["template"] == "flying"
        assert "model" not in body["input"]
        assert body["parameters"] == {"resolution": "720P", "seed": 7, "watermark": True}

    @pytest.mark.parametrize(("key", "value"), [("seed", "abc"), ("watermark", "maybe"), ("duration", "5s")])
    def test_bad_metadata_types_are_rejected(self, key: str, value: str) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(extras={key: value}))
        assert exc.value.vendor_code == "InvalidParameter"
        assert key in exc.value.message

    def test_empty_prompt_is_left_out(self) -> None:
        body = build_body(
            make_req(
                model="wanx2.1-i2v-plus",
                prompt="",
                extras={"template": "flying"},
                image=ImageInput(url="https://i"),
            )
        )
        assert body["input"] == {"img_url": "https://i", "template": "flying"}


class TestStatus:
    def test_every_documented_status_is_mapped(self) -> None:
        assert STATUS == {
            "PENDING": VideoStatus.queued,
            "RUNNING": VideoStatus.in_progress,
            "SUSPENDED": VideoStatus.in_progress,
            "SUCCEEDED": VideoStatus.completed,
            "FAILED": VideoStatus.failed,
            "CANCELED": VideoStatus.failed,
            "UNKNOWN": VideoStatus.failed,
        }

    @pytest.mark.parametrize(
        ("vendor", "status", "progress"),
        [("PENDING", "queued", 0), ("RUNNING", "in_progress", 50), ("SUSPENDED", "in_progress", 50)],
    )
    def test_running_states(self, vendor: str, status: str, progress: int) -> None:
        snap = snapshot({"request_id": "r", "output": {"task_id": "t", "task_status": vendor}})
        assert (snap.status, snap.progress, snap.poll_after) == (status, progress, 15.0)

    def test_succeeded_doc_example(self) -> None:
        raw = {
            "request_id": "4c87e22d",
            "output": {
                "task_id": "436310e6",
                "task_status": "SUCCEEDED",
                "submit_time": "2025-07-27 21:05:15.212",
                "end_time": "2025-07-27 21:07:58.027",
                "video_url": "https://oss.test/xxx.mp4?Expires=1",
                "orig_prompt": "一只猫",
                "actual_prompt": "一只白猫",
            },
            "usage": {"video_duration": 5, "video_count": 1, "SR": 1080},
        }
        snap = snapshot(raw)
        assert snap.status == VideoStatus.completed
        assert snap.progress == 100
        assert snap.video_url == "https://oss.test/xxx.mp4?Expires=1"
        assert snap.seconds == 5
        assert snap.meta == {"actual_prompt": "一只白猫"}

    @pytest.mark.parametrize(
        ("output", "usage", "url", "seconds"),
        [
            ({"video_url": "https://a"}, {"duration": 10}, "https://a", 10),
            ({"results": {"video_url": "https://b"}}, {"video_duration": 10.23}, "https://b", 10),
            ({"video_url": "https://c"}, None, "https://c", None),
        ],
    )
    def test_succeeded_variants(self, output: dict[str, Any], usage: Any, url: str, seconds: int | None) -> None:
        raw: dict[str, Any] = {"output": {"task_id": "t", "task_status": "SUCCEEDED", **output}}
        if usage:
            raw["usage"] = usage
        snap = snapshot(raw)
        assert (snap.status, snap.video_url, snap.seconds) == (VideoStatus.completed, url, seconds)

    def test_succeeded_without_url_is_failed(self) -> None:
        snap = snapshot({"output": {"task_id": "t", "task_status": "SUCCEEDED"}})
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "NoVideoUrl")

    @pytest.mark.parametrize(
        ("output", "code", "message"),
        [
            (
                {"task_status": "FAILED", "code": "InvalidParameter", "message": "The size is not match"},
                "InvalidParameter",
                "The size is not match",
            ),
            (
                {"task_status": "FAILED", "code": "DataInspectionFailed", "message": "inappropriate"},
                "DataInspectionFailed",
                "inappropriate",
            ),
            ({"task_status": "FAILED"}, "TaskFailed", "The video generation task failed."),
            ({"task_status": "CANCELED"}, "Canceled", "The task was canceled."),
            ({"task_status": "UNKNOWN"}, "TaskNotFound", None),
        ],
    )
    def test_failures_are_snapshots(self, output: dict[str, Any], code: str, message: str | None) -> None:
        snap = snapshot({"request_id": "r", "output": {"task_id": "t", **output}})
        assert snap.status == VideoStatus.failed
        assert snap.error_code == code
        assert snap.error_message
        assert message is None or snap.error_message == message
        assert snap.video_url is None

    def test_unknown_state_keeps_polling(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING):
            snap = snapshot({"output": {"task_id": "t", "task_status": "WARMING_UP"}})
        assert snap.status == VideoStatus.in_progress
        assert "WARMING_UP" in caplog.text

    @pytest.mark.parametrize("raw", [{}, {"output": {}}, {"output": "nope"}, {"output": {"task_status": 3.5}}])
    def test_unparsable_is_unavailable(self, raw: dict[str, Any]) -> None:
        with pytest.raises(Unavailable):
            snapshot(raw)


class TestErrorMapping:
    @pytest.mark.parametrize(
        ("http", "code", "cls"),
        [
            (400, "InvalidParameter", Rejected),
            (400, "DataInspectionFailed", Rejected),
            (400, "InvalidParameter.DataInspection", Rejected),
            (400, "BadRequest.EmptyInput", Rejected),
            (400, "BadRequest.EmptyParameters", Rejected),
            (400, "BadRequest.EmptyModel", Rejected),
            (400, "InvalidURL", Rejected),
            (400, "Arrearage", Rejected),
            (400, "UnsupportedOperation", Rejected),
            (401, "InvalidApiKey", AuthFailed),
            (403, "AccessDenied", AuthFailed),
            (403, "AccessDenied.Unpurchased", AuthFailed),
            (408, "RequestTimeOut", Unavailable),
            (413, "BadRequest.TooLarge", Rejected),
            (429, "Throttling", RateLimited),
            (429, "Throttling.RateQuota", RateLimited),
            (429, "Throttling.AllocationQuota", RateLimited),
            (500, "InternalError", Unavailable),
            (500, "InternalError.Algo", Unavailable),
            (503, "", Unavailable),
            # HTTP 200 carrying an error code
            (200, "InvalidParameter", Rejected),
            (200, "Throttling.RateQuota", RateLimited),
            (200, "InvalidApiKey", AuthFailed),
            (200, "InternalError", Unavailable),
        ],
    )
    def test_codes(self, http: int, code: str, cls: type[ProviderError]) -> None:
        err = map_error(http, {"request_id": "r", "code": code, "message": f"msg {code}"})
        assert type(err) is cls
        assert err.vendor_code == (code or None)
        assert err.message == f"msg {code}"
        assert err.provider == "wanxiang"
        assert err.status_code == http

    @pytest.mark.parametrize(
        ("http", "cls"),
        [(401, AuthFailed), (429, RateLimited), (502, Unavailable), (400, Rejected), (404, Unavailable)],
    )
    def test_non_json_bodies(self, http: int, cls: type[ProviderError]) -> None:
        err = map_error(http, None)
        assert type(err) is cls
        assert str(http) in err.message

    def test_retry_after_is_kept(self) -> None:
        assert map_error(429, {"code": "Throttling"}, retry_after=7).retry_after == 7


# ---------------------------------------------------------------------------------------------


class _Deadline(httpx.AsyncBaseTransport):
    """ASGITransport ignores timeouts; this enforces one so the fake's hang becomes a ReadTimeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), self.seconds)
        except TimeoutError:
            raise httpx.ReadTimeout("deadline", request=request) from None


class TestAgainstFake:
    async def test_protocol(self, provider: WanxiangProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert provider.name == "wanxiang"

    async def test_t2v_lifecycle_and_download(self, provider: WanxiangProvider, state: FakeState) -> None:
        req = make_req(seconds=10, extras={"seed": "42", "prompt_extend": "false"})
        task = await provider.submit(req)
        assert task.provider == "wanxiang"
        assert task.vendor_task_id in state.tasks
        assert task.meta == {"model": "wan2.5-t2v-preview", "kind": "t2v"}

        sent = state.requests[-1]
        assert sent.path == T2V_PATH
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.headers["x-dashscope-async"] == "enable"
        assert sent.json == build_body(req)

        snaps = await poll_until_terminal(provider, task)
        assert [s.status for s in snaps] == ["queued", "in_progress", "completed"]
        assert [s.progress for s in snaps] == [0, 50, 100]
        done = snaps[-1]
        assert done.seconds == 10
        assert done.video_url
        assert "Signature=" in done.video_url
        polls = [r for r in state.requests if r.method == "GET" and r.path.startswith("/api/v1/tasks/")]
        assert all("x-dashscope-async" not in r.headers for r in polls)

        data = b"".join([chunk async for chunk in provider.download(task, done)])
        assert data == real_mp4(audio=True)  # Wan 2.5 makes sound
        assert data[4:8] == b"ftyp"
        assert has_sound(data)
        # The signed OSS link is fetched without our key.
        assert "authorization" not in state.requests[-1].headers

    async def test_i2v_with_bytes_passes_vendor_validation(self, provider: WanxiangProvider, state: FakeState) -> None:
        req = make_req(
            model="wanx2.1-i2v-turbo",
            width=832,
            height=480,
            seconds=3,
            image=ImageInput(data=PNG, mime="image/png"),
        )
        task = await provider.submit(req)
        body = state.creates()[-1]
        assert state.requests[-1].path == T2V_PATH
        assert body["input"]["img_url"].startswith("data:image/png;base64,")
        assert body["parameters"] == {"resolution": "480P", "duration": 3}
        assert (await poll_until_terminal(provider, task))[-1].status == VideoStatus.completed

    async def test_kf2v_goes_to_the_image2video_path(self, provider: WanxiangProvider, state: FakeState) -> None:
        req = make_req(
            model="wanx2.1-kf2v-plus",
            image=ImageInput(url="https://x/first.png"),
            last_frame=ImageInput(url="https://x/last.png"),
        )
        task = await provider.submit(req)
        assert state.requests[-1].path == KF2V_PATH
        assert task.meta["kind"] == "kf2v"
        assert state.creates()[-1]["input"]["last_frame_url"] == "https://x/last.png"
        assert (await poll_until_terminal(provider, task))[-1].status == VideoStatus.completed

    async def test_suspended_is_walked_through(self) -> None:
        app, _ = make_app(api_key=KEY, lifecycle=("PENDING", "SUSPENDED", "RUNNING"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            p = WanxiangProvider(c, api_key=KEY, base_url=BASE)
            snaps = await poll_until_terminal(p, await p.submit(make_req()))
        assert [s.status for s in snaps] == ["queued", "in_progress", "in_progress", "completed"]

    async def test_failed_task(self, provider: WanxiangProvider, state: FakeState) -> None:
        state.task_failure = ("DataInspectionFailed", "Output data may contain inappropriate content.")
        snaps = await poll_until_terminal(provider, await provider.submit(make_req()))
        assert snaps[-1].status == VideoStatus.failed
        assert snaps[-1].error_code == "DataInspectionFailed"
        assert snaps[-1].error_message == "Output data may contain inappropriate content."

    async def test_wrong_key_is_auth_failed(self, client: httpx.AsyncClient, provider: WanxiangProvider) -> None:
        wrong = WanxiangProvider(client, api_key="sk-wrong", base_url=BASE)
        with pytest.raises(AuthFailed) as exc:
            await wrong.submit(make_req())
        assert exc.value.vendor_code == "InvalidApiKey"
        assert exc.value.status_code == 401
        task = await provider.submit(make_req())
        with pytest.raises(AuthFailed):
            await wrong.poll(task)
        with pytest.raises(AuthFailed):
            await wrong.cancel(task)

    async def test_missing_async_header_is_refused(self, client: httpx.AsyncClient) -> None:
        resp = await client.post(
            f"{BASE}{T2V_PATH}", json=build_body(make_req()), headers={"Authorization": f"Bearer {KEY}"}
        )
        assert resp.status_code == 403
        assert resp.json()["message"] == "current user api does not support synchronous calls"
        assert map_error(resp.status_code, resp.json()).__class__ is AuthFailed

    async def test_trailing_slash_create_path(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
        resp = await client.post(f"{BASE}{T2V_PATH}/", json=build_body(make_req()), headers=headers)
        assert resp.status_code == 200
        assert resp.json()["output"]["task_status"] == "PENDING"

    @pytest.mark.parametrize(
        ("fault", "cls", "code"),
        [
            ("throttle", RateLimited, "Throttling.RateQuota"),
            ("quota", RateLimited, "Throttling.AllocationQuota"),
            ("http500", Unavailable, "InternalError"),
            ("http503", Unavailable, "ServiceUnavailable"),
            ("garbage", Unavailable, None),
            ("error200", Rejected, "InvalidParameter"),
            ("moderation", Rejected, "DataInspectionFailed"),
            ("arrearage", Rejected, "Arrearage"),
            ("unpurchased", AuthFailed, "AccessDenied.Unpurchased"),
        ],
    )
    async def test_create_faults(
        self,
        provider: WanxiangProvider,
        state: FakeState,
        fault: str,
        cls: type[ProviderError],
        code: str | None,
    ) -> None:
        state.fail_next(fault, on="create")
        with pytest.raises(cls) as exc:
            await provider.submit(make_req())
        assert type(exc.value) is cls
        assert exc.value.vendor_code == code
        assert not state.tasks
        await provider.submit(make_req())  # the fault was one-shot
        assert len(state.tasks) == 1

    @pytest.mark.parametrize(
        ("fault", "cls"),
        [
            ("throttle", RateLimited),
            ("http500", Unavailable),
            ("garbage", Unavailable),
            ("error200", Rejected),
        ],
    )
    async def test_query_faults(
        self, provider: WanxiangProvider, state: FakeState, fault: str, cls: type[ProviderError]
    ) -> None:
        task = await provider.submit(make_req())
        state.fail_next(fault, on="query")
        with pytest.raises(cls):
            await provider.poll(task)
        assert (await provider.poll(task)).status == VideoStatus.queued

    async def test_hang_becomes_unavailable(self, fake: tuple[Any, FakeState]) -> None:
        app, state = fake
        state.fail_next("hang", on="create")
        transport = _Deadline(httpx.ASGITransport(app=app), 0.2)
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(Unavailable) as exc:
                await WanxiangProvider(c, api_key=KEY, base_url=BASE).submit(make_req())
        assert "ReadTimeout" in exc.value.message

    @pytest.mark.parametrize(
        ("req", "message"),
        [
            (make_req(width=1000, height=1000), "size"),
            (make_req(model="wan2.2-t2v-plus", width=1280, height=720), "size"),  # no 720P tier
            (
                make_req(model="wan2.2-t2v-plus", width=1920, height=1080, extras={"duration": "10"}),
                "duration",
            ),
            (make_req(model="wan2.5-t2v-preview", seconds=7), "duration"),
            (make_req(model="wan2.9-t2v-imaginary"), "Model not exist"),
            (
                make_req(model="wan2.2-i2v-plus", width=1280, height=720, image=ImageInput(url="https://i")),
                "resolution",
            ),
            (make_req(model="wan2.5-i2v-preview"), "img_url"),
            (make_req(model="wan2.5-i2v-preview", image=ImageInput(url="ftp://x/y.png")), "Invalid URL"),
            (make_req(model="wan2.2-kf2v-flash", image=ImageInput(url="https://a")), "last_frame_url"),
            (make_req(prompt="", extras={"negative_prompt": "blurry"}), "prompt"),
            (make_req(extras={"seed": "-1"}), "seed"),
        ],
    )
    async def test_vendor_validation_is_rejected(
        self, provider: WanxiangProvider, state: FakeState, req: GenerationRequest, message: str
    ) -> None:
        with pytest.raises(Rejected) as exc:
            await provider.submit(req)
        assert exc.value.vendor_code in {"InvalidParameter", "InvalidURL"}
        assert message in exc.value.message
        assert exc.value.status_code == 400

    async def test_unknown_task_is_failed_not_found(self, provider: WanxiangProvider) -> None:
        snap = await provider.poll(VendorTask("wanxiang", "no-such-task"))
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "TaskNotFound")

    async def test_cancel_while_pending(self, provider: WanxiangProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        await provider.cancel(task)
        assert state.requests[-1].path == f"/api/v1/tasks/{task.vendor_task_id}/cancel"
        snap = await provider.poll(task)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "Canceled")

    async def test_cancel_after_start_is_rejected(self, provider: WanxiangProvider) -> None:
        task = await provider.submit(make_req())
        await provider.poll(task)
        await provider.poll(task)  # RUNNING now
        with pytest.raises(Rejected) as exc:
            await provider.cancel(task)
        assert exc.value.vendor_code == "UnsupportedOperation"

    async def test_expired_result_url(self, provider: WanxiangProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        done = (await poll_until_terminal(provider, task))[-1]
        state.results_expired = True
        with pytest.raises(NotFoundAtVendor):
            _ = [chunk async for chunk in provider.download(task, done)]

    async def test_result_download_fault(self, provider: WanxiangProvider, state: FakeState) -> None:
        task = await provider.submit(make_req())
        done = (await poll_until_terminal(provider, task))[-1]
        state.fail_next("http503", on="result")
        with pytest.raises(Unavailable):
            _ = [chunk async for chunk in provider.download(task, done)]


class TestTransportEdges:
    """Single fault cases the fake cannot produce through ASGITransport."""

    @staticmethod
    def provider_for(handler: Any) -> WanxiangProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        return WanxiangProvider(client, api_key=KEY, base_url=BASE + "/")

    async def test_connect_error_is_unavailable(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        with pytest.raises(Unavailable):
            await self.provider_for(handler).submit(make_req())

    async def test_retry_after_header_and_base_url_slash(self) -> None:
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"code": "Throttling", "message": "slow"})

        with pytest.raises(RateLimited) as exc:
            await self.provider_for(handler).submit(make_req())
        assert exc.value.retry_after == 7.0
        assert seen == [f"{BASE}{T2V_PATH}"]

    async def test_query_404_is_not_found(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(404, json={"code": "TaskNotFound", "message": "task not found"})

        with pytest.raises(NotFoundAtVendor):
            await self.provider_for(handler).poll(VendorTask("wanxiang", "gone"))

    async def test_create_without_task_id_is_unavailable(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"request_id": "r", "output": {"task_status": "PENDING"}})

        with pytest.raises(Unavailable):
            await self.provider_for(handler).submit(make_req())

    async def test_workspace_header(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={"output": {"task_id": "t1", "task_status": "PENDING"}})

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        task = await WanxiangProvider(client, api_key=KEY, base_url=BASE, workspace="ws-1").submit(make_req())
        assert task.vendor_task_id == "t1"
        assert seen[0].headers["X-DashScope-WorkSpace"] == "ws-1"
        assert seen[0].headers["Authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------------------------------------
# The current models: wan2.6 (legacy protocol), wan2.7 and HappyHorse (media protocol)


class TestCurrentModels:
    @pytest.mark.parametrize(
        ("model", "kind", "protocol"),
        [
            ("wan2.6-t2v", "t2v", "legacy"),
            ("wan2.6-i2v-flash", "i2v", "legacy"),
            ("wan2.6-r2v", "r2v", "legacy"),
            ("wan2.7-t2v", "t2v", "media"),
            ("wan2.7-i2v", "i2v", "media"),
            ("wan2.7-r2v", "r2v", "media"),
            ("happyhorse-1.0-i2v", "i2v", "media"),
            ("wan2.5-i2v-preview", "i2v", "legacy"),
            ("wan2.2-kf2v-flash", "kf2v", "legacy"),
        ],
    )
    def test_routing(self, model: str, kind: str, protocol: str) -> None:
        assert (kind_of(model), protocol_of(model)) == (kind, protocol)

    def test_ratio_table(self) -> None:
        assert RATIO_OF[(1920, 1080)] == RATIO_OF[(1280, 720)] == "16:9"
        assert RATIO_OF[(1248, 1632)] == RATIO_OF[(832, 1088)] == "3:4"
        assert RATIO_OF[(1440, 1440)] == "1:1"

    def test_wan26_t2v_golden(self) -> None:
        extras = {"shot_type": "multi", "audio": "false", "prompt_extend": "true", "audio_url": "https://a.test/x.mp3"}
        body = build_body(make_req(model="wan2.6-t2v", width=1080, height=1920, seconds=15, extras=extras))
        assert body == {
            "model": "wan2.6-t2v",
            "input": {"prompt": "A kitten running in the moonlight", "audio_url": "https://a.test/x.mp3"},
            "parameters": {
                "size": "1080*1920",
                "duration": 15,
                "shot_type": "multi",
                "audio": False,
                "prompt_extend": True,
            },
        }

    def test_wan26_i2v_flash_any_integer_duration(self) -> None:
        req = make_req(model="wan2.6-i2v-flash", width=1280, height=720, seconds=7, image=ImageInput(url="https://i"))
        assert build_body(req) == {
            "model": "wan2.6-i2v-flash",
            "input": {"prompt": "A kitten running in the moonlight", "img_url": "https://i"},
            "parameters": {"resolution": "720P", "duration": 7},
        }
        assert CAPS["wan2.6-i2v-flash"].resolve_seconds(4, "nearest") == 4
        assert CAPS["wan2.6-i2v"].resolve_seconds(12, "nearest") in (10, 15)

    def test_wan26_r2v_golden_matches_the_console_sample(self) -> None:
        extras = {"reference_video_urls": '["https://cdn.test/vace.mp4"]', "audio": True, "shot_type": "multi"}
        body = build_body(make_req(model="wan2.6-r2v", prompt="character1 watches a film", extras=extras))
        assert body == {
            "model": "wan2.6-r2v",
            "input": {"prompt": "character1 watches a film", "reference_video_urls": ["https://cdn.test/vace.mp4"]},
            "parameters": {"size": "1280*720", "duration": 5, "audio": True, "shot_type": "multi"},
        }

    def test_wan26_r2v_without_references_is_rejected_before_the_vendor(self) -> None:
        with pytest.raises(Rejected, match="reference_video_urls"):
            build_body(make_req(model="wan2.6-r2v"))

    def test_wan27_t2v_golden_matches_the_doc_example(self) -> None:
        extras = {"prompt_extend": True, "watermark": True, "negative_prompt": "flowers"}
        body = build_body(make_req(model="wan2.7-t2v", width=1280, height=720, seconds=15, extras=extras))
        assert body == {
            "model": "wan2.7-t2v",
            "input": {"prompt": "A kitten running in the moonlight", "negative_prompt": "flowers"},
            "parameters": {
                "resolution": "720P",
                "ratio": "16:9",
                "duration": 15,
                "prompt_extend": True,
                "watermark": True,
            },
        }

    def test_wan27_i2v_every_media_type(self) -> None:
        req = make_req(
            model="wan2.7-i2v",
            width=1920,
            height=1080,
            seconds=10,
            image=ImageInput(url="https://e.test/first.png"),
            last_frame=ImageInput(data=PNG, mime="image/png"),
            extras={"audio_url": "https://e.test/rap.mp3", "watermark": "true"},
        )
        assert build_body(req) == {
            "model": "wan2.7-i2v",
            "input": {
                "prompt": "A kitten running in the moonlight",
                "media": [
                    {"type": "first_frame", "url": "https://e.test/first.png"},
                    {"type": "last_frame", "url": ImageInput(PNG, "image/png").data_url()},
                    {"type": "driving_audio", "url": "https://e.test/rap.mp3"},
                ],
            },
            # image-to-video follows the first frame's shape: no ratio
            "parameters": {"resolution": "1080P", "duration": 10, "watermark": True},
        }

    def test_wan27_i2v_clip_continuation_from_metadata(self) -> None:
        req = make_req(model="wan2.7-i2v", extras={"first_clip_url": "https://e.test/clip.mp4"})
        assert build_body(req)["input"]["media"] == [{"type": "first_clip", "url": "https://e.test/clip.mp4"}]

    @pytest.mark.parametrize("model", ["wan2.7-i2v", "wan2.7-r2v", "happyhorse-1.0-i2v", "happyhorse-1.0-r2v"])
    def test_media_models_without_an_anchor_are_rejected(self, model: str) -> None:
        with pytest.raises(Rejected) as exc:
            build_body(make_req(model=model))
        assert exc.value.vendor_code == "InvalidParameter"

    def test_wan27_r2v_images_and_videos(self) -> None:
        extras = {
            "reference_image_urls": "https://e.test/b.png",
            "reference_video_urls": ["https://e.test/v.mp4"],
            "first_frame_url": "https://e.test/start.png",
        }
        req = make_req(
            model="wan2.7-r2v",
            width=720,
            height=1280,
            seconds=15,
            image=ImageInput(url="https://e.test/a.png"),
            extras=extras,
        )
        assert build_body(req) == {
            "model": "wan2.7-r2v",
            "input": {
                "prompt": "A kitten running in the moonlight",
                "media": [
                    {"type": "first_frame", "url": "https://e.test/start.png"},
                    {"type": "reference_image", "url": "https://e.test/a.png"},
                    {"type": "reference_image", "url": "https://e.test/b.png"},
                    {"type": "reference_video", "url": "https://e.test/v.mp4"},
                ],
            },
            # 2-10 s with a reference video
            "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 10},
        }

    def test_happyhorse_bodies(self) -> None:
        t2v = build_body(make_req(model="happyhorse-1.0-t2v", width=1440, height=1440, seconds=3))
        assert t2v == {
            "model": "happyhorse-1.0-t2v",
            "input": {"prompt": "A kitten running in the moonlight"},
            "parameters": {"resolution": "1080P", "ratio": "1:1", "duration": 3},
        }
        i2v = build_body(make_req(model="happyhorse-1.0-i2v", image=ImageInput(url="https://e.test/f.png")))
        assert i2v["input"]["media"] == [{"type": "first_frame", "url": "https://e.test/f.png"}]
        assert "ratio" not in i2v["parameters"]
        r2v = build_body(make_req(model="happyhorse-1.0-r2v", image=ImageInput(url="https://e.test/r.png")))
        assert r2v["input"]["media"] == [{"type": "reference_image", "url": "https://e.test/r.png"}]

    def test_media_protocol_never_sends_a_pixel_size(self) -> None:
        for name in CAPS:
            if protocol_of(name) == "media":
                params = build_body(make_req(model=name, extras=anchor(name)))["parameters"]
                assert "size" not in params
                assert params["resolution"] in {"720P", "1080P"}

    def test_metadata_cannot_override_model_or_prompt(self) -> None:
        body = build_body(make_req(model="wan2.7-t2v", extras={"model": "wan2.2-t2v-plus", "prompt": "other"}))
        assert body["model"] == "wan2.7-t2v"
        assert body["input"]["prompt"] == "A kitten running in the moonlight"

    def test_newer_usage_shape_is_reported(self) -> None:
        raw = {
            "output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "https://r.test/v.mp4"},
            "usage": {"duration": 7.5, "output_video_duration": 7, "video_count": 1, "SR": 720, "ratio": "16:9"},
        }
        snap = snapshot(raw)
        assert snap.seconds == 7
        assert snap.usage == {"duration": 7.5, "output_video_duration": 7.0, "video_count": 1.0, "SR": 720.0}


class TestCurrentModelsAgainstFake:
    @pytest.mark.parametrize(
        ("model", "size", "seconds", "image", "sound"),
        [
            ("wan2.6-t2v", (1920, 1080), 15, False, True),
            ("wan2.6-i2v", (1280, 720), 10, True, True),
            ("wan2.6-i2v-flash", (1920, 1080), 2, True, True),
            ("wan2.6-r2v", (1280, 720), 10, False, True),
            ("wan2.7-t2v", (832, 1088), 13, False, True),
            ("wan2.7-i2v", (1280, 720), 2, True, True),
            ("wan2.7-r2v", (1920, 1080), 15, True, True),
            ("happyhorse-1.0-t2v", (1280, 720), 3, False, False),
            ("happyhorse-1.0-i2v", (1920, 1080), 15, True, False),
            ("happyhorse-1.0-r2v", (1080, 1920), 8, True, False),
        ],
    )
    async def test_create_poll_download(
        self,
        provider: WanxiangProvider,
        state: FakeState,
        model: str,
        size: tuple[int, int],
        seconds: int,
        image: bool,
        sound: bool,
    ) -> None:
        extras = {"reference_video_urls": ["https://e.test/ref.mp4"]} if model == "wan2.6-r2v" else {}
        req = make_req(
            model=model,
            width=size[0],
            height=size[1],
            seconds=seconds,
            image=ImageInput(data=PNG, mime="image/png") if image else None,
            extras=extras,
        )
        task = await provider.submit(req)
        assert state.requests[-1].path == T2V_PATH
        assert state.requests[-1].json == build_body(req)
        snaps = await poll_until_terminal(provider, task)
        done = snaps[-1]
        assert done.status == VideoStatus.completed, done
        assert done.seconds == seconds
        assert done.usage["video_count"] == 1
        data = b"".join([chunk async for chunk in provider.download(task, done)])
        assert has_sound(data) is sound

    async def test_silenced_wan26_flash_is_silent(self, provider: WanxiangProvider) -> None:
        req = make_req(
            model="wan2.6-i2v-flash", image=ImageInput(url="https://e.test/f.png"), extras={"audio": "false"}
        )
        task = await provider.submit(req)
        done = (await poll_until_terminal(provider, task))[-1]
        assert not has_sound(b"".join([chunk async for chunk in provider.download(task, done)]))

    async def test_fake_refuses_a_pixel_size_on_wan27(self, client: httpx.AsyncClient) -> None:
        body = {"model": "wan2.7-t2v", "input": {"prompt": "x"}, "parameters": {"size": "1280*720"}}
        headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
        r = await client.post(f"{BASE}{T2V_PATH}", json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (400, "InvalidParameter")

    async def test_fake_refuses_long_r2v_with_a_reference_video(self, client: httpx.AsyncClient) -> None:
        media = [{"type": "reference_video", "url": "https://e.test/v.mp4"}]
        body = {"model": "wan2.7-r2v", "input": {"prompt": "x", "media": media}, "parameters": {"duration": 15}}
        headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
        r = await client.post(f"{BASE}{T2V_PATH}", json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (400, "InvalidParameter")

    async def test_moderation_on_a_current_model_is_a_failed_snapshot(
        self, provider: WanxiangProvider, state: FakeState
    ) -> None:
        state.task_failure = ("DataInspectionFailed", "Output data may contain inappropriate content.")
        task = await provider.submit(make_req(model="wan2.7-t2v"))
        done = (await poll_until_terminal(provider, task))[-1]
        assert (done.status, done.error_code) == (VideoStatus.failed, "DataInspectionFailed")
