"""The gateway's long-lived objects, built once in the lifespan and shared by requests and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.providers.registry import ProviderRegistry
from app.storage import Storage
from app.videos.links import LinkSigner

if TYPE_CHECKING:
    from app.videos.engine import TaskEngine


@dataclass
class Gateway:
    settings: Settings
    db: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    registry: ProviderRegistry
    storage: Storage
    signer: LinkSigner
    http: httpx.AsyncClient
    engine: TaskEngine | None = field(default=None)

    @property
    def is_postgres(self) -> bool:
        return self.db.dialect.name == "postgresql"

    def base_url(self, fallback: str | None = None) -> str | None:
        base = self.settings.public_base_url or fallback
        return base.rstrip("/") if base else None

    def wake_engine(self) -> None:
        if self.engine is not None:
            self.engine.wake()
