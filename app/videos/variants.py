"""The thumbnail and spritesheet of a finished video, derived when first asked for.

Deriving decodes the whole clip (seconds of CPU for a long 720p one), and most clients only ever download
the video: so when the vendor's own variants are not fetched (a channel's `fetch_variants`), the engine
stores the video alone, with the variants' keys marked `derive` in the row's assets, and the first request
for either makes both in one decoding pass (`app.media.derive.make_variants`) and stores them. Concurrent
first requests in this process share one derivation; replicas may each derive once, writing the same
bytes to the same keys. A video deleted meanwhile leaves nothing behind.

Commits: the request's session, before deriving (its writes so far, such as the key's last use, would
otherwise hold SQLite's write lock through seconds of decoding and stall every writer).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.gateway import Gateway
from app.media import derive
from app.videos.links import VARIANT_FILES
from app.videos.models import Video

log = logging.getLogger("vidgate.videos")

DERIVED = ("thumbnail", "spritesheet")
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def lazy_assets(video_id: str) -> dict[str, Any]:
    """The assets entries of variants made on first request."""
    return {v: {"key": f"videos/{video_id}/{VARIANT_FILES[v]}", "derive": True} for v in DERIVED}


async def ensure(gw: Gateway, row: Video, variant: str, session: AsyncSession | None = None) -> None:
    """Make the variants of `row` if `variant` is one still to derive and not stored yet. `session`, the
    request's, is committed first: its writes so far (the key's last use) would otherwise hold SQLite's
    write lock through seconds of decoding."""
    entry = (row.assets or {}).get(variant) or {}
    if not entry.get("derive") or await gw.storage.exists(entry["key"]):
        return
    if session is not None:
        await session.commit()
    lock = _locks.get(row.id)
    if lock is None:
        lock = _locks[row.id] = asyncio.Lock()
    async with lock:
        if await gw.storage.exists(entry["key"]):
            return  # made by the request this one waited for
        await _derive(gw, row)


async def _derive(gw: Gateway, row: Video) -> None:
    assets = row.assets or {}
    video_key = assets.get("video", {}).get("key")
    if not video_key:
        return
    storage = gw.storage
    try:
        src = await storage.materialize(video_key)
    except FileNotFoundError:
        return  # deleted or purged meanwhile: the caller answers as for any missing asset
    work: dict[str, Path] = {v: storage.scratch_path("." + VARIANT_FILES[v].rsplit(".", 1)[1]) for v in DERIVED}
    try:
        try:
            await asyncio.to_thread(derive.make_variants, src, work["thumbnail"], work["spritesheet"])
        except Exception as exc:
            if not await storage.exists(video_key):
                return  # deleted or purged while it was read: answered as any missing asset
            # the video was probed when it was stored: this is unexpected, and said so
            log.error("video %s: deriving its thumbnail and spritesheet failed: %r", row.id, exc)
            raise errors.UpstreamUnavailable(
                f"The variants of video '{row.id}' could not be made right now; try again.", code="variant_unavailable"
            ) from exc
        for v in DERIVED:
            await storage.put_file(assets[v]["key"], work[v])
        if not await storage.exists(video_key):  # deleted while deriving: leave nothing of it behind
            await storage.delete_prefix(f"videos/{row.id}")
    finally:
        for path in work.values():
            path.unlink(missing_ok=True)
        await storage.release(src)
