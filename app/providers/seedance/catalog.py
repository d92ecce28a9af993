"""Seedance's models (§5 of /work/shared/vendors/seedance.md): the capability table, the size table clients
ask from, the pixels each model family produces (§5.3) and the two platforms' model ids (§1)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from app.providers.capabilities import ModelCaps, aspect_ratio

PROVIDER = "seedance"
DEFAULT_BASE_URL = "https://ark.cn-beijing.volces.com"
BYTEPLUS_BASE_URL = "https://ark.ap-southeast.bytepluses.com"

RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
RESOLUTIONS: Final = ("480p", "720p", "1080p")
FPS: Final = 24

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

COMMON_EXTRAS: Final = frozenset(
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
    keys = COMMON_EXTRAS | frozenset(extras) | (_AUDIO_EXTRAS if audio else frozenset())
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
CAPS: Final = {caps.name: caps for caps in MODELS}


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
