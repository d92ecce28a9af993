"""Which providers exist (built from settings) and which model goes where."""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from app.providers.base import VideoProvider
from app.providers.capabilities import ModelCaps
from app.providers.sandbox import MODELS as SANDBOX_MODELS
from app.providers.sandbox import SandboxProvider

log = logging.getLogger("vidgate.providers")


@dataclass(frozen=True)
class Route:
    """A model name as the client sent it, resolved to a provider and the vendor's model."""

    requested: str
    caps: ModelCaps
    provider: VideoProvider
    image_transport: str  # "url" | "base64" | "either" | "bytes"


@dataclass
class ProviderRegistry:
    providers: dict[str, VideoProvider] = field(default_factory=dict)
    models: dict[str, ModelCaps] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    image_transport: dict[str, str] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))

    def add(self, provider: VideoProvider, models: tuple[ModelCaps, ...], image_transport: str) -> None:
        self.providers[provider.name] = provider
        self.image_transport[provider.name] = image_transport
        for caps in models:
            self.models.setdefault(caps.name, caps)

    def alias(self, alias: str, target: str) -> None:
        if alias not in self.models and target in self.models:
            self.aliases[alias] = target

    def names(self) -> list[str]:
        """Every model name a client may send: models, then aliases."""
        return sorted(self.models) + sorted(a for a in self.aliases if a not in self.models)

    def resolve(self, name: str) -> Route | None:
        target = name if name in self.models else self.aliases.get(name)
        if target is None:
            return None
        caps = self.models[target]
        provider = self.providers[caps.provider]
        return Route(name, caps, provider, self.image_transport.get(caps.provider, "either"))

    def get(self, provider_name: str) -> VideoProvider | None:
        return self.providers.get(provider_name)


# (settings prefix, module, class, credential fields → constructor kwargs)
_VENDORS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("openai", "app.providers.openai_compat", "OpenAICompatProvider", {"openai_api_key": "api_key"}),
    ("dashscope", "app.providers.wanxiang", "WanxiangProvider", {"dashscope_api_key": "api_key"}),
    (
        "kling",
        "app.providers.kling",
        "KlingProvider",
        {"kling_access_key": "access_key", "kling_secret_key": "secret_key"},
    ),
    (
        "jimeng",
        "app.providers.jimeng",
        "JimengProvider",
        {"jimeng_access_key": "access_key", "jimeng_secret_key": "secret_key"},
    ),
    ("vidu", "app.providers.vidu", "ViduProvider", {"vidu_api_key": "api_key"}),
)


def build_registry(settings: Settings, client: httpx.AsyncClient) -> ProviderRegistry:
    registry = ProviderRegistry()
    for prefix, module_name, class_name, creds in _VENDORS:
        values = {field_name: getattr(settings, field_name) for field_name in creds}
        if not all(v is not None and v.get_secret_value() for v in values.values()):
            continue
        module = importlib.import_module(module_name)
        kwargs: dict[str, Any] = {creds[k]: v.get_secret_value() for k, v in values.items()}
        kwargs["base_url"] = getattr(settings, f"{prefix}_base_url").rstrip("/")
        if prefix == "openai" and settings.openai_model_list:
            kwargs["models"] = tuple(settings.openai_model_list)
        provider = getattr(module, class_name)(client, **kwargs)
        models = getattr(provider, "models", None) or module.MODELS
        registry.add(provider, tuple(models), getattr(module, "IMAGE_TRANSPORT", "either"))
        log.info("provider enabled: %s (%d models)", provider.name, len(models))
    if settings.sandbox_enabled:
        sandbox = SandboxProvider(
            work_dir=Path(settings.storage_dir) / "sandbox",
            latency_ms=settings.sandbox_latency_ms,
            progress_steps=settings.sandbox_progress_steps,
            fps=settings.sandbox_fps,
        )
        registry.add(sandbox, SANDBOX_MODELS, "bytes")
        # SDK defaults (`sora-2`) work out of the box, unless a real upstream serves them
        for alias in settings.sandbox_alias_list:
            registry.alias(alias, "sandbox")
    return registry
