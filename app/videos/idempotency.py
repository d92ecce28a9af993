"""`Idempotency-Key` on the creating routes: a create retried after a timeout or a 5xx answers the video
the first attempt made instead of making (and charging) a second one.

A key is scoped to the API key and kept 24 hours. It is stored in the same transaction as the video row
and its credit reservation, so a key never exists without its video, and the table's primary key
(API key, header value) lets exactly one of several concurrent identical requests store a video: the
others answer that video, as a replay would. The same key with another request is a 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers

from app import errors
from app.db import now
from app.keys.models import ApiKey
from app.videos import repository as repo
from app.videos.models import IdempotencyKey
from app.videos.parsing import ParsedBody

HEADER = "Idempotency-Key"
TTL_S = 24 * 3600
MAX_LENGTH = 255
REPLAYED_HEADER = "idempotent-replayed"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key and the hash of the request it came with."""

    key: str
    request_hash: str

    def record(self, api_key_id: str, resource_id: str) -> IdempotencyKey:
        return IdempotencyKey(
            api_key_id=api_key_id,
            key=self.key,
            request_hash=self.request_hash,
            resource_id=resource_id,
            created_at=now(),
        )


def header_value(headers: Headers) -> str | None:
    """The header's value, or None when absent; 400 when it cannot be a key."""
    value = headers.get(HEADER)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_LENGTH or not all(" " <= c <= "~" for c in value):
        raise errors.InvalidRequest(
            f"Invalid '{HEADER}' header: expected 1 to {MAX_LENGTH} printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    return value


async def request_hash(route: str, body: ParsedBody) -> str:
    """sha256 of the request as parsed (route, fields, uploaded files' bytes), not of its raw bytes: a
    retry encodes multipart with a new boundary, and JSON or multipart carry the same fields."""
    files: dict[str, Any] = {}
    for name, upload in sorted(body.files.items()):
        digest = hashlib.sha256()
        await upload.file.seek(0)
        while chunk := await upload.file.read(_CHUNK):
            digest.update(chunk)
        await upload.file.seek(0)
        files[name] = {"sha256": digest.hexdigest(), "type": upload.content_type}
    canonical = {"route": route, "fields": body.fields, "files": files}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


async def claim(key: str | None, route: str, body: ParsedBody) -> Claim | None:
    return None if key is None else Claim(key, await request_hash(route, body))


def _reused(key: str) -> errors.Conflict:
    err = errors.Conflict(
        f"This '{HEADER}' ({key!r}) was already used with a different request in the last 24 hours; "
        "use a new key for a new request.",
        code="idempotency_key_reused",
    )
    err.headers["x-should-retry"] = "false"  # the SDKs retry a 409 otherwise, to the same answer
    return err


def in_progress() -> errors.Conflict:
    # retryable on purpose (the SDKs retry a 409): the attempt holding the key gave it up a moment ago
    return errors.Conflict(
        f"Another request with this '{HEADER}' was being processed and did not create a video; retry.",
        code="idempotency_request_in_progress",
    )


async def replay(session: AsyncSession, key: ApiKey, c: Claim) -> str | None:
    """The id of the video an earlier request with this key made, None if there is none; 409 if that
    request was a different one."""
    record = await repo.get_idempotency(session, key.id, c.key, since=expired_before())
    if record is None:
        return None
    if record.request_hash != c.request_hash:
        raise _reused(c.key)
    return record.resource_id


def expired_before() -> float:
    return now() - TTL_S


class KeyTaken(Exception):
    """A concurrent request with the same key stored its video (or character) first."""
