"""The operator's config file (`VIDGATE_CONFIG=gateway.yaml`): channels, model aliases and prices.

Env-only setups need no file: every vendor whose credentials are set in the environment becomes one
channel named after the vendor, and the sandbox is a channel too (see `channels_from_settings`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from app.config import Settings
from app.providers.vendors import VENDORS

if TYPE_CHECKING:
    Vendor = str
else:
    Vendor = Literal[tuple(VENDORS)]  # the vendor table's names, in its order
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    pass


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    vendor: Vendor
    credentials: dict[str, str] = Field(default_factory=dict)
    base_url: str | None = None
    models: list[str] | None = None  # None: every model the vendor module declares
    priority: int = 0  # higher is tried first
    weight: int = Field(default=1, ge=0)  # share among channels of equal priority
    enabled: bool = True
    max_rps: float | None = None  # optional cap on this channel's request rate
    # fetch the vendor's own thumbnail and spritesheet where it serves them (two more vendor requests per
    # video) instead of deriving both from the downloaded MP4 when first asked for (app.videos.variants)
    fetch_variants: bool = False
    # how long this channel's tasks usually take at the vendor (seconds): without a vendor estimate, the
    # engine polls a task about then rather than every interval before it
    typical_s: float | None = Field(default=None, gt=0)

    @field_validator("credentials")
    @classmethod
    def _no_blank(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: val for k, val in v.items() if val}

    def missing_credentials(self) -> list[str]:
        return [c for c in VENDORS[self.vendor].credential_fields if not self.credentials.get(c)]


# credits per second; or per resolution class ("720p": 1.0, "default": 0.5); a dict may add "units": credits per
# unit the vendor bills in and reports (Seedance: {"completion_tokens": 0.00002}), charged instead of seconds
Price = float | dict[str, float | dict[str, float]]


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelConfig] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    sandbox: bool | None = None  # None: follow VIDGATE_SANDBOX_ENABLED

    @field_validator("channels")
    @classmethod
    def _unique(cls, v: list[ChannelConfig]) -> list[ChannelConfig]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate channel names: {', '.join(dupes)}")
        return v


def _interpolate(value: Any) -> Any:
    """`${VAR}` in any string is replaced by the environment variable (secrets stay out of the file)."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                raise ConfigError(f"environment variable {m.group(1)} is referenced in the config but not set")
            return os.environ[m.group(1)]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


def load_config(path: Path) -> GatewayConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        config = GatewayConfig.model_validate(_interpolate(raw))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for ch in config.channels:
        missing = ch.missing_credentials()
        if missing:
            raise ConfigError(f"{path}: channel {ch.name!r} ({ch.vendor}) lacks credentials: {', '.join(missing)}")
    return config


def channels_from_settings(settings: Settings) -> list[ChannelConfig]:
    """The env-only setup: one channel per vendor with credentials set."""
    out: list[ChannelConfig] = []
    for spec in VENDORS.values():
        if not spec.credentials:
            continue
        creds: dict[str, str] = {}
        for cred in spec.credentials:
            value = getattr(settings, spec.setting(cred.field))
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if text:
                creds[cred.field] = text
        if len(creds) != len(spec.credentials):
            continue
        models = None
        if spec.open_models:
            models = [m.strip() for m in getattr(settings, spec.setting("models")).split(",") if m.strip()] or None
        out.append(
            ChannelConfig(
                name=spec.name,
                vendor=spec.name,
                credentials=creds,
                base_url=getattr(settings, spec.setting("base_url")),
                models=models,
            )
        )
    return out


def effective_config(settings: Settings) -> GatewayConfig:
    """The config file when one is set (env vendors are added unless the file names that vendor)."""
    config = load_config(Path(settings.config)) if settings.config else GatewayConfig()
    named = {c.name for c in config.channels}
    for ch in channels_from_settings(settings):
        if ch.name not in named:
            config.channels.append(ch)
    return config
