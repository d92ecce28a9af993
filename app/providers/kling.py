"""Kling AI (Kuaishou) classic task API adapter.

Implements /work/shared/vendors/kling.md:
- §2.1 AK/SK → HS256 JWT (`KlingAuth`, cached until shortly before expiry, re-minted once on 1003/1004);
- §3 / §3.1 response envelope and error codes (`map_error`; a non-zero `code` is an error even on HTTP 200);
- §4, §5, §6 create on `/v1/videos/text2video` or `/v1/videos/image2video` (`build_body`);
- §7.1 query by `task_id` or `external_task_id` (`poll`, `find_by_external_id`, `snapshot`, `STATUS`);
- §10 models (`MODELS`).
Video extension (`POST /v1/videos/video-extend`, body `video_id` + prompt / negative_prompt / cfg_scale) is
not in the vendor doc; it follows the copy of the official page in WHQ25/rawgenai
`docs/research/kling/video-extend.md` and the capability map (续写: kling-v1 and kling-v1-6).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, Final

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

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
    Unsupported,
    VendorTask,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps, aspect_ratio
from app.providers.http import by_status, json_body, progress, request, retry_after, stream

log = logging.getLogger(__name__)

PROVIDER: Final = "kling"
DEFAULT_BASE_URL: Final = "https://api-singapore.klingai.com"

T2V: Final = "text2video"
I2V: Final = "image2video"
EXTEND: Final = "video-extend"
FAMILIES: Final = (T2V, I2V, EXTEND)

TOKEN_TTL: Final = 1800  # the official samples' exp = now + 30 min
TOKEN_SKEW: Final = 5  # the official samples' nbf = now - 5
TOKEN_REFRESH_MARGIN: Final = 60  # mint a new token this long before the cached one expires

# --------------------------------------------------------------------------------------------
# Capability table (§10, capability map). Kling renders 720p in std and, on the two-tier models,
# 1080p in pro; the exact square sizes are not documented (UNCONFIRMED).

_SD = ((1280, 720), (720, 1280), (720, 720))
_HD = ((1920, 1080), (1080, 1920), (1080, 1080))
_EXTRAS = frozenset(
    {
        "mode",
        "negative_prompt",
        "cfg_scale",
        "camera_control",
        "image_tail",
        "static_mask",
        "dynamic_masks",
        "watermark_info",
        "callback_url",
    }
)
_EXTRAS_V2 = _EXTRAS - {"cfg_scale"}  # cfg_scale is not supported by kling-v2.x (§5)


def _caps(name: str, sizes: tuple[tuple[int, int], ...], **kw: Any) -> ModelCaps:
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=sizes,
        seconds=(5, 10),
        default_size=sizes[0],
        default_seconds=5,
        **kw,
    )


MODELS: tuple[ModelCaps, ...] = (
    _caps(
        "kling-v1",
        _SD,
        last_frame=True,
        extend=True,
        max_total_seconds=180,
        extras=_EXTRAS,
        description="Kling 1.0: 720p in std and pro; extendable",
    ),
    _caps(
        "kling-v1-5",
        _SD + _HD,
        image="required",
        last_frame=True,
        extras=_EXTRAS,
        description="Kling 1.5, image-to-video only: std 720p, pro 1080p",
    ),
    _caps(
        "kling-v1-6",
        _SD + _HD,
        last_frame=True,
        extend=True,
        max_total_seconds=180,
        extras=_EXTRAS,
        description="Kling 1.6: std 720p, pro 1080p; extendable",
    ),
    _caps("kling-v2-master", _SD, extras=_EXTRAS_V2, description="Kling 2.0 Master: 720p"),
    _caps(
        "kling-v2-1",
        _SD + _HD,
        image="required",
        last_frame=True,
        extras=_EXTRAS_V2,
        description="Kling 2.1, image-to-video only: std 720p, pro 1080p",
    ),
    _caps("kling-v2-1-master", _HD, extras=_EXTRAS_V2, description="Kling 2.1 Master: 1080p"),
    _caps(
        "kling-v2-5-turbo",
        _SD + _HD,
        last_frame=True,
        extras=_EXTRAS_V2,
        description="Kling 2.5 Turbo: std 720p, pro 1080p",
    ),
)

# Models whose 1080p output is the `pro` mode and whose first+last frame is pro-only.
_TWO_TIER: Final = frozenset({"kling-v1-5", "kling-v1-6", "kling-v2-1", "kling-v2-5-turbo"})
# Single-tier models: the mode field means nothing there, so it is left out.
_SINGLE_TIER: Final = frozenset({"kling-v2-master", "kling-v2-1-master"})

ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1")
DURATIONS: Final[dict[int, str]] = {5: "5", 10: "10"}

# --------------------------------------------------------------------------------------------
# Status and errors (§7.1, §3.1)

STATUS: dict[str, VideoStatus] = {
    "submitted": VideoStatus.queued,
    "processing": VideoStatus.in_progress,
    "succeed": VideoStatus.completed,  # sic: the classic API spells it "succeed"
    "failed": VideoStatus.failed,
}

ERRORS: dict[int, type[ProviderError]] = {
    1000: AuthFailed,
    1001: AuthFailed,
    1002: AuthFailed,
    1003: AuthFailed,
    1004: AuthFailed,
    1100: Rejected,
    1101: Rejected,
    1102: Rejected,  # account / arrears / balance: HTTP 429 but not retryable
    1103: AuthFailed,  # this account may not use the API or model: an operator problem, try another key
    1200: Rejected,
    1201: Rejected,
    1202: Rejected,
    1203: Rejected,
    1300: Rejected,
    1301: Rejected,
    1302: RateLimited,
    1303: RateLimited,
    1304: AuthFailed,  # IP allow-list: our deployment is refused, not the request
    5000: Unavailable,
    5001: Unavailable,
    5002: Unavailable,
}
_MIN_BACKOFF: Final = 1.0  # §3.2: back off at least 1 s on 1302/1303


def map_error(http_status: int, body: dict[str, Any] | None, *, retry_after: float | None = None) -> ProviderError:
    """The ProviderError for a Kling error reply: by business code first, HTTP status second."""
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    message = str(body.get("message") or f"Kling returned HTTP {http_status}")
    cls = ERRORS.get(code) if isinstance(code, int) else None
    if cls is None:
        cls = _by_range(code) or by_status(http_status)
    vendor_code = str(code) if code is not None else f"http_{http_status}"
    if cls is RateLimited:
        retry_after = max(retry_after or 0.0, _MIN_BACKOFF)
    return cls(PROVIDER, message, vendor_code=vendor_code, retry_after=retry_after, status_code=http_status)


def _by_range(code: Any) -> type[ProviderError] | None:
    if not isinstance(code, int) or code == 0:
        return None
    if 1000 <= code < 1100:
        return AuthFailed
    if 1100 <= code < 1300:
        return Rejected
    if code >= 5000:
        return Unavailable
    return None


# --------------------------------------------------------------------------------------------
# Auth (§2.1)


class KlingAuth(httpx.Auth):
    """Bearer JWT minted from AK/SK; the SK is the HMAC key as UTF-8 text, never base64-decoded."""

    requires_response_body = True  # to read the business code of a 401 before re-minting

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: int = TOKEN_REFRESH_MARGIN,
    ) -> None:
        self._ak = access_key
        self._sk = secret_key
        self._clock = clock
        self._margin = refresh_margin
        self._token: str | None = None
        self._exp = 0

    def token(self, *, force: bool = False) -> str:
        now = int(self._clock())
        if force or self._token is None or now >= self._exp - self._margin:
            self._exp = now + TOKEN_TTL
            claims = {"iss": self._ak, "exp": self._exp, "nbf": now - TOKEN_SKEW}
            self._token = jwt.encode(claims, self._sk, algorithm="HS256", headers={"alg": "HS256", "typ": "JWT"})
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        # 1003/1004: our token's time window was refused (clock skew); one fresh token, then give up
        if response.status_code == 401 and _code_of(response) in (1003, 1004):
            request.headers["Authorization"] = f"Bearer {self.token(force=True)}"
            yield request


def _code_of(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --------------------------------------------------------------------------------------------
# Request mapping (§5, §6, video-extend)

_PROTECTED: Final = frozenset({"model_name", "model", "external_task_id", "duration", "video_id"})
_EXTEND_KEYS: Final = frozenset({"negative_prompt", "cfg_scale", "watermark_info", "callback_url"})


def family_for(req: GenerationRequest) -> str:
    if req.operation == "extend":
        return EXTEND
    has_image = req.image is not None or req.last_frame is not None
    return I2V if has_image or req.extras.get("image") or req.extras.get("image_tail") else T2V


def duration_for(seconds: int) -> str:
    if seconds in DURATIONS:
        return DURATIONS[seconds]
    return DURATIONS[min(DURATIONS, key=lambda s: (abs(s - seconds), -s))]


def image_value(image: ImageInput) -> str:
    """Raw base64 when we hold the bytes (no public URL needed), else the URL; never a data: URL."""
    if image.data is not None:
        return image.b64()
    if image.url:
        return _strip_data_url(image.url)
    raise Rejected(PROVIDER, "image has neither bytes nor a URL", vendor_code="invalid_image")


def _strip_data_url(value: str) -> str:
    if value.startswith("data:") and "," in value:
        return value.split(",", 1)[1]
    return value


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The native JSON body of a text2video or image2video create."""
    family = family_for(req)
    body: dict[str, Any] = {"model_name": req.model}
    if req.prompt:
        body["prompt"] = req.prompt
    if family == T2V:
        body["aspect_ratio"] = aspect_ratio(req.width, req.height, ASPECT_RATIOS)
    body["duration"] = duration_for(req.seconds)
    if req.model not in _SINGLE_TIER:
        hd = min(req.width, req.height) >= 1080 and req.model in _TWO_TIER
        tail_needs_pro = req.last_frame is not None and req.model in _TWO_TIER
        body["mode"] = "pro" if hd or tail_needs_pro else "std"
    if req.image is not None:
        body["image"] = image_value(req.image)
    if req.last_frame is not None:
        body["image_tail"] = image_value(req.last_frame)
    body.update(coerce_extras(req.extras))
    body["external_task_id"] = req.task_id
    return body


def build_extend_body(req: GenerationRequest, video_id: str) -> dict[str, Any]:
    """The native body of a video-extend create: model and mode always follow the source video."""
    body: dict[str, Any] = {"video_id": video_id}
    if req.prompt:
        body["prompt"] = req.prompt
    body.update({k: v for k, v in coerce_extras(req.extras).items() if k in _EXTEND_KEYS})
    body["external_task_id"] = req.task_id
    return body


def coerce_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """Client metadata → native fields; multipart sends strings, so known keys get their real types."""
    out: dict[str, Any] = {}
    for key, value in extras.items():
        if key.startswith("sandbox_") or key in _PROTECTED:
            continue
        coerce = _COERCE.get(key)
        out[key] = coerce(key, value) if coerce else value
    return out


def _as_str(key: str, value: Any) -> str:
    return str(value)


def _as_mode(key: str, value: Any) -> str:
    return str(value).strip().lower()


def _as_float(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise Rejected(PROVIDER, f"metadata.{key} must be a number", vendor_code="invalid_metadata")
    return number


def _as_json(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise Rejected(PROVIDER, f"metadata.{key} must be JSON", vendor_code="invalid_metadata") from None


def _as_image(key: str, value: Any) -> str:
    return _strip_data_url(str(value))


def _as_switch(key: str, value: Any) -> str:
    text = str(value).strip().lower()
    return "on" if text in ("on", "true", "1", "yes") else "off"


def _as_watermark(key: str, value: Any) -> Any:
    parsed = _as_json(key, value) if isinstance(value, str) and value.strip().startswith("{") else value
    if isinstance(parsed, dict):
        return parsed
    return {"enabled": str(parsed).strip().lower() in ("true", "1", "yes", "on")}


_COERCE: dict[str, Callable[[str, Any], Any]] = {
    "mode": _as_mode,
    "prompt": _as_str,
    "negative_prompt": _as_str,
    "callback_url": _as_str,
    "cfg_scale": _as_float,
    "camera_control": _as_json,
    "dynamic_masks": _as_json,
    "voice_list": _as_json,
    "image": _as_image,
    "image_tail": _as_image,
    "static_mask": _as_image,
    "sound": _as_switch,
    "watermark_info": _as_watermark,
}

# --------------------------------------------------------------------------------------------
# Response mapping (§7.1)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Video(_Model):
    id: str | None = None
    url: str | None = None
    watermark_url: str | None = None
    duration: str | None = None


class _Result(_Model):
    videos: list[_Video] = []


class _TaskInfo(_Model):
    external_task_id: str | None = None
    parent_video: _Video | None = None


class _Task(_Model):
    task_id: str
    task_status: str
    task_status_msg: str | None = None
    task_info: _TaskInfo | None = None
    task_result: _Result | None = None
    created_at: int | None = None  # milliseconds
    updated_at: int | None = None
    final_unit_deduction: str | None = None


def snapshot(raw: dict[str, Any]) -> TaskSnapshot:
    """One Kling task object (an envelope's `data`, or a bare callback body) as a TaskSnapshot."""
    task = _Task.model_validate(raw)
    status = STATUS.get(task.task_status)
    if status is None:
        log.warning("kling task %s has unknown status %r; still polling", task.task_id, task.task_status)
        status = VideoStatus.in_progress
    meta: dict[str, Any] = {"task_id": task.task_id}
    for key in ("created_at", "updated_at"):
        ms = getattr(task, key)
        if ms is not None:
            meta[key] = ms / 1000
    if task.final_unit_deduction is not None:
        meta["final_unit_deduction"] = task.final_unit_deduction
    if task.task_info and task.task_info.parent_video and task.task_info.parent_video.id:
        meta["parent_video_id"] = task.task_info.parent_video.id
    if status == VideoStatus.failed:
        return TaskSnapshot(
            status=status,
            error_code="task_failed",
            error_message=task.task_status_msg or "Kling reported the task as failed",
            meta=meta,
        )
    video = task.task_result.videos[0] if task.task_result and task.task_result.videos else None
    if status != VideoStatus.completed:
        return TaskSnapshot(status=status, progress=progress(status), meta=meta)
    if video is None or not video.url:
        return TaskSnapshot(
            status=VideoStatus.failed,
            error_code="no_output",
            error_message="Kling reported success without a video URL",
            meta=meta,
        )
    meta["video_id"] = video.id  # extension needs it (video-extend `video_id`)
    if video.watermark_url:
        meta["watermark_url"] = video.watermark_url
    if video.duration:
        meta["duration"] = video.duration
    return TaskSnapshot(status=status, progress=100, video_url=video.url, seconds=_seconds(video.duration), meta=meta)


def _seconds(duration: str | None) -> int | None:
    try:
        return round(float(duration)) if duration else None
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------


class KlingProvider:
    """Kling's classic task API: text2video / image2video / video-extend over one injected client."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        access_key: str,
        secret_key: str,
        base_url: str = DEFAULT_BASE_URL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._auth = KlingAuth(access_key, secret_key, clock=clock)

    async def submit(self, req: GenerationRequest) -> VendorTask:
        if req.operation == "extend":
            video_id = await self._source_video_id(req)
            family, body = EXTEND, build_extend_body(req, video_id)
        elif req.operation == "create":
            family, body = family_for(req), build_body(req)
        else:
            raise Unsupported(PROVIDER, f"Kling cannot {req.operation} a video", vendor_code="unsupported")
        data = await self._call("POST", f"/v1/videos/{family}", body)
        task = _parse_task(data)
        meta: dict[str, Any] = {"family": family, "model": req.model, "external_task_id": req.task_id}
        if family == EXTEND:
            meta["parent_video_id"] = body["video_id"]
        return VendorTask(provider=PROVIDER, vendor_task_id=task.task_id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        family = _family_of(task)
        data = await self._call("GET", f"/v1/videos/{family}/{task.vendor_task_id}")
        try:
            return snapshot(data)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected Kling task shape: {exc}", vendor_code="bad_body") from None

    async def find_by_external_id(self, external_task_id: str, *, family: str) -> VendorTask | None:
        """The task created with `external_task_id` (vidgate's id) on `family`, or None if Kling has none."""
        if family not in FAMILIES:
            raise ValueError(f"unknown Kling family {family!r}")
        try:
            data = await self._call("GET", f"/v1/videos/{family}/{external_task_id}")
        except NotFoundAtVendor:
            return None
        task = _parse_task(data)
        meta: dict[str, Any] = {"family": family, "external_task_id": external_task_id}
        return VendorTask(provider=PROVIDER, vendor_task_id=task.task_id, meta=meta)

    async def recover(self, req: GenerationRequest) -> VendorTask | None:
        """After a crash between submit and commit: the task Kling already holds for `req`, if any."""
        return await self.find_by_external_id(req.task_id, family=family_for(req))

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # the CDN URL is pre-authorised: our bearer token must not travel to it
        return stream(
            self._client, PROVIDER, snap.video_url, expired="Kling no longer serves this video (kept 30 days)"
        )

    # ----------------------------------------------------------------------------------------

    async def _source_video_id(self, req: GenerationRequest) -> str:
        explicit = req.extras.get("video_id")
        if explicit:
            return str(explicit)
        if req.source is None:
            raise Rejected(PROVIDER, "extension needs a source video", vendor_code="no_source")
        known = req.source.meta.get("video_id")
        if known:
            return str(known)
        # the source row may predate video_id being stored: ask Kling for it
        snap = await self.poll(req.source)
        video_id = snap.meta.get("video_id")
        if snap.status != VideoStatus.completed or not video_id:
            raise Rejected(PROVIDER, "the source video is not finished", vendor_code="source_not_ready")
        return str(video_id)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}{path}",
            vendor="Kling",
            json=body,
            auth=self._auth,
            headers={"Content-Type": "application/json"},
        )
        payload = json_body(resp)
        if not isinstance(payload, dict):
            if resp.status_code < 400 or resp.status_code >= 500:
                raise Unavailable(
                    PROVIDER,
                    f"unparsable Kling reply (HTTP {resp.status_code})",
                    vendor_code="bad_body",
                    status_code=resp.status_code,
                )
            raise map_error(resp.status_code, None, retry_after=retry_after(resp.headers))
        if resp.status_code != 200 or payload.get("code") != 0:
            if resp.status_code == 404 and payload.get("code") == 1203 and method == "GET":
                raise NotFoundAtVendor(
                    PROVIDER,
                    str(payload.get("message") or "task not found"),
                    vendor_code="1203",
                    status_code=404,
                )
            raise map_error(resp.status_code, payload, retry_after=retry_after(resp.headers))
        data = payload.get("data")
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Kling reply has no data object", vendor_code="bad_body")
        return data


def _parse_task(data: dict[str, Any]) -> _Task:
    try:
        return _Task.model_validate(data)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"unexpected Kling task shape: {exc}", vendor_code="bad_body") from None


def _family_of(task: VendorTask) -> str:
    family = task.meta.get("family", T2V)
    return family if family in FAMILIES else T2V
