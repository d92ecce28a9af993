"""Veo on Vertex AI: the Vertex dialect of the Veo mapping, the inline-bytes result, and the adapter against the
fake Vertex server and its token endpoint (google-auth service-account flow, refresh off the event loop,
short-lived and expired tokens)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.oauth2 import service_account

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
from app.providers.vendors import VENDORS, Construct
from app.providers.vertex import BY_NAME, DEFAULT_BASE_URL, DIALECT, MODELS, VertexProvider, root_url, snapshot
from tests.fakes.assets import real_mp4
from tests.fakes.vertex import FILTER_REASON, LOCATION, PROJECT, FakeVertexState, ServiceAccount, make_app
from tests.support.media import solid_image

PNG = solid_image((10, 200, 10), size=(64, 36), fmt="PNG")
TOKEN_URI = "https://oauth2.googleapis.com/token"


def make_req(**kw: Any) -> GenerationRequest:
    base: dict[str, Any] = {"task_id": "video_abc", "model": "veo-3.1-generate-001", "prompt": "a red fox"}
    base |= {"width": 1280, "height": 720, "seconds": 8}
    return GenerationRequest(**(base | kw))


def body(**kw: Any) -> dict[str, Any]:
    req = make_req(**kw)
    return veo.build(DIALECT, BY_NAME[req.model], req).body


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount()


@pytest.fixture
def fake(account: ServiceAccount) -> tuple[Any, FakeVertexState]:
    return make_app(account)


@pytest.fixture
def state(fake: tuple[Any, FakeVertexState]) -> FakeVertexState:
    return fake[1]


@pytest.fixture
async def client(fake: tuple[Any, FakeVertexState]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake[0])) as c:
        yield c


@pytest.fixture
def key_file(account: ServiceAccount, tmp_path: Path) -> Path:
    return account.key_file(tmp_path / "sa.json", token_uri=TOKEN_URI)


@pytest.fixture
def provider(client: httpx.AsyncClient, key_file: Path) -> VertexProvider:
    return VertexProvider(client, credentials_file=str(key_file), project=PROJECT)


async def run(provider: VertexProvider, task: VendorTask, limit: int = 10) -> list[TaskSnapshot]:
    snaps = []
    for _ in range(limit):
        snap = await provider.poll(task)
        snaps.append(snap)
        if snap.status in (VideoStatus.completed, VideoStatus.failed):
            break
    return snaps


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in it])


class TestRoot:
    @pytest.mark.parametrize(
        ("base", "location", "root"),
        [
            (DEFAULT_BASE_URL, "us-central1", "https://us-central1-aiplatform.googleapis.com"),
            (DEFAULT_BASE_URL, "europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
            (DEFAULT_BASE_URL, "global", "https://aiplatform.googleapis.com"),
            ("https://proxy.example.com/v1/", "us-east5", "https://proxy.example.com"),
            ("https://{location}-aiplatform.example.net", "asia-east1", "https://asia-east1-aiplatform.example.net"),
        ],
    )
    def test_root_url(self, base: str, location: str, root: str) -> None:
        assert root_url(base, location) == root

    def test_vendor_row(self) -> None:
        spec = VENDORS["vertex"]
        assert spec.base_url == DEFAULT_BASE_URL and spec.image_transport == "bytes"
        assert set(spec.env_names()) == {
            "VIDGATE_VERTEX_CREDENTIALS_FILE",
            "VIDGATE_VERTEX_PROJECT",
            "VIDGATE_VERTEX_LOCATION",
            "VIDGATE_VERTEX_BASE_URL",
        }
        assert spec.settings_fields()["vertex_location"] == (str, "us-central1")


class TestGoldenBodies:
    def test_text_to_video_sends_audio_and_one_sample(self) -> None:
        assert body() == {
            "instances": [{"prompt": "a red fox"}],
            "parameters": {
                "aspectRatio": "16:9",
                "resolution": "720p",
                "durationSeconds": 8,
                "generateAudio": True,
                "sampleCount": 1,
            },
        }

    def test_silent_video_on_request(self) -> None:
        req = make_req(extras={"generate_audio": "false"})
        plan = veo.build(DIALECT, BY_NAME[req.model], req)
        assert plan.body["parameters"]["generateAudio"] is False and plan.audio is False

    def test_veo2_has_no_resolution_and_no_audio(self) -> None:
        assert body(model="veo-2.0-generate-001", seconds=7, width=720, height=1280)["parameters"] == {
            "aspectRatio": "9:16",
            "durationSeconds": 7,
            "sampleCount": 1,
        }

    def test_vertex_extras(self) -> None:
        b = body(
            image=ImageInput(data=PNG),
            extras={
                "resizeMode": "CROP",
                "compression_quality": "lossless",
                "seed": 7,
                "fps": "24",
                "labels": '{"team": "video"}',
                "person_generation": "allow_adult",
            },
        )
        assert b["labels"] == {"team": "video"}
        p = b["parameters"]
        assert (p["resizeMode"], p["compressionQuality"], p["seed"], p["fps"]) == ("crop", "lossless", 7, 24)
        assert b["instances"][0]["image"] == {
            "bytesBase64Encoded": base64.b64encode(PNG).decode(),
            "mimeType": "image/png",
        }

    @pytest.mark.parametrize(
        ("extras", "kw"),
        [
            ({"storage_uri": "gs://bucket/out"}, {}),
            ({"pubsubTopic": "projects/p/topics/t"}, {}),
            ({"duration_seconds": 4}, {}),  # Vertex would ignore it silently: vidgate refuses
            ({"generate_audio": True}, {"model": "veo-2.0-generate-001", "seconds": 5}),
            ({"resize_mode": "stretch"}, {}),
            ({"sample_count": 4}, {}),
            ({"labels": "not json"}, {}),
        ],
    )
    def test_refused_before_any_vendor_call(self, extras: dict[str, Any], kw: dict[str, Any]) -> None:
        with pytest.raises(Rejected):
            body(extras=extras, **kw)

    def test_caps(self) -> None:
        caps = {c.name: c for c in MODELS}
        assert caps["veo-2.0-generate-001"].seconds == (5, 6, 7, 8) and caps["veo-2.0-generate-001"].last_frame
        assert "generate_audio" in caps["veo-3.1-generate-001"].extras
        assert "generate_audio" not in caps["veo-2.0-generate-001"].extras
        assert {c.provider for c in MODELS} == {"vertex"}


class TestSnapshots:
    def test_running(self) -> None:
        for raw in ({"name": "x"}, {"name": "x", "done": False}):
            snap, inline = snapshot(raw, elapsed=10, typical=90)
            assert snap.status is VideoStatus.in_progress and inline is None

    def test_inline_video(self) -> None:
        raw = {"done": True, "response": {"videos": [{"bytesBase64Encoded": "AAAA", "mimeType": "video/mp4"}]}}
        snap, inline = snapshot(raw, elapsed=10, typical=90)
        assert snap.status is VideoStatus.completed and inline == "AAAA"

    def test_gcs_output_is_out_of_scope(self) -> None:
        raw = {"done": True, "response": {"videos": [{"gcsUri": "gs://b/sample_0.mp4", "mimeType": "video/mp4"}]}}
        snap, _ = snapshot(raw, elapsed=10, typical=90)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "gcs_output_unsupported")

    @pytest.mark.parametrize(
        "response",
        [{"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["blocked 64151117"]}, {"videos": []}, None],
    )
    def test_no_videos_is_a_safety_block(self, response: dict[str, Any] | None) -> None:
        snap, _ = snapshot({"done": True, "response": response}, elapsed=10, typical=90)
        assert (snap.status, snap.error_code) == (VideoStatus.failed, "moderation_blocked")


class TestAgainstTheFake:
    async def test_text_to_video_one_token_for_every_call(
        self, provider: VertexProvider, state: FakeVertexState, account: ServiceAccount
    ) -> None:
        assert isinstance(provider, VideoProvider)
        task = await provider.submit(make_req(seconds=4))
        assert task.vendor_task_id.startswith(
            f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/veo-3.1-generate-001/operations/"
        )
        snaps = await run(provider, task)
        assert [s.status for s in snaps] == [VideoStatus.in_progress] * 2 + [VideoStatus.completed]
        done = snaps[-1]
        assert (done.seconds, done.width, done.height, done.has_audio) == (4, 1280, 720, True)
        assert await collect(provider.download(task, done)) == real_mp4(audio=True)
        # google-auth's JWT-bearer grant, verified by the fake: one token served all four calls
        assert len(state.assertions) == 1 and provider.auth.refreshes == 1
        claims = state.assertions[0]
        assert claims["iss"] == account.email and claims["aud"] == TOKEN_URI
        assert "cloud-platform" in claims["scope"]
        tokens = {r["headers"]["authorization"] for r in state.requests}
        assert len(tokens) == 1 and tokens.pop().startswith("Bearer ya29.")
        assert not state.ignored and not state.rejected_tokens
        polls = [r["json"] for r in state.requests if r["path"].endswith(":fetchPredictOperation")]
        assert polls and all(p == {"operationName": task.vendor_task_id} for p in polls)

    async def test_short_lived_tokens_are_refreshed_before_use(
        self, provider: VertexProvider, state: FakeVertexState
    ) -> None:
        state.token_ttl = 60  # inside google-auth's refresh margin: every call needs a fresh token
        task = await provider.submit(make_req())
        await run(provider, task)
        assert provider.auth.refreshes == len(state.requests) == 4
        assert not state.rejected_tokens

    async def test_a_token_expired_mid_run_is_refreshed_once(
        self, provider: VertexProvider, state: FakeVertexState
    ) -> None:
        task = await provider.submit(make_req())
        state.expire_tokens()
        snap = await provider.poll(task)
        assert snap.status is VideoStatus.in_progress
        assert len(state.rejected_tokens) == 1 and provider.auth.refreshes == 2
        await run(provider, task)
        assert len(state.rejected_tokens) == 1

    async def test_refresh_runs_off_the_event_loop(
        self, provider: VertexProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        original = service_account.Credentials.refresh

        def slow_refresh(self: Any, request: Any) -> None:
            time.sleep(0.3)  # a blocking refresh would freeze the loop for this long
            original(self, request)

        monkeypatch.setattr(service_account.Credentials, "refresh", slow_refresh)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        try:
            await provider.submit(make_req())
        finally:
            tick.cancel()
        assert ticks >= 10

    async def test_a_token_endpoint_hiccup_is_retried_by_google_auth(
        self, provider: VertexProvider, state: FakeVertexState
    ) -> None:
        state.token_faults = 1
        await provider.submit(make_req())
        assert state.token_faults == 0 and len(state.assertions) == 1

    async def test_a_token_endpoint_outage_is_unavailable_not_auth_failed(
        self, provider: VertexProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from google.auth.exceptions import RefreshError

        def down(self: Any, request: Any) -> None:
            raise RefreshError("temporarily_unavailable: try later", retryable=True)

        monkeypatch.setattr(service_account.Credentials, "refresh", down)
        with pytest.raises(Unavailable) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == "token_endpoint"

    async def test_inline_bytes_are_held_once(self, provider: VertexProvider) -> None:
        task = await provider.submit(make_req())
        done = (await run(provider, task))[-1]
        assert await collect(provider.download(task, done)) == real_mp4(audio=True)
        with pytest.raises(Unavailable):  # a retry polls again first, which keeps the bytes again
            await collect(provider.download(task, done))
        again = await provider.poll(task)
        assert await collect(provider.download(task, again)) == real_mp4(audio=True)

    async def test_image_to_video_with_last_frame_on_veo2(
        self, provider: VertexProvider, state: FakeVertexState
    ) -> None:
        req = make_req(
            model="veo-2.0-generate-001", seconds=6, image=ImageInput(data=PNG), last_frame=ImageInput(data=PNG)
        )
        task = await provider.submit(req)
        done = (await run(provider, task))[-1]
        assert done.has_audio is False
        assert await collect(provider.download(task, done)) == real_mp4(audio=False)
        assert set(state.creates()[-1]["instances"][0]) == {"prompt", "image", "lastFrame"}

    async def test_safety_filtered(self, provider: VertexProvider, state: FakeVertexState) -> None:
        state.outcome = "filtered"
        done = (await run(provider, await provider.submit(make_req())))[-1]
        assert (done.status, done.error_code, done.error_message) == (
            VideoStatus.failed,
            "moderation_blocked",
            FILTER_REASON,
        )

    async def test_operation_error(self, provider: VertexProvider, state: FakeVertexState) -> None:
        state.outcome = "error"
        done = (await run(provider, await provider.submit(make_req())))[-1]
        assert (done.status, done.error_code) == (VideoStatus.failed, "INTERNAL")

    @pytest.mark.parametrize(
        ("fault", "cls", "code"),
        [
            ("429", RateLimited, "RESOURCE_EXHAUSTED"),
            ("500", Unavailable, "INTERNAL"),
            ("moderation", Rejected, "moderation_blocked"),
        ],
    )
    async def test_create_faults(
        self, provider: VertexProvider, state: FakeVertexState, fault: str, cls: type, code: str
    ) -> None:
        state.fail_next(fault)
        with pytest.raises(cls) as exc:
            await provider.submit(make_req())
        assert exc.value.vendor_code == code

    async def test_unknown_operation(self, provider: VertexProvider) -> None:
        name = f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/veo-3.1-generate-001/operations/x"
        with pytest.raises(NotFoundAtVendor):
            await provider.poll(VendorTask("vertex", name, {}))

    async def test_wrong_project_is_auth_failed(self, client: httpx.AsyncClient, key_file: Path) -> None:
        p = VertexProvider(client, credentials_file=str(key_file), project="someone-else")
        with pytest.raises(AuthFailed) as exc:
            await p.submit(make_req())
        assert exc.value.vendor_code == "PERMISSION_DENIED"

    async def test_a_key_the_service_does_not_know_is_auth_failed(
        self, client: httpx.AsyncClient, account: ServiceAccount, tmp_path: Path
    ) -> None:
        forged = ServiceAccount(email=account.email, key_id=account.key_id)  # same ids, another private key
        p = VertexProvider(
            client, credentials_file=str(forged.key_file(tmp_path / "f.json", token_uri=TOKEN_URI)), project=PROJECT
        )
        with pytest.raises(AuthFailed, match="Invalid JWT Signature") as exc:
            await p.submit(make_req())
        assert exc.value.vendor_code == "invalid_grant"
        stranger = ServiceAccount(email="nobody@x.iam.gserviceaccount.com")
        p = VertexProvider(
            client, credentials_file=str(stranger.key_file(tmp_path / "s.json", token_uri=TOKEN_URI)), project=PROJECT
        )
        with pytest.raises(AuthFailed, match="account not found"):
            await p.submit(make_req())

    async def test_missing_key_file_is_auth_failed(self, client: httpx.AsyncClient, tmp_path: Path) -> None:
        p = VertexProvider(client, credentials_file=str(tmp_path / "absent.json"), project=PROJECT)
        with pytest.raises(AuthFailed) as exc:
            await p.submit(make_req())
        assert exc.value.vendor_code == "credentials_file"

    async def test_the_fake_refuses_missing_and_foreign_tokens(self, client: httpx.AsyncClient) -> None:
        url = f"https://{LOCATION}-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/veo-3.1-generate-001:predictLongRunning"
        assert (await client.post(url, json={})).status_code == 401
        assert (await client.post(url, json={}, headers={"Authorization": "Bearer ya29.forged"})).status_code == 401

    async def test_location_option_reaches_the_host_and_path(self, account: ServiceAccount, tmp_path: Path) -> None:
        app, state = make_app(account, location="europe-west4")
        key = account.key_file(tmp_path / "sa.json", token_uri=TOKEN_URI)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as c:
            spec = VENDORS["vertex"]
            creds = {"credentials_file": str(key), "project": PROJECT}
            p = spec.create(Construct(c, creds, spec.base_url, None, {"location": "europe-west4"}, tmp_path))
            task = await p.submit(make_req())
            assert "/locations/europe-west4/" in task.vendor_task_id
            assert (await p.poll(task)).status is VideoStatus.in_progress
        assert state.requests[0]["headers"]["host"] == "europe-west4-aiplatform.googleapis.com"


@pytest.mark.parametrize("caps", MODELS, ids=[c.name for c in MODELS])
async def test_every_size_and_duration_of_the_caps_is_accepted_by_the_fake(
    caps: Any, provider: VertexProvider, state: FakeVertexState
) -> None:
    for w, h in caps.sizes:
        for seconds in caps.seconds:
            await provider.submit(make_req(model=caps.name, width=w, height=h, seconds=seconds))
    assert len(state.operations) == len(caps.sizes) * len(caps.seconds)
    assert not state.ignored
