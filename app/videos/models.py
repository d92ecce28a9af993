from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Video(Base):
    """A video task. The table is also the engine's queue (`next_poll_at`, `claimed_by`, `claimed_until`)."""

    __tablename__ = "videos"
    __table_args__ = (
        Index("ix_videos_owner_order", "owner", "created_ns", "id"),
        Index("ix_videos_queue", "status", "next_poll_at"),
        Index("ix_videos_usage", "created_at", "api_key_id"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    api_key_id: Mapped[str] = mapped_column(String(64), index=True)
    operation: Mapped[str] = mapped_column(String(16), default="create")
    model: Mapped[str] = mapped_column(String(200))  # what the client asked for (echoed)
    provider: Mapped[str] = mapped_column(String(40))
    vendor_model: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel_fp: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the exact credential used
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[str] = mapped_column(String(20))
    seconds: Mapped[str] = mapped_column(String(10))
    quality: Mapped[str] = mapped_column(String(20), default="standard")
    remixed_from_video_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    source_video_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # metadata, characters, inputs
    created_ns: Mapped[int] = mapped_column(BigInteger)  # creation order, finer than a second
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[float] = mapped_column(Float)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # vendor side
    vendor_task_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    vendor_meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    submitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    next_poll_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    claimed_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the worker holding the lease
    nudged_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # the last genuine vendor callback
    poll_count: Mapped[int] = mapped_column(Integer, default=0)
    poll_errors: Mapped[int] = mapped_column(Integer, default=0)
    # accounting: reserved at submit, then charged (reconciled to what was produced) or refunded, once
    reserved_credits: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    charged_credits: Mapped[float | None] = mapped_column(Float, nullable=True)
    settlement: Mapped[str | None] = mapped_column(String(16), nullable=True)  # charged | refunded
    settled_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # assets
    assets: Mapped[dict[str, Any]] = mapped_column(default=dict)  # variant -> {key, bytes, type}
    assets_purged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    deleted_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Character(Base):
    __tablename__ = "characters"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[int] = mapped_column(BigInteger)
    asset_key: Mapped[str | None] = mapped_column(String(300), nullable=True)


class IdempotencyKey(Base):
    """An `Idempotency-Key` sent with a create, kept for 24 hours: the primary key (API key, header value)
    is the unique constraint that lets exactly one of several identical requests store a video."""

    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical request
    resource_id: Mapped[str] = mapped_column(String(80))  # the video it created
    created_at: Mapped[float] = mapped_column(Float, index=True)  # the janitor forgets keys after 24 h
