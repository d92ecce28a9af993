"""The SQL of the PostgreSQL invalidation channel: NOTIFY inside a writer's transaction, LISTEN and a
liveness probe on the listener's own asyncpg connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.orm import Session

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def notify(session: Session, channel: str, payload: str) -> None:
    """Queue a notification in the session's transaction: PostgreSQL delivers it when (and only if) the
    transaction commits. Called from a session event, so the sync Session (inside SQLAlchemy's greenlet)."""
    session.execute(_NOTIFY, {"channel": channel, "payload": payload})


async def listen(conn: asyncpg.Connection, channel: str, callback: Callable[..., Any]) -> None:
    """LISTEN on `conn`; when this returns the subscription is in effect for every later commit."""
    await conn.add_listener(channel, callback)


async def ping(conn: asyncpg.Connection) -> None:
    await conn.fetchval("SELECT 1")
