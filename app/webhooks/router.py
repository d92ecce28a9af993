"""Admin API for client webhooks: endpoints (the secret is shown once, at creation) and their deliveries."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from app.admin.deps import require_admin
from app.deps import SessionDep
from app.webhooks import service
from app.webhooks.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(prefix="/admin", tags=["admin: webhooks"], dependencies=[Depends(require_admin)])

EventType = Literal["video.completed", "video.failed"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL character in text: a 400 here, not a 500 at the INSERT


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=service.MAX_URL_LENGTH)
    owner: str | None = Field(default=None, max_length=200, pattern=NO_NUL, description="NULL: every owner's events")
    event_types: list[EventType] | None = None
    description: str | None = Field(default=None, max_length=500, pattern=NO_NUL)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    url: str | None = Field(default=None, max_length=service.MAX_URL_LENGTH)
    event_types: list[EventType] | None = None
    description: str | None = Field(default=None, max_length=500, pattern=NO_NUL)


def endpoint_out(ep: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": ep.id,
        "object": "webhook_endpoint",
        "url": ep.url,
        "owner": ep.owner,
        "event_types": list(ep.event_types),
        "enabled": ep.enabled,
        "description": ep.description,
        "created_at": ep.created_at,
    }


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


def delivery_out(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "webhook_delivery",
        "endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "video_id": row.video_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": _ts(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": _ts(row.created_at),
        "delivered_at": _ts(row.delivered_at),
        "payload": json.loads(row.payload),
    }


@router.post("/webhooks", summary="Create a webhook endpoint")
async def create_endpoint(body: EndpointCreate, session: SessionDep) -> dict[str, Any]:
    ep = await service.create_endpoint(
        session,
        url=body.url,
        owner=body.owner,
        event_types=list(body.event_types) if body.event_types is not None else None,
        description=body.description,
    )
    # the only time the secret leaves the server
    return {**endpoint_out(ep), "secret": ep.secret}


@router.get("/webhooks", summary="List webhook endpoints")
async def list_endpoints(session: SessionDep) -> dict[str, Any]:
    return {"object": "list", "data": [endpoint_out(ep) for ep in await service.list_endpoints(session)]}


@router.get("/webhooks/{endpoint_id}", summary="Retrieve a webhook endpoint")
async def get_endpoint(endpoint_id: str, session: SessionDep) -> dict[str, Any]:
    return endpoint_out(await service.get_endpoint(session, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", summary="Update a webhook endpoint")
async def update_endpoint(endpoint_id: str, body: EndpointUpdate, session: SessionDep) -> dict[str, Any]:
    ep = await service.update_endpoint(
        session,
        endpoint_id,
        enabled=body.enabled,
        url=body.url,
        event_types=list(body.event_types) if body.event_types is not None else None,
        description=body.description,
    )
    return endpoint_out(ep)


@router.delete("/webhooks/{endpoint_id}", summary="Delete a webhook endpoint and its deliveries")
async def delete_endpoint(endpoint_id: str, session: SessionDep) -> dict[str, Any]:
    await service.delete_endpoint(session, endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


@router.get("/webhooks/{endpoint_id}/deliveries", summary="List an endpoint's deliveries, newest first")
async def list_deliveries(
    endpoint_id: str,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    rows = await service.list_deliveries(session, endpoint_id, status=status, limit=limit)
    return {"object": "list", "data": [delivery_out(r) for r in rows]}


@router.get("/webhook-deliveries/{delivery_id}", summary="Retrieve a webhook delivery")
async def get_delivery(delivery_id: str, session: SessionDep) -> dict[str, Any]:
    return delivery_out(await service.get_delivery(session, delivery_id))


@router.post("/webhook-deliveries/{delivery_id}/resend", summary="Send a delivery's event again now")
async def resend_delivery(delivery_id: str, session: SessionDep) -> dict[str, Any]:
    return delivery_out(await service.resend_delivery(session, delivery_id))
