"""OpenAI-format upstream (`openai_compat`): Sora itself, Sora-compatible relays and chained gateways.

Implements the upstream side of the wire contract in `spec/openai-videos.md`: §1 endpoints, §2 request
encodings (always multipart for create/edits/extensions, as openai-python >= 2.27 does; JSON for remix),
§3 create (`input_reference` file part or `input_reference[image_url]`), §4 remix/edits/extensions (by the
upstream's own video id), §5 the Video object, §6 content variants, §7 the error envelope, §8 retry headers
(`retry-after-ms`, `retry-after`) and §9 `openai-poll-after-ms`. Relay variants (seeds/*.txt): status
spellings such as `pending`/`processing`/`succeeded`/`cancelled`, a `url` field and HTTP 201 on create.

Client `metadata` (request extras) goes out as SDK-style bracket fields (`metadata[k]=v`, nested
`metadata[k][sub]`, lists `metadata[k][]`) so a chained vidgate parses it back into the same dict; remix
is JSON, so there it is a JSON object. OpenAI itself documents no metadata field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps
from app.providers.http import progress, request, retry_after, stream

log = logging.getLogger("vidgate.providers.openai_compat")

PROVIDER = "openai_compat"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
VARIANTS = ("video", "thumbnail", "spritesheet")

_SIZES: tuple[tuple[int, int], ...] = ((720, 1280), (1280, 720), (1024, 1792), (1792, 1024))
_PRO_SIZES = (*_SIZES, (1920, 1080), (1080, 1920))
_SECONDS = (4, 8, 12, 16, 20)


def _caps(name: str, sizes: tuple[tuple[int, int], ...], description: str) -> ModelCaps:
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=sizes,
        seconds=_SECONDS,
        default_size=(720, 1280),
        default_seconds=4,
        image="optional",
        last_frame=False,
        remix=True,
        edit=True,
        extend=True,
        max_total_seconds=120,  # guide: up to six extensions, 120 s in total
        description=description,
    )


MODELS: tuple[ModelCaps, ...] = (
    _caps("sora-2", _SIZES, "OpenAI Sora 2 (or a relay serving it)."),
    _caps("sora-2-pro", _PRO_SIZES, "OpenAI Sora 2 Pro: adds 1920x1080 and 1080x1920."),
    _caps("sora-2-2025-10-06", _SIZES, "Sora 2 snapshot 2025-10-06."),
    _caps("sora-2-pro-2025-10-06", _PRO_SIZES, "Sora 2 Pro snapshot 2025-10-06."),
    _caps("sora-2-2025-12-08", _SIZES, "Sora 2 snapshot 2025-12-08."),
)
_KNOWN = {caps.name: caps for caps in MODELS}


def model_caps(names: Iterable[str]) -> tuple[ModelCaps, ...]:
    """Caps for operator-configured model names: known Sora names keep their table, others get sora-2's."""
    return tuple(
        _KNOWN.get(name) or _caps(name, _SIZES, "Model served by an OpenAI-compatible upstream.")
        for name in dict.fromkeys(names)
    )


# Lower-cased upstream spellings; relays (new-api and friends) rename OpenAI's four states.
STATUS: dict[str, VideoStatus] = {
    "queued": VideoStatus.queued,
    "pending": VideoStatus.queued,
    "submitted": VideoStatus.queued,
    "in_progress": VideoStatus.in_progress,
    "processing": VideoStatus.in_progress,
    "running": VideoStatus.in_progress,
    "completed": VideoStatus.completed,
    "succeeded": VideoStatus.completed,
    "success": VideoStatus.completed,
    "failed": VideoStatus.failed,
    "failure": VideoStatus.failed,
    "cancelled": VideoStatus.failed,
    "canceled": VideoStatus.failed,
    "expired": VideoStatus.failed,  # guide: the asset is gone, nothing left to download
}
# failed-without-error-object spellings that still deserve a specific code
_FAILED_CODES = {"cancelled": "cancelled", "canceled": "cancelled", "expired": "expired"}

_RATE_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "concurrency_limit_exceeded"})
_AUTH_CODES = frozenset({"invalid_api_key", "authentication_error", "permission_error"})
# OpenAI answers an empty balance with 429 `insufficient_quota`: waiting does not help, so it is a rejection.
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "insufficient_balance"})
_IMAGE_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/webp": "webp"}


# ---------------------------------------------------------------------------------------------
# Pure translation


def _metadata(extras: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extras.items() if not k.startswith("sandbox_") and v is not None}


def source_id(req: GenerationRequest) -> str | None:
    """The upstream id of the source video, when the source was made through this provider."""
    if req.source is not None and req.source.provider == PROVIDER and req.source.vendor_task_id:
        return req.source.vendor_task_id
    return None


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The logical request body for `req.operation` (nested; `form_fields` flattens it for multipart).

    Extras live under `metadata`, so they can never override the model, prompt or size.
    """
    body: dict[str, Any]
    match req.operation:
        case "create":
            body = {"prompt": req.prompt, "model": req.model, "seconds": str(req.seconds), "size": req.size}
            if req.image is not None and req.image.data is None and req.image.url:
                body["input_reference"] = {"image_url": req.image.url}
        case "remix":
            body = {"prompt": req.prompt}
        case "edit":
            body = {"prompt": req.prompt}
        case "extend":
            body = {"prompt": req.prompt, "seconds": str(req.seconds)}  # the new segment, not the total
    if req.operation in ("edit", "extend"):
        sid = source_id(req)
        if sid is not None:
            body["video"] = {"id": sid}
        else:
            body["model"] = req.model  # guide: name the model when uploading the source video
    if metadata := _metadata(req.extras):
        body["metadata"] = metadata
    return body


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Flatten a nested body into multipart text fields, the way openai-python serializes them."""
    out: list[tuple[str, str]] = []

    def walk(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for sub, item in value.items():
                walk(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(f"{key}[]", item)
        else:
            out.append((key, _scalar(value)))

    for key, value in body.items():
        walk(key, value)
    return out


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return round(float(str(value).strip().removesuffix("%").removesuffix("s")))
    except (ValueError, OverflowError):
        return None


def _size(value: Any) -> tuple[int | None, int | None]:
    text = str(value or "").lower().replace("*", "x")
    w, _, h = text.partition("x")
    width, height = _int(w), _int(h)
    if width and height:
        return width, height
    return None, None


def eta(raw: dict[str, Any], *, now: float) -> float | None:
    """Seconds the upstream still needs, as its own fields imply: §5 gives `progress` (0-100) and
    `created_at` (unix seconds) and no estimate, so the rest is assumed to take as long per percent as the
    part done did. None without a reported progress strictly between 0 and 100 (a synthesized one says
    nothing), or without a creation time in the past. Time spent queued makes it an overestimate."""
    reported, created = _int(raw.get("progress")), _int(raw.get("created_at"))
    if reported is None or not 0 < reported < 100 or created is None or created >= now:
        return None
    elapsed = now - created
    return elapsed * (100 - reported) / reported


def snapshot(raw: dict[str, Any], *, now: float | None = None) -> TaskSnapshot:
    """One upstream Video object → a snapshot. Unknown states stay `in_progress`, never `failed`."""
    spelling = str(raw.get("status") or "").strip().lower()
    status = STATUS.get(spelling)
    if status is None:
        log.warning("openai_compat: unknown upstream status %r for %s", spelling, raw.get("id"))
        status = VideoStatus.in_progress
    error_code = error_message = None
    if status is VideoStatus.failed:
        message, typ, code = _error_fields({"error": raw.get("error")})
        error_code = code or typ or _FAILED_CODES.get(spelling, "generation_failed")
        error_message = message or f"The upstream reported the video as {spelling}."
    width, height = _size(raw.get("size"))
    meta = {k: raw[k] for k in ("url", "expires_at", "model") if raw.get(k) is not None}
    return TaskSnapshot(
        status=status,
        progress=progress(status, _int(raw.get("progress"))),
        error_code=error_code,
        error_message=error_message,
        seconds=_int(raw.get("seconds")),
        width=width,
        height=height,
        meta=meta,
        eta=eta(raw, now=time.time() if now is None else now) if status is VideoStatus.in_progress else None,
    )


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, type, code) from the OpenAI envelope, or from the looser shapes relays answer with."""
    if not isinstance(body, dict):
        return (body.strip()[:500] or None) if isinstance(body, str) else None, None, None
    err = body.get("error", body)
    if isinstance(err, str):
        return err, None, None
    if not isinstance(err, dict):
        return None, None, None
    message = err.get("message") or body.get("message") or body.get("detail")
    typ, code = err.get("type"), err.get("code")
    return (
        str(message) if message else None,
        str(typ) if typ else None,
        str(code) if code not in (None, "") else None,
    )


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """An upstream error (any HTTP status, 200 included) → the ProviderError subclass vidgate acts on."""
    message, typ, code = _error_fields(body)
    vendor_code = code or typ or f"http_{http_status}"
    labels = {code, typ}
    kw: dict[str, Any] = {"vendor_code": vendor_code, "status_code": http_status}
    text = message or f"Upstream answered HTTP {http_status}."
    if labels & _QUOTA_CODES:
        return Rejected(PROVIDER, text, **kw)
    if http_status == 429 or labels & _RATE_CODES:
        return RateLimited(PROVIDER, text, retry_after=retry_after, **kw)
    if http_status in (401, 403) or labels & _AUTH_CODES:
        return AuthFailed(PROVIDER, text, **kw)
    if http_status == 404:
        return NotFoundAtVendor(PROVIDER, text, **kw)
    if http_status >= 500 or http_status in (408, 409) or typ == "server_error":
        return Unavailable(PROVIDER, text, **kw)
    if http_status >= 400 or code or typ:
        return Rejected(PROVIDER, text, **kw)
    return Unavailable(PROVIDER, text, **kw)


def poll_after(headers: httpx.Headers) -> float | None:
    value = _int(headers.get("openai-poll-after-ms"))
    return value / 1000 if value and value > 0 else None


# ---------------------------------------------------------------------------------------------
# I/O


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <key>`, per request, so the shared client carries no credentials."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _parse_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


class OpenAICompatProvider:
    """An upstream speaking OpenAI's Videos API: api.openai.com, a Sora relay or another vidgate."""

    name = PROVIDER
    chunk_size = 256 * 1024

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        models: tuple[str, ...] | None = None,
    ) -> None:
        self._client = client
        self._auth = BearerAuth(api_key)
        self.base_url = base_url.rstrip("/")
        self.models: tuple[ModelCaps, ...] = model_caps(models) if models else MODELS

    def _url(self, *parts: str) -> str:
        # upstream ids go into the path quoted, so an odd id can never walk to another endpoint
        return "/".join([self.base_url, "videos", *(quote(p, safe="") for p in parts)])

    async def _send(self, method: str, url: str, **kwargs: Any) -> tuple[dict[str, Any], httpx.Headers]:
        """One request → (JSON object, headers), or the right ProviderError (HTTP-200 error bodies too)."""
        resp = await request(self._client, PROVIDER, method, url, vendor="Upstream", auth=self._auth, **kwargs)
        body = _parse_json(resp)
        if resp.status_code >= 400:
            raise map_error(resp.status_code, body, retry_after=retry_after(resp.headers))
        if not isinstance(body, dict):
            raise Unavailable(
                PROVIDER,
                "Upstream answered with a body that is not a JSON object.",
                status_code=resp.status_code,
            )
        if body.get("error") and not body.get("status"):
            raise map_error(resp.status_code, body, retry_after=retry_after(resp.headers))
        return body, resp.headers

    async def submit(self, req: GenerationRequest) -> VendorTask:
        body = build_body(req)
        try:
            match req.operation:
                case "create":
                    raw, _ = await self._multipart(self._url(), body, self._image_part(req))
                case "remix":
                    sid = source_id(req)
                    if sid is None:
                        raise Rejected(
                            PROVIDER,
                            "Remix needs a source video made through this upstream.",
                            vendor_code="missing_source",
                        )
                    raw, _ = await self._send("POST", self._url(sid, "remix"), json=body)
                case "edit" | "extend":
                    path = "edits" if req.operation == "edit" else "extensions"
                    raw, _ = await self._multipart(self._url(path), body, self._source_part(req, body))
        except NotFoundAtVendor as exc:
            # on create a 404 means an unknown model or source video: the request is wrong, nothing expired
            raise Rejected(PROVIDER, exc.message, vendor_code=exc.vendor_code, status_code=404) from exc
        vid = raw.get("id") or raw.get("task_id")
        if not isinstance(vid, str) or not vid:
            raise Unavailable(PROVIDER, "Upstream accepted the request but returned no video id.")
        return VendorTask(PROVIDER, vid, meta={"operation": req.operation, "model": raw.get("model") or req.model})

    async def _multipart(
        self, url: str, body: dict[str, Any], file: tuple[str, Any] | None
    ) -> tuple[dict[str, Any], httpx.Headers]:
        # Text fields as filename-less parts keep the request multipart even without a file (like the SDK).
        parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in form_fields(body)]
        if file is None:
            return await self._send("POST", url, files=parts)
        name, spec = file
        if isinstance(spec, Path):
            with spec.open("rb") as fh:  # streamed by httpx in chunks, never read whole
                return await self._send("POST", url, files=[*parts, (name, (spec.name, fh, "video/mp4"))])
        return await self._send("POST", url, files=[*parts, (name, spec)])

    @staticmethod
    def _image_part(req: GenerationRequest) -> tuple[str, Any] | None:
        if req.image is None or req.image.data is None:
            return None
        mime = (req.image.mime or "image/png").lower()
        return "input_reference", (f"reference.{_IMAGE_EXT.get(mime, 'png')}", req.image.data, mime)

    @staticmethod
    def _source_part(req: GenerationRequest, body: dict[str, Any]) -> tuple[str, Any] | None:
        if "video" in body:
            return None
        if req.source_video is None or not req.source_video.is_file():
            raise Rejected(
                PROVIDER,
                f"The {req.operation} needs a source video made through this upstream.",
                vendor_code="missing_source",
            )
        return "video", req.source_video

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        raw, headers = await self._send("GET", self._url(task.vendor_task_id))
        snap = snapshot(raw)
        if snap.status is VideoStatus.completed:
            return replace(snap, video_url=self._url(task.vendor_task_id, "content"))
        if snap.status is VideoStatus.failed:
            return snap
        return replace(snap, poll_after=poll_after(headers))

    async def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        """The MP4, streamed from the upstream's `/videos/{id}/content`."""
        async for chunk in self._stream(snap.video_url or self._url(task.vendor_task_id, "content"), {}):
            yield chunk

    async def download_variant(self, task: VendorTask, variant: str) -> AsyncIterator[bytes]:
        """`video` (MP4), `thumbnail` (WebP) or `spritesheet` (JPEG) from `/videos/{id}/content?variant=`."""
        if variant not in VARIANTS:
            raise Rejected(PROVIDER, f"Unknown content variant '{variant}'.", vendor_code="invalid_variant")
        async for chunk in self._stream(self._url(task.vendor_task_id, "content"), {"variant": variant}):
            yield chunk

    def _stream(self, url: str, params: dict[str, str]) -> AsyncIterator[bytes]:
        # The key only ever goes to the configured upstream; a foreign asset URL is fetched anonymously
        # (httpx also drops Authorization when a redirect leaves the origin).
        return stream(
            self._client,
            PROVIDER,
            url,
            auth=self._auth if url.startswith(self.base_url + "/") else None,
            params=params,
            headers={"Accept": "application/binary"},
            follow_redirects=True,
            error=lambda resp: map_error(resp.status_code, _parse_json(resp), retry_after=retry_after(resp.headers)),
            chunk_size=self.chunk_size,
        )
