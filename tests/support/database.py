"""A clean database for each test: every table but alembic's emptied before the test runs.

The schema is migrated once per session (tests/conftest.py); emptying its tables costs milliseconds,
and it means no test sees (or its engine polls) the rows an earlier test left behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from sqlalchemy.engine import make_url

KEEP = {"alembic_version", "sqlite_sequence"}


def empty_tables(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(parsed.database or "") as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            conn.execute("PRAGMA foreign_keys = OFF")
            for name in names:
                if name not in KEEP:
                    conn.execute(f'DELETE FROM "{name}"')
        return
    _run_in_thread(_truncate_postgres(parsed.set(drivername="postgresql").render_as_string(hide_password=False)))


async def _truncate_postgres(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        names = [r["tablename"] for r in rows if r["tablename"] not in KEEP]
        if names:
            quoted = ", ".join(f'"{n}"' for n in names)
            await conn.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


def _run_in_thread(coro: object) -> None:
    """asyncio.run on a thread of its own, so it works whether or not the caller's loop is running."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)  # type: ignore[arg-type]
        except BaseException as exc:  # re-raised in the caller
            failure.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if failure:
        raise failure[0]
