"""The one claim SQL on a real queue table (the webhook deliveries), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker, now
from app.jobs import repository as claims
from app.webhooks.dispatcher import DELIVERIES
from app.webhooks.models import DELIVERED, PENDING, WebhookDelivery, WebhookEndpoint


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    async with sessions() as s:
        s.add(WebhookEndpoint(id="whep_t", url="http://x.test/", secret="s", event_types=[], created_at=0))
        await s.commit()
    yield sessions
    await engine.dispose()


async def add(maker: async_sessionmaker[AsyncSession], key: str, *, due: float, **values: Any) -> None:
    async with maker() as s:
        s.add(
            WebhookDelivery(
                id=key,
                endpoint_id=values.pop("endpoint_id", "whep_t"),
                event_id=f"evt_{key}",
                event_type="video.completed",
                video_id="video_x",
                payload="{}",
                status=values.pop("status", PENDING),
                attempts=0,
                next_attempt_at=due,
                created_at=now(),
                **values,
            )
        )
        await s.commit()


async def claim(maker: async_sessionmaker[AsyncSession], owner: str, **kw: Any) -> list[str]:
    async with maker() as s:
        table = kw.pop("table", DELIVERIES)
        rows = await claims.claim(s, table, owner=owner, limit=kw.pop("limit", 10), lease=60, skip_locked=False, **kw)
        await s.commit()
    return [row.id for row, _ in rows]


async def row(maker: async_sessionmaker[AsyncSession], key: str) -> WebhookDelivery:
    async with maker() as s:
        got = await s.scalar(select(WebhookDelivery).where(WebhookDelivery.id == key))
        assert got is not None
        return got


async def test_claims_due_live_unheld_rows_earliest_first_up_to_the_limit(maker) -> None:
    t = now()
    await add(maker, "late", due=t - 1)
    await add(maker, "early", due=t - 5)
    await add(maker, "future", due=t + 60)
    await add(maker, "done", due=t - 9, status=DELIVERED)
    await add(maker, "held", due=t - 9, claimed_by="other", claimed_until=t + 60)
    async with maker() as s:
        rows = await claims.claim(s, DELIVERIES, owner="a", limit=1, lease=60, skip_locked=False)
        await s.commit()
    [(first, due)] = rows
    assert first.id == "early" and due == pytest.approx(t - 5)
    assert await claim(maker, "a") == ["late"]
    got = await row(maker, "late")
    assert got.claimed_by == "a" and got.claimed_until == pytest.approx(now() + 60, abs=5)
    assert got.next_attempt_at == got.claimed_until  # the due time moves with the lease


async def test_a_live_claim_is_nobodys_else_and_a_lapsed_one_is(maker) -> None:
    await add(maker, "d", due=now() - 1)
    assert await claim(maker, "a") == ["d"]
    async with maker() as s:  # due again, but the claim is live
        await s.execute(update(WebhookDelivery).values(next_attempt_at=now() - 1))
        await s.commit()
    assert await claim(maker, "b") == []
    async with maker() as s:
        await s.execute(update(WebhookDelivery).values(claimed_until=now() - 1))
        await s.commit()
    assert await claim(maker, "a", exclude={"d"}) == []  # the holder never claims its own job twice
    assert await claim(maker, "b") == ["d"]


async def test_renew_and_release_are_compare_and_set_on_the_owner(maker) -> None:
    await add(maker, "d", due=now() - 1)
    await add(maker, "e", due=now() - 1)
    assert sorted(await claim(maker, "a")) == ["d", "e"]
    async with maker() as s:
        assert not await claims.renew(s, DELIVERIES, "d", owner="b", lease=60)
        assert await claims.renew(s, DELIVERIES, "d", owner="a", lease=600)
        assert await claims.release(s, DELIVERIES, ["d", "e"], owner="b") == 0
        assert await claims.release(s, DELIVERIES, ["d"], owner="a") == 1
        await s.commit()
    d, e = await row(maker, "d"), await row(maker, "e")
    assert (d.claimed_by, d.claimed_until) == (None, None) and d.next_attempt_at <= now()
    assert e.claimed_by == "a"
    async with maker() as s:  # a finished row is not live: no renewal, nothing to hand back
        await s.execute(update(WebhookDelivery).where(WebhookDelivery.id == "e").values(status=DELIVERED))
        assert not await claims.renew(s, DELIVERIES, "e", owner="a", lease=60)
        assert await claims.release_all(s, DELIVERIES) == 0
        await s.commit()


async def test_release_all_hands_every_live_claim_back(maker) -> None:
    for key in ("x", "y"):
        await add(maker, key, due=now() - 1)
    await claim(maker, "dead-worker")
    async with maker() as s:
        assert await claims.release_all(s, DELIVERIES) == 2
        await s.commit()
    assert sorted(await claim(maker, "b")) == ["x", "y"]


async def test_quotas_limit_the_rows_one_claim_takes_of_a_group_earliest_first(maker) -> None:
    """A rate-capped channel's remaining budget: of its due rows only that many, the longest due first;
    the other groups' rows fill the rest of the limit, so they are not crowded out."""
    grouped = dataclasses.replace(DELIVERIES, group=WebhookDelivery.endpoint_id)
    async with maker() as s:
        s.add(WebhookEndpoint(id="whep_capped", url="http://y.test/", secret="s", event_types=[], created_at=0))
        await s.commit()
    t = now()
    for i in range(6):
        await add(maker, f"capped{i}", due=t - 10 + i, endpoint_id="whep_capped")
    await add(maker, "other_late", due=t - 1)
    await add(maker, "other_early", due=t - 20)
    assert await claim(maker, "a", limit=4, table=grouped, quotas={"whep_capped": 2}) == [
        "other_early",
        "capped0",
        "capped1",
        "other_late",
    ]
    # an exhausted group takes nothing; the limit still holds over all the groups together
    assert await claim(maker, "a", limit=3, table=grouped, quotas={"whep_capped": 0}) == []
    assert await claim(maker, "a", limit=3, table=grouped, quotas={"whep_capped": 5}) == [
        "capped2",
        "capped3",
        "capped4",
    ]
