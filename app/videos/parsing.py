"""Request bodies as the SDKs really send them: multipart (bracket-encoded nested fields, files) or JSON.

The result is one plain dict per request, the same whichever encoding the client used, plus the
uploaded files by field name. Coercion of individual fields happens in the service.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from app.errors import InvalidRequest, PayloadTooLarge

_NAME_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 32  # objects and lists in one request; no real client nests deeper


@dataclass
class Upload:
    field: str
    filename: str
    content_type: str
    file: UploadFile

    async def read(self, limit: int, *, param: str) -> bytes:
        await self.file.seek(0)
        data = await self.file.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(
                f"The uploaded file '{self.filename}' is larger than the limit of {limit} bytes.",
                param=param,
                code="file_too_large",
            )
        return data


@dataclass
class ParsedBody:
    fields: dict[str, Any]
    files: dict[str, Upload]
    encoding: str  # "json" | "multipart" | "form" | "empty"


def _split(name: str) -> list[str]:
    m = _NAME_RE.match(name)
    if not m:
        raise InvalidRequest(f"Malformed field name '{name}'.", param=name, code="invalid_field_name")
    parts = [m.group(1), *_PART_RE.findall(m.group(2))]
    if len(parts) > MAX_DEPTH:
        raise InvalidRequest(
            f"Field '{name[:80]}...' is nested more than {MAX_DEPTH} levels deep.", code="invalid_field_name"
        )
    return parts


def unstorable(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why a parsed body cannot be taken, or None: nesting deeper than `limit` (it would overflow the stack
    later), or text no database stores (a NUL character, an unpaired surrogate from a `\\ud800` escape)."""
    stack = [(value, 1)]  # iterative: the point is not to recurse as deep as the client likes
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "it contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "it contains text that is not valid Unicode"
            continue
        children = (
            [*item.keys(), *item.values()] if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        if depth > limit:
            return f"it is nested more than {limit} levels deep"
        stack.extend((child, depth + 1) for child in children)
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # json.loads takes NaN and Infinity; PostgreSQL does not


def load_json(raw: str | bytes) -> Any:
    """`json.loads` that fails with ValueError on whatever a client can send: bad syntax or UTF-8, numbers
    past Python's digit limit, NaN, and what `unstorable` refuses."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"it is nested more than {MAX_DEPTH} levels deep") from None
    if (why := unstorable(data)) is not None:
        raise ValueError(why)
    return data


def _assign(container: dict[str, Any], path: list[str], value: Any, full: str) -> None:
    """qs-style bracket semantics: `a[b]` nests, `a[]` appends, `a[][k]` starts a new object when `k` repeats."""
    key, rest = path[0], path[1:]
    if not rest:
        container[key] = value  # a repeated scalar keeps the last value, as most form parsers do
        return
    nxt = rest[0]
    if nxt == "":
        lst = container.setdefault(key, [])
        if not isinstance(lst, list):
            raise InvalidRequest(f"Field '{full}' mixes a list with another type.", param=full)
        if len(rest) == 1:
            lst.append(value)
            return
        sub_key = rest[1]
        if not lst or not isinstance(lst[-1], dict) or sub_key in lst[-1]:
            lst.append({})
        _assign(lst[-1], rest[1:], value, full)
        return
    sub = container.setdefault(key, {})
    if not isinstance(sub, dict):
        raise InvalidRequest(f"Field '{full}' mixes an object with another type.", param=full)
    _assign(sub, rest, value, full)


def nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        _assign(out, _split(name), value, name)
    return out


async def parse_body(request: Request, *, max_part_bytes: int, max_files: int = 8) -> ParsedBody:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=max_files, max_fields=1000, max_part_size=max_part_bytes)
        except (MultiPartException, HTTPException) as exc:  # Starlette turns the first into the second in an app
            detail = exc.message if isinstance(exc, MultiPartException) else exc.detail
            raise InvalidRequest(f"Malformed multipart body: {detail}", code="invalid_multipart") from None
        pairs: list[tuple[str, Any]] = []
        files: dict[str, Upload] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[name] = Upload(
                    field=name,
                    filename=value.filename or name,
                    content_type=(value.content_type or "application/octet-stream").lower(),
                    file=value,
                )
            else:
                pairs.append((name, value))
        fields = nest(pairs)
        if (why := unstorable(fields)) is not None:
            raise InvalidRequest(f"The request's fields cannot be taken: {why}.", code="invalid_body")
        return ParsedBody(fields, files, "multipart" if ctype.startswith("multipart") else "form")
    raw = await request.body()
    if not raw.strip():
        return ParsedBody({}, {}, "empty")
    if ctype in ("application/json", "") or ctype.endswith("+json") or raw.lstrip()[:1] == b"{":
        try:
            data = load_json(raw)
        except ValueError as exc:
            raise InvalidRequest(
                f"We could not parse the JSON body of your request: {exc}. The body must be a JSON object.",
                code="invalid_json",
            ) from None
        if not isinstance(data, dict):
            raise InvalidRequest("The JSON body must be an object.", code="invalid_json")
        return ParsedBody(data, {}, "json")
    raise InvalidRequest(
        f"Unsupported Content-Type '{ctype}': send application/json or multipart/form-data.",
        code="unsupported_content_type",
    )
