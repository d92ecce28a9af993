"""Admin authentication: `Authorization: Bearer <VIDGATE_ADMIN_TOKEN>`, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.context import Gateway
from app.deps import get_gateway
from app.errors import AuthenticationFailed, PermissionDenied


def require_admin(request: Request, gw: Annotated[Gateway, Depends(get_gateway)]) -> None:
    token = gw.settings.admin_token.get_secret_value() if gw.settings.admin_token else ""
    if not token:
        raise PermissionDenied(
            "The admin API is disabled: set VIDGATE_ADMIN_TOKEN to enable it.", code="admin_disabled"
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AuthenticationFailed("Invalid admin token.", code="invalid_admin_token")


AdminDep = Annotated[None, Depends(require_admin)]
