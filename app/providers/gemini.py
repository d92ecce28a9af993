"""Google Veo through the Gemini API (generativelanguage.googleapis.com, REST `v1beta`).

Implements /work/shared/vendors/gemini.md:
- §2 `x-goog-api-key` on every call, the video download included (`ApiKeyAuth`);
- §4, §5 create: `POST /v1beta/models/{model}:predictLongRunning` (`veo.build` with `DIALECT`);
- §7 poll: `GET /v1beta/{operation name}`; an Operation is only done / not done, so progress is synthesized
  (`veo.synthetic_progress`); `response.generateVideoResponse.generatedSamples[0].video.uri` → completed,
  `error` → failed with the rpc code name, no samples (`raiMediaFilteredCount`) → failed `moderation_blocked`;
- §8 download: GET the `uri` with the key, then the 302's target *without* it (the storage host needs none,
  and a key must not travel to it: httpx would copy a custom header across a redirect);
- §10 the `{"error": {code, message, status, details}}` envelope (`veo.map_error`).

UNCONFIRMED facts and what this adapter does:
- `seed` on the Gemini API: the docs allow it on Veo 3.x, SDK 2.34 refuses it client-side; it is sent when the
  client asks (Veo 3.x only).
- `lastFrame` on Veo 3 / Veo 2 through the Gemini API: only the Veo 3.1 family takes a last frame here.
- Veo 2 durations: the docs list 5, 6 and 8 (not 7); those three are offered.
- An inline `video.encodedVideo` (instead of `uri`) is read too, as the SDK does.
- The key is sent only to the API's own origin or a `*.googleapis.com` host; a `uri` elsewhere is fetched
  without it (the docs' uri is always on the API host).
- Veo 3.1 Lite is not listed: its capabilities are UNCONFIRMED; a channel can still not serve it.

Recovery: a Veo create takes no client reference and Operations cannot be listed, so a task a crash may
have created cannot be found again; this provider is not `Recoverable`. No cancel either (§9).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import replace
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers import veo
from app.providers.base import (
    GenerationRequest,
    NotFoundAtVendor,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoStatus,
)
from app.providers.http import InlineResults, json_body, request, retry_after, stream

log = logging.getLogger(__name__)

PROVIDER: Final = "gemini"
DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com"
VERSION: Final = "v1beta"

MODEL_TABLE: tuple[veo.VeoModel, ...] = (
    veo.VeoModel("veo-3.1-generate-preview", "3.1", veo.SIZES_31, (4, 6, 8), last_frame=True, references=True),
    veo.VeoModel(
        "veo-3.1-fast-generate-preview", "3.1", veo.SIZES_31, (4, 6, 8), last_frame=True, references=True, typical_s=60
    ),
    veo.VeoModel("veo-3.0-generate-001", "3.0", veo.SIZES_30, (4, 6, 8)),
    veo.VeoModel("veo-3.0-fast-generate-001", "3.0", veo.SIZES_30, (4, 6, 8), typical_s=60),
    veo.VeoModel("veo-2.0-generate-001", "2.0", veo.SIZES_20, (5, 6, 8)),
)
BY_NAME = {m.name: m for m in MODEL_TABLE}

DIALECT = veo.Dialect(
    provider=PROVIDER,
    title="the Gemini API",
    parameters=frozenset({"negative_prompt", "person_generation", "seed", "enhance_prompt", "sample_count"}),
    send_sample_count=False,
    generate_audio=False,
)
MODELS = DIALECT.caps(MODEL_TABLE)


class _Video(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    uri: str | None = None
    encodedVideo: str | None = None
    mimeType: str | None = None


class _Sample(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    video: _Video | None = None


class _VideoResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    generatedSamples: list[_Sample] = []
    raiMediaFilteredCount: int | None = None
    raiMediaFilteredReasons: list[str] | None = None


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    generateVideoResponse: _VideoResponse | None = None


class _Operation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str | None = None
    done: bool = False
    error: dict[str, Any] | None = None
    response: _Response | None = None


def snapshot(raw: dict[str, Any], *, elapsed: float, typical: float) -> TaskSnapshot:
    """One Operation answer → a TaskSnapshot (inline bytes, if any, in `meta["inline"]`, never stored)."""
    op = _Operation.model_validate(raw)
    if not op.done:
        return veo.running(elapsed, typical)
    if op.error is not None:
        code, message = veo.operation_error(op.error)
        return TaskSnapshot(status=VideoStatus.failed, error_code=code, error_message=message)
    result = op.response.generateVideoResponse if op.response is not None else None
    if result is None:
        return veo.filtered(None, None)
    video = next((s.video for s in result.generatedSamples if s.video and (s.video.uri or s.video.encodedVideo)), None)
    if video is None:
        return veo.filtered(result.raiMediaFilteredReasons, result.raiMediaFilteredCount)
    return TaskSnapshot(status=VideoStatus.completed, progress=100, video_url=video.uri or "inline:")


class ApiKeyAuth(httpx.Auth):
    """`x-goog-api-key: <key>`, only towards hosts that are Google's API (the key must not reach a CDN)."""

    def __init__(self, api_key: str, base_url: str) -> None:
        self._key = api_key
        self._origin = urlsplit(base_url)[:2]

    def trusted(self, url: httpx.URL) -> bool:
        return (url.scheme, url.netloc.decode()) == self._origin or url.host.endswith(".googleapis.com")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.trusted(request.url):
            request.headers["x-goog-api-key"] = self._key
        yield request


class GeminiProvider:
    """Veo on the Gemini API: submit, poll, download; see the module docstring."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = 60.0,
        clock: Any = time.time,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/").removesuffix(f"/{VERSION}")
        self._auth = ApiKeyAuth(api_key, self._base)
        self._timeout = timeout
        self._clock = clock
        self._inline = InlineResults(PROVIDER)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *, polling: bool) -> Any:
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}/{VERSION}/{path}",
            vendor="Gemini API",
            json=body,
            auth=self._auth,
            timeout=self._timeout,
        )
        data = json_body(resp)
        if not resp.is_success:
            raise veo.map_error(
                PROVIDER,
                "Gemini API",
                resp.status_code,
                data,
                retry_after=retry_after(resp.headers),
                not_found=NotFoundAtVendor if polling else Rejected,
            )
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Gemini API returned a non-JSON body", status_code=resp.status_code)
        if "error" in data and not polling:
            raise veo.map_error(PROVIDER, "Gemini API", resp.status_code, data)
        return data

    async def submit(self, req: GenerationRequest) -> VendorTask:
        model = BY_NAME.get(req.model)
        if model is None:
            raise Rejected(PROVIDER, f"Model '{req.model}' is not a Veo model of the Gemini API.", vendor_code="model")
        plan = veo.build(DIALECT, model, req)
        data = await self._call("POST", f"models/{model.name}:predictLongRunning", plan.body, polling=False)
        name = data.get("name")
        if not isinstance(name, str) or "/operations/" not in name:
            raise Unavailable(PROVIDER, "Gemini API answered the create without an operation name")
        return VendorTask(
            provider=PROVIDER,
            vendor_task_id=name,
            meta={
                "model": model.name,
                "submitted_at": self._clock(),
                "seconds": plan.seconds,
                "width": plan.width,
                "height": plan.height,
                "audio": plan.audio,
            },
        )

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        data = await self._call("GET", task.vendor_task_id, polling=True)
        model = BY_NAME.get(str(task.meta.get("model")))
        elapsed = self._clock() - float(task.meta.get("submitted_at") or self._clock())
        try:
            snap = snapshot(data, elapsed=elapsed, typical=model.typical_s if model else 90.0)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected operation body: {exc.errors()[:1]}") from None
        if snap.status is not VideoStatus.completed:
            return snap
        if snap.video_url == "inline:":
            self._inline.keep(task.vendor_task_id, _inline_video(data))
        return replace(
            snap,
            seconds=task.meta.get("seconds"),
            width=task.meta.get("width"),
            height=task.meta.get("height"),
            has_audio=task.meta.get("audio"),
        )

    async def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        if snap.video_url == "inline:":
            for chunk in self._inline.stream(task.vendor_task_id):
                yield chunk
            return
        async for chunk in self._fetch(snap.video_url):
            yield chunk

    async def _fetch(self, uri: str | None) -> AsyncIterator[bytes]:
        if not uri:
            raise NotFoundAtVendor(PROVIDER, "The operation has no video uri.", vendor_code="no_output")
        try:
            async with self._client.stream("GET", uri, auth=self._auth, timeout=self._timeout) as resp:
                if resp.is_redirect and (location := resp.headers.get("location")):
                    target = urljoin(uri, location)
                else:
                    if resp.status_code in (404, 410):
                        raise NotFoundAtVendor(
                            PROVIDER,
                            "Gemini API no longer has the video (files are kept 2 days).",
                            vendor_code=f"http_{resp.status_code}",
                            status_code=resp.status_code,
                        )
                    if not resp.is_success:
                        await resp.aread()
                        body = json_body(resp)
                        raise veo.map_error(PROVIDER, "Gemini API", resp.status_code, body, not_found=NotFoundAtVendor)
                    async for chunk in resp.aiter_bytes():
                        yield chunk
                    return
        except httpx.HTTPError as exc:
            message = f"Video download failed: {type(exc).__name__}"
            raise Unavailable(PROVIDER, message, vendor_code="transport") from exc
        # the storage host's signed URL: no key, no auth
        async for chunk in stream(self._client, PROVIDER, target, timeout=self._timeout):
            yield chunk


def _inline_video(data: dict[str, Any]) -> str:
    samples = ((data.get("response") or {}).get("generateVideoResponse") or {}).get("generatedSamples") or []
    for sample in samples:
        encoded = (sample.get("video") or {}).get("encodedVideo")
        if isinstance(encoded, str) and encoded:
            return encoded
    raise Unavailable(PROVIDER, "the operation's inline video is missing")
