"""Settings from the environment (prefix VIDGATE_) and `.env`. `.env.example` lists every field.

The per-vendor settings (`VIDGATE_<PREFIX>_<FIELD>`: credentials, `_BASE_URL`, options) are generated from
the vendor table in `app.providers.vendors`, so a new vendor needs no edit here.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.providers.vendors import settings_fields

PLACEHOLDER_TOKENS = frozenset({"", "changeme", "change-me", "admin", "secret"})

# every vendor's fields (credentials as SecretStr, base URLs, options), e.g. `dashscope_api_key`
_VendorSettings: type[BaseSettings] = create_model(
    "VendorSettings", __base__=BaseSettings, **cast(dict[str, Any], settings_fields())
)


class Settings(_VendorSettings):  # type: ignore[valid-type,misc]
    model_config = SettingsConfigDict(env_prefix="VIDGATE_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"

    # -- core
    config: Path | None = None  # gateway.yaml: channels, aliases, prices (optional)
    database_url: str | None = None  # default: sqlite+aiosqlite under storage_dir
    storage_dir: Path = Path("./data")
    admin_token: SecretStr | None = None
    bootstrap_api_key: SecretStr | None = None
    public_base_url: str | None = None  # e.g. https://vidgate.example.com (no trailing /v1)
    signing_secret: SecretStr | None = None  # signs asset links; default: a key file in storage_dir

    # -- asset storage
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_prefix: str = ""
    s3_presign_ttl_s: int = 300
    s3_part_size_mb: int = 8
    content_redirect: bool = False  # /content answers a redirect to a presigned URL (S3 only)

    # -- limits
    max_body_bytes: int = 256 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_upload_bytes: int = 200 * 1024 * 1024
    allow_private_image_urls: bool = False  # fetch image_url on private/loopback addresses (tests only)
    retention_hours: float = 24.0  # how long finished assets stay downloadable
    url_ttl_seconds: int = 3600  # a signed asset link is valid this long from each retrieve (<= expires_at)

    # -- input bounds (reference images, metadata)
    max_image_pixels: int = 40_000_000  # width x height of a reference image, read from its header
    max_metadata_bytes: int = 16 * 1024  # `metadata` as compact UTF-8 JSON (relay image URLs counted apart)
    max_metadata_keys: int = 64  # top-level keys of `metadata`
    max_metadata_depth: int = 5  # nesting levels, the metadata object itself being the first

    # -- task engine
    run_engine: bool = True
    engine_tick_ms: int = 500
    poll_interval_ms: int = 2000  # first poll delay when the provider gives no hint
    poll_max_interval_ms: int = 30_000
    poll_concurrency: int = 16
    # a task whose vendor has been calling back is polled this rarely: the callback replaces the polls
    poll_callback_interval_ms: int = 300_000
    task_timeout_s: int = 3 * 3600  # a task still unfinished after this is failed
    claim_lease_s: float = 120  # a claim not renewed (heartbeat every lease/3) for this long is released
    janitor_interval_s: int = 60
    param_policy: Literal["nearest", "strict"] = "nearest"
    channel_cooldown_s: float = 30.0  # first cool-down of a failing channel; doubles per failure
    channel_cooldown_max_s: float = 600.0

    # -- access control
    trust_forwarded_for: bool = False  # take the client IP from X-Forwarded-For (behind a proxy)
    trusted_proxies: str = "127.0.0.0/8,::1"  # CIDRs whose X-Forwarded-For is believed (with the above)
    allowed_hosts: str = "localhost,127.0.0.1,[::1]"  # Host names (any port) signed links may be built from
    cors_origins: str = ""  # browser origins allowed to call /v1 (comma-separated; "*" any); empty: no CORS

    # -- sandbox (the built-in offline provider; its renderer's knobs are vendor settings)
    sandbox_enabled: bool = True
    sandbox_aliases: str = "sora-2,sora-2-pro,sora-2-2025-10-06,sora-2-pro-2025-10-06,sora-2-2025-12-08"

    # -- vendors (their own settings are generated; see the module docstring)
    vendor_timeout_s: float = 60.0

    # -- rate limits shared across replicas (in-process when unset)
    redis_url: str | None = None

    # -- client webhooks
    webhook_timeout_s: float = 10.0
    webhook_max_age_hours: float = 24.0  # retries with exponential backoff stop after this
    webhook_concurrency: int = 8
    webhook_tick_ms: int = 500

    # -- observability
    log_level: str = "INFO"
    log_json: bool = False
    metrics_enabled: bool = True

    # -- status-read cache (app.readcache): entries trusted this long; 0 turns the cache and its fast path off
    read_cache_ttl_ms: int = 500
    read_cache_max_videos: int = 50_000  # rendered Video objects kept (LRU)
    read_cache_max_keys: int = 10_000  # authenticated API keys kept (LRU)
    read_cache_max_bytes: int = 64 * 1024 * 1024  # memory bound of the rendered videos
    # while the cross-process invalidation channel is subscribed (app.invalidation), entries are trusted this long
    read_cache_notified_ttl_ms: int = 30_000
    # the channel: auto = PostgreSQL LISTEN/NOTIFY on PostgreSQL, else Redis pub/sub with VIDGATE_REDIS_URL, else none
    read_cache_notify: Literal["auto", "postgres", "redis", "off"] = "auto"

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for cidr in value.split(","):
            if cidr.strip():
                ipaddress.ip_network(cidr.strip(), strict=False)  # a ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_admin_token(self) -> Settings:
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if self.environment == "production" and token is not None and token.lower() in PLACEHOLDER_TOKENS:
            raise ValueError("VIDGATE_ADMIN_TOKEN is a placeholder; set a real secret in production")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # accept the usual sync spellings and pick the async driver
            if url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgres://")
            elif url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
            return url
        return f"sqlite+aiosqlite:///{(self.storage_dir / 'vidgate.db').resolve()}"

    @cached_property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c.strip(), strict=False) for c in self.trusted_proxies.split(",") if c.strip()]

    @cached_property
    def allowed_host_list(self) -> list[str]:
        return [host_only(h) for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def sandbox_alias_list(self) -> list[str]:
        return [a.strip() for a in self.sandbox_aliases.split(",") if a.strip()]


def host_only(value: str) -> str:
    """'Example.com:8000' -> 'example.com', '[::1]:80' -> '[::1]': a Host header or entry without its port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.partition("]")[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def get_settings() -> Settings:
    return Settings()
