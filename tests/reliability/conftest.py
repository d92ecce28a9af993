"""Fixtures for the reliability suite: a database of a test's own, so the engines these tests start see
their own rows only (and every row can be counted)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.migrations import alembic_config
from tests.conftest import PG_URL, _normalise


def _migrate(url: str) -> None:
    command.upgrade(alembic_config(Settings(database_url=url, _env_file=None)), "head")  # type: ignore[call-arg]


@contextlib.contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """A new, migrated database: a SQLite file in `directory`, or a PostgreSQL database beside the
    session's one (dropped afterwards)."""
    if not PG_URL:
        url = f"sqlite+aiosqlite:///{directory / f'own-{uuid.uuid4().hex[:6]}.db'}"
        _migrate(url)
        yield url
        return
    base = make_url(_normalise(PG_URL))
    name = f"vidgate_rel_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url
