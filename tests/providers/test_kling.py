"""Kling adapter: pure mappings (tables, golden bodies) and the adapter against tests/fakes/kling.py."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import jwt
import pytest
import uvicorn

from app.providers import kling
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
    Unsupported,
    VendorTask,
    VideoProvider,
    VideoStatus,
)
from app.providers.kling import (
    DEFAULT_BASE_URL,
    MODELS,
    STATUS,
    KlingAuth,
    KlingProvider,
    build_body,
    build_extend_body,
    duration_for,
    map_error,
    snapshot,
)
from tests.fakes.kling import AK, SK, make_app
from tests.fakes.kling import ERRORS as FAKE_ERRORS

T0 = 1_750_000_000
BASE = "https://api-singapore.klingai.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24

# §2.2 worked example
DOC_AK = "ak_test_0123456789abcdef0123456789"
DOC_SK = "sk_test_fedcba9876543210fedcba9876543210"
DOC_TOKENS = {
    "a": ".".join(
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            "eyJpc3MiOiJha190ZXN0XzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5IiwiZXhwIjoxNzUwMDAxODAwLCJuYmYiOjE3NDk5OTk5OTV9",
            "S2TaOd_BCPOA_z2XKkWHhz9CYLGtqe5X7EVS8VNRjHw",
        )
    ),
    "b": ".".join(
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            "eyJleHAiOjE3NTAwMDE4MDAsImlzcyI6ImFrX3Rlc3RfMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODkiLCJuYmYiOjE3NDk5OTk5OTV9",
            "Sx9WVsGbW-k9ZLi6RGtyrrV9X93YhwiFLs6jGgpRy-k",
        )
    ),
    "c": ".".join(
        (
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJpc3MiOiJha190ZXN0XzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5IiwiZXhwIjoxNzUwMDAxODAwLCJuYmYiOjE3NDk5OTk5OTV9",
            "IO0QKkFqoVAKGA98J-gkfnmFWVLWYwYh3DxaR7Lg33M",
        )
    ),
}


def bearer(iss: str, key: str, *, alg: str = "HS256", exp: int = T0 + 1800, nbf: int = T0 - 5) -> str:
    return f"Bearer {jwt.encode({'iss': iss, 'exp': exp, 'nbf': nbf}, key, algorithm=alg)}"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_req(**kw: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "task_id": "video_abc123",
        "model": "kling-v2-5-turbo",
        "prompt": "A red fox running through snow",
        "width": 1280,
        "height": 720,
        "seconds": 5,
    }
    fields.update(kw)
    return GenerationRequest(**fields)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Any:
    return make_app(clock=clock)


@pytest.fixture
async def client(fake: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


@pytest.fixture
def state(fake: Any) -> Any:
    return fake[1]


@pytest.fixture
def provider(client: httpx.AsyncClient, clock: Clock) -> KlingProvider:
    return KlingProvider(client, access_key=AK, secret_key=SK, base_url=BASE, clock=clock)


async def run_to_end(provider: KlingProvider, task: VendorTask) -> list[TaskSnapshot]:
    snaps = [await provider.poll(task)]
    while snaps[-1].status not in (VideoStatus.completed, VideoStatus.failed):
        snaps.append(await provider.poll(task))
        assert len(snaps) < 10
    return snaps


# ---------------------------------------------------------------------------------------------


class TestCapabilities:
    def test_every_model_is_listed_once(self) -> None:
        names = [m.name for m in MODELS]
        assert names == [
            "kling-v1",
            "kling-v1-5",
            "kling-v1-6",
            "kling-v2-master",
            "kling-v2-1",
            "kling-v2-1-master",
            "kling-v2-5-turbo",
            "kling-v2-6",
            "kling-v3",
        ]
        assert {m.provider for m in MODELS} == {"kling"}

    @pytest.mark.parametrize("caps", MODELS, ids=lambda m: m.name)
    def test_defaults_are_allowed_values(self, caps: Any) -> None:
        assert caps.default_size in caps.sizes
        if caps.name == "kling-v3":
            assert (caps.seconds, caps.seconds_range) == ((), (3, 15))
        else:
            assert caps.seconds == (5, 10)
        assert caps.default_seconds == 5

    def test_sound_models(self) -> None:
        sound = {m.name for m in MODELS if m.audio}
        assert sound == {"kling-v2-6", "kling-v3"}
        assert all({"sound", "generate_audio", "voice_list"} <= m.extras for m in MODELS if m.audio)
        assert not any("sound" in m.extras for m in MODELS if not m.audio)
        assert {"multi_shot", "shot_type", "multi_prompt"} <= {m.name: m for m in MODELS}["kling-v3"].extras

    def test_image_only_models_require_an_image(self) -> None:
        required = {m.name for m in MODELS if m.image == "required"}
        assert required == {"kling-v1-5", "kling-v2-1"}

    def test_only_v1_and_v1_6_extend(self) -> None:
        assert {m.name for m in MODELS if m.extend} == {"kling-v1", "kling-v1-6"}
        assert not any(m.remix or m.edit for m in MODELS)

    def test_hd_only_where_pro_renders_1080p(self) -> None:
        hd = {m.name for m in MODELS if (1920, 1080) in m.sizes}
        assert hd == {
            "kling-v1-5",
            "kling-v1-6",
            "kling-v2-1",
            "kling-v2-1-master",
            "kling-v2-5-turbo",
            "kling-v2-6",
            "kling-v3",
        }
        assert {m.name: m.sizes for m in MODELS}["kling-v2-1-master"] == (
            (1920, 1080),
            (1080, 1920),
            (1080, 1080),
        )

    def test_provider_satisfies_protocol(self, provider: KlingProvider) -> None:
        assert isinstance(provider, VideoProvider)
        assert provider.name == "kling"
        assert DEFAULT_BASE_URL == "https://api-singapore.klingai.com"


class TestSizeAndSeconds:
    @pytest.mark.parametrize(
        ("size", "ratio"),
        [
            ((1280, 720), "16:9"),
            ((720, 1280), "9:16"),
            ((720, 720), "1:1"),
            ((1920, 1080), "16:9"),
            ((1080, 1920), "9:16"),
            ((1080, 1080), "1:1"),
        ],
    )
    def test_size_to_aspect_ratio(self, size: tuple[int, int], ratio: str) -> None:
        body = build_body(make_req(width=size[0], height=size[1]))
        assert body["aspect_ratio"] == ratio

    @pytest.mark.parametrize(
        ("model", "size", "mode"),
        [
            ("kling-v2-5-turbo", (1280, 720), "std"),
            ("kling-v2-5-turbo", (1080, 1920), "pro"),
            ("kling-v1-6", (1080, 1080), "pro"),
            ("kling-v1-6", (720, 1280), "std"),
            ("kling-v1", (1280, 720), "std"),
            ("kling-v2-master", (1280, 720), None),
            ("kling-v2-1-master", (1920, 1080), None),
        ],
    )
    def test_size_picks_mode(self, model: str, size: tuple[int, int], mode: str | None) -> None:
        body = build_body(make_req(model=model, width=size[0], height=size[1]))
        assert body.get("mode") == mode

    @pytest.mark.parametrize(("seconds", "native"), [(5, "5"), (10, "10"), (4, "5"), (8, "10"), (12, "10")])
    def test_seconds_to_duration_string(self, seconds: int, native: str) -> None:
        assert duration_for(seconds) == native
        assert build_body(make_req(seconds=seconds))["duration"] == native


class TestGoldenBodies:
    def test_text2video(self) -> None:
        assert build_body(make_req(extras={"negative_prompt": "blur"})) == {
            "model_name": "kling-v2-5-turbo",
            "prompt": "A red fox running through snow",
            "aspect_ratio": "16:9",
            "duration": "5",
            "mode": "std",
            "negative_prompt": "blur",
            "external_task_id": "video_abc123",
        }

    def test_image2video_from_bytes_is_raw_base64(self) -> None:
        req = make_req(model="kling-v1-6", image=ImageInput(data=PNG, mime="image/png"), seconds=10)
        assert build_body(req) == {
            "model_name": "kling-v1-6",
            "prompt": "A red fox running through snow",
            "duration": "10",
            "mode": "std",
            "image": base64.b64encode(PNG).decode(),
            "external_task_id": "video_abc123",
        }

    def test_image_url_and_data_url(self) -> None:
        url = make_req(image=ImageInput(url="https://example.com/a.png"))
        assert build_body(url)["image"] == "https://example.com/a.png"
        data_url = make_req(image=ImageInput(url="data:image/png;base64,QUJD"))
        assert build_body(data_url)["image"] == "QUJD"

    def test_last_frame_becomes_image_tail_in_pro(self) -> None:
        req = make_req(
            model="kling-v2-1",
            image=ImageInput(url="https://example.com/first.png"),
            last_frame=ImageInput(url="https://example.com/last.png"),
        )
        body = build_body(req)
        assert body["image_tail"] == "https://example.com/last.png"
        assert body["mode"] == "pro"  # first+last frame is pro-only on v2-1
        assert "aspect_ratio" not in body

    def test_metadata_is_coerced_and_cannot_override_model_or_ids(self) -> None:
        req = make_req(
            model="kling-v1",
            extras={
                "mode": "PRO",
                "cfg_scale": "0.7",
                "camera_control": '{"type": "simple", "config": {"zoom": 5}}',
                "watermark_info": "true",
                "model_name": "kling-v2-master",
                "model": "kling-v2-master",
                "external_task_id": "other",
                "duration": "10",
                "sandbox_outcome": "fail",
            },
        )
        body = build_body(req)
        assert body["model_name"] == "kling-v1"
        assert "model" not in body
        assert body["external_task_id"] == "video_abc123"
        assert body["duration"] == "5"
        assert body["mode"] == "pro"
        assert body["cfg_scale"] == 0.7
        assert body["camera_control"] == {"type": "simple", "config": {"zoom": 5}}
        assert body["watermark_info"] == {"enabled": True}
        assert not any(k.startswith("sandbox_") for k in body)

    def test_metadata_image_tail_makes_an_image2video_request(self) -> None:
        req = make_req(extras={"image_tail": "data:image/png;base64,QUJD"})
        assert kling.family_for(req) == "image2video"
        assert build_body(req)["image_tail"] == "QUJD"

    @pytest.mark.parametrize(("key", "value"), [("cfg_scale", "high"), ("camera_control", "{oops")])
    def test_bad_metadata_is_rejected(self, key: str, value: str) -> None:
        with pytest.raises(Rejected) as err:
            build_body(make_req(extras={key: value}))
        assert err.value.vendor_code == "invalid_metadata"

    def test_video_extend(self) -> None:
        req = make_req(
            operation="extend",
            model="kling-v1-6",
            prompt="keep walking",
            extras={"negative_prompt": "blur", "mode": "pro", "cfg_scale": "0.3"},
        )
        assert build_extend_body(req, "vid-1") == {
            "video_id": "vid-1",
            "prompt": "keep walking",
            "negative_prompt": "blur",
            "cfg_scale": 0.3,
            "external_task_id": "video_abc123",
        }


class TestStatusAndSnapshot:
    @pytest.mark.parametrize(
        ("native", "status", "progress"),
        [
            ("submitted", VideoStatus.queued, 0),
            ("processing", VideoStatus.in_progress, 50),
            ("mystery", VideoStatus.in_progress, 50),
        ],
    )
    def test_running_states(self, native: str, status: VideoStatus, progress: int) -> None:
        snap = snapshot({"task_id": "t1", "task_status": native, "created_at": 1739744384259})
        assert snap.status == status
        assert snap.progress == progress
        assert snap.meta["created_at"] == pytest.approx(1739744384.259)

    def test_status_table_is_complete(self) -> None:
        assert STATUS == {
            "submitted": VideoStatus.queued,
            "processing": VideoStatus.in_progress,
            "succeed": VideoStatus.completed,
            "failed": VideoStatus.failed,
        }

    def test_succeed(self) -> None:
        raw = {
            "task_id": "CjI17WevH1IAAAAAAHmgsw",
            "task_status": "succeed",
            "task_status_msg": "",
            "task_info": {"external_task_id": "job-0001"},
            "task_result": {
                "videos": [
                    {
                        "id": "28444a6c",
                        "url": "https://cdn.klingai.com/x.mp4",
                        "watermark_url": "https://cdn.klingai.com/x_wm.mp4",
                        "duration": "5.1",
                    }
                ]
            },
            "final_unit_deduction": "1",
            "created_at": 1739744384259,
            "updated_at": 1739744621359,
        }
        snap = snapshot(raw)
        assert snap.status == VideoStatus.completed
        assert snap.video_url == "https://cdn.klingai.com/x.mp4"
        assert snap.seconds == 5
        assert snap.progress == 100
        assert snap.meta["video_id"] == "28444a6c"
        assert snap.meta["watermark_url"] == "https://cdn.klingai.com/x_wm.mp4"
        assert snap.meta["updated_at"] == pytest.approx(1739744621.359)

    def test_failed_carries_task_status_msg(self) -> None:
        snap = snapshot({"task_id": "t", "task_status": "failed", "task_status_msg": "risk control"})
        assert snap.status == VideoStatus.failed
        assert snap.error_message == "risk control"
        assert snap.error_code == "task_failed"

    def test_succeed_without_url_is_failed_not_completed(self) -> None:
        snap = snapshot({"task_id": "t", "task_status": "succeed", "task_result": {"videos": []}})
        assert snap.status == VideoStatus.failed
        assert snap.error_code == "no_output"


class TestMapError:
    @pytest.mark.parametrize(
        ("http", "code", "cls"),
        [
            (401, 1000, AuthFailed),
            (401, 1001, AuthFailed),
            (401, 1002, AuthFailed),
            (401, 1003, AuthFailed),
            (401, 1004, AuthFailed),
            (429, 1100, Rejected),
            (429, 1101, Rejected),
            (429, 1102, Rejected),
            (403, 1103, AuthFailed),
            (400, 1200, Rejected),
            (400, 1201, Rejected),
            (404, 1202, Rejected),
            (404, 1203, Rejected),
            (400, 1300, Rejected),
            (400, 1301, Rejected),
            (429, 1302, RateLimited),
            (429, 1303, RateLimited),
            (429, 1304, AuthFailed),
            (500, 5000, Unavailable),
            (503, 5001, Unavailable),
            (504, 5002, Unavailable),
            (200, 1303, RateLimited),
            (200, 1102, Rejected),
            (200, 5000, Unavailable),
            (200, 1299, Rejected),
            (429, None, RateLimited),
            (502, None, Unavailable),
            (401, None, AuthFailed),
            (422, None, Rejected),
        ],
    )
    def test_table(self, http: int, code: int | None, cls: type[ProviderError]) -> None:
        body = {"code": code, "message": "why"} if code is not None else None
        err = map_error(http, body)
        assert type(err) is cls
        assert err.vendor_code == (str(code) if code is not None else f"http_{http}")
        assert err.provider == "kling"

    def test_message_is_kept(self) -> None:
        err = map_error(429, {"code": 1102, "message": "Account balance not enough"})
        assert err.message == "Account balance not enough"

    def test_rate_limit_waits_at_least_a_second(self) -> None:
        assert map_error(429, {"code": 1303}).retry_after == 1.0
        assert map_error(429, {"code": 1302}, retry_after=7).retry_after == 7


# ---------------------------------------------------------------------------------------------


class TestAuth:
    def test_pyjwt_token_matches_the_doc_vector(self) -> None:
        auth = KlingAuth(DOC_AK, DOC_SK, clock=lambda: T0)
        assert auth.token() == DOC_TOKENS["a"]

    @pytest.mark.parametrize("vector", ["a", "b", "c"])
    async def test_fake_accepts_every_doc_vector(self, vector: str) -> None:
        app, _ = make_app(keys={DOC_AK: DOC_SK}, clock=lambda: T0)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            resp = await c.get(
                f"{BASE}/v1/videos/text2video?pageNum=1&pageSize=1",
                headers={"Authorization": f"Bearer {DOC_TOKENS[vector]}"},
            )
        assert resp.status_code == 200
        assert resp.json()["code"] == 0

    async def test_fake_accepts_a_static_api_key(self) -> None:
        app, _ = make_app(api_keys=frozenset({"kling-api-key-123"}), clock=lambda: T0)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            good = await c.get(f"{BASE}/v1/videos/text2video", headers={"Authorization": "Bearer kling-api-key-123"})
            bad = await c.get(f"{BASE}/v1/videos/text2video", headers={"Authorization": "Bearer kling-api-key-999"})
        assert good.json()["code"] == 0
        assert (bad.status_code, bad.json()["code"]) == (401, 1002)

    @pytest.mark.parametrize(
        ("header", "code"),
        [
            (None, 1001),
            ("Basic abc", 1002),
            ("Bearer a.b", 1002),
            ("Bearer !!.??.zz", 1002),
            (bearer(AK, "k" * 64, alg="HS512"), 1002),
            (bearer(AK, "x" * 40), 1000),  # wrong secret
            (bearer("ak_nobody", SK), 1000),  # unknown access key
            (bearer(AK, SK, exp=T0, nbf=T0 - 1805), 1004),
            (bearer(AK, SK, nbf=T0 + 60), 1003),
        ],
    )
    async def test_fake_refuses(self, client: httpx.AsyncClient, header: str | None, code: int) -> None:
        headers = {"Authorization": header} if header else {}
        resp = await client.get(f"{BASE}/v1/videos/text2video", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["code"] == code

    async def test_base64_decoded_secret_is_refused(self, client: httpx.AsyncClient) -> None:
        # an SK that is valid base64: signing with its decoded bytes must not pass
        app, _ = make_app(
            keys={AK: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, clock=lambda: T0
        )
        claims = {"iss": AK, "exp": T0 + 1800, "nbf": T0 - 5}
        decoded = base64.b64decode("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            bad = await c.get(
                f"{BASE}/v1/videos/text2video",
                headers={"Authorization": f"Bearer {jwt.encode(claims, decoded)}"},
            )
            provider = KlingProvider(
                c,
                access_key=AK,
                secret_key="c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
                clock=lambda: T0,
            )
            assert await provider.find_by_external_id("nope", family="text2video") is None
        assert bad.json()["code"] == 1000

    async def test_claims_sent_by_the_adapter(self, provider: KlingProvider, state: Any) -> None:
        await provider.submit(make_req())
        token = state.requests[-1].headers["authorization"].removeprefix("Bearer ")
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        claims = jwt.decode(token, SK, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
        assert header == {"alg": "HS256", "typ": "JWT"}
        assert claims == {"iss": AK, "exp": T0 + 1800, "nbf": T0 - 5}

    async def test_token_is_cached_then_renewed_before_expiry(
        self, provider: KlingProvider, state: Any, clock: Clock
    ) -> None:
        task = await provider.submit(make_req())
        await provider.poll(task)
        clock.now += 1700
        await provider.poll(task)
        clock.now += 60  # inside the refresh margin
        await provider.poll(task)
        tokens = [r.headers["authorization"] for r in state.api_requests()]
        assert tokens[0] == tokens[1] == tokens[2]
        assert tokens[3] != tokens[2]

    async def test_wrong_secret_is_auth_failed(self, client: httpx.AsyncClient) -> None:
        provider = KlingProvider(client, access_key=AK, secret_key="wrong-" + SK, base_url=BASE, clock=lambda: T0)
        with pytest.raises(AuthFailed) as err:
            await provider.submit(make_req())
        assert err.value.vendor_code == "1000"
        assert err.value.status_code == 401

    async def test_expired_token_is_reminted_once(self, client: httpx.AsyncClient, state: Any) -> None:
        mine = Clock()
        provider = KlingProvider(client, access_key=AK, secret_key=SK, base_url=BASE, clock=mine)
        task = await provider.submit(make_req())
        mine.now += 1700  # the cached token still looks fresh to us...
        state.clock = lambda: T0 + 1800  # ...but the vendor's clock says it has expired
        snap = await provider.poll(task)
        assert snap.status == VideoStatus.queued
        codes = [r.headers["authorization"] for r in state.api_requests()]
        assert len(codes) == 3
        assert codes[1] == codes[0] != codes[2]

    async def test_still_expired_after_reminting_is_auth_failed(self, client: httpx.AsyncClient, state: Any) -> None:
        provider = KlingProvider(client, access_key=AK, secret_key=SK, base_url=BASE, clock=lambda: T0)
        state.clock = lambda: T0 + 7200
        with pytest.raises(AuthFailed) as err:
            await provider.submit(make_req())
        assert err.value.vendor_code == "1004"
        assert len(state.api_requests()) == 2


# ---------------------------------------------------------------------------------------------


class TestAgainstFake:
    async def test_text2video_lifecycle(self, provider: KlingProvider, state: Any) -> None:
        task = await provider.submit(make_req(extras={"negative_prompt": "blur"}))
        sent = state.requests[-1]
        assert (sent.method, sent.path) == ("POST", "/v1/videos/text2video")
        assert sent.json == build_body(make_req(extras={"negative_prompt": "blur"}))
        assert task.provider == "kling"
        assert task.meta == {
            "family": "text2video",
            "model": "kling-v2-5-turbo",
            "external_task_id": "video_abc123",
        }

        snaps = await run_to_end(provider, task)
        assert [s.status for s in snaps] == [
            VideoStatus.queued,
            VideoStatus.in_progress,
            VideoStatus.completed,
        ]
        assert [s.progress for s in snaps] == [0, 50, 100]
        assert state.requests[-1].path == f"/v1/videos/text2video/{task.vendor_task_id}"
        done = snaps[-1]
        assert done.video_url is not None
        assert done.video_url.startswith("https://cdn.klingai.com/")
        assert done.seconds == 5
        assert done.meta["video_id"]

        chunks = [c async for c in provider.download(task, done)]
        assert b"".join(chunks) == state.video
        assert state.video[4:8] == b"ftyp"
        assert "authorization" not in state.requests[-1].headers  # no token leaks to the CDN

    async def test_image2video_polls_its_own_family(self, provider: KlingProvider, state: Any) -> None:
        req = make_req(model="kling-v1-5", image=ImageInput(data=PNG, mime="image/png"), width=1920, height=1080)
        task = await provider.submit(req)
        assert state.requests[-1].path == "/v1/videos/image2video"
        assert state.requests[-1].json["image"] == base64.b64encode(PNG).decode()
        assert state.requests[-1].json["mode"] == "pro"
        snaps = await run_to_end(provider, task)
        assert snaps[-1].status == VideoStatus.completed
        assert {r.path for r in state.requests if r.method == "GET" and r.path.startswith("/v1")} == {
            f"/v1/videos/image2video/{task.vendor_task_id}"
        }

    async def test_first_and_last_frame(self, provider: KlingProvider, state: Any) -> None:
        req = make_req(
            model="kling-v1-6",
            image=ImageInput(url="https://example.com/first.png"),
            last_frame=ImageInput(data=PNG, mime="image/png"),
        )
        task = await provider.submit(req)
        assert state.requests[-1].json["image_tail"] == base64.b64encode(PNG).decode()
        assert (await run_to_end(provider, task))[-1].status == VideoStatus.completed

    async def test_failed_task_is_a_snapshot_not_an_error(self, provider: KlingProvider, state: Any) -> None:
        state.fail_next_task("Failure to pass the risk control system")
        task = await provider.submit(make_req())
        snaps = await run_to_end(provider, task)
        assert [s.status for s in snaps] == [VideoStatus.queued, VideoStatus.in_progress, VideoStatus.failed]
        assert snaps[-1].error_message == "Failure to pass the risk control system"

    async def test_vendor_validation_is_rejected(self, provider: KlingProvider) -> None:
        with pytest.raises(Rejected) as err:
            await provider.submit(make_req(extras={"mode": "ultra"}))
        assert err.value.vendor_code == "1201"
        assert "mode" in err.value.message
        with pytest.raises(Rejected):
            await provider.submit(make_req(extras={"cfg_scale": "2"}))
        with pytest.raises(Rejected):
            await provider.submit(make_req(model="kling-v2-1"))  # image-to-video only

    async def test_duplicate_external_task_id_is_rejected(self, provider: KlingProvider) -> None:
        await provider.submit(make_req())
        with pytest.raises(Rejected, match="external_task_id"):
            await provider.submit(make_req())

    @pytest.mark.parametrize(
        ("code", "status", "cls"),
        [
            (1303, None, RateLimited),
            (1302, None, RateLimited),
            (1102, None, Rejected),
            (1301, None, Rejected),
            (5000, None, Unavailable),
            (5001, None, Unavailable),
            (5002, None, Unavailable),
            (1303, 200, RateLimited),
            (1102, 200, Rejected),
            (1201, 200, Rejected),
        ],
    )
    async def test_injected_errors(
        self, provider: KlingProvider, state: Any, code: int, status: int | None, cls: type[ProviderError]
    ) -> None:
        state.fail_next("error", code=code, status=status)
        with pytest.raises(cls) as err:
            await provider.submit(make_req())
        assert err.value.vendor_code == str(code)
        assert err.value.status_code == (status if status is not None else FAKE_ERRORS[code][0])

    async def test_concurrency_limit_is_rate_limited(self, client: httpx.AsyncClient, state: Any) -> None:
        state.concurrency = 1
        provider = KlingProvider(client, access_key=AK, secret_key=SK, base_url=BASE, clock=lambda: T0)
        await provider.submit(make_req(task_id="video_1"))
        with pytest.raises(RateLimited) as err:
            await provider.submit(make_req(task_id="video_2"))
        assert err.value.vendor_code == "1303"
        assert err.value.retry_after is not None
        assert err.value.retry_after >= 1

    @pytest.mark.parametrize("status", [200, 502])
    async def test_garbage_is_unavailable(self, provider: KlingProvider, state: Any, status: int) -> None:
        task = await provider.submit(make_req())
        state.fail_next("garbage", status=status)
        with pytest.raises(Unavailable):
            await provider.poll(task)

    async def test_unknown_task_is_not_found(self, provider: KlingProvider) -> None:
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(VendorTask("kling", "999", {"family": "image2video"}))

    async def test_transport_error_is_unavailable(self) -> None:
        def boom(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(boom)) as c:
            provider = KlingProvider(c, access_key=AK, secret_key=SK)
            with pytest.raises(Unavailable) as err:
                await provider.submit(make_req())
        assert err.value.vendor_code == "transport"

    async def test_hang_times_out_as_unavailable(self, fake: Any) -> None:
        app, state = fake
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=0, log_level="error", lifespan="off", timeout_graceful_shutdown=1
            )
        )
        serving = asyncio.create_task(server.serve())
        try:
            for _ in range(500):
                if server.started:
                    break
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            state.fail_next("hang", seconds=0.6)
            async with httpx.AsyncClient(timeout=0.2) as c:
                provider = KlingProvider(c, access_key=AK, secret_key=SK, base_url=f"http://127.0.0.1:{port}")
                with pytest.raises(Unavailable):
                    await provider.submit(make_req())
        finally:
            server.should_exit = True
            await serving

    async def test_find_by_external_id(self, provider: KlingProvider) -> None:
        task = await provider.submit(make_req(task_id="video_crash"))
        found = await provider.find_by_external_id("video_crash", family="text2video")
        assert found is not None
        assert found.vendor_task_id == task.vendor_task_id
        assert found.meta["family"] == "text2video"
        assert await provider.find_by_external_id("video_crash", family="image2video") is None
        assert await provider.find_by_external_id("video_never", family="text2video") is None

    async def test_expired_output_is_not_found(self, provider: KlingProvider) -> None:
        snap = TaskSnapshot(
            status=VideoStatus.completed,
            video_url="https://cdn.klingai.com/bs2/upload-kling-api/5739745938/text2video/gone.mp4",
        )
        with pytest.raises(NotFoundAtVendor):
            _ = [c async for c in provider.download(VendorTask("kling", "gone"), snap)]

    async def test_cancel_is_unsupported(self, provider: KlingProvider) -> None:
        assert not isinstance(provider, Cancellable)  # the engine skips it

    async def test_remix_is_unsupported(self, provider: KlingProvider) -> None:
        with pytest.raises(Unsupported):
            await provider.submit(make_req(operation="remix"))

    async def test_list_paging_is_validated(self, client: httpx.AsyncClient) -> None:
        auth = KlingAuth(AK, SK, clock=lambda: T0)
        resp = await client.get(f"{BASE}/v1/videos/image2video?pageNum=1&pageSize=501", auth=auth)
        assert (resp.status_code, resp.json()["code"]) == (400, 1201)


class TestExtend:
    async def _finished(self, provider: KlingProvider, model: str) -> tuple[VendorTask, TaskSnapshot]:
        task = await provider.submit(make_req(model=model, task_id="video_src"))
        return task, (await run_to_end(provider, task))[-1]

    async def test_extend_uses_the_source_video_id(self, provider: KlingProvider, state: Any) -> None:
        source, done = await self._finished(provider, "kling-v1-6")
        # the source row holds no video_id: the adapter asks Kling for it
        req = make_req(
            operation="extend", model="kling-v1-6", prompt="keep walking", task_id="video_ext", source=source
        )
        task = await provider.submit(req)
        sent = state.requests[-1]
        assert (sent.path, sent.json) == (
            "/v1/videos/video-extend",
            {"video_id": done.meta["video_id"], "prompt": "keep walking", "external_task_id": "video_ext"},
        )
        assert task.meta["family"] == "video-extend"
        snaps = await run_to_end(provider, task)
        assert state.requests[-1].path == f"/v1/videos/video-extend/{task.vendor_task_id}"
        assert snaps[-1].status == VideoStatus.completed
        assert snaps[-1].seconds == 10  # 5.1 s source + 4.5 s
        assert snaps[-1].meta["parent_video_id"] == done.meta["video_id"]

    async def test_stored_video_id_skips_the_lookup(self, provider: KlingProvider, state: Any) -> None:
        source, done = await self._finished(provider, "kling-v1")
        before = len(state.requests)
        stored = VendorTask("kling", source.vendor_task_id, {**source.meta, "video_id": done.meta["video_id"]})
        await provider.submit(make_req(operation="extend", model="kling-v1", task_id="video_ext", source=stored))
        assert len(state.requests) == before + 1

    async def test_unfinished_source_is_rejected(self, provider: KlingProvider) -> None:
        source = await provider.submit(make_req(model="kling-v1-6"))
        with pytest.raises(Rejected) as err:
            await provider.submit(make_req(operation="extend", task_id="video_ext", source=source))
        assert err.value.vendor_code == "source_not_ready"

    async def test_vendor_refuses_to_extend_v2_videos(self, provider: KlingProvider) -> None:
        source, _ = await self._finished(provider, "kling-v2-5-turbo")
        with pytest.raises(Rejected) as err:
            await provider.submit(make_req(operation="extend", task_id="video_ext", source=source))
        assert err.value.vendor_code == "1201"


# ---------------------------------------------------------------------------------------------
# kling-v2-6 and kling-v3: sound, longer durations, multi-shot


class TestCurrentModels:
    @pytest.mark.parametrize(("seconds", "native"), [(3, "3"), (4, "4"), (7, "7"), (15, "15"), (2, "3"), (20, "15")])
    def test_v3_durations_are_any_whole_second(self, seconds: int, native: str) -> None:
        assert duration_for(seconds, "kling-v3") == native
        assert build_body(make_req(model="kling-v3", seconds=seconds))["duration"] == native

    def test_v2_6_keeps_five_and_ten(self) -> None:
        assert duration_for(8, "kling-v2-6") == "10"
        assert {m.name: m for m in MODELS}["kling-v3"].resolve_seconds(4, "nearest") == 4

    def test_v3_text2video_golden(self) -> None:
        extras = {"sound": "on", "multi_shot": "true", "shot_type": "intelligence", "negative_prompt": "blur"}
        body = build_body(make_req(model="kling-v3", width=1920, height=1080, seconds=12, extras=extras))
        assert body == {
            "model_name": "kling-v3",
            "prompt": "A red fox running through snow",
            "aspect_ratio": "16:9",
            "duration": "12",
            "mode": "pro",
            "sound": "on",
            "multi_shot": True,
            "shot_type": "intelligence",
            "negative_prompt": "blur",
            "external_task_id": "video_abc123",
        }

    def test_v3_custom_shots_are_parsed_from_multipart_text(self) -> None:
        shots = '[{"index": 1, "prompt": "a", "duration": "4"}, {"index": 2, "prompt": "b", "duration": "6"}]'
        extras = {"multi_shot": True, "shot_type": "customize", "multi_prompt": shots}
        body = build_body(make_req(model="kling-v3", seconds=10, extras=extras))
        assert body["multi_prompt"][1] == {"index": 2, "prompt": "b", "duration": "6"}

    def test_v2_6_sound_forces_pro(self) -> None:
        body = build_body(make_req(model="kling-v2-6", extras={"generate_audio": True}))
        assert (body["mode"], body["sound"]) == ("pro", "on")
        assert "generate_audio" not in body
        silent = build_body(make_req(model="kling-v2-6", extras={"audio": "false"}))
        assert (silent["mode"], silent["sound"]) == ("std", "off")

    def test_v3_std_keeps_std_with_sound(self) -> None:
        body = build_body(make_req(model="kling-v3", extras={"sound": "on"}))
        assert (body["mode"], body["sound"]) == ("std", "on")

    def test_v2_6_first_last_frame_is_pro_and_silent(self) -> None:
        frames = {"image": ImageInput(url="https://e.test/a.png"), "last_frame": ImageInput(url="https://e.test/b.png")}
        body = build_body(make_req(model="kling-v2-6", **frames))
        assert body["mode"] == "pro"
        assert "sound" not in body
        with pytest.raises(Rejected) as exc:
            build_body(make_req(model="kling-v2-6", extras={"sound": "on"}, **frames))
        assert exc.value.vendor_code == "invalid_metadata"

    def test_sound_on_a_silent_model_is_rejected_and_off_is_dropped(self) -> None:
        with pytest.raises(Rejected, match="makes no sound"):
            build_body(make_req(model="kling-v2-5-turbo", extras={"generate_audio": "true"}))
        assert "sound" not in build_body(make_req(model="kling-v2-5-turbo", extras={"sound": "off"}))

    def test_units_are_reported_as_usage(self) -> None:
        raw = {
            "task_id": "t",
            "task_status": "succeed",
            "task_result": {"videos": [{"id": "v", "url": "https://cdn.klingai.com/x.mp4", "duration": "12.1"}]},
            "final_unit_deduction": "3.5",
        }
        snap = snapshot(raw)
        assert (snap.seconds, snap.usage) == (12, {"final_unit_deduction": 3.5})

    @pytest.mark.parametrize(
        ("model", "extras", "seconds", "image", "sound"),
        [
            ("kling-v2-6", {"sound": "on"}, 10, False, True),
            ("kling-v2-6", {}, 5, True, False),
            ("kling-v3", {"generate_audio": True}, 13, False, True),
            ("kling-v3", {"sound": "on", "voice_list": '[{"voice_id": "v1"}]'}, 3, True, True),
            ("kling-v3", {"multi_shot": True, "shot_type": "intelligence"}, 15, False, False),
        ],
    )
    async def test_against_the_fake(
        self,
        provider: KlingProvider,
        state: Any,
        model: str,
        extras: dict[str, Any],
        seconds: int,
        image: bool,
        sound: bool,
    ) -> None:
        req = make_req(
            model=model,
            seconds=seconds,
            extras=extras,
            image=ImageInput(data=PNG, mime="image/png") if image else None,
        )
        task = await provider.submit(req)
        assert state.api_requests()[-1].json == build_body(req)
        done = (await run_to_end(provider, task))[-1]
        assert done.status == VideoStatus.completed
        assert done.seconds == seconds
        data = b"".join([chunk async for chunk in provider.download(task, done)])
        with av.open(io.BytesIO(data)) as container:
            assert bool(container.streams.audio) is sound

    async def test_fake_refuses_v2_6_sound_in_std(self, provider: KlingProvider) -> None:
        req = make_req(model="kling-v2-6", extras={"sound": "on", "mode": "std"})  # the client's explicit mode
        with pytest.raises(Rejected) as exc:
            await provider.submit(req)
        assert exc.value.vendor_code == "1201"

    async def test_fake_refuses_custom_shots_that_do_not_add_up(self, provider: KlingProvider) -> None:
        shots = [{"index": 1, "prompt": "a", "duration": "3"}]
        extras = {"multi_shot": True, "shot_type": "customize", "multi_prompt": shots}
        with pytest.raises(Rejected) as exc:
            await provider.submit(make_req(model="kling-v3", seconds=5, extras=extras))
        assert exc.value.vendor_code == "1201"
