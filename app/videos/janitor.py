"""The janitor: retention. Assets of expired videos are deleted (the row stays, marked purged) and expired
idempotency keys are forgotten. The task engine runs it every `janitor_interval_s` (`jobs.loop.Periodic`).

It commits its own short transactions: it runs outside any request, as a job loop does."""

from __future__ import annotations

import logging

from app.db import now
from app.gateway import Gateway
from app.videos import idempotency
from app.videos import repository as repo

log = logging.getLogger("vidgate.engine")


async def purge_expired(gw: Gateway) -> int:
    """One pass; returns how many videos' assets were purged."""
    async with gw.sessionmaker() as s:
        rows = await repo.expired_unpurged(s)
        for row in rows:
            await gw.storage.delete_prefix(f"videos/{row.id}")
            row.assets_purged_at = now()
        await repo.delete_expired_idempotency(s, before=idempotency.expired_before())
        await s.commit()
    if rows:
        log.info("purged assets of %d expired videos", len(rows))
    return len(rows)
