"""The ASGI application. Nothing is built at import time: `create_app()` and its lifespan do it."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.admin.router import router as admin_router
from app.callbacks.router import router as callbacks_router
from app.channels import service as channels
from app.config import Settings
from app.context import Gateway
from app.db import create_engine, create_sessionmaker
from app.docs import install_docs
from app.errors import install_error_handlers
from app.keys import service as keys
from app.keys.limits import build_rate_limiter
from app.keys.router import router as models_router
from app.middleware import ApiCORSMiddleware, BodyLimitMiddleware, RequestIdMiddleware
from app.netguard import public_only_client
from app.observability import configure_logging, install_observability
from app.providers.registry import build_registry
from app.storage import LocalStorage, Storage
from app.videos.engine import TaskEngine
from app.videos.files import router as files_router
from app.videos.links import LinkSigner, load_or_create_secret
from app.videos.router import router as videos_router
from app.webhooks.dispatcher import WebhookDispatcher
from app.webhooks.router import router as webhooks_router

log = logging.getLogger("vidgate")


async def build_gateway(settings: Settings, *, http: httpx.AsyncClient | None = None) -> Gateway:
    storage_dir = settings.storage_dir
    storage_dir.mkdir(parents=True, exist_ok=True)
    db = create_engine(settings.resolved_database_url)
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(settings.vendor_timeout_s, connect=10.0))
    secret = (
        settings.signing_secret.get_secret_value().encode()
        if settings.signing_secret
        else load_or_create_secret(storage_dir)
    )
    return Gateway(
        settings=settings,
        db=db,
        sessionmaker=create_sessionmaker(db),
        registry=build_registry(settings, client),
        storage=build_storage(settings),
        signer=LinkSigner(secret),
        http=client,
        public_http=public_only_client(timeout=httpx.Timeout(settings.vendor_timeout_s, connect=10.0)),
        limiter=build_rate_limiter(settings.redis_url),
    )


def build_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        from app.storage.s3 import S3Storage

        if not settings.s3_bucket:
            raise ValueError("VIDGATE_STORAGE_BACKEND=s3 needs VIDGATE_S3_BUCKET")
        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
            secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
            prefix=settings.s3_prefix,
            scratch_dir=settings.storage_dir / "tmp",
            content_redirect=settings.content_redirect,
            presign_ttl_s=settings.s3_presign_ttl_s,
            part_size=settings.s3_part_size_mb * 1024 * 1024,
        )
    return LocalStorage(settings.storage_dir / "assets")


def create_app(settings: Settings | None = None, *, http: httpx.AsyncClient | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = await build_gateway(settings, http=http)
        gw.metrics = app.state.metrics
        if settings.bootstrap_api_key is not None and settings.bootstrap_api_key.get_secret_value():
            async with gw.sessionmaker() as s:
                await keys.ensure_key(s, secret=settings.bootstrap_api_key.get_secret_value(), name="bootstrap")
                await s.commit()
        await channels.sync(gw)
        app.state.gateway = gw
        app.state.sessionmaker = gw.sessionmaker
        if settings.run_engine:
            gw.engine = TaskEngine(gw)
            await gw.engine.start()
            gw.webhooks = WebhookDispatcher(gw)
            await gw.webhooks.start()
        # start-up objects are long-lived: keep them out of the collector's full passes (long pauses)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if gw.engine is not None:
                await gw.engine.stop()
            if gw.webhooks is not None:
                await gw.webhooks.stop()
            await gw.limiter.close()
            closer = getattr(gw.storage, "aclose", None)
            if closer is not None:
                await closer()
            if http is None:
                await gw.http.aclose()
            await gw.public_http.aclose()
            await gw.db.dispose()

    app = FastAPI(
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

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    metrics = install_observability(app, settings)
    app.state.metrics = metrics
    if settings.cors_origin_list:  # outermost: errors and preflights carry the CORS headers too
        app.add_middleware(ApiCORSMiddleware, origins=settings.cors_origin_list)
    return app
