"""End to end through every vendor: the real `openai` package → vidgate (uvicorn) → a fake vendor server on
its own loopback port, speaking the native protocol and checking auth exactly.

Vendor result URLs name the vendors' CDN hosts; the gateway's HTTP client is given a transport that sends
every non-loopback host to the fake's port, as DNS would send it to the CDN.
"""

from __future__ import annotations

import functools
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from app.main import create_app
from tests.conftest import LiveServer, make_settings
from tests.fakes import gemini, jimeng, kling, luma, openai_upstream, runway, vertex, vidu, wanxiang
from tests.fakes import minimax as minimax_fake
from tests.fakes import seedance as seedance_fake
from tests.fakes.assets import real_mp4
from tests.support.media import mp4_info, solid_image

pytestmark = pytest.mark.engine  # these tests watch videos finish


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Every request reaches the fake vendor's port, whatever host its result URLs name."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in ("127.0.0.1", "localhost"):
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Vendor:
    name: str
    make_fake: Callable[[], tuple[Any, Any]]
    settings: Callable[[str], dict[str, Any]]  # fake base URL -> gateway settings
    t2v: tuple[str, str, str]  # model, size, seconds the client sends
    t2v_expected_seconds: str  # what the queued Video reports after snapping
    i2v: str
    fail: Callable[[Any], None]  # make the next task fail at the vendor
    fail_code: str
    throttle: Callable[[Any], None]  # make the next submit a 429
    wrong_credentials: dict[str, Any]
    asset: bytes = field(default_factory=real_mp4)  # what the fake serves as the finished video
    public_base_url: bool = False  # the vendor fetches images by URL: the gateway's own address is public


@functools.cache
def _vertex_account() -> vertex.ServiceAccount:
    """One RSA service-account key per test session (generating one takes a while)."""
    return vertex.ServiceAccount()


def _vertex_settings(url: str) -> dict[str, Any]:
    """A key file whose `token_uri` is the fake's token endpoint, next to the session's other key files."""
    folder = Path(_key_dir())
    key = _vertex_account().key_file(folder / f"sa-{re.sub(r'[^A-Za-z0-9]+', '_', url)}.json", token_uri=f"{url}/token")
    return {"vertex_credentials_file": str(key), "vertex_project": vertex.PROJECT, "vertex_base_url": url}


@functools.cache
def _key_dir() -> str:
    return tempfile.mkdtemp(prefix="vidgate-vertex-")


VENDORS = [
    Vendor(
        name="wanxiang",
        make_fake=lambda: wanxiang.make_app(api_key="sk-fake-wanxiang"),
        settings=lambda url: {"dashscope_api_key": "sk-fake-wanxiang", "dashscope_base_url": url},
        t2v=("wan2.5-t2v-preview", "1280x720", "4"),
        t2v_expected_seconds="5",
        i2v="wan2.5-i2v-preview",
        fail=lambda st: setattr(st, "task_failure", ("DataInspectionFailed", "Output may be inappropriate.")),
        fail_code="DataInspectionFailed",
        throttle=lambda st: st.fail_next("throttle", on="create"),
        wrong_credentials={"dashscope_api_key": "sk-wrong"},
        asset=real_mp4(audio=True),  # Wan 2.5 makes sound
    ),
    Vendor(
        name="vidu",
        make_fake=lambda: vidu.make_app(api_key="vda_test_key"),
        settings=lambda url: {"vidu_api_key": "vda_test_key", "vidu_base_url": url},
        t2v=("viduq1", "1920x1080", "4"),
        t2v_expected_seconds="5",
        i2v="vidu2.0",
        fail=lambda st: setattr(st, "fail_task", "AuditSubmitIllegal"),
        fail_code="AuditSubmitIllegal",
        throttle=lambda st: setattr(st, "fail", "429"),
        wrong_credentials={"vidu_api_key": "vda_wrong"},
    ),
    Vendor(
        name="kling",
        make_fake=lambda: kling.make_app(),
        settings=lambda url: {"kling_access_key": kling.AK, "kling_secret_key": kling.SK, "kling_base_url": url},
        t2v=("kling-v1", "1280x720", "4"),
        t2v_expected_seconds="5",
        i2v="kling-v1-6",
        fail=lambda st: st.fail_next_task("Failure to pass the risk control system"),
        fail_code="",  # Kling reports only a message; the gateway supplies a code
        throttle=lambda st: st.fail_next("error", code=1303, status=429),
        wrong_credentials={"kling_secret_key": "sk_wrong_secret"},
        asset=kling.sample_mp4(),
    ),
    Vendor(
        name="jimeng",
        make_fake=lambda: jimeng.make_app(),
        settings=lambda url: {
            "jimeng_access_key": jimeng.ACCESS_KEY,
            "jimeng_secret_key": jimeng.SECRET_KEY,
            "jimeng_base_url": url,
        },
        t2v=("jimeng_t2v_v30", "1280x720", "4"),
        t2v_expected_seconds="5",
        i2v="jimeng_i2v_first_v30",
        fail=lambda st: st.doom_next_task(),
        fail_code="50516",
        throttle=lambda st: st.fail_next(
            "CVSync2AsyncSubmitTask", http=429, code=50429, message="Request Has Reached API Limit"
        ),
        wrong_credentials={"jimeng_secret_key": "d3Jvbmc="},
    ),
    Vendor(
        name="seedance",
        make_fake=lambda: seedance_fake.make_app(api_key="ark-e2e-key"),
        settings=lambda url: {"seedance_api_key": "ark-e2e-key", "seedance_base_url": url},
        t2v=("doubao-seedance-1-0-pro-250528", "1920x1080", "20"),
        t2v_expected_seconds="12",
        i2v="doubao-seedance-1-0-lite-i2v-250428",
        fail=lambda st: setattr(
            st,
            "fail_task",
            ("OutputVideoSensitiveContentDetected", "The output video may contain sensitive information."),
        ),
        fail_code="OutputVideoSensitiveContentDetected",
        throttle=lambda st: st.fail_next("rate_limit", on="create"),
        wrong_credentials={"seedance_api_key": "ark-wrong"},
    ),
    Vendor(
        name="openai_compat",
        make_fake=lambda: openai_upstream.make_app(
            api_key="sk-upstream-test", poll_after_ms=50, check_image_size=False
        ),
        settings=lambda url: {"openai_api_key": "sk-upstream-test", "openai_base_url": f"{url}/v1"},
        t2v=("sora-2", "1280x720", "4"),
        t2v_expected_seconds="4",
        i2v="sora-2",
        fail=lambda st: setattr(st, "outcome", "failed"),
        fail_code="moderation_blocked",
        throttle=lambda st: st.arm("429"),
        wrong_credentials={"openai_api_key": "sk-wrong"},
        asset=openai_upstream.sample_mp4(),
    ),
    Vendor(
        name="luma",
        # the fake fetches keyframe URLs (signed vidgate links) and POSTs each state change to callback_url
        make_fake=lambda: luma.make_app(callback_client=httpx.AsyncClient(timeout=5)),
        settings=lambda url: {"luma_api_key": luma.API_KEY, "luma_base_url": f"{url}/dream-machine/v1"},
        t2v=("ray-2", "1280x720", "4"),
        t2v_expected_seconds="5",
        i2v="ray-flash-2",
        fail=lambda st: setattr(st, "fail_task", "Contains blacklisted words"),
        fail_code="moderation_blocked",
        throttle=lambda st: st.fail_next("429", on="create"),
        wrong_credentials={"luma_api_key": "luma-wrong-key"},
        public_base_url=True,
    ),
    Vendor(
        name="runway",
        make_fake=lambda: runway.make_app(),
        settings=lambda url: {"runway_api_key": runway.KEY, "runway_base_url": url},
        t2v=("gen4.5", "1280x720", "12"),
        t2v_expected_seconds="10",
        i2v="gen4_turbo",
        fail=lambda st: setattr(
            st, "task_failure", ("SAFETY.INPUT.TEXT", "The input was flagged by our content moderation system.")
        ),
        fail_code="SAFETY.INPUT.TEXT",
        throttle=lambda st: st.fail_next("429", on="create"),
        wrong_credentials={"runway_api_key": "key_" + "f" * 128},
        asset=runway.VIDEO_BYTES,
    ),
    Vendor(
        name="gemini",
        make_fake=lambda: gemini.make_app(),
        settings=lambda url: {"gemini_api_key": gemini.API_KEY, "gemini_base_url": url},
        t2v=("veo-3.0-generate-001", "1280x720", "5"),
        t2v_expected_seconds="6",
        i2v="veo-3.1-generate-preview",
        fail=lambda st: setattr(st, "outcome", "filtered"),
        fail_code="moderation_blocked",
        throttle=lambda st: st.fail_next("429"),
        wrong_credentials={"gemini_api_key": "AIzaWrongKey"},
        asset=real_mp4(audio=True),
    ),
    Vendor(
        name="vertex",
        make_fake=lambda: vertex.make_app(_vertex_account()),
        settings=_vertex_settings,
        t2v=("veo-3.1-fast-generate-001", "1280x720", "4"),
        t2v_expected_seconds="4",
        i2v="veo-3.1-generate-001",
        fail=lambda st: setattr(st, "outcome", "filtered"),
        fail_code="moderation_blocked",
        throttle=lambda st: st.fail_next("429"),
        wrong_credentials={"vertex_project": "someone-elses-project"},
        asset=real_mp4(audio=True),
    ),
    Vendor(
        name="minimax",
        # the fake verifies vidgate's callback URL (the challenge echo) at create, then POSTs each state change
        make_fake=lambda: minimax_fake.make_app(
            api_key="sk-api-fake-minimax", callback_client=httpx.AsyncClient(timeout=5)
        ),
        settings=lambda url: {"minimax_api_key": "sk-api-fake-minimax", "minimax_base_url": url},
        t2v=("MiniMax-Hailuo-2.3", "1366x768", "4"),
        t2v_expected_seconds="6",
        i2v="MiniMax-Hailuo-2.3-Fast",
        fail=lambda st: setattr(st, "fail_task", (1027, "output new_sensitive")),
        fail_code="1027",
        throttle=lambda st: st.fail_next(1002, on="create"),  # HTTP 200, base_resp 1002 "rate limit"
        wrong_credentials={"minimax_api_key": "sk-api-wrong"},
        asset=minimax_fake.VIDEO_BYTES,
        public_base_url=True,
    ),
]


@dataclass
class Rig:
    vendor: Vendor
    fake_state: Any
    client: OpenAI
    gateway_url: str


def _rig(vendor: Vendor, database_url: str, tmp_path: Any, **overrides: Any) -> Iterator[Rig]:
    import asyncio

    from app.db import create_engine, create_sessionmaker
    from app.keys.service import create_key

    fake_app, state = vendor.make_fake()
    with LiveServer(fake_app) as fake:
        base = fake.url
        settings = make_settings(
            database_url,
            tmp_path / "data",
            sandbox_enabled=False,
            poll_interval_ms=50,
            poll_max_interval_ms=100,
            **{**vendor.settings(base), **overrides},
        )

        async def mk() -> str:
            engine = create_engine(settings.resolved_database_url)
            async with create_sessionmaker(engine)() as s:
                _, secret = await create_key(s, name=f"e2e-{vendor.name}")
                await s.commit()
            await engine.dispose()
            return secret

        key = asyncio.run(mk())
        http = httpx.AsyncClient(transport=LoopbackTransport(fake.port), timeout=10)
        with LiveServer(create_app(settings, http=http)) as gw:
            if vendor.public_base_url:
                settings.public_base_url = gw.url
            yield Rig(vendor, state, OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0), gw.url)


@pytest.fixture(params=VENDORS, ids=[v.name for v in VENDORS])
def rig(request, database_url, tmp_path) -> Iterator[Rig]:
    yield from _rig(request.param, database_url, tmp_path)


def wait(client: OpenAI, video_id: str) -> Any:
    return client.videos.poll(video_id, poll_interval_ms=50)


class TestThroughEachVendor:
    def test_text_to_video_and_download(self, rig: Rig) -> None:
        model, size, seconds = rig.vendor.t2v
        created = rig.client.videos.create(
            prompt="A calico cat playing a piano", model=model, size=size, seconds=seconds
        )
        assert created.status == "queued" and created.model == model
        assert created.seconds == rig.vendor.t2v_expected_seconds  # snapped to what the model can do
        video = wait(rig.client, created.id)
        assert video.status == "completed", video.error
        data = rig.client.videos.download_content(video.id).read()
        _, w, h, _, frames = mp4_info(data)  # decodable: the gateway checked it before completing
        assert frames > 0
        assert video.size == f"{w}x{h}"  # the Video reports what was really produced
        assert data == rig.vendor.asset
        thumb = rig.client.videos.download_content(video.id, variant="thumbnail").read()
        assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"

    def test_image_to_video(self, rig: Rig) -> None:
        ref = solid_image((200, 30, 30), size=(1280, 720))
        created = rig.client.videos.create(
            prompt="the red card slowly turns",
            model=rig.vendor.i2v,
            size="1280x720",
            input_reference=("ref.jpg", io.BytesIO(ref), "image/jpeg"),
        )
        video = wait(rig.client, created.id)
        assert video.status == "completed", video.error

    def test_failure_at_the_vendor_is_in_band(self, rig: Rig) -> None:
        rig.vendor.fail(rig.fake_state)
        model, size, seconds = rig.vendor.t2v
        video = wait(rig.client, rig.client.videos.create(prompt="doomed", model=model, size=size, seconds=seconds).id)
        assert video.status == "failed"
        assert video.error is not None and video.error.message
        if rig.vendor.fail_code:
            assert video.error.code == rig.vendor.fail_code

    def test_vendor_429_at_submit_is_a_429_with_retry_after(self, rig: Rig) -> None:
        rig.vendor.throttle(rig.fake_state)
        model, size, seconds = rig.vendor.t2v
        with pytest.raises(openai.RateLimitError) as exc:
            rig.client.videos.create(prompt="busy", model=model, size=size, seconds=seconds)
        retry_after = exc.value.response.headers.get("retry-after")
        assert retry_after is not None and 0 < float(retry_after) <= 120
        assert rig.client.videos.list().data == []  # nothing stored for a refused submit

    def test_models_list_shows_the_vendor_models(self, rig: Rig) -> None:
        ids = {m.id for m in rig.client.models.list()}
        assert rig.vendor.t2v[0] in ids and rig.vendor.i2v in ids
        assert "sandbox" not in ids


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.name for v in VENDORS])
def test_our_credentials_refused_is_a_502_and_nothing_is_stored(vendor: Vendor, database_url, tmp_path) -> None:
    for rig in _rig(vendor, database_url, tmp_path, **vendor.wrong_credentials):
        model, size, seconds = vendor.t2v
        with pytest.raises(openai.InternalServerError) as exc:
            rig.client.videos.create(prompt="x", model=model, size=size, seconds=seconds)
        assert exc.value.status_code == 502
        assert exc.value.code == "upstream_auth_failed"
        body = exc.value.response.text
        for secret in vendor.settings("http://x").values():
            assert str(secret) not in body or str(secret).startswith("http")
        assert rig.client.videos.list().data == []
