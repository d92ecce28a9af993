from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ApiKey(Base):
    """An API key. Only a SHA-256 of the secret and a display prefix are stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    models: Mapped[list[str] | None] = mapped_column(nullable=True)  # None → every model
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # access control (None = unlimited)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ip_allowlist: Mapped[list[str] | None] = mapped_column(nullable=True)
    quota_credits: Mapped[float | None] = mapped_column(Float, nullable=True)
    used_credits: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models
