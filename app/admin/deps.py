"""Admin authentication: `Authorization: Bearer <VIDGATE_ADMIN_TOKEN>`, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.deps import get_gateway
from app.errors import AuthenticationFailed, PermissionDenied
from app.gateway import Gateway

admin_scheme = HTTPBearer(scheme_name="AdminToken", description="`Bearer <VIDGATE_ADMIN_TOKEN>`.", auto_error=False)


def require_admin(
    gw: Annotated[Gateway, Depends(get_gateway)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(admin_scheme)],
) -> None:
    token = gw.settings.admin_token.get_secret_value() if gw.settings.admin_token else ""
    if not token:
        raise PermissionDenied(
            "The admin API is disabled: set VIDGATE_ADMIN_TOKEN to enable it.", code="admin_disabled"
        )
    given = credentials.credentials.strip() if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise AuthenticationFailed("Invalid admin token.", code="invalid_admin_token")


AdminDep = Annotated[None, Depends(require_admin)]
