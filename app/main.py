"""The ASGI application. Nothing is built at import time: `create_app()` and its lifespan do it.

The lifespan commits once, before any request: the bootstrap API key, when one is configured."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.admin.router import router as admin_router
from app.callbacks.router import router as callbacks_router
from app.config import Settings
from app.dashboard.router import router as dashboard_router
from app.docs import install_docs
from app.errors import install_error_handlers
from app.gateway import aclose, open_gateway
from app.invalidation import new_sender
from app.invalidation.listener import start_listener
from app.keys import service as keys
from app.keys.router import router as models_router
from app.middleware import ApiCORSMiddleware, BodyLimitMiddleware, RequestIdMiddleware
from app.observability import configure_logging, install_observability
from app.observability.health import router as health_router
from app.readcache import ReadCache
from app.readcache import attach as attach_read_cache
from app.readcache import detach as detach_read_cache
from app.videos import hotread
from app.videos.files import router as files_router
from app.videos.router import router as videos_router
from app.webhooks.router import router as webhooks_router
from app.worker import start_work

log = logging.getLogger("vidgate")


class VidgateApp(FastAPI):
    """FastAPI with the status poll's lean path (app.videos.hotread) in front of everything else."""

    hot_read: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot_read is not None and scope["type"] == "http":
            scope["app"] = self  # as Starlette sets it: the lean path reads app.state
            await self.hot_read(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, http: httpx.AsyncClient | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = await open_gateway(settings, http=http, metrics=app.state.metrics)
        attach_read_cache(gw.db.sync_engine, read_cache)  # this process's writers keep it coherent
        # and the other processes' (app.invalidation): while subscribed, entries are trusted for long
        sender = gw.publisher.sender if gw.publisher is not None else new_sender()
        listener = start_listener(read_cache, settings, gw.db, sender=sender)
        app.state.read_cache_listener = listener
        try:
            bootstrap = settings.bootstrap_api_key
            if bootstrap is not None and bootstrap.get_secret_value():
                async with gw.sessionmaker() as s:
                    await keys.ensure_key(s, secret=bootstrap.get_secret_value(), name="bootstrap")
                    await s.commit()
            app.state.gateway = gw
            app.state.sessionmaker = gw.sessionmaker
            await start_work(gw, engine=settings.run_engine)
            # start-up objects are long-lived: keep them out of the collector's full passes (long pauses)
            gc.collect()
            gc.freeze()
            yield
        finally:
            if listener is not None:
                await listener.aclose()
            detach_read_cache(gw.db.sync_engine)
            read_cache.clear()
            await aclose(gw)

    app = VidgateApp(
        title="vidgate",
        version="0.1.0",
        description="OpenAI-compatible video generation gateway (`/v1/videos`).",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from local files, not a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    app.include_router(videos_router)
    app.include_router(models_router)
    app.include_router(files_router)
    app.include_router(webhooks_router)
    app.include_router(callbacks_router)
    app.include_router(admin_router)
    app.include_router(dashboard_router)
    app.include_router(health_router)

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    metrics = install_observability(app, settings)
    app.state.metrics = metrics
    if settings.cors_origin_list:  # outermost: errors and preflights carry the CORS headers too
        app.add_middleware(ApiCORSMiddleware, origins=settings.cors_origin_list)
    # in front of the whole stack: the status poll's lean path (it passes everything else, CORS requests too, inward)
    read_cache = ReadCache(
        ttl_ms=settings.read_cache_ttl_ms,
        max_videos=settings.read_cache_max_videos,
        max_keys=settings.read_cache_max_keys,
        max_bytes=settings.read_cache_max_bytes,
        notified_ttl_ms=settings.read_cache_notified_ttl_ms,
    )
    read_cache.register_metrics(metrics.registry)
    app.state.read_cache = read_cache
    hotread.install(app, read_cache, metrics=settings.metrics_enabled, cors=bool(settings.cors_origin_list))
    return app
