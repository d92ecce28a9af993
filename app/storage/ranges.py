"""`Range` requests (RFC 9110 §14), decided the same way for every storage backend.

- A range unit other than `bytes` is ignored (§14.2: an origin server MUST ignore it): 200, whole body.
- A syntactically invalid `bytes` range set (`bytes=abc`, `bytes=5-2`, `bytes=-`) is ignored too
  (§14.2 lets a server ignore or reject it; ignoring serves the client that sent it): 200, whole body.
- A valid set none of whose ranges is satisfiable (`bytes=<size>-`, `bytes=-0`) is a 416 with
  `Content-Range: bytes */<size>` (§15.5.17) and the error envelope, code `range_not_satisfiable`.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse, Response

from app.errors import InvalidRequest

MAX_RANGES = 100  # more is a sign of a broken or hostile client (§14.2): ignored, like Starlette does
_SPEC = re.compile(r"(\d*)[ \t]*-[ \t]*(\d*)")


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"no satisfiable range in a representation of {size} bytes")
        self.size = size


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges of `header` as inclusive (first, last) pairs, sorted and merged; None means
    "ignore the header, send the whole body". Raises RangeNotSatisfiable when a valid set misses the body."""
    if header is None:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]  # empty list elements are skipped (§5.6.1)
    if not parts or len(parts) > MAX_RANGES:
        return None
    spans: list[tuple[int, int]] = []
    for part in parts:
        m = _SPEC.fullmatch(part)
        if m is None or not (m[1] or m[2]):
            return None  # invalid syntax: the whole set is ignored
        first, last = m[1], m[2]
        if not first:  # suffix: the last n bytes
            n = int(last)
            if n > 0 and size > 0:
                spans.append((max(0, size - n), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            return None  # last-pos before first-pos is invalid (§14.1.2), not unsatisfiable
        if start < size:
            spans.append((start, min(int(last), size - 1) if last else size - 1))
    if not spans:
        raise RangeNotSatisfiable(size)
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def not_satisfiable_response(size: int) -> Response:
    err = InvalidRequest(
        f"The requested range is not satisfiable: the content is {size} bytes long.",
        code="range_not_satisfiable",
    )
    return JSONResponse(err.body(), status_code=416, headers={"Content-Range": f"bytes */{size}"})
