"""The gateway's long-lived objects, built once in the lifespan and shared by requests and the engine."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.keys.limits import MemoryRateLimiter, RateLimiter
from app.observability.metrics import Metrics
from app.providers.registry import ProviderRegistry
from app.storage import Storage
from app.videos.links import LinkSigner

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
