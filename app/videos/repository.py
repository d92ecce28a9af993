"""All SQL for videos and characters."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Update, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.db import now
from app.jobs import repository as claims
from app.providers.base import TERMINAL, VideoStatus
from app.videos.models import Character, IdempotencyKey, Video

ACTIVE = (VideoStatus.queued, VideoStatus.in_progress)
_VIDEOS = cast(Table, Video.__table__)


async def get_owned(session: AsyncSession, owner: str, video_id: str) -> Video | None:
    return await session.scalar(
        select(Video).where(Video.id == video_id, Video.owner == owner, Video.deleted_at.is_(None))
    )


async def get(session: AsyncSession, video_id: str) -> Video | None:
    return await session.get(Video, video_id)


async def list_owned(
    session: AsyncSession, owner: str, *, after: Video | None, limit: int, order: str
) -> tuple[list[Video], bool]:
    q = select(Video).where(Video.owner == owner, Video.deleted_at.is_(None))
    if order == "asc":
        if after is not None:
            q = q.where(
                or_(
                    Video.created_ns > after.created_ns,
                    and_(Video.created_ns == after.created_ns, Video.id > after.id),
                )
            )
        q = q.order_by(Video.created_ns.asc(), Video.id.asc())
    else:
        if after is not None:
            q = q.where(
                or_(
                    Video.created_ns < after.created_ns,
                    and_(Video.created_ns == after.created_ns, Video.id < after.id),
                )
            )
        q = q.order_by(Video.created_ns.desc(), Video.id.desc())
    rows = list((await session.scalars(q.limit(limit + 1))).all())
    return rows[:limit], len(rows) > limit


async def cursor_row(session: AsyncSession, owner: str, video_id: str) -> Video | None:
    # deleted rows still anchor a cursor, so deleting while paging does not break the page chain
    return await session.scalar(select(Video).where(Video.id == video_id, Video.owner == owner))


async def insert_row(session: AsyncSession, row: Video) -> None:
    """Store a new row with one prebuilt INSERT (no unit of work: a create's row is written once and never
    through this session again). `row` then stands for the stored row, detached, as after an expunge; the
    columns it leaves unset get their defaults, in the row as in the database."""
    values: dict[str, Any] = {}
    for attr in Video.__mapper__.column_attrs:
        column = attr.columns[0]
        value = getattr(row, attr.key)
        default: Any = column.default
        if value is None and default is not None:  # scalars and callables (Video has no SQL defaults)
            value = default.arg(None) if default.is_callable else default.arg
        setattr(row, attr.key, value)  # every attribute loaded: nothing of the detached row is left to expire
        values[column.key] = value
    await session.execute(_insert(), values)
    make_transient_to_detached(row)


@functools.cache
def _insert() -> Any:
    return insert(_VIDEOS)


async def delete_row(session: AsyncSession, video_id: str) -> None:
    await session.execute(delete(Video).where(Video.id == video_id))


VIDEOS = claims.QueueTable(
    Video,
    due=Video.next_poll_at,
    live=(Video.status.in_(ACTIVE),),
    claimable=(Video.deleted_at.is_(None),),
    group=Video.channel_fp,  # a rate-capped channel's budget limits how many of its tasks one claim takes
)


def _unclaimed(t: float) -> ColumnElement[bool]:
    return VIDEOS.unclaimed(t)


async def claim_due(
    session: AsyncSession,
    *,
    owner: str,
    limit: int,
    lease: float,
    skip_locked: bool,
    exclude: Collection[str] = (),
    quotas: Mapping[str, int] | None = None,
    others: bool = True,
) -> list[tuple[Video, float]]:
    """Claim due unfinished tasks that nobody holds; each claimed row with the time it was due (see
    app.jobs.repository). `exclude` names rows the caller is working on already (never claimed twice);
    `quotas` the most tasks of each named channel (by fingerprint) this claim may take, and `others` whether
    to look for the other channels' tasks too (app.jobs.repository)."""
    return await claims.claim(
        session,
        VIDEOS,
        owner=owner,
        limit=limit,
        lease=lease,
        skip_locked=skip_locked,
        exclude=exclude,
        quotas=quotas,
        others=others,
    )


async def renew_claim(session: AsyncSession, video_id: str, *, owner: str, lease: float) -> bool:
    """Extend `owner`'s claim; False when the row is no longer theirs (taken over, released or finished)."""
    return await claims.renew(session, VIDEOS, video_id, owner=owner, lease=lease)


@functools.lru_cache(maxsize=256)
def _compare_and_set(columns: tuple[str, ...], claimed: bool, polled: bool) -> Update:
    """The compare-and-set UPDATE of `columns` (on an unfinished task; with `claimed`, only while `:owner`
    holds it), built once per column set and run with parameters. Building an ORM UPDATE and its cache
    key on every write cost three to four times the write itself (bench/README.md, P3 and P4).
    With `polled`, `next_poll_at` is `:poll_now` when a vendor callback arrived since `:poll_started`, else
    `:next_poll_at` (a poll that may have missed the news looks again at once)."""
    t = _VIDEOS.c
    where = [t.id == bindparam("id_"), t.status.in_(ACTIVE)]
    if claimed:
        where.append(t.claimed_by == bindparam("owner_"))
    sets: dict[str, Any] = {c: bindparam(f"v_{c}", type_=t[c].type) for c in columns}
    if polled:
        sets["next_poll_at"] = case(
            (t.nudged_at >= bindparam("poll_started"), bindparam("poll_now", type_=t.next_poll_at.type)),
            else_=bindparam("v_next_poll_at", type_=t.next_poll_at.type),
        )
    return update(_VIDEOS).where(*where).values(sets)


async def _set(
    session: AsyncSession, video_id: str, owner: str | None, values: dict[str, Any], *, nudged_since: float | None
) -> bool:
    values.setdefault("updated_at", now())  # plain values only: they are bound as parameters
    polled = nudged_since is not None and "next_poll_at" in values
    params: dict[str, Any] = {f"v_{c}": v for c, v in values.items()}
    params["id_"] = video_id
    if owner is not None:
        params["owner_"] = owner
    if polled:
        params["poll_started"], params["poll_now"] = nudged_since, now()
    columns = tuple(sorted(c for c in values if not (polled and c == "next_poll_at")))
    result = await session.execute(_compare_and_set(columns, owner is not None, polled), params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def update_claimed(
    session: AsyncSession, video_id: str, owner: str, *, nudged_since: float | None = None, **values: Any
) -> bool:
    """`update_active`, and only while `owner` still holds the claim: a worker that lost it writes nothing.
    With `nudged_since`, a `next_poll_at` among the values gives way to now if a vendor called back since."""
    return await _set(session, video_id, owner, values, nudged_since=nudged_since)


async def release(
    session: AsyncSession, video_id: str, owner: str, *, nudged_since: float | None = None, **values: Any
) -> bool:
    """Write `values` and give up `owner`'s claim, in one compare-and-set (`nudged_since`: `update_claimed`)."""
    return await update_claimed(
        session, video_id, owner, nudged_since=nudged_since, claimed_by=None, claimed_until=None, **values
    )


async def nudge(session: AsyncSession, video_id: str) -> None:
    """A vendor announced a change: due at once if nobody is working on the task, and in any case stamped,
    so that a worker polling it right now looks again when it is done (a live claim is never touched)."""
    t = now()
    await session.execute(
        update(Video)
        .where(Video.id == video_id, Video.status.in_(ACTIVE))
        .values(nudged_at=t, next_poll_at=case((_unclaimed(t), t), else_=Video.next_poll_at))
    )


async def release_all_claims(session: AsyncSession) -> int:
    return await claims.release_all(session, VIDEOS)


async def release_claims(session: AsyncSession, ids: list[str], *, owner: str) -> int:
    return await claims.release(session, VIDEOS, ids, owner=owner)


async def update_active(session: AsyncSession, video_id: str, **values: Any) -> bool:
    """Compare-and-set on an unfinished task: a finished task is never touched again."""
    return await _set(session, video_id, None, values, nudged_since=None)


async def expired_unpurged(session: AsyncSession, *, limit: int = 100) -> Sequence[Video]:
    t = now()
    return (
        await session.scalars(
            select(Video)
            .where(
                Video.status == VideoStatus.completed,
                Video.expires_at.is_not(None),
                Video.expires_at <= t,
                Video.assets_purged_at.is_(None),
            )
            .limit(limit)
        )
    ).all()


# -- settlement, the operators' views, metrics


async def mark_settled(session: AsyncSession, video_id: str, *, charged: float) -> bool:
    """Record the task's charge (a refund when 0) unless it was settled already: compare-and-set, so once."""
    params = {"id_": video_id, "v_settlement": "charged" if charged > 0 else "refunded", "v_charged": charged}
    result = await session.execute(_settle(), {**params, "v_at": now()})
    return bool(result.rowcount)  # type: ignore[attr-defined]


@functools.cache
def _settle() -> Update:
    t = _VIDEOS.c
    return (
        update(_VIDEOS)
        .where(t.id == bindparam("id_"), t.settlement.is_(None))
        .values(
            settlement=bindparam("v_settlement", type_=t.settlement.type),
            charged_credits=bindparam("v_charged", type_=t.charged_credits.type),
            settled_at=bindparam("v_at", type_=t.settled_at.type),
        )
    )


async def list_all(
    session: AsyncSession,
    *,
    filters: dict[str, str | VideoStatus | None],
    deleted: bool | None,
    after: Video | None,
    limit: int,
) -> tuple[list[Video], bool]:
    """Tasks of every owner, newest first, matching `filters` (column name -> value; None: any)."""
    q = select(Video)
    for name, value in filters.items():
        if value is not None:
            q = q.where(getattr(Video, name) == value)
    if deleted is not None:
        q = q.where(Video.deleted_at.is_not(None) if deleted else Video.deleted_at.is_(None))
    if after is not None:
        q = q.where(
            or_(
                Video.created_ns < after.created_ns,
                and_(Video.created_ns == after.created_ns, Video.id < after.id),
            )
        )
    q = q.order_by(Video.created_ns.desc(), Video.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(q)).all())
    return rows[:limit], len(rows) > limit


async def unfinished_by_channel(session: AsyncSession) -> dict[str, int]:
    """Unfinished tasks per channel fingerprint (deleted ones too: they are still polled)."""
    q = (
        select(Video.channel_fp, func.count())
        .where(Video.status.in_(ACTIVE), Video.channel_fp.is_not(None))
        .group_by(Video.channel_fp)
    )
    return {str(fp): int(n) for fp, n in (await session.execute(q)).all()}


async def count_by_provider_status(session: AsyncSession) -> list[tuple[str, VideoStatus, int]]:
    """Live (undeleted) tasks per provider and status, for /metrics."""
    q = (
        select(Video.provider, Video.status, func.count())
        .where(Video.deleted_at.is_(None))
        .group_by(Video.provider, Video.status)
    )
    return [(str(p), VideoStatus(st), int(n)) for p, st, n in (await session.execute(q)).all()]


# -- idempotency keys


async def get_idempotency(session: AsyncSession, api_key_id: str, key: str, *, since: float) -> IdempotencyKey | None:
    return await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key == key, IdempotencyKey.created_at > since
        )
    )


async def add_idempotency(session: AsyncSession, record: IdempotencyKey, *, expired_before: float) -> bool:
    """Take the key for `record.resource_id`: False when a live use of it exists. A concurrent insert of
    the same key that is not committed yet is waited for (both databases), so False means it is there."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.api_key_id == record.api_key_id,
            IdempotencyKey.key == record.key,
            IdempotencyKey.created_at <= expired_before,
        )
    )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {c.key: getattr(record, c.key) for c in IdempotencyKey.__table__.columns}
    result = await session.execute(insert(IdempotencyKey).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_idempotency(session: AsyncSession, api_key_id: str, key: str, *, resource_id: str) -> None:
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.api_key_id == api_key_id,
            IdempotencyKey.key == key,
            IdempotencyKey.resource_id == resource_id,
        )
    )


async def delete_expired_idempotency(session: AsyncSession, *, before: float) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def add_character(session: AsyncSession, char: Character) -> None:
    session.add(char)
    await session.flush()


async def get_character(session: AsyncSession, owner: str, character_id: str) -> Character | None:
    return await session.scalar(select(Character).where(Character.id == character_id, Character.owner == owner))


__all__ = ["ACTIVE", "TERMINAL"]


async def count_active(session: AsyncSession, key_id: str) -> int:
    """The key's unfinished, undeleted tasks (its `max_concurrent` limit counts these)."""
    q = (
        select(func.count())
        .select_from(Video)
        .where(Video.api_key_id == key_id, Video.status.in_(ACTIVE), Video.deleted_at.is_(None))
    )
    return int((await session.execute(q)).scalar_one())
