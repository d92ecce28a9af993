"""The one `Range` decision both storage backends use (app/storage/ranges.py, RFC 9110 §14)."""

from __future__ import annotations

import pytest

from app.storage.ranges import RangeNotSatisfiable, parse_ranges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", [(0, 0)]),
        ("BYTES = 2-3", [(2, 3)]),
        ("bytes=5-", [(5, 9)]),
        ("bytes=-3", [(7, 9)]),
        ("bytes=-30", [(0, 9)]),
        ("bytes=8-99", [(8, 9)]),
        ("bytes=0-1, 4-5", [(0, 1), (4, 5)]),
        ("bytes=4-5,0-2,2-3", [(0, 5)]),  # sorted and merged
        ("bytes=0-1,20-", [(0, 1)]),  # the unsatisfiable one is dropped
        ("bytes=5-2", None),  # last before first: invalid, ignored
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes", None),
        ("bytes=1-2,", [(1, 2)]),  # empty list elements are skipped (RFC 9110 §5.6.1)
        ("bytes=,", None),
        ("items=0-1", None),  # unknown unit: MUST be ignored
        ("bytes=" + ",".join(["0-0"] * 101), None),  # too many ranges
    ],
)
def test_parse_ranges(header: str | None, expected: list[tuple[int, int]] | None) -> None:
    assert parse_ranges(header, 10) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=-5", 0), ("bytes=0-", 0)])
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_ranges(header, size)
