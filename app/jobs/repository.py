"""The claim SQL for any queue table: a table with an `id`, `claimed_by`, `claimed_until` and a due time.

A row is claimable when it is live (e.g. unfinished), due (`due <= now`) and nobody holds it (never claimed,
handed back, or its holder's lease ran out). Claiming writes the owner and a lease and pushes the due time
out by the lease too, so anything that reads only the due time still sees the row as taken. Every write
after that — renewing, handing back — is a compare-and-set on `claimed_by`: a worker that lost a row
writes nothing to it any more.

One statement shape on both databases: the due rows are picked (PostgreSQL: `FOR UPDATE SKIP LOCKED`,
so replicas pass each other's rows by), then `UPDATE … WHERE id IN (…) AND <claimable> RETURNING` takes
them. The UPDATE repeats the conditions, so of two workers that saw the same row only one gets it, on
SQLite too (RETURNING needs SQLite ≥ 3.35). The pick is a statement of its own because the caller wants
each row's due time as it was (the poll-lag metric), which RETURNING cannot give after the UPDATE.

A queue whose rows belong to groups (`QueueTable.group`: the videos' channel) may be claimed with `quotas`,
the most rows of each named group this claim may take (a rate-capped channel's remaining budget). The pick
is then made per named group, each in due order up to its quota, plus one for the other rows (`others`);
the earliest `limit` of them all are taken by the one UPDATE. (PostgreSQL allows no `FOR UPDATE` beside a
window function or a UNION, hence separate picks; rows picked but not taken are merely locked until the
commit.) The pick for the other rows has to step over every due row of the named groups that the index
returns first, so a caller whose named groups hold a long due queue asks for it sparingly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db import now

Row = TypeVar("Row")


@dataclass(frozen=True)
class QueueTable(Generic[Row]):
    """How a mapped class is a queue: its due-time column, what makes a row live (claims are renewed and
    handed back only on live rows) and what else a row needs to be claimed."""

    model: type[Row]
    due: InstrumentedAttribute[Any]
    live: tuple[ColumnElement[bool], ...]
    claimable: tuple[ColumnElement[bool], ...] = field(default=())
    group: InstrumentedAttribute[Any] | None = None  # what `quotas` are counted by

    def col(self, name: str) -> InstrumentedAttribute[Any]:
        return getattr(self.model, name)  # type: ignore[no-any-return]

    def unclaimed(self, t: float) -> ColumnElement[bool]:
        """Nobody holds the row: never claimed, handed back, or its holder's lease ran out."""
        until = self.col("claimed_until")
        return or_(until.is_(None), until <= t)


async def claim(
    session: AsyncSession,
    q: QueueTable[Row],
    *,
    owner: str,
    limit: int,
    lease: float,
    skip_locked: bool,
    exclude: Collection[str] = (),
    quotas: Mapping[str, int] | None = None,
    others: bool = True,
) -> list[tuple[Row, float]]:
    """Claim up to `limit` due rows for `owner`, earliest due first; each with the time it was due.
    `exclude` names rows the caller works on already (never claimed twice, even once their lease lapsed).
    `quotas`: at most that many rows of each named group (`q.group`); other groups' rows are not limited,
    and with `others` False not looked for (see the module doc)."""
    if limit <= 0:
        return []
    t = now()
    ident = q.col("id")
    ready = (*q.live, *q.claimable, q.due <= t, q.unclaimed(t))
    base = select(ident, q.due).where(*ready).order_by(q.due)
    if exclude:
        base = base.where(ident.not_in(list(exclude)))
    picks = [base.limit(limit)]
    if quotas and q.group is not None:
        group = q.group
        picks = [base.where(group == g).limit(min(n, limit)) for g, n in quotas.items() if n > 0]
        if others:
            picks.append(base.where(or_(group.is_(None), group.not_in(list(quotas)))).limit(limit))
    due_at: dict[str, float] = {}
    for pick in picks:
        if skip_locked:
            pick = pick.with_for_update(skip_locked=True)
        due_at.update((key, float(due)) for key, due in (await session.execute(pick)).all())
    if not due_at:
        return []
    due_at = dict(sorted(due_at.items(), key=lambda item: item[1])[:limit])
    # the same conditions, but `due + 0`: as a bare column the due time tempts SQLite's planner into the
    # queue index (a range scan over every due row, per claim) instead of the primary key's few lookups
    again = (*q.live, *q.claimable, q.due + 0 <= t, q.unclaimed(t))
    taken: Sequence[Row] = (
        await session.scalars(
            update(q.model)
            .where(ident.in_(list(due_at)), *again)
            .values({q.due: t + lease, q.col("claimed_until"): t + lease, q.col("claimed_by"): owner})
            .returning(q.model),
            execution_options={"synchronize_session": False, "populate_existing": True},
        )
    ).all()
    return sorted(((row, due_at[row.id]) for row in taken), key=lambda pair: pair[1])  # type: ignore[attr-defined]


async def renew(session: AsyncSession, q: QueueTable[Row], key: str, *, owner: str, lease: float) -> bool:
    """Extend `owner`'s claim; False when the row is no longer theirs (taken over, handed back or finished)."""
    t = now()
    result = await session.execute(
        update(q.model)
        .where(q.col("id") == key, q.col("claimed_by") == owner, *q.live)
        .values({q.col("claimed_until"): t + lease, q.due: t + lease})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, q: QueueTable[Row], keys: Collection[str], *, owner: str) -> int:
    """Hand `owner`'s claims on `keys` back, due at once (a graceful stop)."""
    if not keys:
        return 0
    result = await session.execute(
        update(q.model)
        .where(q.col("id").in_(list(keys)), q.col("claimed_by") == owner, *q.live)
        .values({q.col("claimed_by"): None, q.col("claimed_until"): None, q.due: now()})
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release_all(session: AsyncSession, q: QueueTable[Row]) -> int:
    """Hand every claim back, due at once: for one process on SQLite, whose predecessor died holding them."""
    result = await session.execute(
        update(q.model)
        .where(q.col("claimed_until").is_not(None), *q.live)
        .values({q.col("claimed_by"): None, q.col("claimed_until"): None, q.due: now()})
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
