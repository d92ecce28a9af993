"""Wire shapes of the admin API: keys (the secret only on create and rotate), usage, channels, tasks."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.db import now
from app.keys.models import ApiKey
from app.videos.models import Video
from app.videos.schemas import VideoError, video_object

INT32 = 2**31 - 1  # the limit columns are INTEGER on PostgreSQL

KeyStatus = Literal["active", "disabled", "expired", "revoked"]
TaskStatus = Literal["queued", "in_progress", "completed", "failed"]

NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL in text: a 400 here, not a 500 at the INSERT


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def check_ip_allowlist(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    entries = _unique(values)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return entries or None  # empty: any address, stored as no list at all


# -- keys ------------------------------------------------------------------------------------------


class _KeyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] | None = Field(
        default=None, description="Models or aliases the key may use; null or [] means every model"
    )
    rpm_limit: int | None = Field(default=None, ge=0, le=INT32, description="Generations started per minute")
    max_concurrent: int | None = Field(default=None, ge=0, le=INT32, description="Unfinished videos at once")
    quota_credits: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Credits it may spend")
    expires_at: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="Unix seconds")
    ip_allowlist: list[str] | None = Field(
        default=None, description="IP addresses or CIDR networks; null or [] means any address"
    )

    @field_validator("ip_allowlist")
    @classmethod
    def _ips(cls, v: list[str] | None) -> list[str] | None:
        return check_ip_allowlist(v)

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _unique(v)


class KeyCreate(_KeyFields):
    """A new API key. Every limit is optional: null means unlimited / unrestricted."""

    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    owner: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="Keys with one owner see the same videos",
    )
    enabled: bool = True


class KeyUpdate(_KeyFields):
    """Only the fields sent change; `null` clears a limit (unlimited again)."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    enabled: bool | None = None

    @field_validator("name", "enabled")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        # validators run only on values sent, so this refuses an explicit null and nothing else
        if v is None:
            raise ValueError("may not be null")
        return v

    def changes(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.model_fields_set}


class KeyOut(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    owner: str
    prefix: str = Field(description="The secret's first characters, for recognising it")
    status: KeyStatus
    enabled: bool
    models: list[str] | None
    rpm_limit: int | None
    max_concurrent: int | None
    quota_credits: float | None
    used_credits: float
    expires_at: float | None
    ip_allowlist: list[str] | None
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    @classmethod
    def of(cls, key: ApiKey, **extra: Any) -> Self:
        return cls(
            id=key.id,
            name=key.name,
            owner=key.owner,
            prefix=key.prefix,
            status=key_status(key),
            enabled=bool(key.enabled),
            models=key.models,
            rpm_limit=key.rpm_limit,
            max_concurrent=key.max_concurrent,
            quota_credits=key.quota_credits,
            used_credits=round(float(key.used_credits or 0.0), 6),
            expires_at=key.expires_at,
            ip_allowlist=key.ip_allowlist,
            created_at=int(key.created_at),
            last_used_at=_ts(key.last_used_at),
            revoked_at=_ts(key.revoked_at),
            **extra,
        )


class KeyWithSecret(KeyOut):
    secret: str = Field(description="The API key itself. Shown this once; only its SHA-256 is stored.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


def key_status(key: ApiKey, *, at: float | None = None) -> KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    if not key.enabled:
        return "disabled"
    if key.expires_at is not None and key.expires_at <= (now() if at is None else at):
        return "expired"
    return "active"


# -- usage -----------------------------------------------------------------------------------------


class UsageTotals(BaseModel):
    tasks: int = 0
    completed: int = 0
    failed: int = 0
    seconds: float = 0.0
    credits_charged: float = 0.0
    credits_reserved: float = Field(default=0.0, description="Held by unfinished tasks")


class UsageRow(UsageTotals):
    api_key_id: str
    key_name: str | None = None
    owner: str | None = None
    model: str


class UsageReport(BaseModel):
    object: Literal["list"] = "list"
    since: float | None
    until: float | None
    data: list[UsageRow]
    totals: UsageTotals


# -- channels --------------------------------------------------------------------------------------


class ChannelOut(BaseModel):
    """A channel from the config (or a retired one that still has unfinished tasks) and its health."""

    object: Literal["channel"] = "channel"
    name: str
    vendor: str
    base_url: str | None
    models: list[str]
    priority: int | None
    weight: int | None
    enabled: bool
    fingerprint: str
    retired: bool = Field(description="No longer configured; polled with its stored credentials")
    health: Literal["ok", "cooling_down", "unknown"] = Field(description="unknown: not yet seen by a server")
    failures: int
    last_error: str | None
    last_error_at: int | None
    cooldown_until: int | None
    last_success_at: int | None
    first_seen: int | None
    last_seen: int | None
    unfinished_tasks: int


class ChannelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ChannelOut]


# -- tasks -----------------------------------------------------------------------------------------


class TaskOut(BaseModel):
    """The public video object plus what only the operator sees."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: str
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    size: str
    seconds: str
    remixed_from_video_id: str | None
    error: VideoError | None
    quality: str
    url: str | None = None
    # admin fields
    owner: str
    api_key_id: str
    operation: str
    channel: str | None
    provider: str
    vendor_model: str
    vendor_task_id: str | None
    reserved_credits: float
    charged_credits: float | None
    settlement: str | None
    updated_at: int
    deleted_at: int | None

    @classmethod
    def of(cls, row: Video, *, url: str | None) -> TaskOut:
        return cls(
            **video_object(row, url=url),
            owner=row.owner,
            api_key_id=row.api_key_id,
            operation=row.operation,
            channel=row.channel,
            provider=row.provider,
            vendor_model=row.vendor_model,
            vendor_task_id=row.vendor_task_id,
            reserved_credits=float(row.reserved_credits or 0.0),
            charged_credits=row.charged_credits,
            settlement=row.settlement,
            updated_at=int(row.updated_at),
            deleted_at=_ts(row.deleted_at),
        )


class TaskList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TaskOut]
    first_id: str | None
    last_id: str | None
    has_more: bool
