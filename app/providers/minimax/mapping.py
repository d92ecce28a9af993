"""MiniMax Hailuo: the capability table (§5.1) and the create body (§4.1), as pure functions.

See the package docstring for the UNCONFIRMED facts these choices rest on."""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from app.providers.base import GenerationRequest, ImageInput, Rejected
from app.providers.capabilities import ModelCaps
from app.providers.http import parse_bool

PROVIDER: Final = "minimax"

Mode = Literal["t2v", "i2v", "fl2v", "s2v"]

# ---------------------------------------------------------------------------------------------
# Capability table (§5.1): model → mode → resolution → durations

_HAILUO: dict[str, tuple[int, ...]] = {"768P": (6, 10), "1080P": (6,)}
_SERIES_01: dict[str, tuple[int, ...]] = {"720P": (6,)}

MATRIX: dict[str, dict[Mode, dict[str, tuple[int, ...]]]] = {
    "MiniMax-Hailuo-2.3": {"t2v": _HAILUO, "i2v": _HAILUO},
    "MiniMax-Hailuo-2.3-Fast": {"i2v": _HAILUO},
    "MiniMax-Hailuo-02": {"t2v": _HAILUO, "i2v": {"512P": (6, 10), **_HAILUO}, "fl2v": _HAILUO},
    "T2V-01-Director": {"t2v": _SERIES_01},
    "T2V-01": {"t2v": _SERIES_01},
    "I2V-01-Director": {"i2v": _SERIES_01},
    "I2V-01-live": {"i2v": _SERIES_01},
    "I2V-01": {"i2v": _SERIES_01},
    "S2V-01": {"s2v": _SERIES_01},
}

# resolution → output pixels of a landscape text-to-video (§5.1; 512P is UNCONFIRMED, see above)
PIXELS: dict[str, tuple[int, int]] = {
    "512P": (910, 512),
    "720P": (1280, 720),
    "768P": (1366, 768),
    "1080P": (1920, 1080),
}
_SHORT_SIDE = {res: size[1] for res, size in PIXELS.items()}

_HAILUO_MODELS = frozenset({"MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast", "MiniMax-Hailuo-02"})
_BOOL_KEYS = frozenset({"prompt_optimizer", "fast_pretreatment", "aigc_watermark", "watermark"})
_COMMON_EXTRAS = frozenset({"prompt_optimizer", "aigc_watermark", "watermark", "callback_url"})
_DESCRIPTIONS = {
    "MiniMax-Hailuo-2.3": "Hailuo 2.3: text or first frame; 768P 6/10 s, 1080P 6 s",
    "MiniMax-Hailuo-2.3-Fast": "Hailuo 2.3 Fast: first frame only; 768P 6/10 s, 1080P 6 s",
    "MiniMax-Hailuo-02": "Hailuo 02: text, first frame (also 512P) or first+last frame; 768P 6/10 s, 1080P 6 s",
    "T2V-01-Director": "T2V-01 Director: text with camera commands; 720P 6 s",
    "T2V-01": "T2V-01: text; 720P 6 s",
    "I2V-01-Director": "I2V-01 Director: first frame with camera commands; 720P 6 s",
    "I2V-01-live": "I2V-01 live: first frame (illustration styles); 720P 6 s",
    "I2V-01": "I2V-01: first frame; 720P 6 s",
    "S2V-01": "S2V-01: subject reference (input_reference or metadata.subject_reference) + prompt; 720P 6 s",
}


def _model_caps(name: str) -> ModelCaps:
    modes = MATRIX[name]
    resolutions = sorted({r for table in modes.values() for r in table}, key=lambda r: _SHORT_SIDE[r])
    seconds = tuple(sorted({s for table in modes.values() for durations in table.values() for s in durations}))
    image_only = set(modes) == {"i2v"}
    sizes = [PIXELS[r] for r in resolutions]
    if image_only:  # the output follows the image: either orientation of a tier is as good
        sizes += [(h, w) for w, h in sizes]
    extras = set(_COMMON_EXTRAS)
    if name in _HAILUO_MODELS:
        extras.add("fast_pretreatment")
    if "fl2v" in modes:
        extras |= {"last_frame_image", "last_frame_url"}
    if "s2v" in modes:
        extras.add("subject_reference")
    hailuo = name in _HAILUO_MODELS
    at_1080 = sorted({s for table in modes.values() for s in table.get("1080P", ())})
    narrowed = ((1080, tuple(at_1080)),) if at_1080 and tuple(at_1080) != seconds else ()
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=tuple(sizes),
        seconds=seconds,
        default_size=PIXELS["768P"] if hailuo else PIXELS["720P"],
        default_seconds=6,
        image="required" if image_only else "none" if set(modes) == {"t2v"} else "optional",
        last_frame="fl2v" in modes,
        audio=False,
        seconds_by_size=narrowed,  # 1080P is 6 s only: strict refuses 1080P + 10 s, nearest makes it 6 s
        description=_DESCRIPTIONS[name],
        extras=frozenset(extras),
    )


MODELS: tuple[ModelCaps, ...] = tuple(_model_caps(name) for name in MATRIX)

# ---------------------------------------------------------------------------------------------
# Request translation (§4)


def _image_ref(image: ImageInput) -> str:
    """A public URL as is, else a data URL (§4.1: `first_frame_image` takes either)."""
    return image.url or image.data_url()


def _extras(req: GenerationRequest) -> dict[str, Any]:
    return {k: v for k, v in req.extras.items() if not k.startswith("sandbox_")}


def _last_frame(req: GenerationRequest) -> str | None:
    if req.last_frame is not None:
        return _image_ref(req.last_frame)
    native = _extras(req).get("last_frame_image")
    return native.strip() or None if isinstance(native, str) else None


def mode_of(req: GenerationRequest) -> Mode:
    """S2V-01 is subject-to-video; a last frame makes first+last; an image makes image-to-video."""
    if req.model == "S2V-01":
        return "s2v"
    if _last_frame(req) is not None:
        return "fl2v"
    return "i2v" if req.image is not None else "t2v"


_MODE_TEXT: dict[Mode, str] = {
    "t2v": "text-to-video",
    "i2v": "a first-frame image",
    "fl2v": "a first and a last frame",
    "s2v": "a subject reference",
}


def _table(model: str, mode: Mode) -> dict[str, tuple[int, ...]]:
    modes = MATRIX.get(model)
    if modes is None:
        raise Rejected(PROVIDER, f"MiniMax has no model '{model}'.", vendor_code="model_not_found")
    table = modes.get(mode)
    if table is None:
        can = ", ".join(_MODE_TEXT[m] for m in modes)
        raise Rejected(
            PROVIDER,
            f"Model '{model}' does not take {_MODE_TEXT[mode]}; it takes: {can}.",
            vendor_code="invalid_value",
        )
    return table


def _nearest_resolution(resolutions: list[str], short: int) -> str:
    return min(resolutions, key=lambda r: (abs(_SHORT_SIDE[r] - short), -_SHORT_SIDE[r]))


def resolve(table: dict[str, tuple[int, ...]], width: int, height: int, seconds: int) -> tuple[str, int]:
    """The snapped size and seconds → (`resolution`, `duration`) the mode can do.

    The tier nearest the short side; when that tier lacks the duration (10 s at 1080P), the nearest tier
    that has it; a duration no tier has (the service snaps, so only through odd inputs) → the tier's nearest."""
    short = min(width, height)
    resolution = _nearest_resolution(list(table), short)
    if seconds in table[resolution]:
        return resolution, seconds
    having = [r for r, durations in table.items() if seconds in durations]
    if having:
        return _nearest_resolution(having, short), seconds
    durations = table[resolution]
    return resolution, min(durations, key=lambda d: (abs(d - seconds), -d))


def _bool(key: str, value: Any) -> bool:
    """Multipart metadata arrives as strings; MiniMax checks its switches are booleans."""
    if (parsed := parse_bool(value)) is not None:
        return parsed
    raise Rejected(PROVIDER, f"metadata.{key} must be true or false, not {value!r}.", vendor_code="invalid_value")


def _subject_reference(value: Any) -> list[dict[str, Any]]:
    """`[{"type":"character","image":[url]}]`; also a JSON string of it, or one bare image URL."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [{"type": "character", "image": [text]}] if text else []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise Rejected(
                PROVIDER, "metadata.subject_reference is not valid JSON.", vendor_code="invalid_value"
            ) from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Rejected(
            PROVIDER,
            'metadata.subject_reference must be a list like [{"type": "character", "image": ["<url>"]}].',
            vendor_code="invalid_value",
        )
    return value


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The create body (§4.1). `metadata` adds documented switches; it never sets `model` or `prompt`."""
    mode = mode_of(req)
    table = _table(req.model, mode)
    extras = _extras(req)
    allowed = next(c.extras for c in MODELS if c.name == req.model)
    resolution, duration = resolve(table, req.width, req.height, req.seconds)
    body: dict[str, Any] = {"model": req.model}
    if req.prompt:
        body["prompt"] = req.prompt
    if mode == "s2v":
        subjects = _subject_reference(extras["subject_reference"]) if "subject_reference" in extras else []
        if not subjects and req.image is not None:
            subjects = [{"type": "character", "image": [_image_ref(req.image)]}]
        if not subjects:
            raise Rejected(
                PROVIDER,
                "S2V-01 needs a subject: send input_reference (an image of the character) or "
                "metadata.subject_reference.",
                vendor_code="missing_required_parameter",
            )
        body["subject_reference"] = subjects
    elif req.image is not None:
        body["first_frame_image"] = _image_ref(req.image)
    if mode == "fl2v":
        if req.image is None:
            raise Rejected(PROVIDER, "A last frame needs a first frame (input_reference).", vendor_code="invalid_value")
        body["last_frame_image"] = _last_frame(req)
    body["duration"] = duration
    body["resolution"] = resolution
    for key, value in extras.items():
        if key not in allowed:
            continue
        if key in _BOOL_KEYS:
            body["aigc_watermark" if key == "watermark" else key] = _bool(key, value)
        elif key == "callback_url" and isinstance(value, str) and value:
            body["callback_url"] = value
    return body
