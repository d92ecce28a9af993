"""Which channels exist (from the config file and the environment) and which model goes where.

A *channel* is one vendor account: a provider instance with its credentials and base URL, the models it
serves, a priority and a weight. Several channels may serve one model; `Route.channels` lists them all
and the videos service orders them by health, priority and weight at submit time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.channels.config import ChannelConfig, GatewayConfig, effective_config
from app.config import Settings
from app.providers.base import VideoProvider
from app.providers.capabilities import ModelCaps
from app.providers.vendors import BUILTIN, VENDORS, Construct, ImageTransport

log = logging.getLogger("vidgate.providers")


@functools.cache
def declared_models() -> dict[str, str]:
    """Every model name some vendor declares (its catalog) -> that vendor; the first row wins."""
    owners: dict[str, str] = {}
    for spec in VENDORS.values():
        for caps in spec.model_caps():
            owners.setdefault(caps.name, spec.name)
    return owners


def enable_hint(model: str) -> str | None:
    """For a model a known vendor declares: which settings enable that vendor. `None` for unknown models.

    The text is the same whether or not that vendor is configured (with other models), so a client
    learns nothing about the gateway's channels from it.
    """
    vendor = declared_models().get(model)
    if vendor is None:
        return None
    spec = VENDORS[vendor]
    how = spec.how_to_enable
    if how is None:
        names = " and ".join(f"VIDGATE_{spec.setting(cred)}".upper() for cred in spec.credential_fields)
        how = f"set {names} (or add a channel with vendor: {vendor} serving it to VIDGATE_CONFIG)"
    return f"Model '{model}' is served by the {spec.title} vendor, which is not enabled for it on this gateway: {how}."


def fingerprint(vendor: str, base_url: str | None, credentials: dict[str, str]) -> str:
    material = "\n".join([vendor, base_url or "", *(f"{k}={v}" for k, v in sorted(credentials.items()))])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass
class Channel:
    name: str
    vendor: str
    provider: VideoProvider
    models: dict[str, ModelCaps]
    image_transport: ImageTransport
    fingerprint: str
    base_url: str | None = None
    priority: int = 0
    weight: int = 1
    enabled: bool = True
    max_rps: float | None = None  # cap on requests to the vendor through this channel
    fetch_variants: bool = False  # take the vendor's thumbnail/spritesheet (ServesVariants) over derived ones
    typical_s: float | None = None  # how long its tasks usually take (the engine's first guess without an ETA)
    credentials: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Route:
    """A model name as the client sent it, resolved to its capabilities and every channel serving it."""

    requested: str
    caps: ModelCaps
    channels: tuple[Channel, ...]

    @property
    def image_transport(self) -> str:
        # bytes when any candidate needs bytes; URL-only only when every candidate is URL-only
        kinds = {c.image_transport for c in self.channels}
        if "bytes" in kinds:
            return "bytes"
        if kinds == {"url"}:
            return "url"
        return "base64" if "base64" in kinds else "either"


@dataclass
class ProviderRegistry:
    channels: dict[str, Channel] = field(default_factory=dict)
    models: dict[str, ModelCaps] = field(default_factory=dict)
    serving: dict[str, list[Channel]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    prices: dict[str, Any] = field(default_factory=dict)
    retired: dict[str, Channel] = field(default_factory=dict)  # rebuilt from stored snapshots
    created: int = field(default_factory=lambda: int(time.time()))

    def add(self, channel: Channel) -> None:
        self.channels[channel.name] = channel
        for name, caps in channel.models.items():
            self.models.setdefault(name, caps)
            self.serving.setdefault(name, []).append(channel)

    def alias(self, alias: str, target: str) -> None:
        if alias not in self.models and target in self.models:
            self.aliases[alias] = target

    def names(self) -> list[str]:
        """Every model name a client may send: models, then aliases."""
        return sorted(self.models) + sorted(a for a in self.aliases if a not in self.models)

    def target(self, name: str) -> str | None:
        return name if name in self.models else self.aliases.get(name)

    def resolve(self, name: str) -> Route | None:
        target = self.target(name)
        if target is None:
            return None
        channels = tuple(c for c in self.serving.get(target, []) if c.enabled)
        if not channels:
            return None
        return Route(name, self.models[target], channels)

    def by_fingerprint(self, fp: str | None) -> Channel | None:
        if fp is None:
            return None
        for ch in self.channels.values():
            if ch.fingerprint == fp:
                return ch
        return self.retired.get(fp)

    @property
    def providers(self) -> dict[str, VideoProvider]:
        return {name: ch.provider for name, ch in self.channels.items()}


def build_channel(cfg: ChannelConfig, settings: Settings, client: httpx.AsyncClient) -> Channel:
    spec = VENDORS[cfg.vendor]
    provider = spec.create(
        Construct(
            client=client,
            credentials=dict(cfg.credentials),
            base_url=cfg.base_url,
            models=tuple(cfg.models) if cfg.models else None,
            options={opt.field: getattr(settings, spec.setting(opt.field)) for opt in spec.options},
            storage_dir=Path(settings.storage_dir),
        )
    )
    caps = {c.name: c for c in spec.model_caps(tuple(cfg.models) if cfg.models else None)}
    if cfg.models is not None:
        unknown = [m for m in cfg.models if m not in caps]
        if unknown:
            raise ValueError(f"channel {cfg.name!r}: {cfg.vendor} has no model(s) {', '.join(unknown)}")
        caps = {m: caps[m] for m in cfg.models}
    return Channel(
        name=cfg.name,
        vendor=cfg.vendor,
        provider=provider,
        models=caps,
        image_transport=spec.image_transport,
        # a vendor without credentials (the sandbox): its channel's name tells its channels apart
        fingerprint=fingerprint(
            cfg.vendor, cfg.base_url or (cfg.name if not spec.credentials else None), cfg.credentials
        ),
        base_url=cfg.base_url,
        priority=cfg.priority,
        max_rps=cfg.max_rps,
        fetch_variants=cfg.fetch_variants,
        typical_s=cfg.typical_s,
        weight=cfg.weight,
        enabled=cfg.enabled,
        credentials=dict(cfg.credentials),
    )


def build_registry(
    settings: Settings, client: httpx.AsyncClient, *, config: GatewayConfig | None = None
) -> ProviderRegistry:
    config = config or effective_config(settings)
    registry = ProviderRegistry(prices=dict(config.prices))
    for cfg in config.channels:
        registry.add(build_channel(cfg, settings, client))
        log.info("channel %s (%s) enabled", cfg.name, cfg.vendor)
    sandbox_on = config.sandbox if config.sandbox is not None else settings.sandbox_enabled
    if sandbox_on and BUILTIN not in registry.channels:
        registry.add(build_channel(ChannelConfig(name=BUILTIN, vendor=BUILTIN), settings, client))
    for alias, target in config.aliases.items():
        if target not in registry.models:
            raise ValueError(f"alias {alias!r} points at {target!r}, which no channel serves")
        registry.aliases[alias] = target
    if BUILTIN in registry.models:  # the sandbox's one model has its name
        # SDK defaults (`sora-2`) work out of the box, unless a real upstream or an alias serves them
        for alias in settings.sandbox_alias_list:
            if alias not in registry.aliases:
                registry.alias(alias, BUILTIN)
    return registry
