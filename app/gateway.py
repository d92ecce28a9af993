"""The gateway's long-lived resources: opened once by `serve` (the app's lifespan) and `worker` alike,
shared by requests and the engine, and closed in one sequence by `aclose`.

Opening builds no background work: the task engine and the webhook dispatcher are started by
`app.worker.start_work` (they import this module, so it cannot import them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import GroupCommit, create_engine, create_sessionmaker
from app.invalidation.publisher import Publisher, close_publisher, open_publisher
from app.keys.limits import MemoryRateLimiter, RateLimiter, build_rate_limiter
from app.netguard import public_only_client
from app.observability.metrics import Metrics
from app.providers.registry import ProviderRegistry, build_registry
from app.storage import LocalStorage, Storage
from app.videos.links import LinkSigner, load_or_create_secret

if TYPE_CHECKING:
    from app.videos.engine import TaskEngine
    from app.webhooks.dispatcher import WebhookDispatcher


@dataclass
class Gateway:
    settings: Settings
    db: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    registry: ProviderRegistry
    storage: Storage
    signer: LinkSigner
    http: httpx.AsyncClient
    public_http: httpx.AsyncClient  # for URLs clients chose: connects to public addresses only (netguard)
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    metrics: Metrics = field(default_factory=lambda: Metrics(process_collectors=False))
    rng: random.Random = field(default_factory=random.Random)
    engine: TaskEngine | None = field(default=None)
    webhooks: WebhookDispatcher | None = field(default=None)
    owns_http: bool = field(default=True, repr=False)  # False: `http` was lent by the caller, who closes it
    publisher: Publisher | None = field(default=None)  # tells other processes what this one's writes invalidate
    _group: GroupCommit | None = field(default=None, init=False, repr=False)

    @property
    def group_commit(self) -> GroupCommit:
        """Short compare-and-set writes of concurrent requests and polls share a commit (app.db.GroupCommit)."""
        if self._group is None:
            self._group = GroupCommit(self.sessionmaker)
        return self._group

    @property
    def is_postgres(self) -> bool:
        return self.db.dialect.name == "postgresql"

    def base_url(self, fallback: str | None = None) -> str | None:
        base = self.settings.public_base_url or fallback
        return base.rstrip("/") if base else None

    def image_http(self) -> httpx.AsyncClient:
        """The client that fetches client image URLs (private addresses only when the operator allows them)."""
        return self.http if self.settings.allow_private_image_urls else self.public_http

    def wake_webhooks(self) -> None:
        if self.webhooks is not None:
            self.webhooks.wake()

    def wake_engine(self) -> None:
        if self.engine is not None:
            self.engine.wake()


async def open_gateway(
    settings: Settings, *, http: httpx.AsyncClient | None = None, metrics: Metrics | None = None
) -> Gateway:
    """The resources for `settings`. A lent `http` client (tests choose its transport) is left open by `aclose`."""
    storage_dir = settings.storage_dir
    storage_dir.mkdir(parents=True, exist_ok=True)
    db = create_engine(settings.resolved_database_url)
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(settings.vendor_timeout_s, connect=10.0))
    secret = (
        settings.signing_secret.get_secret_value().encode()
        if settings.signing_secret
        else load_or_create_secret(storage_dir)
    )
    gw = Gateway(
        settings=settings,
        db=db,
        sessionmaker=create_sessionmaker(db),
        registry=build_registry(settings, client),
        storage=build_storage(settings),
        signer=LinkSigner(secret),
        http=client,
        public_http=public_only_client(timeout=httpx.Timeout(settings.vendor_timeout_s, connect=10.0)),
        limiter=build_rate_limiter(settings.redis_url),
        owns_http=http is None,
        publisher=open_publisher(settings, db),
    )
    if metrics is not None:
        gw.metrics = metrics
    return gw


async def aclose(gw: Gateway, *, grace_s: float | None = None) -> None:
    """Stop the engine (work in flight gets `grace_s`, else the engine's default) and the webhook
    dispatcher if they run, then close what `open_gateway` opened."""
    if gw.engine is not None:
        await (gw.engine.stop() if grace_s is None else gw.engine.stop(timeout=grace_s))
    if gw.webhooks is not None:
        await gw.webhooks.stop()
    await close_publisher(gw.db, gw.publisher)
    await gw.limiter.close()
    closer = getattr(gw.storage, "aclose", None)
    if closer is not None:
        await closer()
    if gw.owns_http:
        await gw.http.aclose()
    await gw.public_http.aclose()
    await gw.db.dispose()


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
