"""Cross-process invalidation of the status-read cache (app.readcache): every process that writes tells
the others what its transactions changed, so their entries can be trusted for long while they listen.

The channel (`VIDGATE_READ_CACHE_NOTIFY`, every process must agree):

* **PostgreSQL LISTEN/NOTIFY** (`auto` on PostgreSQL, even when `VIDGATE_REDIS_URL` is set). The writer's
  notification is part of its transaction: delivered when it commits, never for a rollback, and no window
  between the commit and the publication in which a crash loses it. It needs no other service.
* **Redis pub/sub** (`auto` on SQLite with `VIDGATE_REDIS_URL`; or chosen on PostgreSQL, e.g. behind a
  pooler in transaction mode, where LISTEN cannot work). Published after the commit, off the request path
  (a background task coalesces and retries); a writer that cannot reach Redis keeps trying, and its
  readers' own subscriptions are then lost too, so they fall back to the short TTL.
* **none** (`off`, or SQLite without Redis): the short TTL only.

Every process publishes: `vidgate serve`, `vidgate worker` (app.gateway) and the CLI (app.cli.database),
which has no cache of its own. Each process with a cache runs a `listener.Listener`; while its subscription
is confirmed the cache trusts entries for `VIDGATE_READ_CACHE_NOTIFIED_TTL_MS`, and when it is lost the
cache is emptied, falls back to `VIDGATE_READ_CACHE_TTL_MS` and the listener resubscribes with backoff. A
process ignores its own notifications (its session events applied them already).

A notification is JSON: `{"s": sender, "k": 1, "a": 1, "v": [video ids]}` (keys changed, every video,
these videos), at most `MAX_PAYLOAD` bytes (PostgreSQL's limit is 8000): more ids are split over several
notifications, and beyond `MAX_CHUNKS` of them the notification says "every video" instead.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from app.config import Settings
from app.readcache import Invalidation

CHANNEL = "vidgate_cache"  # the PostgreSQL channel (per database); Redis: redis_channel()
MAX_PAYLOAD = 7900
MAX_CHUNKS = 8

Kind = Literal["postgres", "redis"]


def channel_for(settings: Settings) -> Kind | None:
    """The channel `settings` choose; a ValueError names the setting when the choice cannot work."""
    mode = settings.read_cache_notify
    postgres = make_url(settings.resolved_database_url).get_backend_name() == "postgresql"
    if mode == "off":
        return None
    if mode == "postgres":
        if not postgres:
            raise ValueError("VIDGATE_READ_CACHE_NOTIFY=postgres needs a PostgreSQL VIDGATE_DATABASE_URL")
        return "postgres"
    if mode == "redis":
        if not settings.redis_url:
            raise ValueError("VIDGATE_READ_CACHE_NOTIFY=redis needs VIDGATE_REDIS_URL")
        return "redis"
    if postgres:
        return "postgres"
    return "redis" if settings.redis_url else None


def redis_channel(url: str) -> str:
    """Pub/sub ignores Redis database numbers: the channel names the URL's, so deployments kept apart by
    database number (as their rate limits are) stay apart here too."""
    db = urlsplit(url).path.strip("/") or "0"
    return f"vidgate:read-cache:{db}"


def new_sender() -> str:
    return secrets.token_hex(8)


def encode(inv: Invalidation, sender: str) -> list[str]:
    """The notifications that announce `inv`, each at most MAX_PAYLOAD bytes."""
    head: dict[str, Any] = {"s": sender}
    if inv.keys:
        head["k"] = 1
    if inv.all_videos or not inv.video_ids:
        if inv.all_videos:
            head["a"] = 1
        return [_dump(head)]
    out: list[str] = []
    chunk: list[str] = []
    size = len(_dump({**head, "v": []}))
    for vid in sorted(inv.video_ids):
        cost = len(json.dumps(vid)) + 1
        if chunk and size + cost > MAX_PAYLOAD:
            out.append(_dump({**head, "v": chunk}))
            head = {"s": sender}
            chunk, size = [], len(_dump({**head, "v": []}))
        chunk.append(vid)
        size += cost
    out.append(_dump({**head, "v": chunk}))
    if len(out) > MAX_CHUNKS:
        return [_dump({"s": sender, "a": 1, **({"k": 1} if inv.keys else {})})]
    return out


def decode(payload: str) -> tuple[str, Invalidation]:
    """(sender, what to drop). Anything unreadable drops everything: a lost invalidation is worse than a miss."""
    try:
        data = json.loads(payload)
        ids = data.get("v", [])
        if not isinstance(data, dict) or not isinstance(ids, list):
            raise ValueError(payload)
        inv = Invalidation(keys=bool(data.get("k")), all_videos=bool(data.get("a")), video_ids={str(v) for v in ids})
        return str(data.get("s", "")), inv
    except (ValueError, AttributeError):
        return "", Invalidation(keys=True, all_videos=True)


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))
