"""The database as the commands use it: migrated before writing, never created by a command that only reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from app.cli.errors import CliError
from app.config import Settings
from app.migrations import alembic_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def _storage_dir(settings: Settings) -> Path:
    """The storage directory, created (with its parents) if missing; a clear error when it cannot be."""
    path = settings.storage_dir.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"cannot create the storage directory {path} ({exc.strerror or exc}); "
            "set VIDGATE_STORAGE_DIR to a writable directory"
        ) from None
    return path


def _existing_database(settings: Settings) -> None:
    """Commands that only read refuse to create an empty SQLite file in the wrong directory."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    if not path.is_file():
        where = (
            "set VIDGATE_DATABASE_URL to the gateway's database"
            if settings.database_url
            else f"set VIDGATE_STORAGE_DIR (now {path.parent}) to the gateway's, or VIDGATE_DATABASE_URL"
        )
        raise CliError(f"no database at {path}: {where}; or run `vidgate migrate` to create one")


def _sqlite_directory(settings: Settings) -> None:
    """The directory of a SQLite database file, created if missing (SQLite creates the file, not the folder)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    folder = Path(url.database).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        setting = "VIDGATE_DATABASE_URL" if settings.database_url else "VIDGATE_STORAGE_DIR"
        raise CliError(
            f"cannot create {folder} for the SQLite database ({exc.strerror or exc}); set {setting} to a writable place"
        ) from None


def upgrade(settings: Settings) -> None:
    """The storage directory and the schema at the latest revision (what `vidgate migrate` does)."""
    from alembic import command

    _storage_dir(settings)
    _sqlite_directory(settings)
    command.upgrade(alembic_config(settings), "head")


@asynccontextmanager
async def session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the existing database; the engine is disposed of afterwards. Its writes are published to
    the servers' caches (app.invalidation) as theirs are: a revoked key is refused there at once."""
    from app.db import create_engine, create_sessionmaker
    from app.invalidation.publisher import close_publisher, open_publisher

    _existing_database(settings)
    engine = create_engine(settings.resolved_database_url)
    publisher = open_publisher(settings, engine)
    try:
        async with create_sessionmaker(engine)() as s:
            yield s
    finally:
        await close_publisher(engine, publisher)
        await engine.dispose()


def gateway_call(run: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; the API's errors become a message on stderr and exit status 1."""
    from app.errors import GatewayError

    async def main() -> T:
        return await run()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise CliError(exc.message) from None
