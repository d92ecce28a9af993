"""What the two Veo adapters share: the model table, the size/seconds/image/metadata mapping into a
`predictLongRunning` body, the Google error envelope, the Operation's done/not-done mapping and the
synthesized progress.

Implements the parts of /work/shared/vendors/gemini.md (§4, §5, §7, §10) and vertex.md (§4, §5, §7, §9) that
are the same on both APIs. Which API a request goes to is a `Dialect`, built by `app.providers.gemini` and
`app.providers.vertex`; this module names neither vendor (the vendor table does).

Choices where the sources leave room (UNCONFIRMED in the docs):
- 1080p and 4k, and reference images, force `durationSeconds` 8 (gemini.md §5.2; vertex.md §5.2 recommends
  the same). The capability table cannot say "this size only with that duration", so the mapping sends 8 for
  such a request whatever `seconds` was asked (as the `nearest` policy would) and reports the 8.
- Veo 2 gets no `resolution` field on either API (the Gemini API refuses it; Vertex documents the field for
  "Veo 3 models only" in one place and accepts 720p in another: 720p is Veo 2's only output anyway).
- Veo 3 / 3 Fast have no 1080x1920 (1080p is 16:9 only); a 1080x1920 request snaps to 720x1280.
- `metadata` keys are whitelisted: Vertex silently ignores unknown parameters (a misspelt one gives the
  default video) and the Gemini API refuses them, so an unknown key is a 400 here, before any vendor call.
  Keys may be given snake_case (the house convention) or in the API's camelCase.
- Reference images come as `metadata.reference_images`: a list (or a JSON list text) of `data:` URLs, since
  the API takes inline bytes only and an adapter does not fetch arbitrary URLs.
- No vendor callbacks: the Gemini API's `webhookConfig` is undocumented and Vertex's `pubsubTopic` needs a
  Pub/Sub topic, so the gateway's `callback_url` is dropped and tasks are polled. Neither API reports usage
  units (billing is per second of video), so `TaskSnapshot.usage` stays empty.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps
from app.providers.http import by_status, parse_bool

# -- the model table --------------------------------------------------------------------------------

LANDSCAPE_720 = (1280, 720)
PORTRAIT_720 = (720, 1280)
SIZES_31 = (LANDSCAPE_720, PORTRAIT_720, (1920, 1080), (1080, 1920), (3840, 2160), (2160, 3840))
SIZES_30 = (LANDSCAPE_720, PORTRAIT_720, (1920, 1080))
SIZES_20 = (LANDSCAPE_720, PORTRAIT_720)

RESOLUTIONS = {720: "720p", 1080: "1080p", 2160: "4k"}
EIGHT_ONLY = frozenset({"1080p", "4k"})
MAX_REFERENCES = 3
MAX_SEED = 2**32 - 1
PERSON_GENERATION = frozenset({"allow_all", "allow_adult", "dont_allow"})


@dataclass(frozen=True)
class VeoModel:
    """One Veo model id as an API serves it."""

    name: str
    family: str  # "3.1", "3.0" or "2.0"
    sizes: tuple[tuple[int, int], ...]
    seconds: tuple[int, ...]
    last_frame: bool = False
    references: bool = False
    typical_s: float = 90.0  # a usual generation time, for the synthesized progress

    @property
    def audio(self) -> bool:
        return self.family != "2.0"

    @property
    def veo3(self) -> bool:
        return self.family != "2.0"


# metadata keys: snake_case name -> the API's camelCase name, per place in the body
PARAMETER_KEYS = {
    "negative_prompt": "negativePrompt",
    "person_generation": "personGeneration",
    "seed": "seed",
    "enhance_prompt": "enhancePrompt",
    "sample_count": "sampleCount",
    "generate_audio": "generateAudio",
    "resize_mode": "resizeMode",
    "compression_quality": "compressionQuality",
    "fps": "fps",
}
# names of the same API family that vidgate does not send (where no Dialect allows them)
KNOWN_UNSUPPORTED = {
    "storage_uri": "storageUri",
    "output_gcs_uri": "storageUri",
    "pubsub_topic": "pubsubTopic",
    "number_of_videos": "numberOfVideos",
    "mask": "mask",
    "video": "video",
    "webhook_config": "webhookConfig",
}
# consumed by the service (the image keys become `req.image` / `req.last_frame`), or the gateway's own
IGNORED_KEYS = frozenset(
    {"model", "prompt", "callback_url", "image_url", "img_url", "first_frame_url", "last_frame_url"}
)


@dataclass(frozen=True)
class Dialect:
    """How one API differs: its vendor name, which metadata it takes, and what Veo 2 / audio look like."""

    provider: str
    title: str
    parameters: frozenset[str]  # snake_case PARAMETER_KEYS this API accepts
    send_sample_count: bool  # send `sampleCount: 1` explicitly
    generate_audio: bool  # the API has `generateAudio` (Vertex); else Veo 3.x audio is always on
    labels: bool = False  # top-level `labels` (Vertex)
    values: dict[str, frozenset[str]] = field(default_factory=dict)  # enumerated string parameters

    def caps(self, models: tuple[VeoModel, ...]) -> tuple[ModelCaps, ...]:
        return tuple(self._caps(m) for m in models)

    def _caps(self, m: VeoModel) -> ModelCaps:
        extras = _accepted(self, m) - {"sample_count"}
        sizes = " ".join(f"{w}x{h}" for w, h in m.sizes)
        return ModelCaps(
            name=m.name,
            provider=self.provider,
            sizes=m.sizes,
            seconds=m.seconds,
            default_size=LANDSCAPE_720,
            default_seconds=8,
            image="optional",
            last_frame=m.last_frame,
            audio=m.audio,
            extras=frozenset(extras),
            seconds_by_size=((1080, (8,)),) if any(min(s) >= 1080 for s in m.sizes) else (),
            description=(
                f"Veo {m.family}{' Fast' if 'fast' in m.name else ''} ({self.title}): {sizes}; "
                f"{'/'.join(map(str, m.seconds))} s{' (8 s at 1080p and 4k)' if len(m.sizes) > 2 else ''}"
                f"{', audio' if m.audio else ''}"
            ),
        )


# -- request mapping --------------------------------------------------------------------------------


def size_fields(width: int, height: int) -> tuple[str, str]:
    """(aspectRatio, resolution) for an exact Veo size: 1280x720 → ("16:9", "720p")."""
    ratio = "9:16" if height > width else "16:9"
    short = min(width, height)
    resolution = RESOLUTIONS.get(short) or min(RESOLUTIONS.items(), key=lambda kv: abs(kv[0] - short))[1]
    return ratio, resolution


def duration(seconds: int, resolution: str, *, references: bool) -> int:
    """The `durationSeconds` to send: 8 with 1080p, 4k or reference images (§5.2), else what was resolved."""
    return 8 if resolution in EIGHT_ONLY or references else seconds


def sniff_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_object(provider: str, img: ImageInput, *, param: str) -> dict[str, str]:
    """`{"bytesBase64Encoded", "mimeType"}`: standard padded base64, no `data:` prefix, the type from the bytes."""
    if img.data is None:
        raise Rejected(provider, f"{param}: the API takes image bytes only.", vendor_code="invalid_image")
    mime = sniff_mime(img.data) or img.mime
    if mime not in {"image/png", "image/jpeg", "image/webp"}:
        raise Rejected(provider, f"{param}: Veo takes PNG, JPEG or WebP images.", vendor_code="invalid_image")
    return {"bytesBase64Encoded": base64.b64encode(img.data).decode("ascii"), "mimeType": mime}


_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+)?(;[^,]*)?;base64,(.*)$", re.S | re.I)


def _data_url_image(provider: str, url: Any, index: int) -> ImageInput:
    param = f"metadata.reference_images[{index}]"
    m = _DATA_URL.match(url) if isinstance(url, str) else None
    if m is None:
        raise Rejected(
            provider,
            f"{param} must be a data:image/...;base64 URL (Veo takes inline image bytes only).",
            vendor_code="invalid_image",
        )
    try:
        data = base64.b64decode(m.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(provider, f"{param} is not valid base64.", vendor_code="invalid_image") from None
    return ImageInput(data=data, mime=m.group(1))


def _as_list(provider: str, key: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else [value]
        except json.JSONDecodeError:
            raise Rejected(provider, f"metadata.{key} is not a JSON list.", vendor_code="invalid_value") from None
    if not isinstance(value, list):
        raise Rejected(provider, f"metadata.{key} must be a list.", vendor_code="invalid_value")
    return value


def _bool(provider: str, key: str, value: Any) -> bool:
    if (parsed := parse_bool(value)) is not None:
        return parsed
    raise Rejected(provider, f"metadata.{key} must be true or false.", vendor_code="invalid_value")


def _int(provider: str, key: str, value: Any, lo: int, hi: int) -> int:
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not lo <= number <= hi:
        raise Rejected(provider, f"metadata.{key} must be an integer from {lo} to {hi}.", vendor_code="invalid_value")
    return number


def _canonical(key: str) -> str:
    """snake_case for a camelCase name the API uses (`negativePrompt` → `negative_prompt`)."""
    for table in (PARAMETER_KEYS, KNOWN_UNSUPPORTED):
        for snake, camel in table.items():
            if key == camel:
                return snake
    return "reference_images" if key == "referenceImages" else key


@dataclass
class Plan:
    """The body and what it means: the request to send and what will be reported back."""

    body: dict[str, Any]
    seconds: int
    width: int
    height: int
    audio: bool


def build(dialect: Dialect, model: VeoModel, req: GenerationRequest) -> Plan:
    """The `predictLongRunning` body for `req` (already checked against `model`'s caps by the service)."""
    p = dialect.provider
    instance: dict[str, Any] = {}
    if req.prompt:
        instance["prompt"] = req.prompt
    if req.image is not None:
        instance["image"] = image_object(p, req.image, param="input_reference")
    if req.last_frame is not None:
        if req.image is None:
            raise Rejected(p, "A last frame needs a first frame (input_reference).", vendor_code="invalid_value")
        if not model.last_frame:
            raise Rejected(p, f"Model '{model.name}' does not take a last frame.", vendor_code="invalid_value")
        instance["lastFrame"] = image_object(p, req.last_frame, param="last_frame")
    params, labels, refs = _metadata(dialect, model, req.extras)
    if refs:
        if req.image is not None:
            raise Rejected(
                p, "Reference images cannot be combined with a first or last frame.", vendor_code="invalid_value"
            )
        instance["referenceImages"] = [
            {"image": image_object(p, img, param=f"metadata.reference_images[{i}]"), "referenceType": "asset"}
            for i, img in enumerate(refs)
        ]
    if not instance.get("prompt") and "image" not in instance:
        raise Rejected(p, "Veo needs a prompt or an input_reference image.", vendor_code="invalid_value")
    ratio, resolution = size_fields(req.width, req.height)
    seconds = duration(req.seconds, resolution, references=bool(refs))
    parameters: dict[str, Any] = {"aspectRatio": ratio}
    if model.veo3:
        parameters["resolution"] = resolution
    parameters["durationSeconds"] = seconds
    audio = model.audio
    if dialect.generate_audio and model.veo3:
        audio = bool(params.pop("generateAudio", True))
        parameters["generateAudio"] = audio
    if dialect.send_sample_count:
        parameters["sampleCount"] = 1
    parameters.update(params)
    body: dict[str, Any] = {"instances": [instance], "parameters": parameters}
    if labels:
        body["labels"] = labels
    return Plan(body=body, seconds=seconds, width=req.width, height=req.height, audio=audio)


def _metadata(
    dialect: Dialect, model: VeoModel, extras: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str], list[ImageInput]]:
    """Client metadata → (parameters, labels, reference images); anything this API does not take is a 400."""
    p = dialect.provider
    params: dict[str, Any] = {}
    labels: dict[str, str] = {}
    refs: list[ImageInput] = []
    for raw_key, value in extras.items():
        if raw_key in IGNORED_KEYS or raw_key.startswith("sandbox_") or value is None:
            continue
        key = _canonical(raw_key)
        if key == "reference_images":
            if not model.references:
                message = f"Model '{model.name}' takes no reference images."
                raise Rejected(p, message, vendor_code="unsupported_parameter")
            items = _as_list(p, key, value)
            if not 1 <= len(items) <= MAX_REFERENCES:
                raise Rejected(
                    p, f"metadata.reference_images takes 1 to {MAX_REFERENCES} images.", vendor_code="invalid_value"
                )
            refs = [_data_url_image(p, url, i) for i, url in enumerate(items)]
            continue
        if key == "labels" and dialect.labels:
            labels = _labels(p, value)
            continue
        if key not in dialect.parameters or (key in {"seed", "generate_audio"} and not model.veo3):
            name = PARAMETER_KEYS.get(key) or KNOWN_UNSUPPORTED.get(key) or raw_key
            accepted = ", ".join(sorted(_accepted(dialect, model)))
            raise Rejected(
                p,
                f"metadata.{raw_key} ('{name}') is not supported by {dialect.title} for model '{model.name}'; "
                f"accepted metadata keys: {accepted}.",
                vendor_code="unsupported_parameter",
            )
        params[PARAMETER_KEYS[key]] = _coerce(dialect, key, value)
    return params, labels, refs


def _accepted(dialect: Dialect, model: VeoModel) -> set[str]:
    keys = set(dialect.parameters)
    if not model.veo3:
        keys -= {"seed", "generate_audio"}
    if model.references:
        keys.add("reference_images")
    if dialect.labels:
        keys.add("labels")
    return keys


def _coerce(dialect: Dialect, key: str, value: Any) -> Any:
    p = dialect.provider
    if key in {"enhance_prompt", "generate_audio"}:
        return _bool(p, key, value)
    if key == "seed":
        return _int(p, key, value, 0, MAX_SEED)
    if key == "sample_count":
        # the OpenAI video object holds one file: more samples would be paid for and thrown away
        return _int(p, key, value, 1, 1)
    if key == "fps":
        return _int(p, key, value, 24, 24)
    text = str(value).strip()
    if key == "negative_prompt":
        return text
    allowed = PERSON_GENERATION if key == "person_generation" else dialect.values.get(key, frozenset())
    lowered = text.lower()
    if lowered not in allowed:
        raise Rejected(p, f"metadata.{key} must be one of {', '.join(sorted(allowed))}.", vendor_code="invalid_value")
    return lowered


def _labels(provider: str, value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise Rejected(provider, "metadata.labels must be an object of strings.", vendor_code="invalid_value")
    return {k: str(v) for k, v in value.items()}


# -- operations -------------------------------------------------------------------------------------

# google.rpc.Code numbers (the Operation's `error.code`) → names
RPC_CODES = dict(
    enumerate(
        "OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS PERMISSION_DENIED "
        "RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS "
        "UNAUTHENTICATED".split()
    )
)
MODERATION = "moderation_blocked"
_SAFETY = re.compile(
    r"could not be submitted|couldn't be submitted|usage guidelines|responsible ai|violat|safety|"
    r"might violate|support codes",
    re.I,
)


def synthetic_progress(elapsed: float, typical: float) -> int:
    """A percentage for an Operation that says only "not done": 5 at the start, rising towards 95 as the
    elapsed time passes the model's typical duration, never 100, never going back."""
    if elapsed <= 0 or typical <= 0:
        return 5
    return min(95, 5 + int(90 * (1 - math.exp(-elapsed / typical))))


def operation_error(error: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a done Operation's `error` (`google.rpc.Status`: a numeric code)."""
    code = error.get("code")
    message = str(error.get("message") or "Veo could not generate the video.")
    name = RPC_CODES.get(code, str(code) if code is not None else "UNKNOWN") if isinstance(code, int) else str(code)
    if name in {"INVALID_ARGUMENT", "FAILED_PRECONDITION"} and _SAFETY.search(message):
        return MODERATION, message  # e.g. "Veo could not generate videos because the input image violates ..."
    return name, message


def filtered(reasons: list[str] | None, count: int | None) -> TaskSnapshot:
    """A done Operation without any video: the safety filters removed it. Never `completed`."""
    text = "; ".join(r for r in (reasons or []) if r) or "Veo's safety filters blocked the generated video."
    return TaskSnapshot(
        status=VideoStatus.failed,
        error_code=MODERATION,
        error_message=text,
        meta={"rai_media_filtered_count": count or 0},
    )


def running(elapsed: float, typical: float) -> TaskSnapshot:
    return TaskSnapshot(status=VideoStatus.in_progress, progress=synthetic_progress(elapsed, typical))


# -- errors -----------------------------------------------------------------------------------------

_AUTH_REASONS = frozenset({"API_KEY_INVALID", "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_TYPE_UNSUPPORTED"})


def _retry_delay(details: list[Any]) -> float | None:
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            m = re.match(r"^(\d+(?:\.\d+)?)s$", str(item.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    return None


def _reasons(details: list[Any]) -> set[str]:
    return {str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")}


def map_error(
    provider: str,
    vendor: str,
    http_status: int,
    body: Any,
    *,
    retry_after: float | None = None,
    not_found: type[ProviderError] = Rejected,
) -> ProviderError:
    """Google's `{"error": {code, message, status, details}}` → the ProviderError subclass."""
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    status = str(err.get("status") or "") or None
    message = str(err.get("message") or f"{vendor} returned HTTP {http_status}")
    raw_details = err.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    reasons = _reasons(details)
    code = status or f"http_{http_status}"
    kw: dict[str, Any] = {"vendor_code": code, "status_code": http_status}
    if reasons & _AUTH_REASONS or status in {"UNAUTHENTICATED", "PERMISSION_DENIED"}:
        return AuthFailed(provider, message, **kw)
    if status == "RESOURCE_EXHAUSTED" or http_status == 429:
        return RateLimited(provider, message, retry_after=retry_after or _retry_delay(details), **kw)
    if status in {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN", "FAILED_PRECONDITION", "ABORTED"}:
        return Unavailable(provider, message, **kw)
    if status == "NOT_FOUND" or (status is None and http_status == 404):
        return not_found(provider, message, **kw)
    if status == "INVALID_ARGUMENT":
        if _SAFETY.search(message):
            return Rejected(provider, message, vendor_code=MODERATION, status_code=http_status)
        return Rejected(provider, message, **kw)
    if status is None and http_status < 400:
        return Unavailable(provider, message, **kw)
    return by_status(http_status)(provider, message, **kw)
