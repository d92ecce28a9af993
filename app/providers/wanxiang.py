"""Alibaba Cloud Model Studio / DashScope: Tongyi Wanxiang ("Wan") video generation, native async API.

Implements /work/shared/vendors/wanxiang.md: §2 auth and headers (Bearer key, `X-DashScope-Async`,
optional workspace), §3 endpoints (the `video-generation` create path for t2v/i2v, the `image2video` path
for kf2v, task query, cancel), §4 request body (`input` / `parameters`), §5 per-model capability matrix,
§6 create responses, §7 task query (`task_status`, `video_url`, `usage`), §8 cancel and §9 error codes.
The speech-to-video model (`wan2.2-s2v`) and the newer `media[]`-style models are out of scope.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator
from typing import Any, Literal

import httpx
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
    VendorTask,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps
from app.providers.http import by_status, json_body, progress, request, retry_after, stream

log = logging.getLogger(__name__)

PROVIDER = "wanxiang"
DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com"
POLL_INTERVAL = 15.0  # the vendor's recommended query interval (§7)

CREATE_PATHS = {
    "video": "/api/v1/services/aigc/video-generation/video-synthesis",
    "kf2v": "/api/v1/services/aigc/image2video/video-synthesis",
}

# ---------------------------------------------------------------------------------------------
# Capability table (§5)

# t2v size tiers; i2v/kf2v declare the same lists so the service can snap, then send only the class.
TIERS: dict[str, tuple[tuple[int, int], ...]] = {
    "480P": ((832, 480), (480, 832), (624, 624)),
    "720P": ((1280, 720), (720, 1280), (960, 960), (1088, 832), (832, 1088)),
    "1080P": ((1920, 1080), (1080, 1920), (1440, 1440), (1632, 1248), (1248, 1632)),
}
# Keyed by exact size, not short side: 1088x832 belongs to 720P.
SIZE_CLASS: dict[tuple[int, int], str] = {size: tier for tier, sizes in TIERS.items() for size in sizes}

_INPUT_KEYS = frozenset({"negative_prompt", "audio_url", "template", "img_url", "first_frame_url", "last_frame_url"})
_BOOL_KEYS = frozenset({"prompt_extend", "watermark", "audio"})
_INT_KEYS = frozenset({"seed", "duration"})
_COMMON_EXTRAS = frozenset({"negative_prompt", "prompt_extend", "watermark", "seed"})
_AUDIO_EXTRAS = frozenset({"audio", "audio_url"})


def _caps(
    name: str,
    kind: Literal["t2v", "i2v", "kf2v"],
    tiers: tuple[str, ...],
    default: tuple[int, int],
    seconds: tuple[int, ...],
    description: str,
) -> ModelCaps:
    extras = _COMMON_EXTRAS | (_AUDIO_EXTRAS if name.startswith("wan2.5") else frozenset())
    if kind == "i2v":
        extras |= {"img_url"} | ({"template"} if name.startswith("wanx2.1") else set())
    elif kind == "kf2v":
        extras |= {"first_frame_url", "last_frame_url", "template"}
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=tuple(size for tier in tiers for size in TIERS[tier]),
        seconds=seconds,
        default_size=default,
        default_seconds=5,
        image="none" if kind == "t2v" else "required",
        last_frame=kind == "kf2v",
        description=description,
        extras=frozenset(extras),
    )


_ALL = ("480P", "720P", "1080P")
_FHD, _HD = (1920, 1080), (1280, 720)
_KEEPS_RATIO = "output keeps the image's aspect ratio"
MODELS: tuple[ModelCaps, ...] = tuple(
    _caps(*row)
    for row in (
        ("wan2.5-t2v-preview", "t2v", _ALL, _FHD, (5, 10), "Wan 2.5 text-to-video with sound"),
        ("wan2.2-t2v-plus", "t2v", ("480P", "1080P"), _FHD, (5,), "Wan 2.2 text-to-video, silent"),
        ("wanx2.1-t2v-turbo", "t2v", ("480P", "720P"), _HD, (5,), "Wan 2.1 text-to-video turbo, silent"),
        ("wanx2.1-t2v-plus", "t2v", ("720P",), _HD, (5,), "Wan 2.1 text-to-video, silent"),
        ("wan2.5-i2v-preview", "i2v", _ALL, _FHD, (5, 10), f"Wan 2.5 i2v with sound; {_KEEPS_RATIO}"),
        # Older docs list 480P/720P only; the newer ones add 1080P (§5).
        ("wan2.2-i2v-flash", "i2v", _ALL, _HD, (5,), f"Wan 2.2 image-to-video flash; {_KEEPS_RATIO}"),
        ("wan2.2-i2v-plus", "i2v", ("480P", "1080P"), _FHD, (5,), f"Wan 2.2 image-to-video; {_KEEPS_RATIO}"),
        ("wanx2.1-i2v-plus", "i2v", ("720P",), _HD, (5,), f"Wan 2.1 image-to-video; {_KEEPS_RATIO}"),
        ("wanx2.1-i2v-turbo", "i2v", ("480P", "720P"), _HD, (3, 4, 5), f"Wan 2.1 i2v turbo; {_KEEPS_RATIO}"),
        ("wan2.2-kf2v-flash", "kf2v", _ALL, _HD, (5,), "Wan 2.2 first+last frame to video"),
        ("wanx2.1-kf2v-plus", "kf2v", ("720P",), _HD, (5,), "Wan 2.1 first+last frame to video"),
    )
)
_CAPS = {caps.name: caps for caps in MODELS}


def kind_of(model: str) -> Literal["t2v", "i2v", "kf2v"]:
    # The official SDK routes on the same substring (§3).
    if "kf2v" in model:
        return "kf2v"
    if "i2v" in model:
        return "i2v"
    return "t2v"


# ---------------------------------------------------------------------------------------------
# Request translation (§4)


def _image_ref(image: ImageInput) -> str:
    # A URL keeps the body small; bytes go inline, which needs no public vidgate link.
    return image.url or image.data_url()


def _coerce(key: str, value: Any) -> Any:
    """Multipart metadata arrives as strings; DashScope wants real booleans and integers."""
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off"}:
            return False
    elif key in _INT_KEYS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            pass
    elif key == "resolution":
        return str(value).strip().upper()  # clients write "720p"
    elif key == "size":
        return str(value).strip().lower().replace("x", "*")
    else:
        return value
    message = f"metadata.{key} has an invalid value {value!r}."
    raise Rejected(PROVIDER, message, vendor_code="InvalidParameter")


def _extras(extras: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split client metadata into `input` and `parameters` keys (new-api convention, §11)."""
    inp: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, value in extras.items():
        # `model` and `prompt` come from the OpenAI fields; credentials travel only in headers.
        if key in {"model", "prompt"} or key.startswith("sandbox_") or value is None:
            continue
        if key in {"input", "parameters"} and isinstance(value, dict):
            target = inp if key == "input" else params
            target.update({k: _coerce(k, v) for k, v in value.items() if k not in {"model", "prompt"}})
        elif key in _INPUT_KEYS:
            inp[key] = value
        else:
            params[key] = _coerce(key, value)
    return inp, params


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The native create body. Size → `size:"W*H"` (t2v) or `resolution:"720P"` (i2v, kf2v)."""
    kind = kind_of(req.model)
    extra_input, extra_params = _extras(req.extras)
    inp: dict[str, Any] = {"prompt": req.prompt} if req.prompt else {}
    params: dict[str, Any] = {}

    if kind == "t2v":
        params["size"] = f"{req.width}*{req.height}"
    else:
        params["resolution"] = SIZE_CLASS.get((req.width, req.height)) or f"{min(req.width, req.height)}P"
        first = _image_ref(req.image) if req.image else None
        if kind == "i2v":
            first = first or extra_input.get("img_url")
            if first:
                extra_input["img_url"] = first
        else:
            # metadata.img_url is the relay's generic "the image" key; kf2v calls it first_frame_url.
            fallback = extra_input.pop("img_url", None)
            first = first or extra_input.get("first_frame_url") or fallback
            if first:
                extra_input["first_frame_url"] = first
            if req.last_frame:
                extra_input["last_frame_url"] = _image_ref(req.last_frame)

    caps = _CAPS.get(req.model)
    # Models with one fixed duration are sent none: the docs call it "cannot be modified" (§5).
    if caps is None or len(caps.seconds) > 1:
        params["duration"] = req.seconds

    inp.update(extra_input)
    params.update(extra_params)
    return {"model": req.model, "input": inp, "parameters": params}


# ---------------------------------------------------------------------------------------------
# Response translation (§7, §9)

STATUS: dict[str, VideoStatus] = {
    "PENDING": VideoStatus.queued,
    "RUNNING": VideoStatus.in_progress,
    "SUSPENDED": VideoStatus.in_progress,
    "SUCCEEDED": VideoStatus.completed,
    "FAILED": VideoStatus.failed,
    "CANCELED": VideoStatus.failed,
    "UNKNOWN": VideoStatus.failed,  # no such task, or purged after 24 h
}
# CANCELED / UNKNOWN tasks carry no output.code; give clients a stable one.
_TERMINAL_DEFAULTS = {
    "FAILED": ("TaskFailed", "The video generation task failed."),
    "CANCELED": ("Canceled", "The task was canceled."),
    "UNKNOWN": ("TaskNotFound", "DashScope does not know this task (expired after 24 h or never existed)."),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Results(_Frozen):
    video_url: str | None = None


class _Output(_Frozen):
    task_id: str | None = None
    task_status: str | None = None
    video_url: str | None = None
    results: _Results | None = None  # s2v-style nesting; harmless to accept
    code: str | None = None
    message: str | None = None
    actual_prompt: str | None = None


class _Usage(_Frozen):
    video_duration: float | None = None
    duration: float | None = None


class _Envelope(_Frozen):
    request_id: str | None = None
    code: str | None = None
    message: str | None = None
    output: _Output | None = None
    usage: _Usage | None = None


def _parse(raw: dict[str, Any]) -> _Envelope:
    try:
        return _Envelope.model_validate(raw)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"Unexpected DashScope response: {exc.errors()[0]['msg']}") from None


def snapshot(raw: dict[str, Any]) -> TaskSnapshot:
    """A task-query body → TaskSnapshot. A failed task is a snapshot, not an exception."""
    env = _parse(raw)
    out = env.output
    if out is None or not out.task_status:
        raise Unavailable(PROVIDER, "DashScope task response has no output.task_status.")
    vendor_state = out.task_status
    status = STATUS.get(vendor_state)
    if status is None:
        log.warning("wanxiang: unknown task_status %r for task %s; polling again", vendor_state, out.task_id)
        status = VideoStatus.in_progress
    meta = {"actual_prompt": out.actual_prompt} if out.actual_prompt else {}

    if status is VideoStatus.failed:
        code, message = _TERMINAL_DEFAULTS.get(vendor_state, _TERMINAL_DEFAULTS["FAILED"])
        return TaskSnapshot(status=status, error_code=out.code or code, error_message=out.message or message)
    if status is VideoStatus.completed:
        url = out.video_url or (out.results.video_url if out.results else None)
        if not url:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="NoVideoUrl",
                error_message="DashScope reported success without a video URL.",
            )
        usage = env.usage or _Usage()
        produced = usage.video_duration or usage.duration
        return TaskSnapshot(
            status=status,
            progress=100,
            video_url=url,
            seconds=round(produced) if produced else None,
            meta=meta,
        )
    return TaskSnapshot(status=status, progress=progress(status), poll_after=POLL_INTERVAL, meta=meta)


def _error_class(http_status: int, code: str) -> type[ProviderError]:
    if http_status == 429 or code.startswith("Throttling"):
        return RateLimited
    # AccessDenied covers an unactivated model and a missing async header: an operator problem either way.
    if code == "InvalidApiKey" or code.startswith("AccessDenied"):
        return AuthFailed
    cls = by_status(http_status)
    if cls is Rejected and (http_status in {404, 408} or code.startswith(("InternalError", "RequestTimeOut"))):
        return Unavailable
    return cls


def map_error(http_status: int, body: dict[str, Any] | None, *, retry_after: float | None = None) -> ProviderError:
    """A DashScope error (flat `{request_id, code, message}`, §6.3/§9) → ProviderError.

    `body` is None when it was not JSON. HTTP 200 with a `code` is an error too (§11).
    """
    body = body or {}
    code = str(body.get("code") or "")
    message = str(body.get("message") or f"DashScope returned HTTP {http_status}.")
    cls = _error_class(http_status, code)
    return cls(PROVIDER, message, vendor_code=code or None, retry_after=retry_after, status_code=http_status)


# ---------------------------------------------------------------------------------------------
# Transport


class DashScopeAuth(httpx.Auth):
    """`Authorization: Bearer sk-…` (§2). Keys are region-specific: a wrong region reads as InvalidApiKey."""

    def __init__(self, api_key: str, workspace: str | None = None) -> None:
        self._api_key = api_key
        self._workspace = workspace

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        if self._workspace:
            request.headers["X-DashScope-WorkSpace"] = self._workspace
        yield request


class WanxiangProvider:
    """Tongyi Wanxiang via DashScope's native task API."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        workspace: str | None = None,
    ) -> None:
        self._client = client
        self._auth = DashScopeAuth(api_key, workspace)
        self._base = base_url.rstrip("/")

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, dict[str, Any]]:
        resp = await request(
            self._client, PROVIDER, method, f"{self._base}{path}", vendor="DashScope", auth=self._auth, **kwargs
        )
        body = json_body(resp)
        if not isinstance(body, dict):
            if resp.is_success:
                raise Unavailable(PROVIDER, "DashScope sent a non-JSON body.", status_code=resp.status_code)
            raise map_error(resp.status_code, None, retry_after=retry_after(resp.headers))
        if not resp.is_success or body.get("code"):
            raise map_error(resp.status_code, body, retry_after=retry_after(resp.headers))
        return resp, body

    async def submit(self, req: GenerationRequest) -> VendorTask:
        kind = kind_of(req.model)
        path = CREATE_PATHS["kf2v" if kind == "kf2v" else "video"]
        _, body = await self._call("POST", path, json=build_body(req), headers={"X-DashScope-Async": "enable"})
        task_id = (_parse(body).output or _Output()).task_id
        if not task_id:
            raise Unavailable(PROVIDER, "DashScope accepted the task but returned no task_id.")
        return VendorTask(provider=PROVIDER, vendor_task_id=task_id, meta={"model": req.model, "kind": kind})

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        try:
            _, body = await self._call("GET", f"/api/v1/tasks/{task.vendor_task_id}")
        except Unavailable as exc:
            # Real DashScope answers UNKNOWN with 200; some gateways in front of it use 404.
            if exc.status_code == 404:
                gone = NotFoundAtVendor(PROVIDER, exc.message, vendor_code=exc.vendor_code, status_code=404)
                raise gone from exc
            raise
        return snapshot(body)

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # A pre-signed OSS URL: no auth, so our key never leaves for the storage host.
        return stream(
            self._client, PROVIDER, snap.video_url, expired="The DashScope result URL has expired (valid 24 h)."
        )

    async def cancel(self, task: VendorTask) -> None:
        # Only PENDING tasks can be canceled; otherwise DashScope answers 400 (→ Rejected).
        await self._call("POST", f"/api/v1/tasks/{task.vendor_task_id}/cancel")
