"""Channel health (cool-downs shared through the database), ordering for failover, and credential snapshots.

Credentials are kept encrypted (Fernet, from the `cryptography` package) with a key derived from the
gateway's signing secret, so a task can still be polled with the credential that created it after its
channel left the config file.

Commits: each function that writes (`sync`, `record_failure`, `record_success`) is its own short
transaction, opened and committed here. They are called from start-up, submission and the engine,
outside any request: a channel's failure must be recorded (and seen by other replicas at once) whatever
becomes of the caller's own work, and no caller's connection is held across a vendor call for it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels import repository as repo
from app.channels.config import ChannelConfig
from app.channels.models import ChannelRecord
from app.db import now
from app.gateway import Gateway
from app.keys.limits import LimiterUnavailable
from app.providers.registry import Channel, build_channel

log = logging.getLogger("vidgate.channels")


def _fernet(secret: bytes) -> Fernet:
    key = hashlib.sha256(b"vidgate channel credentials\n" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_credentials(secret: bytes, credentials: dict[str, str]) -> str:
    return _fernet(secret).encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def decrypt_credentials(secret: bytes, token: str) -> dict[str, str] | None:
    try:
        data = json.loads(_fernet(secret).decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return None
    return data if isinstance(data, dict) else None


async def sync(gw: Gateway) -> None:
    """Record every live channel (insert new fingerprints, refresh the others)."""
    t = now()
    async with gw.sessionmaker() as s:
        for ch in gw.registry.channels.values():
            rec = await repo.get(s, ch.fingerprint)
            enc = encrypt_credentials(gw.signer.secret, ch.credentials) if ch.credentials else None
            if rec is None:
                repo.add(
                    s,
                    ChannelRecord(
                        fingerprint=ch.fingerprint,
                        name=ch.name,
                        vendor=ch.vendor,
                        base_url=ch.base_url,
                        models=sorted(ch.models),
                        credentials_enc=enc,
                        first_seen=t,
                        last_seen=t,
                        failures=0,
                    ),
                )
            else:
                rec.name, rec.vendor, rec.base_url = ch.name, ch.vendor, ch.base_url
                rec.models, rec.credentials_enc, rec.last_seen = sorted(ch.models), enc, t
        await s.commit()


async def health(
    gw: Gateway, channels: Sequence[Channel], *, session: AsyncSession | None = None
) -> dict[str, ChannelRecord]:
    """The channels' records (failures, cool-downs), read in `session` (a caller's transaction about to
    store a task) or in a short session of its own."""
    fps = [c.fingerprint for c in channels]
    if session is not None:
        rows = await repo.by_fingerprints(session, fps)
    else:
        async with gw.sessionmaker() as s:
            rows = await repo.by_fingerprints(s, fps)
    return {r.fingerprint: r for r in rows}


def _weighted_order(channels: list[Channel], rng: random.Random) -> list[Channel]:
    """Priority first (higher first); within one priority, a weighted random permutation."""
    out: list[Channel] = []
    for prio in sorted({c.priority for c in channels}, reverse=True):
        pool = [c for c in channels if c.priority == prio]
        while pool:
            weights = [max(c.weight, 0) for c in pool]
            if sum(weights) <= 0:
                out.extend(pool)  # weight 0: only as a last resort, in config order
                break
            pick = rng.choices(pool, weights=weights)[0]
            out.append(pick)
            pool.remove(pick)
    return out


def order(
    channels: Sequence[Channel], records: dict[str, ChannelRecord], *, at: float, rng: random.Random
) -> list[Channel]:
    """Healthy channels by priority and weight; channels in a cool-down only after all of those."""
    cooling = {fp for fp, r in records.items() if r.cooldown_until is not None and r.cooldown_until > at}
    healthy = [c for c in channels if c.fingerprint not in cooling]
    resting = [c for c in channels if c.fingerprint in cooling]
    return _weighted_order(healthy, rng) + sorted(resting, key=lambda c: records[c.fingerprint].cooldown_until or 0.0)


async def pace(gw: Gateway, channel: Channel) -> None:
    """Wait until a request to this channel fits its `max_rps` cap (shared by replicas through Redis when
    VIDGATE_REDIS_URL is set). Every vendor call goes through here: submits, polls and downloads."""
    if not channel.max_rps:
        return
    # a sliding window of max_rps requests per second (at least one), with a 10% margin so that
    # network jitter between our grant and the vendor's clock cannot push a window over the cap
    limit = max(1, int(channel.max_rps))
    window = 1.1 * limit / channel.max_rps
    while True:
        try:
            decision = await gw.limiter.hit(f"channel:{channel.fingerprint}", limit=limit, window_s=window)
        except LimiterUnavailable:
            log.error("rate limiter unavailable: channel %s is not paced", channel.name)
            return
        if decision.allowed:
            return
        await asyncio.sleep(decision.retry_after)


async def record_failure(gw: Gateway, channel: Channel, error: str) -> None:
    settings = gw.settings
    async with gw.sessionmaker() as s:
        rec = await repo.get(s, channel.fingerprint, for_update=gw.is_postgres)
        if rec is None:
            return
        rec.failures += 1
        cool = min(settings.channel_cooldown_max_s, settings.channel_cooldown_s * 2 ** (rec.failures - 1))
        rec.last_error = error[:2000]
        rec.last_error_at = now()
        rec.cooldown_until = now() + cool
        await s.commit()
    log.warning("channel %s failed (%s); cooling down for %.0f s", channel.name, error, cool)


async def record_success(gw: Gateway, channel: Channel) -> None:
    async with gw.sessionmaker() as s:
        await repo.mark_success(s, channel.fingerprint, at=now())
        await s.commit()


async def channel_by_fingerprint(gw: Gateway, fp: str | None) -> Channel | None:
    """The live channel with this fingerprint, or one rebuilt from its stored snapshot."""
    found = gw.registry.by_fingerprint(fp)
    if found is not None or fp is None:
        return found
    async with gw.sessionmaker() as s:
        rec = await repo.get(s, fp)
    if rec is None:
        return None
    creds = decrypt_credentials(gw.signer.secret, rec.credentials_enc) if rec.credentials_enc else {}
    if creds is None:
        log.error("channel %s: stored credentials cannot be decrypted (signing secret changed?)", rec.name)
        return None
    cfg = ChannelConfig(
        name=rec.name[:64],
        vendor=rec.vendor,
        credentials=creds,
        base_url=rec.base_url,
        models=None,
    )
    channel = build_channel(cfg, gw.settings, gw.http)
    channel.enabled = False  # polls only: a retired channel takes no new tasks
    gw.registry.retired[fp] = channel
    log.info("channel %s is no longer configured; using its stored credentials for its tasks", rec.name)
    return channel
