"""`POST /callbacks/{vendor}/{video_id}/{token}`: vendors announce task changes here.

A callback is only a hint: a genuine one makes the engine poll the task at once (the vendor's query API
stays the source of truth, and polling remains the safety net), so forged or replayed callbacks can
change nothing. Requests without the task's token, or with a bad vendor signature, are refused.

A callback never touches a task someone is working on: it makes the task due only when nobody holds it,
and otherwise stamps it so that the worker polling it right now looks once more when done. A genuine
callback seen before (the same signature headers and body) is a no-op answered 200 without a write, and
each task's callback URL takes a few dozen requests a minute at most (429 beyond). A vendor that verifies
the URL first (MiniMax POSTs `{"challenge": …}`, `Callback.challenge`) gets the value echoed back once the
path token checks out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from fastapi import APIRouter, Request

from app import errors
from app.callbacks import service
from app.callbacks.urls import SUPPORTED
from app.callbacks.verify import TOLERANCE_S, callback_token, kling_valid, same, vidu_valid
from app.channels import service as channels
from app.db import now
from app.deps import GatewayDep
from app.gateway import Gateway
from app.keys.limits import LimiterUnavailable
from app.providers.vendors import VENDORS
from app.videos import repository as repo

router = APIRouter(prefix="/callbacks", tags=["callbacks"], include_in_schema=False)
log = logging.getLogger("vidgate.callbacks")

# a vendor calls back a few times per task (each state change, a few retries of the last); replays and
# forgeries beyond this are refused before the database is read
PER_TASK_PER_MINUTE = 30
# what makes one callback differ from another: the signature material (Vidu: §9, Kling: §8.1)
_IDENTITY = ("date", "x-request-nonce", "x-hmac-signature", "webhook-id", "webhook-timestamp", "webhook-signature")


def _fingerprint(vendor: str, video_id: str, headers: dict[str, str], body: bytes) -> str:
    h = hashlib.sha256(f"{vendor}\n{video_id}\n".encode())
    for name in _IDENTITY:
        h.update(f"{name}:{headers.get(name, '')}\n".encode("utf-8", "surrogatepass"))
    h.update(body)
    return h.hexdigest()


async def _replayed(gw: Gateway, fingerprint: str) -> bool:
    """Seen within the signature tolerance already (shared by replicas through the limiter's store)."""
    try:
        first = await gw.limiter.hit(f"callback-seen:{fingerprint}", limit=1, window_s=TOLERANCE_S)
    except LimiterUnavailable as exc:
        log.warning("callback replay check unavailable (%s); treating the callback as new", exc)
        return False
    return not first.allowed


async def _limit(gw: Gateway, vendor: str, video_id: str) -> None:
    try:
        decision = await gw.limiter.hit(f"callback:{vendor}:{video_id}", limit=PER_TASK_PER_MINUTE, window_s=60)
    except LimiterUnavailable as exc:
        log.warning("callback rate limit unavailable (%s); letting the callback through", exc)
        return
    if not decision.allowed:
        raise errors.RateLimited(
            "Too many callbacks for this task; retry later.", retry_after=max(1.0, decision.retry_after)
        )


def _challenge(body: bytes, field: str) -> Any:
    """The value of `field` when the body is a JSON object carrying it (a vendor's URL verification)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(field) if isinstance(data, dict) else None


@router.post("/{vendor}/{video_id}/{token}")
async def vendor_callback(vendor: str, video_id: str, token: str, request: Request, gw: GatewayDep) -> dict[str, Any]:
    unknown = errors.NotFound("Unknown callback.", code="unknown_callback")
    if vendor not in SUPPORTED or not same(callback_token(gw.signer.secret, video_id), token):
        raise unknown
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    await _limit(gw, vendor, video_id)
    spec = VENDORS[vendor]
    assert spec.callback is not None  # SUPPORTED
    if spec.callback.challenge is not None and (echo := _challenge(body, spec.callback.challenge)) is not None:
        # a URL verification, sent while the task may still be being submitted: answered before any lookup
        return {spec.callback.challenge: echo}
    async with gw.sessionmaker() as s:
        row = await repo.get(s, video_id)
    if row is None or row.provider != vendor:
        raise unknown
    key: str | None
    if spec.callback.credential is not None:  # keyed by the credential that created the task: required
        channel = await channels.channel_by_fingerprint(gw, row.channel_fp)
        key = channel.credentials.get(spec.callback.credential) if channel is not None else None
        if not key:
            raise errors.AuthenticationFailed("Invalid callback signature.", code="invalid_signature")
    elif spec.callback.setting is not None:  # keyed by an optional setting: unset, the path token alone is checked
        secret = getattr(gw.settings, spec.setting(spec.callback.setting))
        key = secret.get_secret_value() if secret is not None else None
    else:  # the vendor signs nothing: the per-task path token is the whole check
        key = None
    if key is not None:
        if spec.callback.scheme == "vidu_hmac":
            valid = vidu_valid(key, request.method, request.url.path, request.url.query, headers, now=now())
        else:
            valid = kling_valid(key, headers, body)
        if not valid:
            raise errors.AuthenticationFailed("Invalid callback signature.", code="invalid_signature")
    if await _replayed(gw, _fingerprint(vendor, video_id, headers, body)):
        return {"ok": True}  # its first copy was acted on already
    if row.status in repo.ACTIVE:
        await service.hint(gw, row.id)
        log.info("callback from %s for %s: polling it now", vendor, row.id)
    return {"ok": True}
