"""What every vendor client shares: the API call with its transport errors, `Retry-After` parsing, the
HTTP-status fallback of error mapping, synthesized progress for vendors that report none, and the
streamed asset download.

Each vendor module still maps its own body codes first (they differ per vendor); these helpers are the
parts that used to be copied, and had drifted, from one adapter to the next.
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx

from app.providers.base import (
    AuthFailed,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    Unavailable,
    VideoStatus,
)

CHUNK = 64 * 1024
GONE = frozenset({403, 404, 410})  # a pre-signed result URL that has expired answers one of these

# For vendors that report no percentage: a status is worth this much.
SYNTHETIC_PROGRESS: dict[VideoStatus, int] = {
    VideoStatus.queued: 0,
    VideoStatus.in_progress: 50,
    VideoStatus.completed: 100,
}


def retry_after(headers: httpx.Headers) -> float | None:
    """`retry-after-ms` (float ms), else `Retry-After` (seconds or an HTTP date), as openai-python reads them."""
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def by_status(http_status: int) -> type[ProviderError]:
    """The error class an HTTP status means when the body names no vendor code vidgate knows."""
    if http_status == 429:
        return RateLimited
    if http_status in (401, 403):
        return AuthFailed
    if http_status >= 500:
        return Unavailable
    return Rejected


def progress(status: VideoStatus, reported: int | None = None) -> int | None:
    """The vendor's own percentage (clamped to 0..100) when it gives one, else what the status is worth."""
    if status is VideoStatus.completed:
        return 100
    if reported is None:
        return SYNTHETIC_PROGRESS.get(status)
    return max(0, min(100, reported))


async def request(
    client: httpx.AsyncClient, provider: str, method: str, url: str, *, vendor: str, **kwargs: Any
) -> httpx.Response:
    """One API call; a transport failure (refused, reset, timeout) is `Unavailable`, named after `vendor`."""
    try:
        files = kwargs.get("files")
        if files is not None and _in_memory(files):
            # httpx streams a multipart body a piece at a time (a socket write per part header, value and
            # line break); a body that is in memory anyway goes out encoded once, in one write
            auth = kwargs.pop("auth", httpx.USE_CLIENT_DEFAULT)
            follow = kwargs.pop("follow_redirects", httpx.USE_CLIENT_DEFAULT)
            req = client.build_request(method, url, **kwargs)
            req.read()
            return await client.send(req, auth=auth, follow_redirects=follow)
        return await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise Unavailable(
            provider, f"{vendor} unreachable: {type(exc).__name__}: {exc}", vendor_code="transport"
        ) from exc


def _in_memory(files: Any) -> bool:
    """Whether every part of an httpx `files=` argument is text or bytes (no file object to stream)."""
    parts = files.values() if isinstance(files, Mapping) else (spec for _, spec in files)
    for spec in parts:
        content = spec[1] if isinstance(spec, tuple) else spec
        if not isinstance(content, (bytes, str)):
            return False
    return True


def json_body(resp: httpx.Response) -> Any:
    """The decoded JSON body, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


async def stream(
    client: httpx.AsyncClient,
    provider: str,
    url: str | None,
    *,
    expired: str = "The vendor's result URL has expired.",
    auth: httpx.Auth | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    follow_redirects: bool = False,
    timeout: Any = httpx.USE_CLIENT_DEFAULT,
    error: Callable[[httpx.Response], ProviderError | None] | None = None,
    chunk_size: int = CHUNK,
) -> AsyncIterator[bytes]:
    """The asset at `url`, in chunks. Pre-signed result URLs get no `auth`, so credentials never travel
    to a storage host; `error` (given the read response) lets a vendor map its own error bodies first."""
    if not url:
        raise NotFoundAtVendor(provider, "The task has no video URL.", vendor_code="no_output")
    kwargs: dict[str, Any] = {"params": params, "headers": headers, "follow_redirects": follow_redirects}
    if auth is not None:
        kwargs["auth"] = auth
    try:
        async with client.stream("GET", url, timeout=timeout, **kwargs) as resp:
            if error is not None:
                await _raise_vendor_error(resp, error)
            status = resp.status_code
            if status in GONE:
                raise NotFoundAtVendor(provider, expired, vendor_code=f"http_{status}", status_code=status)
            if not resp.is_success:
                raise Unavailable(
                    provider, f"Video download failed: HTTP {status}.", vendor_code=f"http_{status}", status_code=status
                )
            async for chunk in resp.aiter_bytes(chunk_size):
                yield chunk
    except httpx.HTTPError as exc:
        raise Unavailable(
            provider, f"Video download failed: {type(exc).__name__}: {exc}", vendor_code="transport"
        ) from exc


async def _raise_vendor_error(resp: httpx.Response, error: Callable[[httpx.Response], ProviderError | None]) -> None:
    if resp.is_success and not resp.headers.get("content-type", "").startswith("application/json"):
        return
    await resp.aread()
    exc = error(resp)
    if exc is not None:
        raise exc


def b64_chunks(text: str, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """Decode standard base64 a slice at a time, so the video is never held twice as bytes."""
    step = chunk_size // 3 * 4  # a multiple of 4 characters decodes on its own
    for start in range(0, len(text), step):
        yield base64.b64decode(text[start : start + step], validate=True)


class InlineResults:
    """Videos a vendor answered inline (base64 in the poll answer), held from that poll to its download:
    the newest `kept` only, each handed out once (a later attempt polls again)."""

    def __init__(self, provider: str, *, kept: int = 8) -> None:
        self.provider, self.kept = provider, kept
        self._held: OrderedDict[str, str] = OrderedDict()

    def keep(self, task_id: str, b64: str) -> None:
        self._held[task_id] = b64
        while len(self._held) > self.kept:
            self._held.popitem(last=False)

    def stream(self, task_id: str) -> Iterator[bytes]:
        """The decoded video; Unavailable when it is no longer held or is not valid base64."""
        b64 = self._held.pop(task_id, None)
        if b64 is None:
            raise Unavailable(self.provider, "the inline video is no longer held; poll again", vendor_code="inline")
        try:
            yield from b64_chunks(b64)
        except ValueError as exc:
            raise Unavailable(
                self.provider, f"the inline video is not valid base64: {exc}", vendor_code="inline"
            ) from None


def parse_bool(value: Any) -> bool | None:
    """A metadata switch (multipart metadata arrives as strings): true/1/yes/on or false/0/no/off in any
    case, or a real bool; None for anything else (each adapter says how it refuses that)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in {"true", "1", "yes", "on"} else False if text in {"false", "0", "no", "off"} else None
