"""Request bodies as the SDKs really send them: multipart (bracket-encoded nested fields, files) or JSON.

The result is one plain dict per request, the same whichever encoding the client used, plus the
uploaded files by field name. Coercion of individual fields happens in the service.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from app.errors import InvalidRequest, PayloadTooLarge

_NAME_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 32  # objects and lists in one request; no real client nests deeper


COPY_CHUNK = 1024 * 1024


def file_too_large(filename: str, limit: int, *, param: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The uploaded file '{filename}' is larger than the limit of {limit} bytes.", param=param, code="file_too_large"
    )


@dataclass
class Upload:
    """An uploaded file, spooled to a temporary file as it arrived (in memory up to 1 MiB, then on disk)."""

    field: str
    filename: str
    content_type: str
    file: UploadFile

    async def read(self, limit: int, *, param: str) -> bytes:
        """The whole file in memory: for what is needed as bytes anyway (images, at most `limit`)."""
        await self.file.seek(0)
        data = await self.file.read(limit + 1)
        if len(data) > limit:
            raise file_too_large(self.filename, limit, param=param)
        return data

    async def save_to(self, path: Path, limit: int, *, param: str) -> int:
        """Copy the file to `path` in chunks, in a thread: a big video never sits in memory whole."""

        def copy() -> int:
            src, total = self.file.file, 0
            src.seek(0)
            try:
                with path.open("wb") as out:
                    while chunk := src.read(COPY_CHUNK):
                        total += len(chunk)
                        if total > limit:
                            raise file_too_large(self.filename, limit, param=param)
                        out.write(chunk)
            except BaseException:
                path.unlink(missing_ok=True)  # a full disk or the limit: no half-copied file stays
                raise
            return total

        return await asyncio.to_thread(copy)


class _LimitedMultiPartParser(MultiPartParser):
    """Starlette's parser, with a byte limit per file field checked as the bytes arrive: a file past its
    limit is refused at once (the rest of the body is never read), not after it is spooled whole."""

    def __init__(self, *args: Any, file_limit: Callable[[str], int], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._file_limit = file_limit
        self._file_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            self._file_bytes += end - start
            limit = self._file_limit(part.field_name)
            if self._file_bytes > limit:
                raise file_too_large(part.file.filename or part.field_name, limit, param=part.field_name)
        super().on_part_data(data, start, end)


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


class BodyError(ValueError):
    """Why a parsed body cannot be taken; `param` is the top-level field at fault (None: the body itself)."""

    def __init__(self, why: str, param: str | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.param = param


NOT_FINITE = "it contains a number that is not finite (NaN, Infinity, or too large for a double, e.g. 1e309)"


def problem(value: Any, limit: int = MAX_DEPTH) -> BodyError | None:
    """Why a parsed body cannot be taken, or None: nesting deeper than `limit` (it would overflow the stack
    later), text no database stores (a NUL character, an unpaired surrogate from a `\\ud800` escape), or a
    number that is not finite (PostgreSQL refuses it in JSON; SQLite would store `Infinity`, not JSON)."""
    stack: list[tuple[Any, int, str | None]] = [(value, 1, None)]  # iterative: not as deep as the client likes
    while stack:
        item, depth, top = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return BodyError(NOT_FINITE, top)
            continue
        if isinstance(item, str):
            if "\x00" in item:
                return BodyError("it contains a NUL character", top)
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return BodyError("it contains text that is not valid Unicode", top)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return BodyError(f"it is nested more than {limit} levels deep", top)
        if isinstance(item, dict):
            for key, child in item.items():
                child_top = top if top is not None or depth > 1 else str(key)
                stack.append((key, depth + 1, child_top))
                stack.append((child, depth + 1, child_top))
        else:
            stack.extend((child, depth + 1, top) for child in item)
    return None


def load_json(raw: str | bytes) -> Any:
    """`json.loads` that fails with ValueError (a BodyError naming the top-level field when it can) on
    whatever a client can send: bad syntax or UTF-8, numbers past Python's digit limit, NaN, Infinity and
    overflowing floats, and what `problem` refuses."""
    try:
        data = json.loads(raw)  # NaN, Infinity and 1e309 parse as floats: `problem` names their field
    except RecursionError:
        raise ValueError(f"it is nested more than {MAX_DEPTH} levels deep") from None
    if (found := problem(data)) is not None:
        raise found
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


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it passes `limit` (before anything parses it)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _json_too_large(limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _json_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The JSON body is larger than the limit of {limit} bytes; send large images as multipart file uploads "
        "or as image URLs.",
        code="request_too_large",
    )


async def _form(
    request: Request, ctype: str, *, max_files: int, max_part_bytes: int, file_limit: Callable[[str], int]
) -> FormData:
    if ctype != "multipart/form-data":
        return await request.form(max_files=max_files, max_fields=1000, max_part_size=max_part_bytes)
    async with aclosing(request.stream()) as stream:
        parser = _LimitedMultiPartParser(
            request.headers,
            stream,
            max_files=max_files,
            max_fields=1000,
            max_part_size=max_part_bytes,
            file_limit=file_limit,
        )
        return await parser.parse()


async def parse_body(
    request: Request,
    *,
    max_part_bytes: int,
    max_files: int = 8,
    max_json_bytes: int | None = None,
    max_file_bytes: int | None = None,
    file_limits: Mapping[str, int] | None = None,
) -> ParsedBody:
    """`max_part_bytes` bounds a text part; a JSON body holds at most two such values (the reference image
    and the last frame as data URLs) and small fields, so by default it is bounded by twice that plus 1 MiB.
    A file part is bounded by `file_limits[field]`, else `max_file_bytes` (default: `max_part_bytes`)."""
    if max_json_bytes is None:
        max_json_bytes = 2 * max_part_bytes + 1024 * 1024
    default_file = max_part_bytes if max_file_bytes is None else max_file_bytes
    limits = dict(file_limits or {})
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await _form(
                request,
                ctype,
                max_files=max_files,
                max_part_bytes=max_part_bytes,
                file_limit=lambda name: limits.get(name, default_file),
            )
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
        if (found := problem(fields)) is not None:
            raise InvalidRequest(
                f"The request's fields cannot be taken: {found.why}.", param=found.param, code="invalid_body"
            )
        return ParsedBody(fields, files, "multipart" if ctype.startswith("multipart") else "form")
    raw = await _read_capped(request, max_json_bytes)
    if not raw.strip():
        return ParsedBody({}, {}, "empty")
    if ctype in ("application/json", "") or ctype.endswith("+json") or raw.lstrip()[:1] == b"{":
        try:
            data = load_json(raw)
        except BodyError as exc:
            if exc.param is None:
                raise InvalidRequest(
                    f"We could not take the JSON body of your request: {exc.why}.", code="invalid_json"
                ) from None
            raise InvalidRequest(f"Invalid '{exc.param}': {exc.why}.", param=exc.param, code="invalid_value") from None
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
