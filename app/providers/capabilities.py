"""Per-model capability table and the size/seconds parsing and snapping rules.

Every provider module declares its models as `ModelCaps`. The videos service validates a request
against them *before* anything is stored or sent, and either snaps to the nearest supported value
(`nearest` policy) or refuses with a message naming what the model can do (`strict`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["nearest", "strict"]
ImageMode = Literal["none", "optional", "required"]

# Resolution classes as clients spell them ("720P", "1080p"), by their short side.
RESOLUTION_CLASSES: dict[str, int] = {
    "360p": 360,
    "480p": 480,
    "512p": 512,  # MiniMax Hailuo-02 image-to-video
    "540p": 540,
    "720p": 720,
    "768p": 768,
    "1080p": 1080,
    "1440p": 1440,
    "2160p": 2160,
    "4k": 2160,
    # long-side spellings seen in relay docs ("1280P")
    "832p": 480,
    "1280p": 720,
    "1920p": 1080,
}


class CapabilityError(ValueError):
    """A value the model cannot serve. `param` names the OpenAI field."""

    def __init__(self, message: str, *, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True)
class SizeSpec:
    """What the client asked for: an exact size, or only a resolution class (short side)."""

    width: int | None = None
    height: int | None = None
    short_side: int | None = None  # from "720P"

    @property
    def exact(self) -> bool:
        return self.width is not None and self.height is not None


_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX*×:]\s*(\d{1,5})\s*$")


def parse_size(value: str) -> SizeSpec:
    """`1280x720`, `1280*720`, `720P`/`1080p`. Anything else is a 400 under every policy."""
    m = _SIZE_RE.match(value)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if w <= 0 or h <= 0:
            raise CapabilityError(f"Invalid size '{value}': width and height must be positive.", param="size")
        return SizeSpec(width=w, height=h)
    key = value.strip().lower()
    if key in RESOLUTION_CLASSES:
        return SizeSpec(short_side=RESOLUTION_CLASSES[key])
    raise CapabilityError(
        f"Invalid size '{value}': expected WIDTHxHEIGHT (e.g. '1280x720'), WIDTH*HEIGHT or a "
        "resolution class such as '720P' or '1080p'.",
        param="size",
    )


def parse_seconds(value: str | int | float) -> int:
    """`"8"`, `8`, `"8.0"` → 8. Zero, negatives, fractions and words are a 400 under every policy."""
    if isinstance(value, bool):
        raise CapabilityError("Invalid seconds: expected a whole number of seconds.", param="seconds")
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("s").strip()
        try:
            num = float(text)
        except ValueError:
            raise CapabilityError(
                f"Invalid seconds '{value}': expected a whole number of seconds such as '4' or '8'.",
                param="seconds",
            ) from None
    else:
        try:
            num = float(value)
        except OverflowError:  # an int past a double's range (a 401-digit JSON number)
            num = math.inf
    if not math.isfinite(num) or num != int(num) or num < 1:
        shown = value if len(str(value)) <= 40 else f"{str(value)[:20]}...({len(str(value))} characters)"
        raise CapabilityError(
            f"Invalid seconds '{shown}': expected a whole number of seconds of at least 1.",
            param="seconds",
        )
    return int(num)


@dataclass(frozen=True)
class ModelCaps:
    """What one model can do.

    Sizes: either a finite list of exact `sizes` the vendor produces, or (when `sizes` is empty)
    any even WxH with both sides within `side_range`. Seconds: a finite list, or `seconds_range`.
    """

    name: str
    provider: str
    sizes: tuple[tuple[int, int], ...] = ()
    side_range: tuple[int, int] = (64, 1920)
    seconds: tuple[int, ...] = ()
    seconds_range: tuple[int, int] = (1, 20)
    default_size: tuple[int, int] = (720, 1280)
    default_seconds: int = 4
    image: ImageMode = "optional"
    last_frame: bool = False
    remix: bool = False
    edit: bool = False
    extend: bool = False
    max_total_seconds: int = 120
    audio: bool = False  # the model can make a sound track (`metadata.generate_audio` / `metadata.audio`)
    # sizes that allow fewer durations: (short side at least, the only seconds there), e.g. Veo's
    # ((1080, (8,)),): 1080p and 4k are 8-second videos only; the largest threshold that applies wins
    seconds_by_size: tuple[tuple[int, tuple[int, ...]], ...] = ()
    description: str = ""
    extras: frozenset[str] = field(default_factory=frozenset)  # documented metadata keys

    # -- descriptions used in error messages, `vidgate providers` and `/v1/models`
    def summary(self) -> dict[str, object]:
        """The capabilities a client may want before it creates: what `/v1/models` shows per model."""
        return {
            "sizes": [f"{w}x{h}" for w, h in self.sizes] or None,
            "side_range": None if self.sizes else list(self.side_range),
            "seconds": list(self.seconds) or None,
            "seconds_range": None if self.seconds else list(self.seconds_range),
            "default_size": f"{self.default_size[0]}x{self.default_size[1]}",
            "default_seconds": self.default_seconds,
            "image_input": self.image,
            "last_frame": self.last_frame,
            "audio": self.audio,
            "seconds_by_size": {f"{t}p+": list(secs) for t, secs in self.seconds_by_size} or None,
            "operations": ["create", *(op for op in ("remix", "edit", "extend") if getattr(self, op))],
        }

    def sizes_text(self) -> str:
        if self.sizes:
            return ", ".join(f"{w}x{h}" for w, h in self.sizes)
        lo, hi = self.side_range
        return f"any WIDTHxHEIGHT with even sides between {lo} and {hi}"

    def seconds_text(self) -> str:
        if self.seconds:
            return ", ".join(str(s) for s in self.seconds)
        lo, hi = self.seconds_range
        return f"any whole number from {lo} to {hi}"

    # -- resolution
    def seconds_at(self, width: int, height: int) -> tuple[int, ...] | None:
        """The only durations a size allows, when `seconds_by_size` narrows them; None: any of the model's."""
        applicable = [(t, secs) for t, secs in self.seconds_by_size if min(width, height) >= t]
        return max(applicable)[1] if applicable else None

    def resolve_seconds(
        self,
        requested: int | None,
        policy: Policy,
        *,
        model: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> int:
        """`model`: the name the client sent (an alias), for error messages; default `self.name`. `size`: the
        resolved size, when it narrows the durations (`seconds_by_size`)."""
        resolved = self._resolve_seconds(requested, policy, model=model or self.name)
        allowed = self.seconds_at(*size) if size is not None else None
        if allowed is None or resolved in allowed:
            return resolved
        if policy == "strict" and requested is not None:
            w, h = size or (0, 0)
            raise CapabilityError(
                f"Model '{model or self.name}' makes {w}x{h} videos of "
                f"{', '.join(map(str, allowed))} seconds only; "
                f"supported seconds at other sizes: {self.seconds_text()}.",
                param="seconds",
            )
        return min(allowed, key=lambda s: (abs(s - resolved), -s))

    def _resolve_seconds(self, requested: int | None, policy: Policy, *, model: str) -> int:
        if requested is None:
            return self.default_seconds
        if self.seconds:
            if requested in self.seconds:
                return requested
            if policy == "strict":
                raise CapabilityError(
                    f"Model '{model}' cannot make a {requested}-second video; "
                    f"supported seconds: {self.seconds_text()}.",
                    param="seconds",
                )
            return min(self.seconds, key=lambda s: (abs(s - requested), -s))
        lo, hi = self.seconds_range
        if lo <= requested <= hi:
            return requested
        if policy == "strict":
            raise CapabilityError(
                f"Model '{model}' cannot make a {requested}-second video; supported seconds: {self.seconds_text()}.",
                param="seconds",
            )
        return max(lo, min(hi, requested))

    def resolve_size(self, spec: SizeSpec | None, policy: Policy, *, model: str | None = None) -> tuple[int, int]:
        """`model`: the name the client sent (an alias), for error messages; default `self.name`."""
        model = model or self.name
        if spec is None:
            if self.sizes and self.default_size not in self.sizes:
                return self.sizes[0]
            return self.default_size
        if spec.exact:
            assert spec.width is not None and spec.height is not None
            return self._resolve_exact(spec.width, spec.height, policy, model)
        assert spec.short_side is not None
        return self._resolve_class(spec.short_side, policy, model)

    def _resolve_exact(self, w: int, h: int, policy: Policy, model: str) -> tuple[int, int]:
        if self.sizes:
            if (w, h) in self.sizes:
                return (w, h)
            if policy == "strict":
                raise CapabilityError(
                    f"Model '{model}' cannot make size {w}x{h}; supported sizes: {self.sizes_text()}.",
                    param="size",
                )
            return nearest_size(self.sizes, w, h)
        lo, hi = self.side_range
        ok = lo <= w <= hi and lo <= h <= hi and w % 2 == 0 and h % 2 == 0
        if ok:
            return (w, h)
        if policy == "strict":
            raise CapabilityError(
                f"Model '{model}' cannot make size {w}x{h}; supported sizes: {self.sizes_text()}.",
                param="size",
            )
        scale = min(1.0, hi / max(w, h))
        scale = max(scale, lo / min(w, h))
        nw, nh = (round(w * scale / 2) * 2, round(h * scale / 2) * 2)
        return (max(lo, min(hi, nw)), max(lo, min(hi, nh)))

    def _resolve_class(self, short: int, policy: Policy, model: str) -> tuple[int, int]:
        """A bare class ("720P") keeps the default orientation at that resolution."""
        dw, dh = self.default_size
        portrait = dh > dw
        if self.sizes:
            same = [s for s in self.sizes if min(s) == short]
            if same:
                oriented = [s for s in same if (s[1] > s[0]) == portrait and s[0] != s[1]]
                return (oriented or same)[0]
            if policy == "strict":
                raise CapabilityError(
                    f"Model '{model}' has no {short}p output; supported sizes: {self.sizes_text()}.",
                    param="size",
                )
            best = min(self.sizes, key=lambda s: abs(min(s) - short))
            return self._resolve_class(min(best), policy, model)
        long = round(short * 16 / 9 / 2) * 2
        w, h = (short, long) if portrait else (long, short)
        return self._resolve_exact(w, h, policy, model)


def nearest_size(sizes: tuple[tuple[int, int], ...], w: int, h: int) -> tuple[int, int]:
    """Closest aspect ratio first (log-distance), then closest pixel count."""
    ratio = math.log(w / h)
    area = w * h

    def key(s: tuple[int, int]) -> tuple[float, float]:
        return (round(abs(math.log(s[0] / s[1]) - ratio), 3), abs(math.log(s[0] * s[1] / area)))

    return min(sizes, key=key)


def aspect_ratio(w: int, h: int, choices: tuple[str, ...]) -> str:
    """Nearest of `choices` ("16:9", "9:16", "1:1", ...) to w:h."""
    ratio = math.log(w / h)

    def dist(c: str) -> float:
        a, b = c.split(":")
        return abs(math.log(int(a) / int(b)) - ratio)

    return min(choices, key=dist)
