"""ByteDance Seedance via Volcengine Ark (China) or BytePlus ModelArk (international): the async
content-generation task API.

Implements /work/shared/vendors/seedance.md: §1 base URLs and the two model-id families, §2 the
`Authorization: Bearer <ARK API key>` header, §3 endpoints (create, get, delete), §4 the create body
(top-level fields and `content[]` items with roles), §5 the per-model matrix and the pixel table, §7 task
states and fields (`content.video_url`, `usage`), §8 delete (our `cancel`), §9 `callback_url`, §10 errors.
Field names and enums are checked against the official SDK (`volcengine-ark-runtime` 5.0.54,
`resources/content_generation/tasks.py`, `types/content_generation/*`).

Choices on UNCONFIRMED or open points (and why):
- Parameters go as top-level body fields (`resolution`, `ratio`, `duration`, ...), never as `--rs/--rt/--dur`
  text commands: the SDK's `create()` has exactly these fields and the docs call the body form strictly
  validated. The prompt is sent untouched (a client's own `--dur 5` stays in the text; which wins is
  UNCONFIRMED, the body field is assumed to).
- Sizes: the capability table lists one nominal size per (resolution, ratio): OpenAI-like 16:9 / 9:16 sizes
  (854x480, 1280x720, 1920x1080, ...) and Seedance's 1.5 / 2.0 pixels for 1:1, 4:3, 3:4 and 21:9 (§5.2, §5.3).
  The reported width/height of a finished task come from §5.3 for the model's family.
- With a first frame the ratio is `adaptive` (the image-to-video default: the output follows the image); with
  reference images it is the ratio of the requested size (1.0 lite refuses `adaptive` there). 1.0 lite in
  reference mode is capped at 720p (§4.1).
- Images: bytes go inline as `data:image/<fmt>;base64,` (Ark takes data URIs, so Ark never has to reach
  vidgate); a client's URL is passed as-is. A single first frame still carries `role:"first_frame"`.
- `metadata` keys (the new-api convention, §4.1) become top-level fields, only those the model's
  `ModelCaps.extras` declares (unknown top-level fields being ignored by Ark is UNCONFIRMED, so nothing
  undeclared is sent); multipart strings are coerced; `model`, `content` and the prompt cannot be set there.
  `audio` is an alias of `generate_audio`. `reference_images` / `reference_videos` / `reference_audios`
  (lists of URLs) become `content[]` items with roles `reference_image` / `reference_video` /
  `reference_audio`; `draft_task_id` (1.5 pro) sends only a `draft_task` item. `frames` (1.0) replaces
  `duration` (they are mutually exclusive). `draft: true` (1.5 pro) sends `480p`, the only draft resolution.
- `generate_audio` is sent only when the client asks (its default is `true` per the doc, `false` per some third
  parties: UNCONFIRMED); `has_audio` of a snapshot comes from the task's `generate_audio` echo.
- Model ids: a `doubao-seedance-*` id sent to a BytePlus host (`*.bytepluses.com`) is renamed to its BytePlus id
  (`seedance-*`, 2.0 as `dreamina-seedance-*`) and the reverse on a Volcengine host (`*.volces.com`); on any
  other host (a proxy, a fake) the id is sent as the client wrote it. Both families are in the catalog.
  Inference endpoint ids (`ep-...`) are not in the catalog (the catalog is fixed).
- States: `queued` → queued; `running` → in_progress with a time-based synthetic progress (Ark reports none);
  `succeeded` → completed; `failed` → failed with the task's `error.code`; `cancelled` / `expired` → failed
  with codes `cancelled` / `expired`. Unknown states (new-api also saw `pending`, `processing`) are logged and
  polled again.
- Errors: input-moderation codes (`SensitiveContentDetected*`, `Input*SensitiveContentDetected*`,
  `Input*RiskDetection`) at create are `Rejected` with code `moderation_blocked` (the Ark code stays in the
  message); the same code in a failed task stays the task's code. 401 and 403 `AccessDenied` are AuthFailed;
  403 `AccountOverdueError` and 429 `QuotaExceeded` / `SetLimitExceeded` are balance/quota problems waiting
  does not fix, so `Rejected` (as the other adapters treat balance); other 429s are RateLimited with
  `Retry-After`; `ServerOverloaded`, `ModelLoadingError`, `InvalidEndpoint.ClosedEndpoint`,
  `ContentSecurityDetectionError` and 5xx are Unavailable; a 404 on a task is NotFoundAtVendor.
- `usage.completion_tokens` / `total_tokens` are reported as the snapshot's usage (Ark bills output tokens).
- Callbacks: `extras["callback_url"]` (vidgate's per-task URL, or the client's own) is sent as `callback_url`;
  Ark signs nothing, so the vendor row uses the "token" scheme and a callback only makes the engine poll.
- No crash recovery (`Recoverable`): Ark's task list filters only by status, task ids, model and service tier
  (SDK `tasks.list`), and a task carries no client reference that vidgate sets (the `safety_identifier`
  field is an end-user id for abuse monitoring, not a correlation key). Matching recent tasks by model and
  time could adopt another request's task, which is worse than a duplicate.
- `cancel` is `DELETE .../tasks/{id}`: it cancels a queued task or deletes a finished record; a 404 is fine.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import AsyncIterator, Generator, Iterable
from typing import Any, Final
from urllib.parse import urlsplit

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
from app.providers.capabilities import ModelCaps, aspect_ratio
from app.providers.http import by_status, json_body, request, retry_after, stream

log = logging.getLogger(__name__)

PROVIDER = "seedance"
DEFAULT_BASE_URL = "https://ark.cn-beijing.volces.com"
BYTEPLUS_BASE_URL = "https://ark.ap-southeast.bytepluses.com"
TASKS_PATH = "/api/v3/contents/generations/tasks"
FPS = 24

# ---------------------------------------------------------------------------------------------
# Capability table (§5)

RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
RESOLUTIONS: Final = ("480p", "720p", "1080p")

# The sizes clients ask for: one per (resolution, ratio).
NOMINAL: Final[dict[tuple[str, str], tuple[int, int]]] = {
    ("480p", "16:9"): (854, 480),
    ("480p", "9:16"): (480, 854),
    ("480p", "1:1"): (640, 640),
    ("480p", "4:3"): (752, 560),
    ("480p", "3:4"): (560, 752),
    ("480p", "21:9"): (992, 432),
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("720p", "1:1"): (960, 960),
    ("720p", "4:3"): (1112, 834),
    ("720p", "3:4"): (834, 1112),
    ("720p", "21:9"): (1470, 630),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "21:9"): (2206, 946),
}
_BY_SIZE: Final = {size: key for key, size in NOMINAL.items()}

# What Seedance produces (§5.3): the 1.0 family differs from 1.5 / 2.0.
PIXELS_1_0: Final[dict[tuple[str, str], tuple[int, int]]] = {
    ("480p", "16:9"): (864, 480),
    ("480p", "4:3"): (736, 544),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (544, 736),
    ("480p", "9:16"): (480, 864),
    ("480p", "21:9"): (960, 416),
    ("720p", "16:9"): (1248, 704),
    ("720p", "4:3"): (1120, 832),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (832, 1120),
    ("720p", "9:16"): (704, 1248),
    ("720p", "21:9"): (1504, 640),
    ("1080p", "16:9"): (1920, 1088),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1088, 1920),
    ("1080p", "21:9"): (2176, 928),
}
PIXELS_LATER: Final[dict[tuple[str, str], tuple[int, int]]] = {
    ("480p", "16:9"): (864, 496),
    ("480p", "4:3"): (752, 560),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (560, 752),
    ("480p", "9:16"): (496, 864),
    ("480p", "21:9"): (992, 432),
    **{k: v for k, v in NOMINAL.items() if k[0] != "480p"},
}

_COMMON_EXTRAS: Final = frozenset(
    {
        "seed",
        "watermark",
        "camera_fixed",
        "return_last_frame",
        "callback_url",
        "execution_expires_after",
        "safety_identifier",
        "priority",
        "resolution",
        "ratio",
        "duration",
    }
)
_AUDIO_EXTRAS: Final = frozenset({"generate_audio", "audio"})


def _sizes(resolutions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(NOMINAL[(res, ratio)] for res in resolutions for ratio in RATIOS)


def _caps(
    ids: tuple[str, str],
    *,
    resolutions: tuple[str, ...] = RESOLUTIONS,
    seconds: tuple[int, int],
    default: str,
    image: str,
    last_frame: bool,
    audio: bool,
    extras: Iterable[str],
    description: str,
) -> tuple[ModelCaps, ...]:
    keys = _COMMON_EXTRAS | frozenset(extras) | (_AUDIO_EXTRAS if audio else frozenset())
    return tuple(
        ModelCaps(
            name=name,
            provider=PROVIDER,
            sizes=_sizes(resolutions),
            seconds_range=seconds,
            default_size=NOMINAL[(default, "16:9")],
            default_seconds=5,
            image=image,  # type: ignore[arg-type]
            last_frame=last_frame,
            audio=audio,
            description=description,
            extras=keys,
        )
        for name in ids
    )


MODELS: tuple[ModelCaps, ...] = (
    *_caps(
        ("doubao-seedance-1-0-pro-250528", "seedance-1-0-pro-250528"),
        seconds=(2, 12),
        default="1080p",
        image="optional",
        last_frame=True,
        audio=False,
        extras=("frames", "service_tier"),
        description="Seedance 1.0 pro: text, first frame, first+last frame; 2-12 s; silent",
    ),
    *_caps(
        ("doubao-seedance-1-0-pro-fast-251015", "seedance-1-0-pro-fast-251015"),
        seconds=(2, 12),
        default="1080p",
        image="optional",
        last_frame=False,
        audio=False,
        extras=("frames", "service_tier"),
        description="Seedance 1.0 pro fast: text or first frame; 2-12 s; silent",
    ),
    *_caps(
        ("doubao-seedance-1-0-lite-t2v-250428", "seedance-1-0-lite-t2v-250428"),
        seconds=(2, 12),
        default="720p",
        image="none",
        last_frame=False,
        audio=False,
        extras=("frames", "service_tier"),
        description="Seedance 1.0 lite text-to-video; 2-12 s; silent",
    ),
    *_caps(
        ("doubao-seedance-1-0-lite-i2v-250428", "seedance-1-0-lite-i2v-250428"),
        seconds=(2, 12),
        default="720p",
        image="required",
        last_frame=True,
        audio=False,
        extras=("frames", "service_tier", "reference_images"),
        description="Seedance 1.0 lite image-to-video: first frame, first+last, or 1-4 reference images "
        "(metadata.reference_images; 480p/720p); 2-12 s; silent",
    ),
    *_caps(
        ("doubao-seedance-1-5-pro-251215", "seedance-1-5-pro-251215"),
        seconds=(4, 12),
        default="720p",
        image="optional",
        last_frame=True,
        audio=True,
        extras=("service_tier", "draft", "draft_task_id"),
        description="Seedance 1.5 pro: text, first frame, first+last; 4-12 s; sound (generate_audio); draft mode",
    ),
    *_caps(
        ("doubao-seedance-2-0-260128", "dreamina-seedance-2-0-260128"),
        seconds=(4, 15),
        default="720p",
        image="optional",
        last_frame=True,
        audio=True,
        extras=(
            "reference_images",
            "reference_videos",
            "reference_audios",
            "tools",
            "output_format",
            "omni_reference_task_type",
        ),
        description="Seedance 2.0: text, first frame, first+last, multimodal references; 4-15 s; sound",
    ),
    *_caps(
        ("doubao-seedance-2-0-fast-260128", "dreamina-seedance-2-0-fast-260128"),
        resolutions=("480p", "720p"),
        seconds=(4, 15),
        default="720p",
        image="optional",
        last_frame=True,
        audio=True,
        extras=(
            "reference_images",
            "reference_videos",
            "reference_audios",
            "tools",
            "output_format",
            "omni_reference_task_type",
        ),
        description="Seedance 2.0 fast: as 2.0 at 480p/720p; 4-15 s; sound",
    ),
)
_CAPS: Final = {caps.name: caps for caps in MODELS}


def family(model: str) -> str:
    """`1.0`, `1.5` or `2.0` (of either id family)."""
    if "seedance-1-5" in model:
        return "1.5"
    if "seedance-2-0" in model:
        return "2.0"
    return "1.0"


def platform_model(model: str, base_url: str) -> str:
    """The id the platform at `base_url` knows: Volcengine `doubao-seedance-*`, BytePlus `seedance-*` /
    `dreamina-seedance-2-0-*`. Hosts that are neither (proxies, fakes) get the id as written."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host.endswith("bytepluses.com") and model.startswith("doubao-seedance-"):
        bare = model.removeprefix("doubao-")
        return f"dreamina-{bare}" if family(bare) == "2.0" else bare
    if host.endswith("volces.com"):
        if model.startswith("dreamina-seedance-"):
            return "doubao-" + model.removeprefix("dreamina-")
        if model.startswith("seedance-"):
            return "doubao-" + model
    return model


# ---------------------------------------------------------------------------------------------
# Request translation (§4)


def size_params(width: int, height: int) -> tuple[str, str]:
    """(resolution, ratio) of a size: the table's own sizes exactly, others by nearest ratio then area."""
    known = _BY_SIZE.get((width, height))
    if known is not None:
        return known
    ratio = aspect_ratio(width, height, RATIOS)
    area = width * height
    res = min(RESOLUTIONS, key=lambda r: abs(math.log(area / math.prod(NOMINAL[(r, ratio)]))))
    return res, ratio


def output_pixels(model: str, resolution: str | None, ratio: str | None) -> tuple[int, int] | None:
    table = PIXELS_1_0 if family(model) == "1.0" else PIXELS_LATER
    if resolution is None or ratio is None:
        return None
    return table.get((resolution.lower(), ratio))


_BOOL_KEYS: Final = frozenset({"watermark", "camera_fixed", "generate_audio", "return_last_frame", "draft"})
_INT_KEYS: Final = frozenset({"seed", "duration", "frames", "execution_expires_after", "priority"})
_LOWER_KEYS: Final = frozenset({"resolution", "service_tier", "output_format", "omni_reference_task_type"})
_LIST_KEYS: Final = frozenset({"reference_images", "reference_videos", "reference_audios", "tools"})
# content items, not top-level fields
_CONTENT_KEYS: Final = frozenset({"reference_images", "reference_videos", "reference_audios", "draft_task_id"})


def _bad(key: str, value: Any, expected: str) -> Rejected:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return Rejected(PROVIDER, f"metadata.{key} must be {expected}, got {shown}.", vendor_code="InvalidParameter")


def _as_list(key: str, value: Any) -> list[Any]:
    """Multipart metadata sends lists as JSON text, or one URL as a plain string."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [text] if text else []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise _bad(key, value, "a JSON array") from None
    if isinstance(value, list | tuple):
        return list(value)
    raise _bad(key, value, "a list")


def coerce(key: str, value: Any) -> Any:
    """A metadata value as Ark's typed field wants it (multipart values arrive as strings)."""
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off"}:
            return False
        raise _bad(key, value, "true or false")
    if key in _INT_KEYS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad(key, value, "an integer") from None
    if key in _LOWER_KEYS:
        return str(value).strip().lower()
    if key == "tools":
        return [t if isinstance(t, dict) else {"type": str(t)} for t in _as_list(key, value)]
    if key in _LIST_KEYS:
        return [str(u) for u in _as_list(key, value)]
    return str(value).strip() if isinstance(value, str) else value


def extras_for(req: GenerationRequest) -> dict[str, Any]:
    """The client's metadata the model declares, coerced. `audio` becomes `generate_audio`."""
    caps = _CAPS.get(req.model)
    allowed = caps.extras if caps is not None else _COMMON_EXTRAS
    out: dict[str, Any] = {}
    for key, value in req.extras.items():
        if value is None or key not in allowed:
            if value is not None and not key.startswith("sandbox_") and key not in _SERVICE_KEYS:
                log.info("seedance: metadata.%s is not a field of %s; not sent", key, req.model)
            continue
        name = "generate_audio" if key == "audio" else key
        if name == "generate_audio" and "generate_audio" in out and key == "audio":
            continue  # an explicit generate_audio wins over the alias
        out[name] = coerce(name, value)
    return out


# metadata keys the videos service itself reads (images by URL): never fields of their own
_SERVICE_KEYS: Final = frozenset({"img_url", "first_frame_url", "image_url", "last_frame_url", "model", "prompt"})


def image_url(img: ImageInput) -> str:
    """Bytes inline as a data URI with a lower-case format (§4.2); a client's URL as-is."""
    if img.data is not None:
        mime = (img.mime or "image/png").lower()
        return f"data:{mime};base64,{img.b64()}"
    if img.url:
        return img.url
    raise Rejected(PROVIDER, "The image has neither bytes nor a URL.", vendor_code="InvalidParameter")


def _item(kind: str, url: str, role: str) -> dict[str, Any]:
    return {"type": kind, kind: {"url": url}, "role": role}


def content_items(req: GenerationRequest, extras: dict[str, Any]) -> list[dict[str, Any]]:
    """`content[]`: the prompt, then the images with their roles (§4.2)."""
    if extras.get("draft_task_id"):
        return [{"type": "draft_task", "draft_task": {"id": str(extras["draft_task_id"])}}]
    items: list[dict[str, Any]] = []
    if req.prompt:
        items.append({"type": "text", "text": req.prompt})
    refs = extras.get("reference_images") or []
    if refs:
        # reference mode cannot mix with first/last frames: an input_reference is one more reference
        if req.image is not None:
            items.append(_item("image_url", image_url(req.image), "reference_image"))
        if req.last_frame is not None:
            items.append(_item("image_url", image_url(req.last_frame), "reference_image"))
        items.extend(_item("image_url", url, "reference_image") for url in refs)
    else:
        if req.last_frame is not None and req.image is None:
            raise Rejected(PROVIDER, "A last frame needs a first frame image.", vendor_code="MissingParameter")
        if req.image is not None:
            items.append(_item("image_url", image_url(req.image), "first_frame"))
        if req.last_frame is not None:
            items.append(_item("image_url", image_url(req.last_frame), "last_frame"))
    items.extend(_item("video_url", url, "reference_video") for url in extras.get("reference_videos") or [])
    items.extend(_item("audio_url", url, "reference_audio") for url in extras.get("reference_audios") or [])
    return items


def build_body(req: GenerationRequest, *, model: str | None = None) -> dict[str, Any]:
    """The create body (§4.1). `model`: the id to send (see `platform_model`), default `req.model`."""
    extras = extras_for(req)
    content = content_items(req, extras)
    body: dict[str, Any] = {"model": model or req.model, "content": content}
    resolution, ratio = size_params(req.width, req.height)
    roles = {item.get("role") for item in content}
    if "first_frame" in roles:
        ratio = "adaptive"  # the output follows the first frame
    if "reference_image" in roles and family(req.model) == "1.0":
        resolution = min(resolution, "720p", key=RESOLUTIONS.index)  # 1.0 lite references: 480p/720p
    if extras.get("draft"):
        resolution = "480p"
    if "draft_task_id" in extras:
        body["resolution"] = extras.get("resolution", resolution)
    else:
        body["resolution"] = resolution
        body["ratio"] = ratio
        if "frames" not in extras:
            body["duration"] = req.seconds
    for key, value in extras.items():
        if key not in _CONTENT_KEYS:
            body[key] = value
    if "frames" in body:
        body.pop("duration", None)  # mutually exclusive; frames wins at Ark too
    return body


# ---------------------------------------------------------------------------------------------
# Response translation (§7)

STATUS: Final[dict[str, VideoStatus]] = {
    "queued": VideoStatus.queued,
    "running": VideoStatus.in_progress,
    "succeeded": VideoStatus.completed,
    "failed": VideoStatus.failed,
    "cancelled": VideoStatus.failed,
    "expired": VideoStatus.failed,
}
_TERMINAL_DEFAULTS: Final = {
    "failed": ("failed", "The Seedance task failed."),
    "cancelled": ("cancelled", "The Seedance task was cancelled."),
    "expired": ("expired", "The Seedance task did not finish within execution_expires_after."),
}
TYPICAL_RUN_S = 90.0  # a 5 s 1080p video takes one to two minutes
FLEX_POLL_S = 60.0  # `flex` (offline) tasks take hours


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Error(_Frozen):
    code: str | None = None
    message: str | None = None


class _Content(_Frozen):
    video_url: str | None = None
    last_frame_url: str | None = None


class _Usage(_Frozen):
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Task(_Frozen):
    id: str | None = None
    model: str | None = None
    status: str
    error: _Error | None = None
    content: _Content | None = None
    usage: _Usage | None = None
    created_at: int | None = None
    updated_at: int | None = None
    seed: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    framespersecond: int | None = None
    generate_audio: bool | None = None
    service_tier: str | None = None


def running_progress(created_at: int | None, now: float) -> int:
    """5..95, rising with the time since creation (Ark reports no percentage)."""
    elapsed = max(0.0, now - created_at) if created_at else 0.0
    return min(95, 5 + int(90 * (1 - math.exp(-elapsed / TYPICAL_RUN_S))))


def _usage(task: _Task) -> dict[str, float]:
    if task.usage is None:
        return {}
    out: dict[str, float] = {}
    if task.usage.completion_tokens is not None:
        out["completion_tokens"] = task.usage.completion_tokens
    if task.usage.total_tokens is not None:
        out["total_tokens"] = task.usage.total_tokens
    return out


def snapshot(raw: dict[str, Any], *, model: str | None = None, now: float | None = None) -> TaskSnapshot:
    """A task body (GET or callback) → TaskSnapshot. A failed task is a snapshot, not an exception."""
    try:
        task = _Task.model_validate(raw)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"Unexpected Ark task body: {exc.errors()[0]['msg']}") from None
    status = STATUS.get(task.status)
    model = task.model or model or ""
    meta: dict[str, Any] = {"status": task.status}
    if task.seed is not None:
        meta["seed"] = task.seed
    if status is None:
        log.warning("seedance: unknown task status %r for %s; polling again", task.status, task.id)
        return TaskSnapshot(status=VideoStatus.in_progress, progress=5, meta=meta)
    if status is VideoStatus.failed:
        code, message = _TERMINAL_DEFAULTS[task.status]
        err = task.error or _Error()
        return TaskSnapshot(status=status, error_code=err.code or code, error_message=err.message or message, meta=meta)
    if status is VideoStatus.completed:
        content = task.content or _Content()
        if not content.video_url:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="no_video_url",
                error_message="Seedance reported success without a video URL.",
                meta=meta,
            )
        if content.last_frame_url:
            meta["last_frame_url"] = content.last_frame_url
        fps = task.framespersecond or FPS
        seconds = task.duration if task.duration and task.duration > 0 else None
        if seconds is None and task.frames:
            seconds = max(1, round(task.frames / fps))
        pixels = output_pixels(model, task.resolution, task.ratio)
        caps = _CAPS.get(model)
        audio = task.generate_audio if caps is None or caps.audio else False
        return TaskSnapshot(
            status=status,
            progress=100,
            video_url=content.video_url,
            seconds=seconds,
            width=pixels[0] if pixels else None,
            height=pixels[1] if pixels else None,
            meta=meta,
            usage=_usage(task),
            has_audio=audio,
        )
    poll_after = FLEX_POLL_S if task.service_tier == "flex" else None
    if status is VideoStatus.queued:
        return TaskSnapshot(status=status, progress=0, poll_after=poll_after, meta=meta)
    now = time.time() if now is None else now
    return TaskSnapshot(
        status=status, progress=running_progress(task.created_at, now), poll_after=poll_after, meta=meta
    )


# ---------------------------------------------------------------------------------------------
# Errors (§10)

_MODERATION_PREFIXES: Final = (
    "SensitiveContentDetected",
    "InputTextSensitiveContentDetected",
    "InputImageSensitiveContentDetected",
    "InputVideoSensitiveContentDetected",
    "InputAudioSensitiveContentDetected",
    "OutputVideoSensitiveContentDetected",
    "InputTextRiskDetection",
    "InputImageRiskDetection",
    "OutputTextRiskDetection",
)
_AUTH: Final = frozenset({"AuthenticationError", "AccessDenied"})
_BALANCE: Final = frozenset({"AccountOverdueError", "QuotaExceeded", "SetLimitExceeded"})
_UNAVAILABLE: Final = frozenset(
    {
        "ServerOverloaded",
        "ModelLoadingError",
        "InvalidEndpoint.ClosedEndpoint",
        "ContentSecurityDetectionError",
        "InternalServiceError",
    }
)
MODERATION_CODE = "moderation_blocked"


def is_moderation(code: str) -> bool:
    return code.startswith(_MODERATION_PREFIXES)


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """Ark's `{"error": {code, message, param, type}}` (or a body that is not one) → ProviderError."""
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code") or "") if isinstance(err, dict) else ""
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    message = message or f"Ark answered HTTP {http_status}."
    kw: dict[str, Any] = {"status_code": http_status, "retry_after": retry_after}
    if not code:
        cls = by_status(http_status)
        if cls is Rejected and http_status not in (400, 404, 409, 413, 422):
            cls = Unavailable  # a bare 3xx/other status: not a verdict on the request
        if cls is Rejected and not isinstance(err, dict):
            cls = Unavailable  # a 400 without Ark's envelope comes from something in between
        return cls(PROVIDER, message, vendor_code=f"http_{http_status}", **kw)
    if is_moderation(code):
        return Rejected(PROVIDER, f"{code}: {message}", vendor_code=MODERATION_CODE, **kw)
    if code in _AUTH or http_status == 401:
        return AuthFailed(PROVIDER, message, vendor_code=code, **kw)
    if code in _BALANCE:
        return Rejected(PROVIDER, message, vendor_code=code, **kw)
    if code in _UNAVAILABLE or http_status >= 500:
        return Unavailable(PROVIDER, message, vendor_code=code, **kw)
    if http_status == 429 or code.startswith(("RateLimitExceeded", "ModelAccountRpmRateLimitExceeded")):
        return RateLimited(PROVIDER, message, vendor_code=code, **kw)
    if http_status == 403:
        return AuthFailed(PROVIDER, message, vendor_code=code, **kw)
    return Rejected(PROVIDER, message, vendor_code=code, **kw)


# ---------------------------------------------------------------------------------------------
# Transport


class ArkAuth(httpx.Auth):
    """`Authorization: Bearer <ARK API key>` on every call (§2)."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class SeedanceProvider:
    """Seedance over Ark's content-generation task API (Volcengine or BytePlus, by `base_url`)."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = 60.0,
    ) -> None:
        self._client = client
        self._auth = ArkAuth(api_key)
        # SDK-style configs store the base with `/api/v3` on it (§1)
        self._base = base_url.rstrip("/").removesuffix("/api/v3")
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}{TASKS_PATH}{path}",
            vendor="Ark",
            json=body,
            auth=self._auth,
            headers=headers,
            timeout=self._timeout,
        )
        data = json_body(resp)
        if not resp.is_success:
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        if resp.is_success and not resp.content:
            return {}
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Ark sent a non-JSON body.", status_code=resp.status_code)
        # a failed task carries `error` too; only a body that is not a task is an error envelope
        if "status" not in data and "id" not in data and isinstance(data.get("error"), dict):
            raise map_error(400, data)
        return data

    async def submit(self, req: GenerationRequest) -> VendorTask:
        model = platform_model(req.model, self._base)
        body = build_body(req, model=model)
        data = await self._call("POST", "", body)
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise Unavailable(PROVIDER, "Ark accepted the task but returned no id.")
        meta = {"model": model, "resolution": body.get("resolution"), "ratio": body.get("ratio")}
        return VendorTask(provider=PROVIDER, vendor_task_id=task_id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        try:
            data = await self._call("GET", f"/{task.vendor_task_id}")
        except (Rejected, Unavailable) as exc:
            if exc.status_code == 404:  # kept 7 days, then gone
                raise NotFoundAtVendor(PROVIDER, exc.message, vendor_code=exc.vendor_code, status_code=404) from exc
            raise
        return snapshot(data, model=task.meta.get("model"))

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # a pre-signed TOS URL: no Authorization, so the key never reaches the storage host
        expired = "The Seedance result URL has expired (valid 24 h)."
        return stream(self._client, PROVIDER, snap.video_url, expired=expired, timeout=self._timeout)

    async def cancel(self, task: VendorTask) -> None:
        """Cancels a queued task or deletes a finished one (§8); a task already gone is fine."""
        try:
            await self._call("DELETE", f"/{task.vendor_task_id}")
        except Rejected as exc:
            if exc.status_code != 404:
                raise
