"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL with VIDGATE_TEST_DATABASE_URL),
an app per test with a fast sandbox, API keys, and a real uvicorn server for SDK end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.main import create_app
from app.migrations import alembic_config
from app.server import uvicorn_options
from tests.support.database import empty_tables

PG_URL = os.environ.get("VIDGATE_TEST_DATABASE_URL")


def _normalise(url: str) -> str:
    return Settings(database_url=url, _env_file=None).resolved_database_url  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrated once per session with alembic, so the migrations are tested on every run.

    On PostgreSQL each session gets a database of its own (created beside the one named by
    VIDGATE_TEST_DATABASE_URL and dropped at the end), so parallel runs never share tables."""
    if not PG_URL:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'vidgate.db'}"
        command.upgrade(alembic_config(Settings(database_url=url, _env_file=None)), "head")  # type: ignore[call-arg]
        yield url
        return
    base = make_url(_normalise(PG_URL))
    name = f"vidgate_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        command.upgrade(alembic_config(Settings(database_url=url, _env_file=None)), "head")  # type: ignore[call-arg]
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> None:
    """Each test that uses the session's database starts from empty tables (tests/support/database.py)."""
    if "database_url" in request.fixturenames:
        empty_tables(request.getfixturevalue("database_url"))


def make_settings(database_url: str, storage: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "storage_dir": storage,
        "environment": "test",
        "sandbox_latency_ms": 300,
        "sandbox_fps": 8,
        "engine_tick_ms": 50,
        "poll_interval_ms": 100,
        "janitor_interval_s": 3600,
        "claim_lease_s": 3,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The gateway's settings for the `app`, `client` and `live` fixtures. The task engine runs only for tests
    that ask for it (`@pytest.mark.engine`, or `pytestmark` in their module): the others see an API whose
    videos stay as they were stored, so nothing moves under them."""
    return make_settings(
        database_url, tmp_path / "data", run_engine=request.node.get_closest_marker("engine") is not None
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def new_key(app: Any, *, name: str = "test", models: list[str] | None = None, owner: str | None = None) -> str:
    from app.keys.service import create_key

    async with app.state.gateway.sessionmaker() as s:
        _, secret = await create_key(s, name=name, models=models, owner=owner)
        await s.commit()
    return secret


@pytest.fixture
async def api_key(app: Any) -> str:
    return await new_key(app)


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn on a loopback port in a background thread; with `settings`, configured as `vidgate serve`
    configures it (app.server.uvicorn_options)."""

    def __init__(self, app: Any, *, settings: Settings | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if settings is None:
            options: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "log_level": "warning"}
        else:
            options = uvicorn_options(settings, host="127.0.0.1", port=self.port)
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[LiveServer, str]]:
    """A live server plus a fresh API key (created through the CLI's code path on the same database)."""
    from app.db import create_engine, create_sessionmaker
    from app.keys.service import create_key

    async def mk() -> str:
        engine = create_engine(settings.resolved_database_url)
        async with create_sessionmaker(engine)() as s:
            _, secret = await create_key(s, name="live")
            await s.commit()
        await engine.dispose()
        return secret

    secret = asyncio.run(mk())
    with LiveServer(create_app(settings), settings=settings) as server:
        yield server, secret
