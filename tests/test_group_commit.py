"""app.db.GroupCommit: concurrent short writes share a transaction, and each caller still sees exactly
what its own write did (its result, or its error alone), on the configured database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from app.db import GroupCommit, create_engine, create_sessionmaker

TABLE = "group_commit_probe"


@pytest.fixture
async def maker(database_url: str) -> Any:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        await conn.execute(text(f"CREATE TABLE {TABLE} (id VARCHAR(20) PRIMARY KEY, n INTEGER NOT NULL)"))
    commits: list[int] = []
    from sqlalchemy import event

    event.listen(engine.sync_engine, "commit", lambda conn: commits.append(1))
    mk = create_sessionmaker(engine)
    mk.commits = commits  # type: ignore[attr-defined]
    yield mk
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {TABLE}"))
    await engine.dispose()


def insert(ident: str, n: int) -> Any:
    async def write(s: Any) -> int:
        await s.execute(text(f"INSERT INTO {TABLE} (id, n) VALUES (:i, :n)"), {"i": ident, "n": n})
        return n

    return write


def bump(ident: str) -> Any:
    async def write(s: Any) -> bool:  # a compare-and-set: True when it changed the row
        result = await s.execute(text(f"UPDATE {TABLE} SET n = n + 1 WHERE id = :i AND n < 100"), {"i": ident})
        return bool(result.rowcount)

    return write


async def rows(maker: Any) -> dict[str, int]:
    async with maker() as s:
        return {r.id: r.n for r in (await s.execute(text(f"SELECT id, n FROM {TABLE}"))).all()}


async def test_concurrent_writes_share_commits_and_each_gets_its_own_result(maker: Any) -> None:
    group = GroupCommit(maker)
    results = await asyncio.gather(*(group.run(insert(f"r{i}", i)) for i in range(40)))
    assert results == list(range(40))
    assert await rows(maker) == {f"r{i}": i for i in range(40)}
    # the first write commits alone (nothing waits for a group to fill); the 39 that queued meanwhile in
    # groups of at most 16
    assert group.writes == 40
    assert group.groups == 1 + 3
    assert len(maker.commits) == group.groups


async def test_a_group_is_at_most_max_group_writes(maker: Any) -> None:
    group = GroupCommit(maker, max_group=8)
    assert await asyncio.gather(*(group.run(insert(f"r{i}", i)) for i in range(33))) == list(range(33))
    assert await rows(maker) == {f"r{i}": i for i in range(33)}
    # the first alone, then the 32 that queued meanwhile in groups of 8
    assert (group.groups, group.writes) == (5, 33)


async def test_a_lone_write_commits_at_once(maker: Any) -> None:
    group = GroupCommit(maker)
    assert await asyncio.wait_for(group.run(insert("solo", 7)), timeout=5) == 7
    assert await rows(maker) == {"solo": 7}
    assert (group.groups, group.writes) == (1, 1)


async def test_compare_and_set_results_are_per_write(maker: Any) -> None:
    group = GroupCommit(maker)
    await group.run(insert("a", 1))
    await group.run(insert("full", 100))
    changed = await asyncio.gather(group.run(bump("a")), group.run(bump("full")), group.run(bump("missing")))
    assert changed == [True, False, False]
    assert await rows(maker) == {"a": 2, "full": 100}


async def test_a_failing_write_fails_alone_and_the_others_are_committed(maker: Any) -> None:
    group = GroupCommit(maker)
    await group.run(insert("taken", 0))
    writes = [insert(f"ok{i}", i) for i in range(5)]
    writes.insert(3, insert("taken", 99))  # a duplicate primary key: IntegrityError
    results = await asyncio.gather(*(group.run(w) for w in writes), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "taken" not in str(results[:3])
    assert isinstance(results[3], Exception)
    assert await rows(maker) == {"taken": 0, **{f"ok{i}": i for i in range(5)}}


async def test_a_caller_cancelled_while_its_group_commits_leaves_nobody_waiting(maker: Any) -> None:
    group = GroupCommit(maker)
    started = asyncio.Event()

    async def slow(s: Any) -> int:
        started.set()
        await asyncio.sleep(0.2)
        return await insert("slow", 1)(s)

    leader = asyncio.ensure_future(group.run(slow))
    await started.wait()
    followers = [asyncio.ensure_future(group.run(insert(f"f{i}", i))) for i in range(3)]
    await asyncio.sleep(0)
    leader.cancel()
    assert await asyncio.wait_for(asyncio.gather(*followers), timeout=10) == [0, 1, 2]
    with pytest.raises(asyncio.CancelledError):
        await leader
    # the cancelled caller's write was already under way: it is committed like the others
    for _ in range(100):
        if "slow" in await rows(maker):
            break
        await asyncio.sleep(0.05)
    assert await rows(maker) == {"slow": 1, "f0": 0, "f1": 1, "f2": 2}
