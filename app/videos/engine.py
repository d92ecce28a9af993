"""The task engine: the `videos` table is the queue, worked by an `app.jobs.loop.JobLoop`.

Each tick claims due unfinished rows that nobody holds (`next_poll_at <= now`; FOR UPDATE SKIP LOCKED on
PostgreSQL), writing this engine's id and a lease on them, then works on them concurrently within a bound.
While a task is worked on (a poll, a long download and the derived variants, a submit with failover) a
heartbeat renews its lease; an engine whose lease was taken over stops that work and writes nothing more.
Every step commits on its own, as a compare-and-set on the status and on the claim's owner, so a task is
never finalised twice. A restarted process simply finds the rows again. This module is the handler: the
state machine of one task (submit with retries, poll, complete or fail).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.callbacks.urls import SUPPORTED as CALLS_BACK
from app.channels import service as channels
from app.db import now
from app.errors import is_storage_full
from app.gateway import Gateway
from app.jobs.loop import JobLoop, Periodic, backoff
from app.media import derive, probe
from app.observability import bind
from app.observability.logs import redact
from app.providers import base as pb
from app.providers.registry import Channel
from app.storage import StorageError
from app.usage import service as usage
from app.videos import janitor, schedule, submission, variants
from app.videos import repository as repo
from app.videos.links import VARIANT_FILES
from app.videos.models import Video
from app.videos.upstream import provider_error
from app.webhooks.service import enqueue_video_event

log = logging.getLogger("vidgate.engine")

MAX_SUBMIT_ATTEMPTS = 6
MAX_DOWNLOAD_ATTEMPTS = 6


async def _stream_to(path: Path, chunks: AsyncIterator[bytes], *, limit: int | None = None) -> int:
    total = 0
    try:
        with path.open("wb") as fh:
            async for chunk in chunks:
                total += len(chunk)
                if limit is not None and total > limit:
                    raise StorageError(f"download larger than {limit} bytes")
                await asyncio.to_thread(fh.write, chunk)
    finally:
        # an async generator is closed on every exit (a full disk included): the provider's clean-up runs now
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return total


def _is_image(path: Path) -> bool:
    try:
        probe.image_size(path.read_bytes(), max_pixels=64_000_000)  # a vendor's thumbnail or spritesheet
    except probe.MediaError:
        return False
    return True


class TaskEngine:
    """The `videos` queue for a `JobLoop`: claims due tasks, and works on one (`handle`: submit, poll,
    complete or fail). The retention janitor runs beside it."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.loop: JobLoop[Video] = JobLoop(
            self,
            name="engine",
            concurrency=self.settings.poll_concurrency,
            tick_s=self.settings.engine_tick_ms / 1000,
            lease_s=self.settings.claim_lease_s,
            # SQLite means one process: claims left by a killed predecessor can be taken back at once
            release_on_start=not gw.is_postgres,
            log=log,
            item="task",
            items="tasks",
        )
        self.owner = self.loop.owner
        # capped channels' remaining request budgets, which size each claim (app.videos.schedule)
        self.budget = schedule.RequestBudget(horizon_s=self.settings.engine_tick_ms / 1000)
        self._called_back: dict[str, float] = {}  # channel fingerprint -> the latest vendor callback seen
        self._others_idle_until = 0.0  # no uncapped channel's task was due at the last look: none till then
        self.janitor = Periodic(self.purge_expired, name="janitor", interval_s=self.settings.janitor_interval_s)

    # -- lifecycle (the loop's)
    async def start(self) -> None:
        await self.loop.start()
        await self.janitor.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Graceful: stop claiming, let work in flight finish for `timeout`, then hand back what is left."""
        await asyncio.gather(self.janitor.stop(timeout), self.loop.stop(timeout))

    def wake(self) -> None:
        self.loop.wake()

    async def run_once(self) -> int:
        return await self.loop.run_once()

    async def drain(self) -> None:
        await self.loop.drain()

    # -- the queue
    def key(self, row: Video) -> str:
        return row.id

    async def claim(self, *, owner: str, limit: int, exclude: Collection[str]) -> list[Video]:
        """Due tasks, but of a capped channel only as many as its remaining request budget covers (each
        claimed task's poll is paid for here; see app.videos.schedule)."""
        capped = {c.fingerprint: c for c in self.gw.registry.channels.values() if c.max_rps}
        # the other channels' tasks are looked for past the capped ones' due queue, so once per tick when
        # there were none (tasks woken sooner, new ones, wait a tick at most)
        others = not capped or time.monotonic() >= self._others_idle_until
        async with self.gw.sessionmaker() as s:
            rows = await repo.claim_due(
                s,
                owner=owner,
                limit=limit,
                lease=self.settings.claim_lease_s,
                skip_locked=self.gw.is_postgres,
                exclude=exclude,
                quotas=self.budget.quotas(capped.values()),
                others=others,
            )
            await s.commit()
        if capped and others and all(row.channel_fp in capped for row, _ in rows):
            self._others_idle_until = time.monotonic() + self.loop.tick_s
        t = now()
        for row, due in rows:
            self.gw.metrics.poll_lag(t - due)
            if row.channel_fp is not None:
                self.budget.spend(capped.get(row.channel_fp))
                if row.nudged_at is not None:
                    seen = self._called_back.get(row.channel_fp, 0.0)
                    self._called_back[row.channel_fp] = max(seen, row.nudged_at)
        return [row for row, _ in rows]

    async def renew(self, row: Video, *, owner: str) -> bool:
        async with self.gw.sessionmaker() as s:
            held = await repo.renew_claim(s, row.id, owner=owner, lease=self.settings.claim_lease_s)
            await s.commit()
        return held

    async def release(self, keys: Collection[str], *, owner: str) -> int:
        async with self.gw.sessionmaker() as s:
            released = await repo.release_claims(s, list(keys), owner=owner)
            await s.commit()
        return released

    async def release_all(self) -> int:
        async with self.gw.sessionmaker() as s:
            released = await repo.release_all_claims(s)
            await s.commit()
        return released

    async def handle(self, row: Video) -> None:
        bind(task_id=row.id, provider=row.provider)  # a task of its own: the context ends with it
        await self.process(row)

    async def retry(self, row: Video, exc: Exception) -> None:
        await self._reschedule(row, delay=self._backoff(row.poll_errors + 1), errors=row.poll_errors + 1)

    # -- one task
    async def process(self, row: Video) -> None:
        if now() - (row.created_ns / 1e9) > self.settings.task_timeout_s:
            await self._fail(row, "timeout", "The task did not finish in time.")
            return
        if row.vendor_task_id is None:
            await self._submit(row)
            return
        # polled with the exact channel (and credential) that created it, even if it left the config
        channel = await channels.channel_by_fingerprint(self.gw, row.channel_fp)
        if channel is None and row.channel_fp is not None:
            # never poll with another credential: wait (the operator may restore it) until the task times out
            log.error("task %s: the channel that created it (%s) is unknown here", row.id, row.channel)
            await self._reschedule(row, delay=self.settings.poll_max_interval_ms / 1000, errors=row.poll_errors + 1)
            return
        if channel is None:
            await self._fail(row, "provider_unavailable", f"Provider '{row.provider}' is no longer configured.")
            return
        provider = channel.provider
        task = pb.VendorTask(row.provider, row.vendor_task_id, dict(row.vendor_meta or {}))
        await self._pace(channel, prepaid=True)  # the claim paid for this poll
        started = now()
        try:
            snap = await provider.poll(task)
        except pb.NotFoundAtVendor as exc:
            await self._fail(row, "vendor_task_not_found", exc.message)
            return
        except pb.ProviderError as exc:
            await self._poll_error(row, exc)
            return
        if snap.status == pb.VideoStatus.completed:
            await self._complete(row, provider, task, snap, channel)
        elif snap.status == pb.VideoStatus.failed:
            await self._fail(row, snap.error_code or "generation_failed", snap.error_message or "Generation failed.")
        else:
            # status is monotone like progress: a vendor that reports an earlier state again (queued after
            # in_progress) does not send the video back
            status = pb.VideoStatus.in_progress if row.status == pb.VideoStatus.in_progress else snap.status
            if status != row.status:
                self.gw.metrics.task_transition(row.provider, status)
            delay = schedule.next_poll_delay(
                self.settings,
                snap,
                polls=row.poll_count,
                elapsed=started - (row.submitted_at or started),
                typical=channel.typical_s,
                called_back=self._called_back_lately(row, channel),
            )
            values = {
                "status": status,
                "progress": max(row.progress, min(99, snap.progress or 0)),
                "poll_count": row.poll_count + 1,
                "poll_errors": 0,
                "next_poll_at": now() + delay,
            }
            # concurrent polls' writes share a commit (one write transaction where there were many); a vendor
            # callback that arrived during this poll (which may have missed its news) makes it due at once
            await self.gw.group_commit.run(
                lambda s: repo.release(s, row.id, self.owner, nudged_since=started, **values)
            )

    async def _recover(self, row: Video) -> bool:
        """The submit that a crash interrupted may have reached its channel: look before submitting again."""
        channel = await channels.channel_by_fingerprint(self.gw, row.channel_fp)
        if channel is None or not isinstance(channel.provider, pb.Recoverable):
            return False
        recover = channel.provider.recover
        req = await submission.build_request(self.gw, row)
        try:
            found = await recover(req)
        except pb.ProviderError as exc:
            log.info("task %s: could not look it up on %s (%r)", row.id, channel.name, exc)
            return False
        finally:
            if req.source_video is not None:
                await self.gw.storage.release(req.source_video)
        if found is None:
            return False
        log.info("task %s: found at %s after a restart; not submitting it again", row.id, channel.name)
        await submission.record_submitted(self.gw, row, channel, found, owner=self.owner)
        return True

    async def _submit(self, row: Video) -> None:
        attempts = row.submit_attempts + 1
        if await self._recover(row):
            return
        route = self.gw.registry.resolve(row.model) or self.gw.registry.resolve(row.vendor_model)
        if route is None:
            await self._fail(row, "model_unavailable", f"No channel serves the model '{row.model}' any more.")
            return
        try:
            channel, vtask = await submission.submit_with_failover(self.gw, row, route)
        except submission.AllChannelsFailed as exc:
            # the client already holds this task's id: throttling, like an outage, is waited out
            throttled = any(isinstance(e, pb.RateLimited) for _, e in exc.failures)
            if attempts >= MAX_SUBMIT_ATTEMPTS or not (exc.retryable or throttled):
                err = exc.error()
                await self._fail(
                    row, err.code or "upstream_unavailable", f"No channel accepted the task: {err.message}"
                )
                return
            async with self.gw.sessionmaker() as s:
                await repo.release(
                    s, row.id, self.owner, submit_attempts=attempts, next_poll_at=now() + self._backoff(attempts)
                )
                await s.commit()
            return
        except pb.ProviderError as exc:
            err = provider_error(exc)
            await self._fail(row, err.code or "vendor_rejected", err.message)
            return
        await submission.record_submitted(self.gw, row, channel, vtask, owner=self.owner)

    async def _complete(
        self,
        row: Video,
        provider: pb.VideoProvider,
        task: pb.VendorTask,
        snap: pb.TaskSnapshot,
        channel: Channel | None = None,
    ) -> None:
        """Download the asset, check it decodes, derive the other variants, store all three, then finish."""
        storage = self.gw.storage
        work = {variant: storage.scratch_path(f".{name.rsplit('.', 1)[1]}") for variant, name in VARIANT_FILES.items()}
        try:
            try:
                await self._pace(channel)
                await _stream_to(work["video"], provider.download(task, snap))
                info = await asyncio.to_thread(probe.probe_video, work["video"])
                if self._fetches_variants(provider, channel):
                    await self._derive(row, provider, task, work, channel)
                else:  # made on first request (app.videos.variants): most clients never ask for them
                    work = {"video": work["video"]}
                sizes = {variant: path.stat().st_size for variant, path in work.items()}
                for variant, path in work.items():
                    await storage.put_file(f"videos/{row.id}/{VARIANT_FILES[variant]}", path)
            except (pb.ProviderError, OSError, StorageError, probe.MediaError) as exc:
                # counted apart from poll errors (a poll that reports `completed` does not reset those), and
                # a body that does not decode is retried too: it may be a flaky upstream's error page
                # a full disk is retried the same way (space may be freed), and named if it lasts
                attempts = row.download_attempts + 1
                full = is_storage_full(exc)
                log.log(
                    logging.ERROR if full else logging.WARNING,
                    "task %s: download failed (%d): %r",
                    row.id,
                    attempts,
                    exc,
                )
                if attempts >= MAX_DOWNLOAD_ATTEMPTS:
                    await storage.delete_prefix(f"videos/{row.id}")
                    if isinstance(provider, pb.Cancellable):
                        try:
                            await provider.cancel(task)  # the vendor's side may hold files for it (the sandbox does)
                        except Exception as cancel_exc:  # most vendors cannot cancel a finished task: no matter
                            log.debug("task %s: cancel after giving up: %r", row.id, cancel_exc)
                    if full:
                        await self._fail(
                            row,
                            "storage_full",
                            "The gateway's storage is full: the generated video could not be stored.",
                        )
                    else:
                        await self._fail(row, "asset_unavailable", "The generated video could not be retrieved.")
                else:
                    async with self.gw.sessionmaker() as s:
                        await repo.release(
                            s,
                            row.id,
                            self.owner,
                            download_attempts=attempts,
                            next_poll_at=now() + self._backoff(attempts),
                        )
                        await s.commit()
                return
        finally:
            for path in work.values():
                path.unlink(missing_ok=True)
        t = now()
        assets: dict[str, Any] = variants.lazy_assets(row.id) if len(sizes) == 1 else {}
        assets.update(
            {variant: {"key": f"videos/{row.id}/{VARIANT_FILES[variant]}", "bytes": n} for variant, n in sizes.items()}
        )
        assets["video"]["audio"] = info.has_audio  # whether the stored MP4 carries a sound track
        values: dict[str, Any] = {
            "status": pb.VideoStatus.completed,
            "progress": 100,
            "completed_at": int(t),
            "expires_at": int(t + self.settings.retention_hours * 3600),
            "assets": assets,
            # what the vendor reported at the end (e.g. its video id, needed to extend the video later)
            "vendor_meta": {**(row.vendor_meta or {}), **snap.meta, **({"usage": snap.usage} if snap.usage else {})},
            "width": info.width,
            "height": info.height,
            "seconds": max(1, round(info.seconds)),
            "next_poll_at": None,
        }
        produced = float(values["seconds"] - (row.inputs.source_seconds or 0))
        charge = usage.cost(
            self.gw.registry.prices, [row.model, row.vendor_model], info.width, info.height, produced, units=snap.usage
        )

        async def finish(s: AsyncSession) -> tuple[bool, int]:
            # only while this engine still holds the task: one that lost its lease never finalises it
            if not await repo.release(s, row.id, self.owner, **values):
                return False, 0
            # in the same transaction as the transition: charged and announced exactly once
            await usage.settle(s, row, charged=charge)
            return True, await enqueue_video_event(s, row, status=pb.VideoStatus.completed)

        # with the other polls' writes (app.db.GroupCommit)
        done, announced = await self.gw.group_commit.run(finish)
        if not done:
            log.info("task %s was finished or taken over elsewhere; dropping this copy", row.id)
            return
        self.gw.metrics.task_transition(row.provider, pb.VideoStatus.completed)
        await self._finished(row, announced)

    async def _finished(self, row: Video, announced: int) -> None:
        if announced:
            self.gw.wake_webhooks()  # deliveries to make (none: nothing to wake the dispatcher for)
        if row.inputs.stored:
            await submission.discard_inputs(self.gw, row.id)

    async def _pace(self, channel: Channel | None, *, prepaid: bool = False) -> None:
        if channel is not None:
            if not prepaid:
                self.budget.spend(channel)
            await channels.pace(self.gw, channel)

    def _called_back_lately(self, row: Video, channel: Channel) -> bool:
        """The vendor calls this task back: it did already, or it did for another task of this channel
        lately (its callbacks reach this gateway), and it was given a callback URL."""
        lately = now() - 2 * self.settings.poll_callback_interval_ms / 1000
        if row.nudged_at is None and self._called_back.get(channel.fingerprint, 0.0) < lately:
            return False
        return channel.vendor in CALLS_BACK and self.gw.base_url() is not None

    @staticmethod
    def _fetches_variants(provider: pb.VideoProvider, channel: Channel | None) -> bool:
        """Vendor requests go where they matter: its variants only when the channel asks for them."""
        return channel is not None and channel.fetch_variants and isinstance(provider, pb.ServesVariants)

    async def _derive(
        self,
        row: Video,
        provider: pb.VideoProvider,
        task: pb.VendorTask,
        work: dict[str, Path],
        channel: Channel | None = None,
    ) -> None:
        """The vendor's own thumbnail and spritesheet (the channel says `fetch_variants`); one that cannot be
        had or is broken is derived from the video instead."""
        makers: dict[str, Callable[[Path, Path], object]] = {
            "thumbnail": derive.make_thumbnail,
            "spritesheet": derive.make_spritesheet,
        }
        fetch = provider.download_variant if isinstance(provider, pb.ServesVariants) else None
        assert fetch is not None  # _fetches_variants said so
        for variant, make in makers.items():
            try:
                await self._pace(channel)
                await _stream_to(work[variant], fetch(task, variant), limit=64 * 1024 * 1024)
                if await asyncio.to_thread(_is_image, work[variant]):
                    continue
            except (pb.ProviderError, OSError, StorageError) as exc:
                log.info("task %s: vendor %s unavailable (%r); deriving it", row.id, variant, exc)
            await asyncio.to_thread(make, work["video"], work[variant])

    async def _fail(self, row: Video, code: str, message: str) -> None:
        message = redact(message)  # often the vendor's words, which may quote our credentials back
        async with self.gw.sessionmaker() as s:
            done = await repo.release(
                s,
                row.id,
                self.owner,
                status=pb.VideoStatus.failed,
                error_code=code[:200],
                error_message=message,
                completed_at=int(now()),
                next_poll_at=None,
            )
            announced = 0
            if done:  # refunded and announced in the same transaction as the transition, exactly once
                await usage.settle(s, row, charged=0.0)
                announced = await enqueue_video_event(s, row, status=pb.VideoStatus.failed)
            await s.commit()
        if not done:  # finished elsewhere, or another worker holds it now (and may still need its inputs)
            return
        self.gw.metrics.task_transition(row.provider, pb.VideoStatus.failed)
        await self._finished(row, announced)

    async def _poll_error(self, row: Video, exc: pb.ProviderError) -> None:
        self.gw.metrics.vendor_error(row.provider, exc.vendor_code or type(exc).__name__)
        errors = row.poll_errors + 1
        level = logging.ERROR if isinstance(exc, pb.AuthFailed) else logging.WARNING
        log.log(level, "task %s: poll failed (%d): %r", row.id, errors, exc)
        delay = exc.retry_after if exc.retry_after else self._backoff(errors)
        await self._reschedule(row, delay=delay, errors=errors)

    async def _reschedule(self, row: Video, *, delay: float, errors: int) -> None:
        async with self.gw.sessionmaker() as s:
            await repo.release(s, row.id, self.owner, poll_errors=errors, next_poll_at=now() + delay)
            await s.commit()

    def _backoff(self, attempts: int) -> float:
        base, cap = self.settings.poll_interval_ms / 1000, self.settings.poll_max_interval_ms / 1000 * 4
        return backoff(min(attempts, 10), base=base, cap=cap)

    # -- retention (the janitor's)
    async def purge_expired(self) -> int:
        return await janitor.purge_expired(self.gw)
