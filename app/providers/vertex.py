"""Google Veo through Vertex AI (`{location}-aiplatform.googleapis.com`, REST `v1`).

Implements /work/shared/vendors/vertex.md:
- §2 OAuth: a service-account key file → google-auth's `service_account.Credentials` (scope cloud-platform),
  the JWT-bearer grant at the key's own `token_uri`; `Authorization: Bearer` on every call (`ServiceAccountAuth`);
  the token is reused until google-auth calls it stale (~4 min before expiry), and a 401 from the API
  refreshes it once and repeats the call (§2.2);
- §3, §4 create: `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning`;
- §7 poll: `POST /v1/{name before "/operations/"}:fetchPredictOperation` `{"operationName"}` (project, location
  and model come from the operation name, so a settings change does not lose a running task); progress is
  synthesized; `response.videos[0].bytesBase64Encoded` → completed; `error` → failed; no videos
  (`raiMediaFilteredCount`) → failed `moderation_blocked`;
- §8 the video arrives inline, base64, in the poll answer: it is kept (not decoded) between the poll and the
  download and decoded a slice at a time into storage; `gcsUri` results (only with `storageUri`, which
  vidgate never sends and refuses in metadata) would need Cloud Storage access: out of scope, failed;
- §9 errors (`veo.map_error`); token endpoint refusals (`RefreshError`) → AuthFailed.

Token refresh without blocking the event loop: google-auth's `refresh()` is synchronous (it signs the
assertion and does the HTTP call through a `google.auth.transport.Request`), so it runs in a worker thread;
its one HTTP call is handed back to the event loop and made with the injected `httpx.AsyncClient`
(`_LoopRequest`), so tests choose the transport and no second HTTP stack (`requests`) is needed. google-auth's
asyncio transports are aiohttp-only, hence this bridge.

Settings: `credentials_file` (a path; the file holds the secret, the path is not one) and `project` are the
channel's credentials; `location` is `VIDGATE_VERTEX_LOCATION` (default `us-central1`); the base URL default
`https://{location}-aiplatform.googleapis.com` is a template (`location = global` → `aiplatform.googleapis.com`).

UNCONFIRMED facts and what this adapter does:
- `generateAudio` is "required for Veo 3 models" per the docs: always sent on Veo 3.x (true unless
  `metadata.generate_audio` is false); never on Veo 2.
- `resolution` on Veo 2: not sent (720p is its only output).
- `compressionQuality` case: sent lower-case (`optimized` / `lossless`), as the REST docs spell it.
- `veo-3.1-lite-generate-001` and `veo-2.0-generate-exp` are not listed (capabilities UNCONFIRMED).

Recovery: a Veo create takes no client reference and Operations cannot be listed, so a task a crash may
have created cannot be found again; this provider is not `Recoverable`. No cancel either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping
from dataclasses import replace
from typing import Any, Final

import google.auth.exceptions
import google.auth.transport
import httpx
from google.oauth2 import service_account
from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers import veo
from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    NotFoundAtVendor,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoStatus,
)
from app.providers.http import InlineResults, json_body, request, retry_after

log = logging.getLogger(__name__)

PROVIDER: Final = "vertex"
DEFAULT_BASE_URL: Final = "https://{location}-aiplatform.googleapis.com"
GLOBAL_BASE_URL: Final = "https://aiplatform.googleapis.com"
DEFAULT_LOCATION: Final = "us-central1"
VERSION: Final = "v1"
SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform",)

_SIZES_3X = veo.SIZES_31
MODEL_TABLE: tuple[veo.VeoModel, ...] = (
    *(
        veo.VeoModel(
            name, "3.1", _SIZES_3X, (4, 6, 8), last_frame=True, references=True, typical_s=60 if "fast" in name else 90
        )
        for name in (
            "veo-3.1-generate-001",
            "veo-3.1-fast-generate-001",
            "veo-3.1-generate-preview",
            "veo-3.1-fast-generate-preview",
        )
    ),
    veo.VeoModel("veo-3.0-generate-001", "3.0", veo.SIZES_30, (4, 6, 8)),
    veo.VeoModel("veo-3.0-fast-generate-001", "3.0", veo.SIZES_30, (4, 6, 8), typical_s=60),
    veo.VeoModel("veo-2.0-generate-001", "2.0", veo.SIZES_20, (5, 6, 7, 8), last_frame=True),
)
BY_NAME = {m.name: m for m in MODEL_TABLE}

DIALECT = veo.Dialect(
    provider=PROVIDER,
    title="Vertex AI",
    parameters=frozenset(
        {
            "negative_prompt",
            "person_generation",
            "seed",
            "enhance_prompt",
            "sample_count",
            "generate_audio",
            "resize_mode",
            "compression_quality",
            "fps",
        }
    ),
    send_sample_count=True,
    generate_audio=True,
    labels=True,
    values={
        "resize_mode": frozenset({"pad", "crop"}),
        "compression_quality": frozenset({"optimized", "lossless"}),
    },
)
MODELS = DIALECT.caps(MODEL_TABLE)


def root_url(base_url: str, location: str) -> str:
    """The endpoint root for a location: the template's `{location}` filled, `global` on the global host."""
    if location == "global" and base_url == DEFAULT_BASE_URL:
        return GLOBAL_BASE_URL
    return base_url.replace("{location}", location).rstrip("/").removesuffix(f"/{VERSION}")


# -- auth ---------------------------------------------------------------------------------------------


class _LoopResponse(google.auth.transport.Response):
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    @property
    def data(self) -> bytes:
        return self._resp.content


class _LoopRequest(google.auth.transport.Request):
    """google-auth's HTTP callable, called on a worker thread, performed by the event loop's httpx client."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _LoopResponse:
        wait = timeout or 30.0
        call = self._client.request(method, url, content=body, headers=dict(headers or {}), timeout=wait)
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            return _LoopResponse(future.result(timeout=wait + 5))
        except (httpx.HTTPError, TimeoutError) as exc:
            future.cancel()
            error = google.auth.exceptions.TransportError(f"{type(exc).__name__}: {exc}")  # type: ignore[no-untyped-call]
            raise error from exc


class ServiceAccountAuth(httpx.Auth):
    """`Authorization: Bearer <access token>` from a service-account key, refreshed off the event loop."""

    def __init__(self, client: httpx.AsyncClient, credentials_file: str) -> None:
        self._client = client
        self._file = credentials_file
        self._creds: service_account.Credentials | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _load(self) -> service_account.Credentials:
        if self._creds is None:
            try:
                self._creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                    self._file, scopes=list(SCOPES)
                )
            except (OSError, ValueError, KeyError) as exc:
                raise AuthFailed(
                    PROVIDER,
                    f"cannot read the service-account key file: {type(exc).__name__}",
                    vendor_code="credentials_file",
                ) from None
        return self._creds

    def _refresh(self, loop: asyncio.AbstractEventLoop) -> str:
        creds = self._load()
        try:
            creds.refresh(_LoopRequest(self._client, loop))  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            # ("invalid_grant: Invalid JWT Signature.", {...}): the code before the colon
            text = str(exc.args[0]) if exc.args else "token refresh refused"
            if exc.retryable:  # a 5xx / 429 that google-auth's own retries did not get past
                raise Unavailable(PROVIDER, f"token endpoint: {text}", vendor_code="token_endpoint") from None
            raise AuthFailed(PROVIDER, f"token endpoint: {text}", vendor_code=text.split(":", 1)[0]) from None
        except google.auth.exceptions.TransportError as exc:
            raise Unavailable(PROVIDER, f"token endpoint unreachable: {exc}", vendor_code="transport") from None
        self.refreshes += 1
        return str(creds.token)

    async def token(self, *, stale: str | None = None) -> str:
        """A valid token; with `stale` (one the API refused), a new one unless another call already got it."""
        async with self._lock:
            creds = self._creds
            if creds is not None and creds.token and creds.token != stale and (stale or creds.valid):
                return str(creds.token)
            return await asyncio.to_thread(self._refresh, asyncio.get_running_loop())

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # expired or revoked early: one new token, one more try
            request.headers["Authorization"] = f"Bearer {await self.token(stale=token)}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ServiceAccountAuth is for httpx.AsyncClient only")


# -- responses -----------------------------------------------------------------------------------------


class _Media(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    bytesBase64Encoded: str | None = None
    gcsUri: str | None = None
    mimeType: str | None = None


class _VideoResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    videos: list[_Media] = []
    raiMediaFilteredCount: int | None = None
    raiMediaFilteredReasons: list[str] | None = None


class _Operation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str | None = None
    done: bool = False
    error: dict[str, Any] | None = None
    response: _VideoResponse | None = None


def snapshot(raw: dict[str, Any], *, elapsed: float, typical: float) -> tuple[TaskSnapshot, str | None]:
    """One fetchPredictOperation answer → (snapshot, the inline base64 video when completed)."""
    op = _Operation.model_validate(raw)
    if not op.done:
        return veo.running(elapsed, typical), None
    if op.error is not None:
        code, message = veo.operation_error(op.error)
        return TaskSnapshot(status=VideoStatus.failed, error_code=code, error_message=message), None
    result = op.response or _VideoResponse()
    inline = next((v.bytesBase64Encoded for v in result.videos if v.bytesBase64Encoded), None)
    if inline is not None:
        return TaskSnapshot(status=VideoStatus.completed, progress=100, video_url="inline:"), inline
    if any(v.gcsUri for v in result.videos):
        message = "Vertex AI wrote the video to Cloud Storage (storageUri), which this gateway does not read."
        return TaskSnapshot(status=VideoStatus.failed, error_code="gcs_output_unsupported", error_message=message), None
    return veo.filtered(result.raiMediaFilteredReasons, result.raiMediaFilteredCount), None


# -- the provider --------------------------------------------------------------------------------------


class VertexProvider:
    """Veo on Vertex AI: submit, poll, download; see the module docstring."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        credentials_file: str,
        project: str,
        location: str = DEFAULT_LOCATION,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = 120.0,  # poll answers carry the whole video, base64
        clock: Any = time.time,
    ) -> None:
        self._client = client
        self._project = project
        self._location = location or DEFAULT_LOCATION
        self._root = root_url(base_url, self._location)
        self.auth = ServiceAccountAuth(client, credentials_file)
        self._timeout = timeout
        self._clock = clock
        self._inline = InlineResults(PROVIDER)

    async def _call(self, path: str, body: dict[str, Any], *, polling: bool) -> dict[str, Any]:
        resp = await request(
            self._client,
            PROVIDER,
            "POST",
            f"{self._root}/{VERSION}/{path}",
            vendor="Vertex AI",
            json=body,
            auth=self.auth,
            timeout=self._timeout,
        )
        data = json_body(resp)
        if not resp.is_success:
            raise veo.map_error(
                PROVIDER,
                "Vertex AI",
                resp.status_code,
                data,
                retry_after=retry_after(resp.headers),
                not_found=NotFoundAtVendor if polling else Rejected,
            )
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Vertex AI returned a non-JSON body", status_code=resp.status_code)
        return data

    def model_path(self, model: str) -> str:
        return f"projects/{self._project}/locations/{self._location}/publishers/google/models/{model}"

    async def submit(self, req: GenerationRequest) -> VendorTask:
        model = BY_NAME.get(req.model)
        if model is None:
            raise Rejected(PROVIDER, f"Model '{req.model}' is not a Veo model on Vertex AI.", vendor_code="model")
        plan = veo.build(DIALECT, model, req)
        data = await self._call(f"{self.model_path(model.name)}:predictLongRunning", plan.body, polling=False)
        name = data.get("name")
        if not isinstance(name, str) or "/operations/" not in name:
            raise Unavailable(PROVIDER, "Vertex AI answered the create without an operation name")
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
        name = task.vendor_task_id
        resource = name.rpartition("/operations/")[0]
        data = await self._call(f"{resource}:fetchPredictOperation", {"operationName": name}, polling=True)
        model = BY_NAME.get(str(task.meta.get("model")))
        elapsed = self._clock() - float(task.meta.get("submitted_at") or self._clock())
        try:
            snap, inline = snapshot(data, elapsed=elapsed, typical=model.typical_s if model else 90.0)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected operation body: {exc.errors()[:1]}") from None
        del data  # the answer holds the whole video: keep only its base64 text
        if inline is None:
            return snap
        self._inline.keep(name, inline)
        return replace(
            snap,
            seconds=task.meta.get("seconds"),
            width=task.meta.get("width"),
            height=task.meta.get("height"),
            has_audio=task.meta.get("audio"),
        )

    async def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        for chunk in self._inline.stream(task.vendor_task_id):  # a later attempt (or replica): poll again
            yield chunk
