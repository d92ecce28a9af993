"""Submission: store the task (reserving credits and a concurrency slot), then hand it to a channel,
failing over to the next channel when one fails for a technical reason.

Creation spans vendor calls, so, like the engine, it commits in short steps: the task row is stored
before any vendor is asked (a crash in between is recovered by the engine), the channel about to be
tried is recorded before each attempt (so a crash can be reconciled with that vendor), and the vendor's
id is stored right after. A create that reaches a vendor at once commits twice: the row is stored in the
request's own transaction (with the request's writes so far, such as the key's last use), already naming
the first candidate channel, and the vendor's id in a second one; a failover attempt records its channel
first, and a write that would change nothing is not sent.

The row is stored claimed by its creator, and the claim is renewed by a heartbeat for as long as the
submit (failover included) runs, so no engine submits it a second time while a slow vendor is still
answering; if the creator dies, the claim runs out and an engine takes the row over (after `_recover`
looked for it at the channel last tried).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.callbacks.urls import callback_url
from app.channels import service as channels
from app.db import now
from app.gateway import Gateway
from app.jobs.lease import Heartbeat, LeaseLost, worker_id
from app.keys.models import ApiKey
from app.providers import base as pb
from app.providers.registry import Channel, Route
from app.usage import service as usage
from app.videos import idempotency
from app.videos import repository as repo
from app.videos.drafts import IMAGE_EXT, Draft
from app.videos.models import StoredImage, Video
from app.videos.reads import not_found
from app.videos.upstream import provider_error

log = logging.getLogger("vidgate.videos")

TECHNICAL = (pb.Unavailable, pb.RateLimited, pb.AuthFailed)


@dataclass
class AllChannelsFailed(Exception):
    failures: list[tuple[Channel, pb.ProviderError]] = field(default_factory=list)

    @property
    def retryable(self) -> bool:
        """Worth trying again later: some channel was merely unavailable (not refusing or throttling us)."""
        return any(isinstance(e, pb.Unavailable) for _, e in self.failures)

    def error(self) -> errors.GatewayError:
        limited = [e for _, e in self.failures if isinstance(e, pb.RateLimited)]
        if limited:
            return provider_error(min(limited, key=lambda e: e.retry_after or 0))
        if self.failures:
            return provider_error(self.failures[-1][1])
        return errors.UpstreamUnavailable("No channel can serve this model right now.", code="no_channel")


async def _store_inputs(gw: Gateway, draft: Draft) -> None:
    row = draft.video
    for name, img in (("first", draft.image), ("last", draft.last_frame)):
        if img is None:
            continue
        key = None
        if img.data is not None:
            key = f"inputs/{row.id}/{name}.{IMAGE_EXT.get(img.mime or '', 'bin')}"
            await gw.storage.write_bytes(key, img.data)
        stored = StoredImage(url=img.url, mime=img.mime, key=key)
        row.inputs = row.inputs.model_copy(update={f"image_{name}": stored})


async def _store_source_upload(gw: Gateway, draft: Draft) -> None:
    if draft.source_upload is None:
        return
    key = f"inputs/{draft.video.id}/source.mp4"
    tmp = gw.storage.scratch_path(".mp4")
    try:  # copied in chunks, never read whole into memory
        await draft.source_upload.save_to(tmp, gw.settings.max_video_upload_bytes, param="video")
        await gw.storage.put_file(key, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    draft.video.inputs = draft.video.inputs.model_copy(update={"source_key": key})


async def discard_inputs(gw: Gateway, video_id: str) -> None:
    await gw.storage.delete_prefix(f"inputs/{video_id}")


def input_url(gw: Gateway, video_id: str, name: str, *, base: str | None) -> str | None:
    root = gw.base_url(base)
    if root is None:
        return None
    expires = int(now()) + gw.settings.url_ttl_seconds * 24
    sig = gw.signer.signature("input", video_id, name, expires)
    return f"{root}/files/inputs/{video_id}/{name}?expires={expires}&signature={sig}"


async def build_request(gw: Gateway, row: Video) -> pb.GenerationRequest:
    """The provider-neutral request for a stored row (used at create time and by the engine's retries)."""
    inputs = row.inputs

    async def image(name: str) -> pb.ImageInput | None:
        entry = inputs.image(name)
        if entry is None:
            return None
        data = await gw.storage.read_bytes(entry.key) if entry.key else None
        url = entry.url
        if url is None and entry.key:
            url = input_url(gw, row.id, name, base=None)
        return pb.ImageInput(data=data, mime=entry.mime, url=url)

    source: pb.VendorTask | None = None
    source_path = None
    source_seconds = inputs.source_seconds
    if row.source_video_id:
        async with gw.sessionmaker() as s:
            src = await repo.get(s, row.source_video_id)
        if src is not None:
            if src.provider == row.provider and src.vendor_task_id:
                source = pb.VendorTask(src.provider, src.vendor_task_id, dict(src.vendor_meta or {}))
            video_key = (src.assets or {}).get("video", {}).get("key")
            if video_key and await gw.storage.exists(video_key):
                source_path = await gw.storage.materialize(video_key)
            source_seconds = source_seconds or src.seconds
    elif inputs.source_key:
        source_path = await gw.storage.materialize(inputs.source_key)
    return pb.GenerationRequest(
        task_id=row.id,
        model=row.vendor_model,
        prompt=row.prompt or "",
        width=row.width,
        height=row.height,
        seconds=inputs.segment_seconds or row.seconds,
        operation=row.operation,  # type: ignore[arg-type]
        image=await image("first"),
        last_frame=await image("last"),
        extras=dict(inputs.metadata),
        characters=tuple(inputs.characters),
        source=source,
        source_video=source_path,
        source_seconds=source_seconds,
    )


@dataclass
class Plan:
    """The channels to try, in order, and their health records as read before the row was stored."""

    ordered: list[Channel]
    records: dict[str, Any]


async def _store_row(gw: Gateway, key: ApiKey, draft: Draft, session: AsyncSession | None = None) -> Plan:
    """Reserve credits and a concurrency slot and store the row, naming the first channel to try, in one
    transaction: `session`'s (which is committed; its connection goes back to the pool) or one of its own.
    Returns the channels to try."""
    if session is None:
        async with gw.sessionmaker() as s:
            return await _store_row(gw, key, draft, s)
    try:
        return await _store(gw, key, draft, session)
    except BaseException:
        await session.rollback()
        raise


async def _store(gw: Gateway, key: ApiKey, draft: Draft, s: AsyncSession) -> Plan:
    row = draft.video
    assert draft.route is not None
    if key in s:
        # what the request wrote of the key goes with the row; a rollback must not expire the key itself
        await s.flush()
        s.expunge(key)
    # read before any write (a shorter write lock); the channel to try first is named in the row itself,
    # so a crash before its answer is recovered there
    ordered, records = await candidates(gw, draft.route, session=s)
    if ordered:
        row.channel, row.channel_fp = ordered[0].name, ordered[0].fingerprint
    if draft.idempotency is not None:
        # first: a concurrent request with the same key that stored its video already (or is about
        # to commit it) makes this one a replay, before anything is reserved twice
        record = draft.idempotency.record(key.id, row.id)
        if not await repo.add_idempotency(s, record, expired_before=idempotency.expired_before()):
            raise idempotency.KeyTaken
    # the key row is updated: that serialises this key's creates on PostgreSQL (row lock)
    # and on SQLite (write lock), so the quota and the concurrency count below are exact
    limited = key.quota_credits is not None or key.max_concurrent is not None
    if (limited or row.reserved_credits) and not await usage.reserve(s, key.id, row.reserved_credits):
        raise errors.InsufficientQuota(
            "You exceeded your current quota: this request needs "
            f"{row.reserved_credits:g} credits. Ask the operator to raise the key's quota."
        )
    if key.max_concurrent is not None and await repo.count_active(s, key.id) >= key.max_concurrent:
        raise errors.RateLimited(
            f"This API key already has {key.max_concurrent} unfinished videos, its limit; retry when one has finished.",
            code="concurrency_limit_exceeded",
            retry_after=5,
        )
    # not added to the session: the caller's session must not write it again (the engine may own it by then)
    await repo.insert_row(s, row)
    await s.commit()
    return Plan(ordered, records)


async def _mark_attempt(gw: Gateway, row: Video, channel: Channel) -> None:
    if (row.channel, row.channel_fp) == (channel.name, channel.fingerprint):
        return  # recorded already (the row as loaded or last written says so): nothing to change
    async with gw.sessionmaker() as s:
        await repo.update_active(s, row.id, channel=channel.name, channel_fp=channel.fingerprint)
        await s.commit()
    row.channel, row.channel_fp = channel.name, channel.fingerprint


async def candidates(
    gw: Gateway, route: Route, *, session: AsyncSession | None = None
) -> tuple[list[Channel], dict[str, Any]]:
    records = await channels.health(gw, route.channels, session=session)
    return channels.order(route.channels, records, at=now(), rng=gw.rng), records


def _with_callback(gw: Gateway, req: pb.GenerationRequest, channel: Channel) -> pb.GenerationRequest:
    """Vendors that call back get vidgate's callback URL (unless the client set its own)."""
    url = callback_url(gw, channel.vendor, req.task_id)
    if url is None or req.extras.get("callback_url"):
        return req
    return dataclasses.replace(req, extras={**req.extras, "callback_url": url})


async def submit_with_failover(
    gw: Gateway, row: Video, route: Route, *, plan: Plan | None = None
) -> tuple[Channel, pb.VendorTask]:
    """Try each candidate channel in turn (`plan`'s, else read now). Logical rejections propagate at once
    (never retried elsewhere)."""
    req = await build_request(gw, row)
    failed = AllChannelsFailed()
    try:
        ordered, records = (plan.ordered, plan.records) if plan is not None else await candidates(gw, route)
        for channel in ordered:
            await _mark_attempt(gw, row, channel)
            await channels.pace(gw, channel)
            try:
                task = await channel.provider.submit(_with_callback(gw, req, channel))
            except TECHNICAL as exc:
                gw.metrics.vendor_error(channel.vendor, exc.vendor_code or type(exc).__name__)
                await channels.record_failure(gw, channel, f"{type(exc).__name__}: {exc.message}")
                failed.failures.append((channel, exc))
                continue
            rec = records.get(channel.fingerprint)
            if rec is None or rec.failures or rec.cooldown_until is not None:
                await channels.record_success(gw, channel)  # only a recovering channel needs the write
            return channel, task
    finally:
        if req.source_video is not None:
            await gw.storage.release(req.source_video)
    raise failed


def hold_claim(gw: Gateway, video_id: str, owner: str) -> Heartbeat:
    """Renew `owner`'s claim on the row while the `async with` block runs (see app.jobs.lease)."""
    lease = gw.settings.claim_lease_s

    async def renew() -> bool:
        async with gw.sessionmaker() as s:
            held = await repo.renew_claim(s, video_id, owner=owner, lease=lease)
            await s.commit()
        return held

    return Heartbeat(renew, lease_s=lease, name=video_id)


async def record_submitted(gw: Gateway, row: Video, channel: Channel, task: pb.VendorTask, *, owner: str) -> bool:
    """Store the vendor's id and release `owner`'s claim; False if the claim was lost meanwhile."""
    first_poll = now() + gw.settings.poll_interval_ms / 1000
    values: dict[str, Any] = {
        "vendor_task_id": task.vendor_task_id,
        "vendor_meta": task.meta,
        "channel": channel.name,
        "channel_fp": channel.fingerprint,
        "provider": channel.vendor,
        "submitted_at": now(),
        "next_poll_at": first_poll,
    }
    stored = await gw.group_commit.run(lambda s: repo.release(s, row.id, owner, **values))
    if not stored:
        # another worker took the row over while this vendor was answering: it resubmits or recovers it
        log.error(
            "task %s: %s accepted it as %s after this worker lost the task", row.id, channel.name, task.vendor_task_id
        )
        return False
    for k, v in {**values, "claimed_by": None, "claimed_until": None}.items():
        setattr(row, k, v)
    return True


async def _drop(gw: Gateway, draft: Draft) -> None:
    """Forget a task no vendor accepted: delete the row, its idempotency key (a retry may try again) and
    give back its reservation, together."""
    row = draft.video
    async with gw.sessionmaker() as s:
        await repo.delete_row(s, row.id)
        if draft.idempotency is not None:
            await repo.delete_idempotency(s, row.api_key_id, draft.idempotency.key, resource_id=row.id)
        await usage.refund_unstored(s, row.api_key_id, row.reserved_credits)
        await s.commit()
    await discard_inputs(gw, row.id)


async def _stored_by_another(gw: Gateway, key: ApiKey, draft: Draft) -> Video:
    """The video of the concurrent request that took this draft's idempotency key (committed by now:
    the key and its video are stored in one transaction, and the insert waited for it)."""
    assert draft.idempotency is not None
    async with gw.sessionmaker() as s:
        video_id = await idempotency.replay(s, key, draft.idempotency)
        video = await repo.get_owned(s, key.owner, video_id) if video_id else None
    if video_id is None:
        raise idempotency.in_progress()  # it was rejected and gave the key up meanwhile
    if video is None:
        raise not_found(video_id)
    return video


async def submit_draft(gw: Gateway, key: ApiKey, draft: Draft, *, session: AsyncSession | None = None) -> Video:
    """Store, submit, store the vendor id. Logical rejections leave nothing stored and nothing charged.

    With `session` (the request's), the row is stored in its transaction, which is committed (or rolled
    back) here: no connection of the request's is held while the vendor answers.
    Returns another request's video when that one took the draft's idempotency key first."""
    row = draft.video
    assert draft.route is not None
    owner = worker_id("submit")
    t, lease = now(), gw.settings.claim_lease_s
    row.claimed_by, row.claimed_until, row.next_poll_at = owner, t + lease, t + lease
    try:
        if session is not None and (draft.image or draft.last_frame or draft.source_upload):
            await session.commit()  # writing inputs to storage may take a while: no connection held meanwhile
        await _store_inputs(gw, draft)
        await _store_source_upload(gw, draft)
        plan = await _store_row(gw, key, draft, session)
    except idempotency.KeyTaken:
        await discard_inputs(gw, row.id)
        return await _stored_by_another(gw, key, draft)
    except Exception:  # refused, or a full disk or database: nothing of this request stays stored
        await discard_inputs(gw, row.id)
        raise
    try:
        async with hold_claim(gw, row.id, owner):
            channel, task = await submit_with_failover(gw, row, draft.route, plan=plan)
    except LeaseLost:
        log.warning("task %s: the submit outlived this worker's claim; the engine has taken the task over", row.id)
        gw.wake_engine()
        return row
    except AllChannelsFailed as exc:
        if exc.retryable:
            # a vendor may come back: the engine retries with backoff; the client has its id already
            log.warning("submit of %s failed on every channel; the engine will retry", row.id)
            async with gw.sessionmaker() as s:
                await repo.release(s, row.id, owner, next_poll_at=now() + gw.settings.poll_interval_ms / 1000)
                await s.commit()
            gw.wake_engine()
            return row
        await _drop(gw, draft)
        raise exc.error() from None
    except pb.ProviderError as exc:
        await _drop(gw, draft)
        raise provider_error(exc) from None
    if not await record_submitted(gw, row, channel, task, owner=owner):
        return row
    gw.metrics.task_transition(channel.vendor, pb.VideoStatus.queued)
    gw.wake_engine()
    return row
