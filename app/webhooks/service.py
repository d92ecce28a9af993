"""Webhook decisions: enqueueing video events, and the admin API's endpoint and delivery helpers.

Nothing here commits: the task engine enqueues inside the transaction that finishes the video, and the
admin routes rely on the request session (`get_session`) to commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id, now
from app.errors import InvalidRequest, NotFound
from app.providers.base import VideoStatus
from app.videos.models import Video
from app.webhooks import repository as repo
from app.webhooks import signing
from app.webhooks.models import (
    EVENT_TYPES,
    PENDING,
    VIDEO_COMPLETED,
    VIDEO_FAILED,
    WebhookDelivery,
    WebhookEndpoint,
)

MAX_URL_LENGTH = 2048


# -- events
def event_body(*, event_id: str, event_type: str, video_id: str, created_at: int) -> str:
    """OpenAI's event, compact JSON; stored as-is so every attempt signs and sends the same bytes."""
    event = {"id": event_id, "object": "event", "created_at": created_at, "type": event_type, "data": {"id": video_id}}
    return json.dumps(event, separators=(",", ":"))


async def enqueue_video_event(session: AsyncSession, video: Video, *, status: VideoStatus | None = None) -> int:
    """Queue `video.completed` / `video.failed` for every enabled endpoint that wants it.

    Call it in the transaction that makes the video terminal, so each finished task enqueues exactly once.
    `status` overrides `video.status` when `video` is a copy loaded before an UPDATE by SQL (the engine's way).
    Returns the number of deliveries created.
    """
    terminal = status if status is not None else video.status
    event_type = VIDEO_COMPLETED if terminal == VideoStatus.completed else VIDEO_FAILED
    endpoints = await repo.enabled_endpoints_for(session, video.owner)
    # event types are filtered here rather than in SQL: JSON containment differs between SQLite and PostgreSQL
    targets = [ep for ep in endpoints if event_type in (ep.event_types or ())]
    if not targets:
        return 0
    t = now()
    event_id = new_id("evt")
    body = event_body(event_id=event_id, event_type=event_type, video_id=video.id, created_at=int(t))
    deliveries = [
        WebhookDelivery(
            id=new_id("whdel"),
            endpoint_id=ep.id,
            event_id=event_id,
            event_type=event_type,
            video_id=video.id,
            payload=body,
            status=PENDING,
            attempts=0,
            next_attempt_at=t,
            created_at=t,
        )
        for ep in targets
    ]
    await repo.add(session, *deliveries)
    return len(targets)


# -- validation
def check_url(url: str) -> str:
    url = url.strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host or len(url) > MAX_URL_LENGTH:
        raise InvalidRequest("Invalid 'url': expected an absolute http(s) URL.", param="url", code="invalid_value")
    return url


def check_event_types(event_types: list[str]) -> list[str]:
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if not event_types or unknown:
        raise InvalidRequest(
            f"Invalid 'event_types': expected a non-empty list of {', '.join(EVENT_TYPES)}.",
            param="event_types",
            code="invalid_value",
        )
    return list(dict.fromkeys(event_types))


# -- endpoints
async def create_endpoint(
    session: AsyncSession,
    *,
    url: str,
    owner: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    ep = WebhookEndpoint(
        id=new_id("whep"),
        owner=owner or None,
        url=check_url(url),
        secret=signing.generate_secret(),
        event_types=check_event_types(event_types) if event_types is not None else list(EVENT_TYPES),
        enabled=True,
        description=description,
        created_at=int(now()),
    )
    await repo.add(session, ep)
    return ep


async def list_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    return await repo.list_endpoints(session)


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    ep = await repo.get_endpoint(session, endpoint_id)
    if ep is None:
        raise NotFound(f"No webhook endpoint found with id '{endpoint_id}'.", param="id", code="not_found")
    return ep


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: str,
    *,
    enabled: bool | None = None,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    ep = await get_endpoint(session, endpoint_id)
    if url is not None:
        ep.url = check_url(url)
    if event_types is not None:
        ep.event_types = check_event_types(event_types)
    if enabled is not None:
        ep.enabled = enabled
    if description is not None:
        ep.description = description
    await session.flush()
    return ep


async def delete_endpoint(session: AsyncSession, endpoint_id: str) -> None:
    await repo.delete_endpoint(session, await get_endpoint(session, endpoint_id))


# -- deliveries
async def list_deliveries(
    session: AsyncSession, endpoint_id: str, *, status: str | None = None, limit: int = 20
) -> Sequence[WebhookDelivery]:
    await get_endpoint(session, endpoint_id)
    return await repo.list_deliveries(session, endpoint_id, status=status, limit=limit)


async def get_delivery(session: AsyncSession, delivery_id: str) -> WebhookDelivery:
    row = await repo.get_delivery(session, delivery_id)
    if row is None:
        raise NotFound(f"No webhook delivery found with id '{delivery_id}'.", param="id", code="not_found")
    return row


async def resend_delivery(session: AsyncSession, delivery_id: str) -> WebhookDelivery:
    """A new delivery of the same event (same event id, identical body), due now, with a fresh retry window.

    The original row is left as it was, so its history stays readable.
    """
    old = await get_delivery(session, delivery_id)
    t = now()
    row = WebhookDelivery(
        id=new_id("whdel"),
        endpoint_id=old.endpoint_id,
        event_id=old.event_id,
        event_type=old.event_type,
        video_id=old.video_id,
        payload=old.payload,
        status=PENDING,
        attempts=0,
        next_attempt_at=t,
        created_at=t,
    )
    await repo.add(session, row)
    return row
