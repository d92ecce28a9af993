"""What a verified vendor callback does: make its task due now, unless someone is working on it.

This is a committing unit (the callback route has no request transaction of its own): the hint is stored
in one short transaction, then the engine is woken, so the engine never looks before the hint is visible.
"""

from __future__ import annotations

from app.gateway import Gateway
from app.videos import repository as repo


async def hint(gw: Gateway, video_id: str) -> None:
    async with gw.sessionmaker() as s:
        await repo.nudge(s, video_id)
        await s.commit()
    gw.wake_engine()
