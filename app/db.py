"""SQLAlchemy 2.0 async plumbing: declarative base with a naming convention, engine and sessions."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import JSON, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON everywhere, JSONB on PostgreSQL
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, list[str]: JSONType}


def now() -> float:
    return time.time()


def new_id(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_hex(nbytes)}"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the CLI write keys while a server is running on the same file
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


T = TypeVar("T")
Write = Callable[[AsyncSession], Awaitable[Any]]


class GroupCommit:
    """Short writes of concurrent callers committed together: one transaction (and one COMMIT, one
    connection checkout) for all the writes that queued while the previous group was being committed.

    `await group.run(write)` returns when `write(session)` is committed, with its result, exactly as if it
    had run in a session of its own; an idle gateway commits a lone write at once (nothing waits for a
    group to fill). Each write must be a self-contained compare-and-set whose effect does not depend on the
    others in its group. When one write raises, the group is rolled back and every write is run again in
    its own transaction, so a failing write fails alone; when the COMMIT itself fails, every write of the
    group gets that error (as each would have had on its own).
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, max_group: int = 16) -> None:
        self._maker = sessionmaker
        self.max_group = max_group
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[None]] = set()
        self.groups = 0  # transactions committed (tests and benchmarks read these two)
        self.writes = 0

    async def run(self, write: Callable[[AsyncSession], Awaitable[T]]) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((write, fut))
        async with self._lock:
            while not fut.done():
                # at most `max_group` writes a transaction: on SQLite the others' writers wait for its lock
                batch, self._pending = self._pending[: self.max_group], self._pending[self.max_group :]
                # shielded: a caller cancelled while its group commits must not leave the others waiting
                task = asyncio.ensure_future(self._commit(batch))
                self._inflight.add(task)  # the loop holds tasks weakly
                task.add_done_callback(self._inflight.discard)
                await asyncio.shield(task)
        return fut.result()

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        try:
            await self._commit_group(batch)
        except BaseException as exc:  # not an error of one write's (a crash, a cancellation): all share it
            for _, fut in batch:
                _settle(fut, exc=exc)
            raise

    async def _commit_group(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        if len(batch) > 1:
            results: list[Any] = []
            try:
                async with self._maker() as s:
                    for write, _ in batch:
                        results.append(await write(s))
                    try:
                        await s.commit()
                    except Exception as exc:
                        for _, fut in batch:
                            _settle(fut, exc=exc)
                        return
            except Exception:
                pass  # a write raised: the group is rolled back; each write runs alone below
            else:
                self.groups += 1
                self.writes += len(batch)
                for (_, fut), result in zip(batch, results, strict=True):
                    _settle(fut, result=result)
                return
        for write, fut in batch:
            try:
                async with self._maker() as s:
                    result = await write(s)
                    await s.commit()
            except Exception as exc:
                _settle(fut, exc=exc)
            else:
                self.groups += 1
                self.writes += 1
                _settle(fut, result=result)


def _settle(fut: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed when the handler returns, rolled back if it raises."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
