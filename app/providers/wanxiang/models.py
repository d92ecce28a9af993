"""Wanxiang's model catalogue: the per-model capability table (§5 of /work/shared/vendors/wanxiang.md, plus the
wan2.6 / wan2.7 / HappyHorse rows described in the package docstring) and the routing facts the mapping reads
from it: each model's kind (t2v, i2v, kf2v, r2v) and request protocol. Pure data, no I/O."""

from __future__ import annotations

from typing import Final, Literal

from app.providers.capabilities import ModelCaps

PROVIDER: Final = "wanxiang"

Kind = Literal["t2v", "i2v", "kf2v", "r2v"]
# "legacy": `img_url` / `first_frame_url` / `reference_video_urls` inputs and `size` or `resolution`;
# "media": wan2.7 and HappyHorse, typed assets in `input.media[]` and `resolution` + `ratio`.
Protocol = Literal["legacy", "media"]

# t2v size tiers; i2v/kf2v declare the same lists so the service can snap, then send only the class.
TIERS: dict[str, tuple[tuple[int, int], ...]] = {
    "480P": ((832, 480), (480, 832), (624, 624)),
    "720P": ((1280, 720), (720, 1280), (960, 960), (1088, 832), (832, 1088)),
    "1080P": ((1920, 1080), (1080, 1920), (1440, 1440), (1632, 1248), (1248, 1632)),
}
# Keyed by exact size, not short side: 1088x832 belongs to 720P.
SIZE_CLASS: dict[tuple[int, int], str] = {size: tier for tier, sizes in TIERS.items() for size in sizes}
# The media protocol's `ratio` for each tier size (the legacy tables pair each size with these ratios).
RATIO_OF: dict[tuple[int, int], str] = {
    size: ratio
    for sizes in TIERS.values()
    for size, ratio in zip(sizes, ("16:9", "9:16", "1:1", "4:3", "3:4"), strict=False)
}
RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4")

_COMMON: Final = frozenset({"negative_prompt", "prompt_extend", "watermark", "seed"})
_AUDIO: Final = frozenset({"audio", "audio_url"})
_EXTRAS: dict[tuple[Kind, str], frozenset[str]] = {
    # (kind, family) -> documented metadata keys; the family is the model's name prefix
    ("t2v", "wan2.6"): _COMMON | _AUDIO | {"shot_type"},
    ("i2v", "wan2.6"): _COMMON | _AUDIO | {"shot_type", "img_url"},
    ("r2v", "wan2.6"): _COMMON | {"audio", "shot_type", "reference_video_urls", "reference_urls"},
    ("t2v", "wan2.7"): _COMMON | {"audio_url"},
    ("i2v", "wan2.7"): _COMMON | {"audio_url", "first_frame_url", "last_frame_url", "first_clip_url"},
    ("r2v", "wan2.7"): _COMMON | {"reference_image_urls", "reference_video_urls", "first_frame_url"},
    ("t2v", "happyhorse"): frozenset({"watermark", "seed"}),
    ("i2v", "happyhorse"): frozenset({"watermark", "seed", "first_frame_url"}),
    ("r2v", "happyhorse"): frozenset({"watermark", "seed", "reference_image_urls"}),
}


def kind_of(model: str) -> Kind:
    # The official SDK routes kf2v on the same substring (§3); r2v and i2v follow the model names.
    if "kf2v" in model:
        return "kf2v"
    if "r2v" in model:
        return "r2v"
    if "i2v" in model:
        return "i2v"
    return "t2v"


def protocol_of(model: str) -> Protocol:
    """wan2.7 and HappyHorse speak the media protocol; wan2.6 and older the legacy one (SDK `videos.py`)."""
    return "media" if model.startswith(("wan2.7", "happyhorse")) else "legacy"


def _extras(name: str, kind: Kind) -> frozenset[str]:
    for (k, family), keys in _EXTRAS.items():
        if k == kind and name.startswith(family):
            return keys
    extras = _COMMON | (_AUDIO if name.startswith("wan2.5") else frozenset())
    if kind == "i2v":
        extras |= {"img_url"} | ({"template"} if name.startswith("wanx2.1") else set())
    elif kind == "kf2v":
        extras |= {"first_frame_url", "last_frame_url", "template"}
    return frozenset(extras)


def _caps(
    name: str,
    tiers: tuple[str, ...],
    default: tuple[int, int],
    seconds: tuple[int, ...] | tuple[int, int],
    description: str,
    *,
    ranged: bool = False,
    audio: bool = False,
    image: Literal["none", "optional", "required"] | None = None,
    last_frame: bool | None = None,
) -> ModelCaps:
    kind = kind_of(name)
    timing = {"seconds_range": seconds} if ranged else {"seconds": seconds}
    return ModelCaps(
        name=name,
        provider=PROVIDER,
        sizes=tuple(size for tier in tiers for size in TIERS[tier]),
        default_size=default,
        default_seconds=5,
        image=image or ("none" if kind == "t2v" else "required"),
        last_frame=kind == "kf2v" if last_frame is None else last_frame,
        audio=audio,
        description=description,
        extras=_extras(name, kind),
        **timing,  # type: ignore[arg-type]
    )


_ALL = ("480P", "720P", "1080P")
_HQ = ("720P", "1080P")
_FHD, _HD = (1920, 1080), (1280, 720)
_KEEPS_RATIO = "output keeps the image's aspect ratio"
MODELS: tuple[ModelCaps, ...] = (
    _caps("wan2.7-t2v", _HQ, _FHD, (2, 15), "Wan 2.7 text-to-video with sound, 2-15 s", ranged=True, audio=True),
    _caps(
        "wan2.7-i2v",
        _HQ,
        _FHD,
        (2, 15),
        f"Wan 2.7 first(+last)-frame or clip continuation, with sound, 2-15 s; {_KEEPS_RATIO}",
        ranged=True,
        audio=True,
        image="optional",  # a first frame, or `metadata.first_clip_url` to continue a clip
        last_frame=True,
    ),
    _caps(
        "wan2.7-r2v",
        _HQ,
        _FHD,
        (2, 15),
        "Wan 2.7 reference images/videos to video with sound, 2-15 s (2-10 s with a reference video)",
        ranged=True,
        audio=True,
        image="optional",  # the reference image, or metadata.reference_image_urls / reference_video_urls
    ),
    _caps("wan2.6-t2v", _HQ, _FHD, (5, 10, 15), "Wan 2.6 text-to-video with sound, multi-shot", audio=True),
    _caps("wan2.6-i2v", _HQ, _FHD, (5, 10, 15), f"Wan 2.6 i2v with sound, multi-shot; {_KEEPS_RATIO}", audio=True),
    _caps(
        "wan2.6-i2v-flash",
        _HQ,
        _FHD,
        (2, 15),
        f"Wan 2.6 i2v flash, sound optional, 2-15 s; {_KEEPS_RATIO}",
        ranged=True,
        audio=True,
    ),
    _caps(
        "wan2.6-r2v",
        _HQ,
        _HD,
        (5, 10),
        "Wan 2.6 reference-video-to-video with sound (metadata.reference_video_urls)",
        audio=True,
        image="none",
    ),
    _caps("wan2.5-t2v-preview", _ALL, _FHD, (5, 10), "Wan 2.5 text-to-video with sound", audio=True),
    _caps("wan2.2-t2v-plus", ("480P", "1080P"), _FHD, (5,), "Wan 2.2 text-to-video, silent"),
    _caps("wanx2.1-t2v-turbo", ("480P", "720P"), _HD, (5,), "Wan 2.1 text-to-video turbo, silent"),
    _caps("wanx2.1-t2v-plus", ("720P",), _HD, (5,), "Wan 2.1 text-to-video, silent"),
    _caps("wan2.5-i2v-preview", _ALL, _FHD, (5, 10), f"Wan 2.5 i2v with sound; {_KEEPS_RATIO}", audio=True),
    # Older docs list 480P/720P only; the newer ones add 1080P (§5).
    _caps("wan2.2-i2v-flash", _ALL, _HD, (5,), f"Wan 2.2 image-to-video flash; {_KEEPS_RATIO}"),
    _caps("wan2.2-i2v-plus", ("480P", "1080P"), _FHD, (5,), f"Wan 2.2 image-to-video; {_KEEPS_RATIO}"),
    _caps("wanx2.1-i2v-plus", ("720P",), _HD, (5,), f"Wan 2.1 image-to-video; {_KEEPS_RATIO}"),
    _caps("wanx2.1-i2v-turbo", ("480P", "720P"), _HD, (3, 4, 5), f"Wan 2.1 i2v turbo; {_KEEPS_RATIO}"),
    _caps("wan2.2-kf2v-flash", _ALL, _HD, (5,), "Wan 2.2 first+last frame to video"),
    _caps("wanx2.1-kf2v-plus", ("720P",), _HD, (5,), "Wan 2.1 first+last frame to video"),
    _caps("happyhorse-1.0-t2v", _HQ, _FHD, (3, 15), "HappyHorse 1.0 text-to-video, 3-15 s", ranged=True),
    _caps("happyhorse-1.0-i2v", _HQ, _FHD, (3, 15), f"HappyHorse 1.0 i2v, 3-15 s; {_KEEPS_RATIO}", ranged=True),
    _caps(
        "happyhorse-1.0-r2v",
        _HQ,
        _FHD,
        (3, 15),
        "HappyHorse 1.0 reference images to video, 3-15 s",
        ranged=True,
        image="optional",  # the reference image, or metadata.reference_image_urls
    ),
)
CAPS: dict[str, ModelCaps] = {caps.name: caps for caps in MODELS}
