"""Annotated dependency aliases (the template's habit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session, now
from app.errors import AuthenticationFailed
from app.gateway import Gateway
from app.keys import service as keys
from app.keys.access import check_key, enforce_rate
from app.keys.models import ApiKey


async def get_gateway(request: Request) -> Gateway:
    # async: a plain def would be sent to the thread pool on every request
    gw: Gateway = request.app.state.gateway
    return gw


# scope="function": commit before the response is sent, so a client that reads right after a write (DELETE
# then GET, a new character) sees it, and a failed commit is its error, not a 200 for a write that was lost
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# Declares the API key in /openapi.json (so "Authorize" in /docs works); the errors stay ours (auto_error off)
api_key_scheme = HTTPBearer(scheme_name="ApiKeyAuth", description="An API key: `Bearer sk-...`.", auto_error=False)


async def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(api_key_scheme)],
) -> ApiKey:
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'."
        )
    key = await keys.authenticate(session, token)
    if key is None:
        shown = token[:6] + "*" * 4 + token[-4:] if len(token) > 12 else "****"
        raise AuthenticationFailed(f"Incorrect API key provided: {shown}.")
    request.state.api_key_prefix = key.prefix
    check_key(request, key, request.app.state.gateway.settings)
    if key.last_used_at is None or now() - key.last_used_at > 60:
        key.last_used_at = now()  # at most once a minute: a write per request would cost too much
    return key


async def rate_limited_key(request: Request, key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
    """The key, for requests that start generations: the per-minute limit applies."""
    await enforce_rate(request.app.state.gateway, key)
    return key


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
ApiKeyDep = Annotated[ApiKey, Depends(authenticate)]
CreatorKeyDep = Annotated[ApiKey, Depends(rate_limited_key)]
