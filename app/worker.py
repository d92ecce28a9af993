"""`vidgate worker`: the task engine and the webhook dispatcher without the HTTP API.

Several workers (and `vidgate serve --no-worker` API replicas) cooperate on one PostgreSQL: tasks are
claimed with FOR UPDATE SKIP LOCKED. SIGTERM/SIGINT stop claiming, let work in flight finish for a
grace period and hand back whatever is left.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from app.channels import service as channels
from app.config import Settings
from app.gateway import Gateway, aclose, open_gateway
from app.videos.engine import TaskEngine
from app.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger("vidgate.worker")


async def start_work(gw: Gateway, *, engine: bool = True) -> None:
    """What `serve` and `worker` do with a fresh gateway: record the configured channels, then (unless
    `engine` is False: an API-only replica) start the task engine and the webhook dispatcher."""
    await channels.sync(gw)
    if not engine:
        return
    gw.engine = TaskEngine(gw)
    await gw.engine.start()
    gw.webhooks = WebhookDispatcher(gw)
    await gw.webhooks.start()


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None, grace_s: float = 30.0) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests), or no signals here
            pass
    gw = await open_gateway(settings)
    try:
        await start_work(gw)
        log.info("worker running (%d channels)", len(gw.registry.channels))
        await stop.wait()
        log.info("worker stopping: finishing work in flight for up to %.0f s", grace_s)
    finally:
        await aclose(gw, grace_s=grace_s)
