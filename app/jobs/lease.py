"""Leases on claimed queue rows: a heartbeat keeps the claim while the work runs, and stops the work
when the claim is lost.

A worker claims a row by writing its own id (`claimed_by`) and an expiry (`claimed_until`); other workers
take only rows whose claim has expired, so a worker that died releases its rows after one lease. Work on a
row may well outlast one lease (a slow vendor, a long download), so `Heartbeat` renews the claim every
lease/3 with a compare-and-set on the owner. When a renewal finds the row claimed by someone else, or no
renewal has succeeded for a whole lease (someone else may have taken the row meanwhile), the work is
cancelled and `LeaseLost` raised in its place: a worker that no longer holds a row must stop writing it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from types import TracebackType

log = logging.getLogger("vidgate.jobs")

Renew = Callable[[], Awaitable[bool]]  # True: still ours, renewed; False: the claim is someone else's


class LeaseLost(Exception):
    """The claim on a row passed to another worker (or ran out unrenewed) while this one worked on it."""


def worker_id(kind: str) -> str:
    """A claim owner unique to this process and object: `kind:host:pid:random` (fits `claimed_by`)."""
    return f"{kind}:{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"[:64]


class Heartbeat:
    """`async with Heartbeat(renew, lease_s=…):` renews the claim while the block runs.

    The block is cancelled when the lease is lost, and `LeaseLost` comes out of the `async with` instead
    of the cancellation (a cancellation from elsewhere, e.g. a shutdown, still propagates as such)."""

    def __init__(self, renew: Renew, *, lease_s: float, name: str = "") -> None:
        self._renew = renew
        self.lease_s = lease_s
        self.every = lease_s / 3
        self.name = name
        self.lost = False
        self._task: asyncio.Task[object] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._renewal: asyncio.Future[bool] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("Heartbeat must be used inside a task")
        self._beat = asyncio.create_task(self._run(), name=f"heartbeat-{self.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._beat is not None and self._task is not None
        self._beat.cancel()
        await asyncio.wait([self._beat])
        if self._renewal is not None and not self._renewal.done():
            # a renewal under way ends before the caller goes on (it is never cancelled mid-query: that
            # breaks its database connection); its compare-and-set makes it a no-op after a release
            await asyncio.wait([self._renewal], timeout=self.lease_s)
        if self.lost and exc_type is asyncio.CancelledError and self._task.uncancel() == 0:
            raise LeaseLost(f"the lease on {self.name} was lost") from exc
        return False

    async def _run(self) -> None:
        assert self._task is not None
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.every)
            attempt = loop.time()
            # a slow renewal (a busy database) still counts, as long as it lands before the lease ends; one
            # that does not is left to finish on its own rather than cancelled mid-query
            renewal = self._renewal = asyncio.ensure_future(self._renew())
            renewal.add_done_callback(_retrieve)
            await asyncio.wait([renewal], timeout=max(0.0, renewed + self.lease_s - attempt))
            held: bool | None = None
            if renewal.done() and not renewal.cancelled():
                if renewal.exception() is None:
                    held = renewal.result()
                else:  # a database hiccup: try again, unless the lease ran out meanwhile
                    log.warning("renewing the lease on %s failed: %r", self.name, renewal.exception())
            if held:
                renewed = attempt
                continue
            if held is False or loop.time() - renewed >= self.lease_s:
                log.warning("lease on %s lost; stopping the work on it", self.name)
                self.lost = True
                self._task.cancel()
                return


def _retrieve(renewal: asyncio.Future[bool]) -> None:
    # a renewal nobody waited for any more (the lease ran out first) must not log "exception never retrieved"
    if not renewal.cancelled():
        renewal.exception()
