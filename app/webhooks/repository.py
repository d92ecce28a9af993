"""All SQL for webhook endpoints and deliveries (the delivery loop's claim is the shared one, app.jobs.repository)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.webhooks.models import PENDING, WebhookDelivery, WebhookEndpoint


async def add(session: AsyncSession, *rows: WebhookEndpoint | WebhookDelivery) -> None:
    session.add_all(rows)
    await session.flush()


async def enabled_endpoints_for(session: AsyncSession, owner: str) -> Sequence[WebhookEndpoint]:
    """Enabled endpoints that receive `owner`'s events: its own, and those for every owner."""
    q = select(WebhookEndpoint).where(
        WebhookEndpoint.enabled.is_(True),
        or_(WebhookEndpoint.owner == owner, WebhookEndpoint.owner.is_(None)),
    )
    return (await session.scalars(q)).all()


async def list_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    q = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    return (await session.scalars(q)).all()


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    # its deliveries go with it (ON DELETE CASCADE); one already in flight just finds no row to update
    await session.delete(endpoint)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, endpoint_id: str, *, status: str | None, limit: int
) -> Sequence[WebhookDelivery]:
    q = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        q = q.where(WebhookDelivery.status == status)
    q = q.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    return (await session.scalars(q)).all()


async def get_delivery(session: AsyncSession, delivery_id: str) -> WebhookDelivery | None:
    return await session.get(WebhookDelivery, delivery_id)


async def endpoints_by_id(session: AsyncSession, ids: Collection[str]) -> Sequence[WebhookEndpoint]:
    return (await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))).all()


async def finish_delivery(
    session: AsyncSession, delivery_id: str, owner: str, *, attempted: bool = True, **values: Any
) -> None:
    """End one claimed attempt. A compare-and-set on pending and on the claim: a finished delivery, or one
    another worker holds now, is never touched again."""
    if attempted:
        values["attempts"] = WebhookDelivery.attempts + 1
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING, WebhookDelivery.claimed_by == owner
        )
        .values(claimed_by=None, claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
