"""Jimeng (即梦, ByteDance) video through the Volcengine visual ("cv") OpenAPI.

Implements /work/shared/vendors/jimeng.md: §1 endpoint basics, §2 req_keys and submit bodies (2.1 3.0
text→video, 2.2 first frame, 2.3 first+last frame, 2.5 3.0 Pro, 2.6 image rules, 2.7 S2.0 Pro, 2.8 submit
response), §3 CVSync2AsyncGetResult and its `data.status` values, §4 both error shapes (4.1 service
`code`, 4.2 gateway `ResponseMetadata.Error`). The §5 V4 signature lives in `volc_sign.py`.

Model names are the vendor's req_keys. A text→video name sent with an image switches to the same
family's image→video key (first frame; first+last when `last_frame` is given), and a first-frame key
given a `last_frame` switches to its first+last key. Which key was used is kept in the task's meta,
because GetResult must repeat it. The 720P/1080P class is chosen by the model name, never by size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps, aspect_ratio
from app.providers.http import by_status, json_body, progress, request, retry_after, stream
from app.providers.volc_sign import REGION, VolcV4Auth

log = logging.getLogger(__name__)

PROVIDER = "jimeng"
DEFAULT_BASE_URL = "https://visual.volcengineapi.com"
VERSION = "2022-08-31"
SUBMIT_ACTION = "CVSync2AsyncSubmitTask"
RESULT_ACTION = "CVSync2AsyncGetResult"
SUCCESS = 10000
MAX_IMAGE_BYTES = 4 * 1024 * 1024 + 700 * 1024  # "4.7 MB" as new-api enforces it (§2.6)
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
FRAMES = {5: 121, 10: 241}  # frames = 24·n + 1 (§2.1)

# ---------------------------------------------------------------------------------------------
# Capability table (§2)

# S2.0 Pro ratios as a comment quoting the doc gives them (§2.7); the 3.0 720P keys state no sizes
# (UNCONFIRMED), so they reuse the 720P set.
SIZES_720 = ((1280, 720), (720, 1280), (960, 960), (960, 720), (720, 960), (1680, 720))
# 3.0 Pro's documented output sizes (§2.5); the 3.0 1080P keys state none (UNCONFIRMED), so they reuse it.
SIZES_1080 = ((1920, 1088), (1088, 1920), (1440, 1440), (1664, 1248), (1248, 1664), (2176, 928))

# model → (req_key with no image, with a first frame, with first + last frame); None = not possible
ROUTES: dict[str, tuple[str | None, str | None, str | None]] = {
    "jimeng_vgfm_t2v_l20": ("jimeng_vgfm_t2v_l20", "jimeng_vgfm_i2v_l20", None),
    "jimeng_vgfm_i2v_l20": (None, "jimeng_vgfm_i2v_l20", None),
    "jimeng_t2v_v30": ("jimeng_t2v_v30", "jimeng_i2v_first_v30", "jimeng_i2v_first_tail_v30"),
    "jimeng_t2v_v30_1080p": (
        "jimeng_t2v_v30_1080p",
        "jimeng_i2v_first_v30_1080",
        "jimeng_i2v_first_tail_v30_1080",
    ),
    "jimeng_i2v_first_v30": (None, "jimeng_i2v_first_v30", "jimeng_i2v_first_tail_v30"),
    "jimeng_i2v_first_v30_1080": (None, "jimeng_i2v_first_v30_1080", "jimeng_i2v_first_tail_v30_1080"),
    "jimeng_i2v_first_tail_v30": (None, None, "jimeng_i2v_first_tail_v30"),
    "jimeng_i2v_first_tail_v30_1080": (None, None, "jimeng_i2v_first_tail_v30_1080"),
    "jimeng_ti2v_v30_pro": ("jimeng_ti2v_v30_pro", "jimeng_ti2v_v30_pro", None),
}

EXTRAS = frozenset({"seed", "frames", "aspect_ratio", "req_json"})


def _caps(name: str, sizes: tuple[tuple[int, int], ...], description: str) -> ModelCaps:
    text, first, tail = ROUTES[name]
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=sizes,
        # S2.0 Pro documents no `frames` (§2.7): one 5 s length, UNCONFIRMED
        seconds=(5,) if name.startswith("jimeng_vgfm") else (5, 10),
        default_size=sizes[0],
        default_seconds=5,
        image="required" if text is None else ("optional" if first or tail else "none"),
        last_frame=tail is not None,
        description=description,
        extras=EXTRAS - ({"frames"} if name.startswith("jimeng_vgfm") else set()),
    )


MODELS: tuple[ModelCaps, ...] = (
    _caps("jimeng_vgfm_t2v_l20", SIZES_720, "Jimeng S2.0 Pro text→video (image → S2.0 Pro i2v); phasing out"),
    _caps("jimeng_vgfm_i2v_l20", SIZES_720, "Jimeng S2.0 Pro image→video; phasing out"),
    _caps("jimeng_t2v_v30", SIZES_720, "Jimeng 3.0 720P text→video (image → first / first+last frame)"),
    _caps("jimeng_t2v_v30_1080p", SIZES_1080, "Jimeng 3.0 1080P text→video (image → 1080P i2v keys)"),
    _caps("jimeng_i2v_first_v30", SIZES_720, "Jimeng 3.0 720P first-frame image→video"),
    _caps("jimeng_i2v_first_v30_1080", SIZES_1080, "Jimeng 3.0 1080P first-frame image→video"),
    _caps("jimeng_i2v_first_tail_v30", SIZES_720, "Jimeng 3.0 720P first+last frame; needs both"),
    _caps("jimeng_i2v_first_tail_v30_1080", SIZES_1080, "Jimeng 3.0 1080P first+last frame; needs both"),
    _caps("jimeng_ti2v_v30_pro", SIZES_1080, "Jimeng 3.0 Pro 1080P, text or first-frame image→video"),
)

# ---------------------------------------------------------------------------------------------
# Request translation (§2)


def req_key_for(model: str, *, image: bool, last_frame: bool) -> str:
    if model not in ROUTES:
        raise Rejected(PROVIDER, f"Unknown Jimeng model '{model}'.", vendor_code="unknown_model")
    if last_frame and not image:
        raise Rejected(PROVIDER, "A last frame needs a first frame image.", vendor_code="missing_image")
    text, first, tail = ROUTES[model]
    key = tail if last_frame else first if image else text
    if key is None:
        if last_frame:
            need = "takes no last frame"
        elif first is None:
            need = "needs both a first frame image and a last_frame"
        else:
            need = "needs an image"
        # no model name: the client may have asked for it by an alias
        raise Rejected(PROVIDER, f"This model {need}.", vendor_code="unsupported_input")
    return key


def _check_image(img: ImageInput) -> None:
    data = img.data or b""
    if len(data) > MAX_IMAGE_BYTES:
        raise Rejected(
            PROVIDER,
            f"Image is {len(data) / 1_000_000:.1f} MB; Jimeng accepts images up to 4.7 MB.",
            vendor_code="image_too_large",
        )
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise Rejected(PROVIDER, "Jimeng accepts JPEG or PNG images only.", vendor_code="image_format")


def _image_fields(images: list[ImageInput]) -> dict[str, list[str]]:
    # The two fields are alternatives (§2.6), so first and last frame must travel the same way.
    if all(i.data is not None for i in images):
        for img in images:
            _check_image(img)
        return {"binary_data_base64": [i.b64() for i in images]}
    if all(i.url for i in images):
        return {"image_urls": [str(i.url) for i in images]}
    raise Rejected(
        PROVIDER,
        "First and last frame must both be uploaded files or both URLs.",
        vendor_code="mixed_image_inputs",
    )


def _int(key: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(str(value).strip())
    except ValueError:
        raise Rejected(
            PROVIDER, f"metadata.{key} must be a whole number, got {value!r}.", vendor_code="invalid_metadata"
        ) from None


# Never taken from metadata: they select the model (req_key) or carry inputs we build ourselves.
_PROTECTED = frozenset({"req_key", "prompt", "image_urls", "binary_data_base64", "req_json", "task_id"})


def _extras(extras: dict[str, Any], *, takes_ratio: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in extras.items():
        if key.startswith("sandbox_") or key in _PROTECTED:
            continue
        if key in ("seed", "frames"):
            value = _int(key, value)
            if key == "frames" and value not in FRAMES.values():
                raise Rejected(PROVIDER, "metadata.frames must be 121 or 241.", vendor_code="invalid_metadata")
        elif key == "aspect_ratio":
            if not takes_ratio:
                continue  # image→video output follows the image (§2.2)
            value = str(value).strip()
            if value not in RATIOS:
                raise Rejected(
                    PROVIDER,
                    f"metadata.aspect_ratio must be one of {', '.join(RATIOS)}.",
                    vendor_code="invalid_metadata",
                )
        out[key] = value
    return out


def build_body(req: GenerationRequest) -> dict[str, Any]:
    images = [i for i in (req.image, req.last_frame) if i is not None]
    key = req_key_for(req.model, image=req.image is not None, last_frame=req.last_frame is not None)
    body: dict[str, Any] = {"req_key": key, "prompt": req.prompt, "seed": -1}
    if not key.startswith("jimeng_vgfm"):
        # the service snaps seconds to 5/10; anything else follows the doc's advice (8 s and up → 10 s)
        body["frames"] = FRAMES.get(req.seconds, 241 if req.seconds >= 8 else 121)
    if not images:
        body["aspect_ratio"] = aspect_ratio(req.width, req.height, RATIOS)
    else:
        body.update(_image_fields(images))
    body.update(_extras(req.extras, takes_ratio=not images))
    return body


def req_json(extras: dict[str, Any]) -> str | None:
    """GetResult's `req_json` (§3) is itself a JSON-encoded string."""
    value = extras.get("req_json")
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Result translation (§3)

STATUS: dict[str, VideoStatus] = {
    "in_queue": VideoStatus.queued,
    "generating": VideoStatus.in_progress,
    "processing": VideoStatus.in_progress,  # seen in other Jimeng products only
    "done": VideoStatus.completed,
    "not_found": VideoStatus.failed,
    "expired": VideoStatus.failed,
}
_GONE = "Jimeng no longer has this task (tasks are kept about 12 hours); submit it again."


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Data(_Frozen):
    task_id: str | int | None = None
    status: str | None = None
    video_url: str | None = None
    resp_data: str | None = None


class _Envelope(_Frozen):
    code: int
    message: str | None = None
    data: _Data | None = None


def _resp_data_url(resp_data: str | None) -> str | None:
    # S2.0 Pro fallback (§3): `resp_data` is a JSON string holding `urls`
    try:
        urls = json.loads(resp_data or "{}").get("urls") or []
    except (ValueError, AttributeError):
        return None
    return urls[0] if urls and isinstance(urls[0], str) else None


def snapshot(raw: dict[str, Any]) -> TaskSnapshot:
    env = _Envelope.model_validate(raw)
    if env.code != SUCCESS:  # success is the outer code, whatever data.status says
        return TaskSnapshot(
            status=VideoStatus.failed,
            error_code=str(env.code),
            error_message=env.message or f"Jimeng error {env.code}",
        )
    state = env.data.status if env.data else None
    status = STATUS.get(state or "")
    if status is None:
        log.warning("jimeng: unknown task status %r; polling again", state)
        return TaskSnapshot(status=VideoStatus.in_progress)
    if status is VideoStatus.failed:
        return TaskSnapshot(status=status, error_code=state, error_message=_GONE)
    if status is VideoStatus.completed:
        assert env.data is not None
        url = env.data.video_url or _resp_data_url(env.data.resp_data)
        if not url:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="no_video_url",
                error_message="Jimeng reported the task done but returned no video URL.",
            )
        return TaskSnapshot(status=status, progress=100, video_url=url)
    return TaskSnapshot(status=status, progress=progress(status))


# ---------------------------------------------------------------------------------------------
# Errors (§4)

SERVICE_ERRORS: dict[int, type[ProviderError]] = {
    50429: RateLimited,  # QPS
    50430: RateLimited,  # concurrency
    50500: Unavailable,
    50501: Unavailable,
    # moderation and copyright (pre- and post-); 5052x are moderation-service faults the doc marks
    # not retryable, so they are not treated as an outage either
    **dict.fromkeys((50411, 50412, 50413, 50511, 50512, 50516, 50517, 50518, 50519, 50520, 50521, 50522), Rejected),
}
_TRANSIENT = frozenset(c for c, cls in SERVICE_ERRORS.items() if cls is not Rejected)

GATEWAY_ERRORS: dict[str, type[ProviderError]] = {
    **dict.fromkeys(
        (
            "MissingAuthenticationToken",
            "MissingSignature",
            "MissingRequestInfo",
            "InvalidAccessKey",
            "SignatureDoesNotMatch",
            "InvalidTimestamp",  # our clock is off: the signature is refused all the same
            "AccessDenied",
            "LackPolicy",
        ),
        AuthFailed,
    ),
    # Our request is not what the gateway routes (wrong base_url, changed API): not the client's
    # fault, and another provider may still serve it.
    **dict.fromkeys(("MissingParameter", "InvalidActionOrVersion", "ServiceNotFound"), Unavailable),
}


def _by_status(http_status: int, parsed: bool) -> type[ProviderError]:
    cls = by_status(http_status)
    return Unavailable if cls is Rejected and not parsed else cls


def _gateway_error(body: Any) -> dict[str, Any] | None:
    meta = body.get("ResponseMetadata") if isinstance(body, dict) else None
    error = meta.get("Error") if isinstance(meta, dict) else None
    return error if isinstance(error, dict) and error.get("Code") else None


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """Either body shape (§4.1 `code`, §4.2 `ResponseMetadata.Error`); `body` None = not JSON."""
    gateway = _gateway_error(body)
    if gateway is not None:
        code = str(gateway["Code"])
        cls = GATEWAY_ERRORS.get(code) or _by_status(http_status, True)
        message = f"Volcengine gateway {code}: {gateway.get('Message') or ''}".strip()
    elif isinstance(body, dict) and isinstance(body.get("code"), int):
        code = str(body["code"])
        cls = SERVICE_ERRORS.get(body["code"]) or _by_status(http_status, True)
        message = str(body.get("message") or f"Jimeng error {code}")
    else:
        code = f"http_{http_status}"
        cls = _by_status(http_status, False)
        message = f"Jimeng answered HTTP {http_status} without a usable JSON body."
    return cls(PROVIDER, message, vendor_code=code, retry_after=retry_after, status_code=http_status)


# ---------------------------------------------------------------------------------------------
# The provider


class JimengProvider:
    """Submit/GetResult over the cv OpenAPI, signed with Volcengine V4. The vendor has no cancel."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        access_key: str,
        secret_key: str,
        base_url: str = DEFAULT_BASE_URL,
        region: str = REGION,
    ) -> None:
        self._client = client
        self._auth = VolcV4Auth(access_key, secret_key, region=region)
        self._base_url = base_url.rstrip("/")

    async def _call(self, action: str, body: dict[str, Any]) -> tuple[httpx.Response, dict[str, Any]]:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        resp = await request(
            self._client,
            PROVIDER,
            "POST",
            f"{self._base_url}/?Action={action}&Version={VERSION}",
            vendor="Jimeng",
            content=content,  # signed bytes == sent bytes
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            auth=self._auth,
        )
        data = json_body(resp)
        if not isinstance(data, dict) or not (isinstance(data.get("code"), int) or _gateway_error(data)):
            raise map_error(resp.status_code, None, retry_after=retry_after(resp.headers))
        if _gateway_error(data):
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        return resp, data

    async def submit(self, req: GenerationRequest) -> VendorTask:
        body = build_body(req)
        resp, data = await self._call(SUBMIT_ACTION, body)
        if data["code"] != SUCCESS:
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        task_id = data["data"].get("task_id") if isinstance(data.get("data"), dict) else None
        if not task_id:
            raise Unavailable(PROVIDER, "Jimeng accepted the task but returned no task_id.")
        meta: dict[str, Any] = {"req_key": body["req_key"]}
        if (rj := req_json(req.extras)) is not None:
            meta["req_json"] = rj
        return VendorTask(provider=PROVIDER, vendor_task_id=str(task_id), meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        body: dict[str, Any] = {"req_key": task.meta["req_key"], "task_id": task.vendor_task_id}
        if task.meta.get("req_json"):
            body["req_json"] = task.meta["req_json"]
        resp, data = await self._call(RESULT_ACTION, body)
        # throttling, outages and refused credentials say nothing about the task: ask again later
        if data["code"] in _TRANSIENT or resp.status_code in (401, 403, 429) or resp.status_code >= 500:
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        try:
            return snapshot(data)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"Unexpected GetResult body: {exc}") from exc

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # a pre-signed object URL: no Volcengine signature
        expired = "Jimeng's video URL has expired (it is valid for 1 hour)."
        return stream(self._client, PROVIDER, snap.video_url, expired=expired)
