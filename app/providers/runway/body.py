"""Runway request mapping (pure): the per-endpoint model table (§5 of /work/shared/vendors/runway.md), the
capabilities derived from it, and `build_body` (size → exact `ratio`, seconds → `duration`, images →
`promptImage`, metadata → the optional fields the model's schema has, §4)."""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.providers.base import GenerationRequest, ImageInput, Rejected
from app.providers.capabilities import ModelCaps, nearest_size
from app.providers.http import parse_bool

log = logging.getLogger(__name__)


PROVIDER = "runway"
DEFAULT_BASE_URL = "https://api.dev.runwayml.com"
API_VERSION = "2024-11-06"
DATA_URI_LIMIT = 5 * 1024 * 1024  # the whole `data:` string, §4.1
PROMPT_LIMIT = 1000  # UTF-16 code units
SEED_MAX = 4_294_967_295
POLL_AFTER = 6.0  # Runway: no fresher news than every 5 s; its SDK polls every 6 s

Endpoint = Literal["text_to_video", "image_to_video"]

# -- the per-endpoint model table (§5) -----------------------------------------------------------------

_VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
_GEN4_I2V_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
_KLING_RATIOS = ("1920:1080", "1440:1440", "1080:1920", "1280:720", "720:720", "720:1280")
_GEMINI_RATIOS = ("1280:720", "720:1280")


@dataclass(frozen=True)
class Schema:
    """One model on one endpoint: what Runway's per-model body schema accepts."""

    ratios: tuple[str, ...]  # empty: `ratio` is refused (the output follows the image)
    durations: tuple[int, ...]
    prompt_required: bool
    fields: frozenset[str] = frozenset()  # optional body fields clients may set through `metadata`
    last_frame: bool = False


_GEN4 = frozenset({"seed", "contentModeration"})
_VEO31 = frozenset({"seed", "audio", "negativePrompt"})
_KLING = frozenset({"cfgScale"})
_2_TO_10 = tuple(range(2, 11))
_3_TO_10 = tuple(range(3, 11))

SCHEMAS: dict[Endpoint, dict[str, Schema]] = {
    "text_to_video": {
        "gen4.5": Schema(("1280:720", "720:1280"), _2_TO_10, True, _GEN4 | {"outputFormat"}),
        "veo3.1": Schema(_VEO_RATIOS, (4, 6, 8), True, _VEO31),
        "veo3.1_fast": Schema(_VEO_RATIOS, (4, 6, 8), True, _VEO31),
        "veo3": Schema(_VEO_RATIOS, (8,), True),
        "kling2.5_turbo_pro": Schema(_KLING_RATIOS, (5, 10), True, _KLING),
        "gemini_omni_flash": Schema(_GEMINI_RATIOS, _3_TO_10, True),
    },
    "image_to_video": {
        "gen4.5": Schema(_GEN4_I2V_RATIOS, _2_TO_10, True, _GEN4 | {"outputFormat"}),
        "gen4_turbo": Schema(_GEN4_I2V_RATIOS, _2_TO_10, False, _GEN4),
        "veo3.1": Schema(_VEO_RATIOS, (4, 6, 8), False, _VEO31, last_frame=True),
        "veo3.1_fast": Schema(_VEO_RATIOS, (4, 6, 8), False, _VEO31, last_frame=True),
        "veo3": Schema(_VEO_RATIOS, (8,), False),
        "kling2.5_turbo_pro": Schema((), (5, 10), True, _KLING, last_frame=True),
        "gemini_omni_flash": Schema(_GEMINI_RATIOS, _3_TO_10, False),
    },
}

_DESCRIPTIONS = {
    "gen4.5": "Runway Gen-4.5: 2-10 s, text or first frame",
    "gen4_turbo": "Runway Gen-4 Turbo: 2-10 s from a first frame",
    "veo3.1": "Google Veo 3.1 on Runway: 4/6/8 s, first and last frame, audio",
    "veo3.1_fast": "Google Veo 3.1 Fast on Runway: 4/6/8 s, first and last frame, audio",
    "veo3": "Google Veo 3 on Runway: 8 s",
    "kling2.5_turbo_pro": "Kling 2.5 Turbo Pro on Runway: 5/10 s, first and last frame",
    "gemini_omni_flash": "Gemini Omni Flash on Runway: 3-10 s",
}
_DEFAULT_SECONDS = {"veo3.1": 8, "veo3.1_fast": 8, "veo3": 8}
_AUDIO_MODELS = frozenset({"veo3.1", "veo3.1_fast"})

# metadata spellings accepted for each body field (the house's snake_case names too)
_ALIASES: dict[str, str] = {
    "seed": "seed",
    "contentModeration": "contentModeration",
    "content_moderation": "contentModeration",
    "publicFigureThreshold": "contentModeration",
    "public_figure_threshold": "contentModeration",
    "audio": "audio",
    "generate_audio": "audio",
    "negativePrompt": "negativePrompt",
    "negative_prompt": "negativePrompt",
    "cfgScale": "cfgScale",
    "cfg_scale": "cfgScale",
    "outputFormat": "outputFormat",
    "output_format": "outputFormat",
}


def pixels(ratio: str) -> tuple[int, int]:
    w, h = ratio.split(":")
    return int(w), int(h)


def _seconds_caps(durations: tuple[int, ...]) -> dict[str, Any]:
    lo, hi = min(durations), max(durations)
    if durations == tuple(range(lo, hi + 1)) and len(durations) > 2:
        return {"seconds_range": (lo, hi)}
    return {"seconds": durations}


def _model_caps(name: str) -> ModelCaps:
    t2v, i2v = SCHEMAS["text_to_video"].get(name), SCHEMAS["image_to_video"].get(name)
    ratios: list[str] = []
    for schema in (t2v, i2v):
        for r in schema.ratios if schema else ():
            if r not in ratios:
                ratios.append(r)
    durations = tuple(sorted({d for s in (t2v, i2v) if s for d in s.durations}))
    fields = frozenset(k for k, v in _ALIASES.items() if any(s and v in s.fields for s in (t2v, i2v)))
    sizes = tuple(pixels(r) for r in ratios)
    default_seconds = _DEFAULT_SECONDS.get(name, 5 if 5 in durations else durations[0])
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=sizes,
        default_size=(1280, 720) if (1280, 720) in sizes else sizes[0],
        default_seconds=default_seconds,
        image="optional" if t2v else "required",
        last_frame=bool(i2v and i2v.last_frame),
        audio=name in _AUDIO_MODELS,
        description=_DESCRIPTIONS[name],
        extras=fields | {"last_frame_url"},
        **_seconds_caps(durations),
    )


MODELS: tuple[ModelCaps, ...] = tuple(_model_caps(name) for name in _DESCRIPTIONS)


# -- request building (pure) -----------------------------------------------------------------------------


def endpoint_for(req: GenerationRequest) -> Endpoint:
    return "image_to_video" if req.image is not None or req.last_frame is not None else "text_to_video"


def schema_for(model: str, endpoint: Endpoint) -> Schema:
    schema = SCHEMAS[endpoint].get(model)
    if schema is None:
        where = "without" if endpoint == "text_to_video" else "with"
        known = ", ".join(SCHEMAS[endpoint])
        raise Rejected(
            PROVIDER,
            f"Runway model '{model}' cannot generate {where} a reference image; models that can: {known}.",
            vendor_code="model_endpoint",
        )
    return schema


def ratio_for(width: int, height: int, ratios: tuple[str, ...]) -> str:
    """The exact "W:H" when the model has it, else the nearest (aspect first, then area)."""
    exact = f"{width}:{height}"
    if exact in ratios:
        return exact
    w, h = nearest_size(tuple(pixels(r) for r in ratios), width, height)
    return f"{w}:{h}"


def duration_for(seconds: int, durations: tuple[int, ...]) -> int:
    if seconds in durations:
        return seconds
    return min(durations, key=lambda d: (abs(d - seconds), -d))


def image_uri(img: ImageInput, *, param: str) -> str:
    """A data URI when the bytes fit in 5 MB as one, else an HTTPS URL Runway fetches itself."""
    if img.data is not None:
        uri = img.data_url()
        if len(uri) < DATA_URI_LIMIT:
            return uri
    if img.url and img.url.startswith("data:") and len(img.url) < DATA_URI_LIMIT:
        return img.url
    if img.url and img.url.lower().startswith("https://") and not _ip_host(img.url):
        return img.url
    if img.data is not None:
        raise Rejected(
            PROVIDER,
            f"The {param} is too large to send to Runway inline (5 MB as a data URI) and the gateway has no "
            "public HTTPS address to serve it from; pass an HTTPS image URL or a smaller image.",
            vendor_code="image_too_large",
        )
    raise Rejected(
        PROVIDER, f"Runway fetches the {param} only from an HTTPS URL on a domain name.", vendor_code="image_url"
    )


def _ip_host(url: str) -> bool:
    """Runway fetches URLs on domain names only, never on IP addresses (§4.1)."""
    host = httpx.URL(url).host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _bad(key: str, expected: str) -> Rejected:
    return Rejected(PROVIDER, f"metadata '{key}' must be {expected}.", vendor_code="invalid_metadata")


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _bad(key, "an integer")
    try:
        number = int(value) if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise _bad(key, "an integer") from None
    if not 0 <= number <= SEED_MAX:
        raise _bad(key, f"between 0 and {SEED_MAX}")
    return number


def _as_bool(key: str, value: Any) -> bool:
    if (parsed := parse_bool(value)) is not None:
        return parsed
    raise _bad(key, "true or false")


def _as_scale(key: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 <= number <= 1:
        raise _bad(key, "a number from 0 to 1")
    return number


def _moderation(key: str, value: Any) -> dict[str, str]:
    """`{"publicFigureThreshold": "auto"|"low"}`, given as an object, its JSON text, or the bare threshold."""
    if key in {"publicFigureThreshold", "public_figure_threshold"}:
        value = {"publicFigureThreshold": value}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _bad(key, 'an object such as {"publicFigureThreshold": "low"}') from None
    if not isinstance(value, dict):
        raise _bad(key, 'an object such as {"publicFigureThreshold": "low"}')
    threshold = value.get("publicFigureThreshold", value.get("public_figure_threshold"))
    if threshold not in {"auto", "low"} or len(value) != 1:
        raise _bad(key, 'an object {"publicFigureThreshold": "auto" | "low"}')
    return {"publicFigureThreshold": threshold}


def _field(name: str, key: str, value: Any) -> Any:
    if name == "seed":
        return _as_int(key, value)
    if name == "audio":
        return _as_bool(key, value)
    if name == "cfgScale":
        return _as_scale(key, value)
    if name == "contentModeration":
        return _moderation(key, value)
    if name == "outputFormat":
        if str(value).strip().lower() != "mp4":
            raise _bad(key, "'mp4' (vidgate serves MP4 videos)")
        return "mp4"
    if not isinstance(value, str) or not value.strip():  # negativePrompt
        raise _bad(key, "a non-empty string")
    return value


def extra_fields(extras: dict[str, Any], schema: Schema, *, model: str) -> dict[str, Any]:
    """The metadata keys this model's schema has, typed; everything else stays out of the body."""
    out: dict[str, Any] = {}
    for key, value in extras.items():
        name = _ALIASES.get(key)
        if name is None or name not in schema.fields or value is None:
            if key != "last_frame_url" and not key.startswith("sandbox_"):
                log.debug("runway: metadata key %r is not a %s field; not sent", key, model)
            continue
        out[name] = _field(name, key, value)
    return out


def build_body(req: GenerationRequest) -> dict[str, Any]:
    endpoint = endpoint_for(req)
    schema = schema_for(req.model, endpoint)
    body: dict[str, Any] = {"model": req.model}
    prompt = req.prompt if req.prompt.strip() else ""
    if prompt:
        if _utf16_len(prompt) > PROMPT_LIMIT:
            raise Rejected(
                PROVIDER,
                f"Runway takes prompts of at most {PROMPT_LIMIT} characters (UTF-16 code units).",
                vendor_code="prompt_too_long",
            )
        body["promptText"] = prompt
    elif schema.prompt_required:
        raise Rejected(PROVIDER, f"Runway model '{req.model}' needs a prompt.", vendor_code="prompt_required")
    if endpoint == "image_to_video":
        if req.image is None:
            raise Rejected(PROVIDER, "Runway needs a first frame to use a last frame.", vendor_code="first_frame")
        first = image_uri(req.image, param="input_reference")
        if req.last_frame is not None:
            if not schema.last_frame:
                raise Rejected(PROVIDER, f"Runway model '{req.model}' takes no last frame.", vendor_code="last_frame")
            last = image_uri(req.last_frame, param="last frame")
            body["promptImage"] = [{"uri": first, "position": "first"}, {"uri": last, "position": "last"}]
        else:
            body["promptImage"] = first
    if schema.ratios:
        body["ratio"] = ratio_for(req.width, req.height, schema.ratios)
    body["duration"] = duration_for(req.seconds, schema.durations)
    body.update(extra_fields(req.extras, schema, model=req.model))
    return body
