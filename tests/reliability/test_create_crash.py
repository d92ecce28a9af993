"""A create that dies at any step of its path (`POST /v1/videos` as `creation.create` runs it: the row
stored in the request's transaction, naming the first channel; the vendor asked; its id stored) is
recovered by the engine with no second vendor task and exactly one reservation, settled once.

The crash is `Crash`, a BaseException nothing in the gateway catches, raised inside the step (as SIGKILL
between two statements would stop it; an uncommitted transaction is lost either way). The creator is then
"dead": its claim is made to run out and an engine takes the row over."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.metrics import Metrics
from app.videos import creation, drafts, submission
from app.videos.models import Video
from app.videos.parsing import ParsedBody
from tests.support.scripted import (
    MODEL,
    AcceptThenCrash,
    Crash,
    RecoverableProvider,
    Rig,
    rig,
    snap,
    unavailable,
)


class Vendor(RecoverableProvider):
    """Counts the tasks it created for each of our task ids (the vendor side of "never twice")."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.created: dict[str, int] = {}

    def _accept(self, req: Any) -> Any:
        self.created[req.task_id] = self.created.get(req.task_id, 0) + 1
        return super()._accept(req)


PRICE = {MODEL: 2.0}  # credits per second: the 4 s request reserves 8
RESERVED = 8.0
BODY = {"prompt": "a red fox", "model": MODEL, "size": "128x128", "seconds": "4"}


async def _http_create(r: Rig) -> None:
    """What the `POST /v1/videos` handler runs: draft and submit in the request's session."""
    async with r.gw.sessionmaker() as s:
        key = await s.merge(r.key)  # the request's session holds the key it authenticated
        body = ParsedBody(fields=dict(BODY), files={}, encoding="json")
        await creation.create(
            r.gw,
            s,
            key,
            body,
            idempotency_key=None,
            path="/v1/videos",
            make_draft=lambda b: drafts.draft_create(r.gw, s, key, b),
        )


def _wrap(mp: pytest.MonkeyPatch, owner: Any, name: str, after: bool) -> None:
    """Crash in `owner.name`: before it runs, or after it ran (its statements sent, nothing committed yet)."""
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def crashing(*a: Any, **k: Any) -> Any:
        if after:
            await original(*a, **k)
        raise Crash

    mp.setattr(owner, name, crashing)


def _crash_committing_a_video(mp: pytest.MonkeyPatch) -> None:
    """Crash at the COMMIT of a transaction that stores a video row (the row and its reservation are sent)."""
    original, insert_row = AsyncSession.commit, submission.repo.insert_row

    async def inserting(session: AsyncSession, row: Video) -> None:
        await insert_row(session, row)
        session.info["stores_a_video"] = True

    async def commit(self: AsyncSession) -> None:
        if self.info.pop("stores_a_video", False):
            await self.flush()
            raise Crash
        await original(self)

    mp.setattr(submission.repo, "insert_row", inserting)
    mp.setattr(AsyncSession, "commit", commit)


def _crash_announcing(mp: pytest.MonkeyPatch) -> None:
    """Crash right after the vendor id was committed, before the client hears of the task."""

    def announce(self: Metrics, *a: Any, **k: Any) -> None:
        raise Crash

    mp.setattr(Metrics, "task_transition", announce)


async def _finish(r: Rig) -> list[Any]:
    """The creator is dead: let its claims run out, then tick the engine until nothing is left to do."""
    rows = await _rows(r)
    for row in rows:
        if row.claimed_by is not None and row.claimed_by.startswith("submit:"):
            await r.write(row.id, claimed_until=time.time() - 1, next_poll_at=time.time() - 1)
    for _ in range(6):
        for row in await _rows(r):
            if row.status in ("queued", "in_progress"):
                await r.make_due(row.id)
        if not await r.step():
            break
    return await _rows(r)


async def _rows(r: Rig) -> list[Any]:
    async with r.gw.sessionmaker() as s:
        return list((await s.scalars(select(Video))).all())


# where the create dies: (label, how to make it die there); each is checked end to end below
STEPS: dict[str, Callable[[pytest.MonkeyPatch, Vendor], None]] = {
    # inside the store transaction, after the reservation was written: nothing may survive
    "storing, after the reservation": lambda mp, v: _wrap(mp, submission.usage, "reserve", after=True),
    "storing, at the commit": lambda mp, v: _crash_committing_a_video(mp),
    # stored (claimed, naming the channel), the vendor not asked yet
    "before the vendor call": lambda mp, v: _wrap(mp, submission.channels, "pace", after=False),
    # the request is on its way to the vendor and does not arrive
    "the vendor never got it": lambda mp, v: v.script.update(submit=[_crash_before, None]),
    # the vendor created the task; the gateway dies before it hears the id
    "the vendor accepted it": lambda mp, v: v.script.update(submit=[AcceptThenCrash(), None]),
    # the vendor id was written but not committed
    "storing the vendor id": lambda mp, v: _wrap(mp, submission.repo, "release", after=True),
    # everything committed; the process dies before it answers the client
    "after the vendor id was stored": lambda mp, v: _crash_announcing(mp),
}


async def _crash_before(req: Any) -> None:
    raise Crash


@pytest.mark.parametrize("step", list(STEPS))
async def test_a_create_that_dies_is_recovered_once(database_url, tmp_path, step) -> None:
    vendor = Vendor(polls=[snap("completed")])
    async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
        with pytest.MonkeyPatch.context() as mp:
            STEPS[step](mp, vendor)
            with pytest.raises(Crash):
                await _http_create(r)
        stored = await _rows(r)
        rows = await _finish(r)
        used = await r.used()

    if step.startswith("storing,"):
        # the transaction died with the process: no task, no reservation, the vendor never asked
        assert (stored, rows, used, vendor.submitted) == ([], [], 0.0, [])
        return
    (row,) = rows
    assert row.status == "completed", (row.status, row.error_code, row.error_message)
    # one vendor task, and it is the one the row names
    assert vendor.created == {row.id: 1}
    assert row.vendor_task_id == vendor.accepted[row.id].vendor_task_id
    accepted_submits = [req for req in vendor.submitted if req.task_id == row.id]
    if step in ("the vendor accepted it", "storing the vendor id"):
        assert len(accepted_submits) == 1 and vendor.recovered == [row.id]  # found there, not sent again
    # reserved once, settled once: what the key used is what the task was charged
    assert row.reserved_credits == RESERVED and row.settlement == "charged"
    assert used == pytest.approx(row.charged_credits) and 0 < used <= RESERVED


async def test_a_failover_attempt_that_dies_is_recovered_at_that_channel(database_url, tmp_path) -> None:
    # the first channel fails for a technical reason; the second creates the task and the gateway dies
    first = Vendor("a", submits=[unavailable()])
    second = Vendor("b", submits=[AcceptThenCrash(), None], polls=[snap("completed")])
    async with rig(database_url, tmp_path, (first, 10), (second, 5), prices=PRICE) as r:
        with pytest.raises(Crash):
            await _http_create(r)
        (stored,) = await _rows(r)
        assert stored.channel == "b"  # recorded before the attempt
        (row,) = await _finish(r)
        used = await r.used()
    assert row.status == "completed" and row.channel == "b"
    assert first.created == {} and second.created == {row.id: 1}
    assert len(second.submitted) == 1 and second.recovered == [row.id]
    assert used == pytest.approx(row.charged_credits) and row.settlement == "charged"
