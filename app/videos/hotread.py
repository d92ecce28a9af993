"""The lean path for `GET /v1/videos/{video_id}`, the status poll every client repeats.

`HotReadMiddleware` runs in front of the whole application (`app.main.VidgateApp`, ahead of every
middleware). For a plain GET of that path it answers from `app.readcache` (the authenticated key and the
rendered Video object), reading the database only to fill the cache, and does itself what the middleware
stack would add: the request id, the access-log line, the HTTP metrics. The answer is byte-for-byte the one
the FastAPI route (`app.videos.router.retrieve_video`, which stays the documented operation in
`/openapi.json`) gives; tests/videos/test_hotread.py compares them.

Anything else is passed, untouched, to the normal stack, which answers exactly as it always has: another
method or path, no or a malformed `Authorization`, an unknown, revoked or refused key (disabled, expired,
IP allow-list), an unknown or foreign video id, a CORS request (an `Origin` header while CORS is on), a
request with a body, a NUL in the URL, a mounted `root_path`, a database error while filling. So every
error answer and every refusal is the normal path's own; this path only ever serves 200s, and only for a
key that passes `check_key` on this very request (expiry and the IP allow-list are checked on every hit).
Reads are not subject to the per-minute limit (app.keys.access: status polling is never starved), so
there is none to apply here.

It commits (a unit that owns its transaction): the `last_used_at` stamp, at most once a minute per key,
as `app.deps.authenticate` writes it on the normal path.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import now
from app.errors import GatewayError
from app.gateway import Gateway
from app.keys import repository as keys_repo
from app.keys import service as keys
from app.keys.access import check_key
from app.keys.models import ApiKey
from app.observability import logs
from app.providers.base import VideoStatus
from app.readcache import KeyEntry, ReadCache, VideoEntry
from app.videos import reads, schemas
from app.videos import repository as repo
from app.videos.links import link_base
from app.videos.models import Video

log = logging.getLogger("vidgate.hotread")
T = TypeVar("T")

PREFIX = "/v1/videos/"
ROUTE = "/v1/videos/{video_id}"  # the route template: the access log's and the metrics' label
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # as app.middleware.RequestIdMiddleware
_JSON = (b"content-type", b"application/json")
_POLL = b"openai-poll-after-ms"
_RID = b"x-request-id"
_VARY = (b"vary", b"Origin")
LAST_USED_EVERY_S = 60  # as app.deps.authenticate: a write per request would cost too much


def render(content: Any) -> bytes:
    """As starlette.responses.JSONResponse.render."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class HotReadMiddleware:
    def __init__(self, app: ASGIApp, *, cache: ReadCache, metrics: bool = True, cors: bool = False) -> None:
        self.app = app
        self.cache = cache
        self.access = logging.getLogger(logs.ACCESS_LOG)
        self._metrics_on = metrics  # VIDGATE_METRICS_ENABLED: the metrics middleware is installed
        self._metrics: Any = None  # app.state.metrics the children below belong to
        self._children: tuple[Any, Any] | None = None
        # one database read per entry at a time: when an entry expires under load, every concurrent miss
        # would read it (a stampede every TTL); the generation is part of the key, so a request that came
        # after an invalidation never joins a read that started before it
        self._filling: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._cors = cors  # CORS on: a request with an Origin header takes the normal path (CORSMiddleware)

    def _observe(self, scope: Scope, seconds: float) -> None:
        # the labelled children, resolved once per Metrics (the metrics middleware looks them up per request)
        m = scope["app"].state.metrics
        if m is not self._metrics:
            self._metrics = m
            self._children = (m.http_requests.labels("GET", ROUTE, "200"), m.http_duration.labels("GET", ROUTE))
        assert self._children is not None
        self._children[0].inc()
        self._children[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not self.cache.enabled
            or not scope["path"].startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        video_id = scope["path"][len(PREFIX) :]
        if not video_id or "/" in video_id or "\x00" in video_id or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return
        auth: bytes | None = None
        rid = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                if auth is not None:
                    auth = b""  # two of them: leave it to the normal path
                    break
                auth = value
            elif name == _RID:
                rid = value  # the last one, as RequestIdMiddleware's dict() keeps
            elif name == b"content-length" or name == b"transfer-encoding" or (name == b"origin" and self._cors):
                auth = b""
                break
        if not auth:
            await self.app(scope, receive, send)
            return
        scheme, _, param = auth.decode("latin-1").partition(" ")
        token = param.strip()
        if scheme.lower() != "bearer" or not token:
            await self.app(scope, receive, send)
            return
        try:
            answer = await self._answer(scope, token, video_id)
        except Exception:
            # the normal path meets the same problem and answers it as it always has
            log.debug("hot read fell back to the normal path", exc_info=True)
            answer = None
        if answer is None:
            await self.app(scope, receive, send)
            return
        body, poll_ms, prefix = answer

        rid_s = rid.decode("latin-1")
        generated = not _VALID_ID.match(rid_s)
        if generated:
            rid_s = f"req_{secrets.token_hex(16)}"
        state = scope.setdefault("state", {})
        state["request_id"] = rid_s
        state["api_key_prefix"] = prefix
        headers = [(b"content-length", str(len(body)).encode()), _JSON]
        if poll_ms is not None:
            headers.append((_POLL, str(poll_ms).encode()))
        headers.append((_RID, rid_s.encode("latin-1")))
        if self._cors:
            headers.append(_VARY)  # what CORSMiddleware adds to a response to a request without Origin
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - start
        if self._metrics_on:
            self._observe(scope, seconds)
        if self.access.isEnabledFor(logging.INFO):
            self._access_line(scope["path"], rid_s, generated, prefix, seconds)

    def _access_line(self, path: str, rid: str, generated: bool, prefix: str, seconds: float) -> None:
        """The access line RequestLogMiddleware writes, made without what a general record needs: no caller
        lookup, no context variables, no redaction of a message that is a route template and numbers, nor of
        a request id this path generated or a key's display prefix."""
        ms = round(seconds * 1000, 1)
        record = logs.quick_record(
            logs.ACCESS_LOG,
            logging.INFO,
            "%s %s %d %.1fms",
            ("GET", ROUTE, 200, ms),
            extra={"method": "GET", "route": ROUTE, "path": path, "status": 200, "duration_ms": ms},
            ctx={"request_id": rid, "key_prefix": prefix} if prefix else {"request_id": rid},
            clean=generated or logs.redact(rid) == rid,
        )
        self.access.handle(record)

    async def _answer(self, scope: Scope, token: str, video_id: str) -> tuple[bytes, int | None, str] | None:
        """(body, openai-poll-after-ms or None, key prefix), or None: let the normal path answer."""
        gw: Gateway = scope["app"].state.gateway
        cache = self.cache
        digest = keys.hash_secret(token)
        key = cache.get_key(digest)
        if key is None:
            key = await self._once(("k", digest, cache.key_gen), lambda: self._fill_key(gw, token, digest))
            if key is None:
                return None
        request = Request(scope)
        try:
            check_key(request, cast(ApiKey, key), gw.settings)
        except GatewayError:
            return None  # refused: the normal path reads the key again and gives the refusal
        t = now()
        if key.last_used_at is None or t - key.last_used_at > LAST_USED_EVERY_S:
            key.last_used_at = t
            async with gw.sessionmaker() as s:
                await keys_repo.touch(s, key.id, at=t)
                await s.commit()
        entry = cache.get_video(video_id, key.owner)
        if entry is None:
            owner = key.owner
            entry = await self._once(
                ("v", video_id, owner, cache.video_gen), lambda: self._fill_video(gw, owner, video_id)
            )
            if entry is None:
                return None
        poll = reads.poll_after_ms(gw, cast(Video, entry)) if entry.unfinished else None
        body = entry.body
        if entry.status == VideoStatus.completed:
            url = reads.signed_url(gw, cast(Video, entry), base=link_base(gw.settings, request))
            if url:
                body = body[:-1] + b',"url":' + render(url) + b"}"
        return body, poll, key.prefix

    async def _once(self, k: tuple[Any, ...], fill: Callable[[], Awaitable[T]]) -> T:
        running = self._filling.get(k)
        if running is not None:
            return cast(T, await asyncio.shield(running))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._filling[k] = fut
        try:
            result = await fill()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            del self._filling[k]

    async def _fill_key(self, gw: Gateway, token: str, digest: str) -> KeyEntry | None:
        gen = self.cache.key_gen
        fetched = time.monotonic()
        async with gw.sessionmaker() as s:
            row = await keys.authenticate(s, token)
            if row is None:
                return None
            entry = KeyEntry(
                id=row.id,
                owner=row.owner,
                prefix=row.prefix,
                enabled=bool(row.enabled),
                expires_at=row.expires_at,
                ip_allowlist=list(row.ip_allowlist) if row.ip_allowlist else None,
                last_used_at=row.last_used_at,
                fetched=fetched,
            )
        self.cache.put_key(digest, entry, gen=gen)
        return entry

    async def _fill_video(self, gw: Gateway, owner: str, video_id: str) -> VideoEntry | None:
        gen = self.cache.video_gen
        fetched = time.monotonic()
        async with gw.sessionmaker() as s:
            row = await repo.get_owned(s, owner, video_id)
            if row is None:
                return None
            entry = VideoEntry(
                id=row.id,
                status=VideoStatus(row.status).value,
                unfinished=reads.unfinished(row),
                body=render(schemas.video_object(row)),
                expires_at=row.expires_at,
                assets_purged_at=row.assets_purged_at,
                claimed_until=row.claimed_until,
                next_poll_at=row.next_poll_at,
                fetched=fetched,
            )
        self.cache.put_video(owner, entry, gen=gen)
        return entry


def install(app: Any, cache: ReadCache, *, metrics: bool, cors: bool) -> None:
    """Put the lean path in front of `app` (an `app.main.VidgateApp`): ahead of its whole middleware
    stack, Starlette's error middleware and FastAPI's own included, which cost a status read more than the
    answer itself; what it passes on enters that stack as any request does."""
    app.hot_read = HotReadMiddleware(functools.partial(FastAPI.__call__, app), cache=cache, metrics=metrics, cors=cors)
