"""`POST /callbacks/{vendor}/{video_id}/{token}`: vendors announce task changes here.

A callback is only a hint: a genuine one makes the engine poll the task at once (the vendor's query API
stays the source of truth, and polling remains the safety net), so forged or replayed callbacks can
change nothing. Requests without the task's token, or with a bad vendor signature, are refused.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request

from app import errors
from app.callbacks.verify import callback_token, kling_valid, vidu_valid
from app.channels import service as channels
from app.context import Gateway
from app.db import now
from app.deps import GatewayDep
from app.providers.vendors import VENDORS
from app.videos import repository as repo

router = APIRouter(prefix="/callbacks", tags=["callbacks"], include_in_schema=False)
log = logging.getLogger("vidgate.callbacks")

SUPPORTED = tuple(name for name, spec in VENDORS.items() if spec.callback is not None)


def callback_url(gw: Gateway, vendor: str, video_id: str) -> str | None:
    base = gw.base_url()
    if base is None or vendor not in SUPPORTED:
        return None
    return f"{base}/callbacks/{vendor}/{video_id}/{callback_token(gw.signer.secret, video_id)}"


@router.post("/{vendor}/{video_id}/{token}")
async def vendor_callback(vendor: str, video_id: str, token: str, request: Request, gw: GatewayDep) -> dict[str, Any]:
    unknown = errors.NotFound("Unknown callback.", code="unknown_callback")
    if vendor not in SUPPORTED or not hmac.compare_digest(token, callback_token(gw.signer.secret, video_id)):
        raise unknown
    body = await request.body()
    async with gw.sessionmaker() as s:
        row = await repo.get(s, video_id)
    if row is None or row.provider != vendor:
        raise unknown
    headers = {k.lower(): v for k, v in request.headers.items()}
    spec = VENDORS[vendor]
    assert spec.callback is not None  # SUPPORTED
    key: str | None
    if spec.callback.credential is not None:  # keyed by the credential that created the task: required
        channel = await channels.channel_by_fingerprint(gw, row.channel_fp)
        key = channel.credentials.get(spec.callback.credential) if channel is not None else None
        if not key:
            raise errors.AuthenticationFailed("Invalid callback signature.", code="invalid_signature")
    else:  # keyed by an optional setting: unset, the path token alone is checked
        secret = getattr(gw.settings, spec.setting(spec.callback.setting or ""))
        key = secret.get_secret_value() if secret is not None else None
    if key is not None:
        if spec.callback.scheme == "vidu_hmac":
            valid = vidu_valid(key, request.method, request.url.path, request.url.query, headers, now=now())
        else:
            valid = kling_valid(key, headers, body)
        if not valid:
            raise errors.AuthenticationFailed("Invalid callback signature.", code="invalid_signature")
    if row.status in repo.ACTIVE:
        async with gw.sessionmaker() as s:
            # clearing the claim also tells a poll in flight to look again right after it ends
            await repo.update_active(s, row.id, next_poll_at=now(), claimed_until=None)
            await s.commit()
        gw.wake_engine()
        log.info("callback from %s for %s: polling it now", vendor, row.id)
    return {"ok": True}
