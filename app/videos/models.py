from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, BigInteger, Dialect, Enum, Float, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from app.db import Base
from app.providers.base import VideoStatus

# the status column: a VARCHAR with a CHECK constraint (`ck_videos_video_status`) rather than a native
# PostgreSQL ENUM type, so SQLite and PostgreSQL share one schema and a new status is a constraint change
StatusType = Enum(
    VideoStatus,
    name="video_status",
    native_enum=False,
    create_constraint=True,
    length=16,
    values_callable=lambda members: [m.value for m in members],
    validate_strings=True,
)


class StoredImage(BaseModel):
    """A reference image kept for a task: the client's URL, and/or the storage key of its bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None
    mime: str | None = None
    key: str | None = None


class VideoInputs(BaseModel):
    """What the client asked for beyond the plain columns: everything `build_request` needs to (re)submit.

    Frozen: a change is a new value (`row.inputs = row.inputs.model_copy(update=...)`), which the ORM sees;
    the dicts and lists inside are never mutated in place."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metadata: dict[str, Any] = Field(default_factory=dict)
    characters: list[str] = Field(default_factory=list)  # the characters' names
    image_first: StoredImage | None = None
    image_last: StoredImage | None = None
    source_key: str | None = None  # an uploaded source video (edit/extend), in storage
    segment_seconds: int | None = None  # extend: the new segment's length (`seconds` is the total)
    source_seconds: int | None = None  # extend: the source's length

    @property
    def stored(self) -> bool:
        """Whether any input of the task's was written to storage (so there is something to discard)."""
        return bool(
            self.source_key
            or (self.image_first is not None and self.image_first.key)
            or (self.image_last is not None and self.image_last.key)
        )

    def image(self, name: str) -> StoredImage | None:
        """The stored image named as in its signed link (`first` or `last`)."""
        return {"first": self.image_first, "last": self.image_last}.get(name)


class InputsType(TypeDecorator[VideoInputs]):
    """`VideoInputs` stored as JSON (JSONB on PostgreSQL), validated when read."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: VideoInputs | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.model_dump(mode="json", exclude_none=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> VideoInputs | None:
        if value is None:
            return None
        return VideoInputs.model_validate(value)


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
    status: Mapped[VideoStatus] = mapped_column(StatusType)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    width: Mapped[int] = mapped_column(Integer)  # rendered as `size` "WxH"
    height: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[int] = mapped_column(Integer)  # the whole video's length (rendered as a string)
    quality: Mapped[str] = mapped_column(String(20), default="standard")
    remixed_from_video_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    source_video_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    inputs: Mapped[VideoInputs] = mapped_column(InputsType(), default=VideoInputs)
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
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # submits that failed
    download_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # downloads that failed
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
