from __future__ import annotations

import pytest

from app.providers.capabilities import CapabilityError, ModelCaps, aspect_ratio, parse_seconds, parse_size

FIXED = ModelCaps(
    name="m",
    provider="p",
    sizes=((1280, 720), (720, 1280), (960, 960), (1920, 1080)),
    seconds=(5, 10),
    default_size=(1280, 720),
    default_seconds=5,
)
RANGE = ModelCaps(name="r", provider="p", side_range=(64, 1920), seconds_range=(1, 20))


@pytest.mark.parametrize(
    ("text", "wh"), [("1280x720", (1280, 720)), ("1920*1080", (1920, 1080)), (" 720X1280 ", (720, 1280))]
)
def test_parse_exact_sizes(text, wh) -> None:
    spec = parse_size(text)
    assert (spec.width, spec.height) == wh


@pytest.mark.parametrize(("text", "short"), [("720P", 720), ("1080p", 1080), ("480p", 480), ("1280P", 720)])
def test_parse_resolution_classes(text, short) -> None:
    assert parse_size(text).short_side == short


@pytest.mark.parametrize("text", ["abc", "0x720", "1280x", "x", "720", "1280x720x3"])
def test_bad_sizes_are_refused(text) -> None:
    with pytest.raises(CapabilityError):
        parse_size(text)


@pytest.mark.parametrize(("value", "n"), [("4", 4), (8, 8), ("8.0", 8), ("10s", 10)])
def test_parse_seconds(value, n) -> None:
    assert parse_seconds(value) == n


@pytest.mark.parametrize("value", ["0", 0, "-1", "2.5", "four", True, "nan"])
def test_bad_seconds(value) -> None:
    with pytest.raises(CapabilityError):
        parse_seconds(value)


def test_nearest_snaps_seconds_and_sizes() -> None:
    assert FIXED.resolve_seconds(4, "nearest") == 5
    assert FIXED.resolve_seconds(8, "nearest") == 10
    assert FIXED.resolve_seconds(20, "nearest") == 10
    assert FIXED.resolve_size(parse_size("1792x1024"), "nearest") == (1920, 1080)
    assert FIXED.resolve_size(parse_size("1024x1792"), "nearest") == (720, 1280)
    assert FIXED.resolve_size(parse_size("1000x1000"), "nearest") == (960, 960)
    assert FIXED.resolve_size(None, "nearest") == (1280, 720)
    assert FIXED.resolve_seconds(None, "strict") == 5


def test_strict_names_the_allowed_values() -> None:
    with pytest.raises(CapabilityError) as exc:
        FIXED.resolve_seconds(4, "strict")
    assert exc.value.param == "seconds" and "5, 10" in exc.value.message
    with pytest.raises(CapabilityError) as exc:
        FIXED.resolve_size(parse_size("1792x1024"), "strict")
    assert exc.value.param == "size" and "1280x720" in exc.value.message


def test_range_models() -> None:
    assert RANGE.resolve_size(parse_size("1280x720"), "strict") == (1280, 720)
    assert RANGE.resolve_size(parse_size("720p"), "strict") == (720, 1280)
    for bad in ("1281x720", "2000x1000", "32x64"):
        with pytest.raises(CapabilityError):
            RANGE.resolve_size(parse_size(bad), "strict")
    assert RANGE.resolve_size(parse_size("3840x2160"), "nearest") == (1920, 1080)


def test_aspect_ratio() -> None:
    assert aspect_ratio(1280, 720, ("16:9", "9:16", "1:1")) == "16:9"
    assert aspect_ratio(720, 1280, ("16:9", "9:16", "1:1")) == "9:16"
    assert aspect_ratio(1000, 1000, ("16:9", "9:16", "1:1")) == "1:1"


class TestSecondsBySize:
    """Some sizes allow fewer durations (Veo: 1080p and 4k are 8 s only; Hailuo: 1080P is 6 s only)."""

    CAPS = ModelCaps(
        name="m",
        provider="p",
        sizes=((1280, 720), (1920, 1080), (3840, 2160)),
        seconds=(4, 6, 8),
        default_seconds=4,
        seconds_by_size=((1080, (8,)),),
    )

    def test_strict_refuses_a_duration_the_size_cannot_do_naming_what_it_can(self) -> None:
        with pytest.raises(CapabilityError) as exc:
            self.CAPS.resolve_seconds(4, "strict", size=(1920, 1080))
        assert exc.value.param == "seconds" and "1920x1080 videos of 8 seconds only" in exc.value.message

    def test_nearest_snaps_to_what_the_size_allows(self) -> None:
        assert self.CAPS.resolve_seconds(4, "nearest", size=(3840, 2160)) == 8
        assert self.CAPS.resolve_seconds(None, "strict", size=(1920, 1080)) == 8  # the default too
        assert self.CAPS.resolve_seconds(4, "strict", size=(1280, 720)) == 4  # smaller sizes: unchanged
        assert self.CAPS.resolve_seconds(8, "strict", size=(1920, 1080)) == 8
        assert self.CAPS.summary()["seconds_by_size"] == {"1080p+": [8]}
