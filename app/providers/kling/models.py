"""Kling's model catalogue: the capability table (§10 of /work/shared/vendors/kling.md) and the constants the
request mapping reads from it (API families, tiers, aspect ratios, durations). Pure data, no I/O."""

from __future__ import annotations

from typing import Any, Final

from app.providers.capabilities import ModelCaps

PROVIDER: Final = "kling"

T2V: Final = "text2video"
I2V: Final = "image2video"
EXTEND: Final = "video-extend"
FAMILIES: Final = (T2V, I2V, EXTEND)

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
# sound: the native `sound` on/off, or the house-wide `generate_audio` / `audio` booleans
_EXTRAS_SOUND = _EXTRAS_V2 | {"sound", "generate_audio", "audio", "voice_list"}
_EXTRAS_V3 = _EXTRAS_SOUND | {"multi_shot", "shot_type", "multi_prompt"}


def _caps(name: str, sizes: tuple[tuple[int, int], ...], **kw: Any) -> ModelCaps:
    kw.setdefault("seconds", () if "seconds_range" in kw else (5, 10))
    return ModelCaps(name=name, provider=PROVIDER, sizes=sizes, default_size=sizes[0], default_seconds=5, **kw)


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
    _caps(
        "kling-v2-6",
        _SD + _HD,
        last_frame=True,
        audio=True,
        extras=_EXTRAS_SOUND,
        description="Kling 2.6: std 720p, pro 1080p; sound (pro only; first+last frame is silent)",
    ),
    _caps(
        "kling-v3",
        _SD + _HD,
        seconds_range=(3, 15),
        last_frame=True,
        audio=True,
        extras=_EXTRAS_V3,
        description="Kling 3.0: 3-15 s, std 720p, pro 1080p; sound; multi-shot",
    ),
)

# Models whose 1080p output is the `pro` mode.
_TWO_TIER: Final = frozenset({"kling-v1-5", "kling-v1-6", "kling-v2-1", "kling-v2-5-turbo", "kling-v2-6", "kling-v3"})
# Models whose first+last frame is pro-only (capability map); kling-v3's is UNCONFIRMED, left to `mode`.
_TAIL_PRO: Final = frozenset({"kling-v1-5", "kling-v1-6", "kling-v2-1", "kling-v2-5-turbo", "kling-v2-6"})
# Models that take `sound`; on kling-v2-6 sound is pro-only and its first+last frame is silent.
_SOUND: Final = frozenset({"kling-v2-6", "kling-v3"})
_SOUND_PRO_ONLY: Final = frozenset({"kling-v2-6"})
_TAIL_SILENT: Final = frozenset({"kling-v2-6"})
# Single-tier models: the mode field means nothing there, so it is left out.
_SINGLE_TIER: Final = frozenset({"kling-v2-master", "kling-v2-1-master"})

ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1")
DURATIONS: Final[dict[int, str]] = {5: "5", 10: "10"}
# Models that take any whole number of seconds in a range (still sent as a string).
DURATION_RANGES: Final[dict[str, tuple[int, int]]] = {"kling-v3": (3, 15)}
