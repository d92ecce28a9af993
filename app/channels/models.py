from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ChannelRecord(Base):
    """Every channel the gateway has run with, keyed by the fingerprint of (vendor, base URL, credentials).

    Tasks remember the fingerprint of the channel that created them, so they are polled with that exact
    credential even after the channel list changes; the credentials are kept encrypted for that purpose.
    The health columns are shared by all replicas.
    """

    __tablename__ = "channels"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str] = mapped_column(String(40))
    base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    models: Mapped[list[str] | None] = mapped_column(nullable=True)
    credentials_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cooldown_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_success_at: Mapped[float | None] = mapped_column(Float, nullable=True)
