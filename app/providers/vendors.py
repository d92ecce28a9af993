"""The one table of vendors: every fact about a vendor that code outside its own module needs.

Adding a vendor is one module in `app/providers/` plus one `VendorSpec` row here (and its fake server
in `tests/fakes/`). Everything else reads this table: the settings (`VIDGATE_<PREFIX>_<FIELD>`, generated
in `app.config`), the channel config's vendor names and credential keys, `vidgate config check`, the
registry that builds channels and routes models, the enable hints, and the vendor callbacks.

This module sits below `app.config` (which generates the vendor settings from it) and `app.channels`, so it
imports neither: only the providers' own value types. Vendor modules are imported when a row is first used
(`spec.model_caps()`, `spec.create(...)`), not when the settings are.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import SecretStr

from app.providers.base import VideoProvider

if TYPE_CHECKING:
    from app.providers.capabilities import ModelCaps

# how the service hands reference images to a vendor: bytes it fetched, or a URL the vendor fetches itself
ImageTransport = Literal["bytes", "base64", "url", "either"]
# "token": the vendor signs nothing; the unguessable per-task token in the callback path is the check
CallbackScheme = Literal["vidu_hmac", "standard_webhooks", "token"]


@dataclass(frozen=True)
class Credential:
    """A credential field: the adapter's constructor keyword and the config file's `credentials:` key."""

    field: str
    secret: bool = True  # a SecretStr setting (never logged or echoed)


@dataclass(frozen=True)
class Option:
    """A per-vendor setting that is not a credential (`VIDGATE_<PREFIX>_<FIELD>`)."""

    field: str
    type: Any
    default: Any


@dataclass(frozen=True)
class Callback:
    """The vendor calls back on task changes, signed with `scheme`. The key is a channel credential
    (`credential`, required), or an optional setting (`setting`; unset: the path token alone is checked),
    or neither (scheme "token": the path token alone). `challenge`: the JSON field of the vendor's URL
    verification request, which the callback route echoes back as `{challenge: value}` (MiniMax)."""

    scheme: CallbackScheme
    credential: str | None = None
    setting: str | None = None
    challenge: str | None = None


@dataclass(frozen=True)
class Construct:
    """What building one channel's provider may use."""

    client: httpx.AsyncClient
    credentials: Mapping[str, str]
    base_url: str | None
    models: tuple[str, ...] | None  # the channel's model list (None: every model of the vendor)
    options: Mapping[str, Any]  # the vendor's `Option` settings, by field
    storage_dir: Path


@dataclass(frozen=True)
class VendorSpec:
    """One vendor. `provider` and `catalog` are "module:attribute" references, loaded on first use."""

    name: str  # as channels name it (`vendor:` in the config file) and as tasks record it
    title: str  # how messages and hints name it
    provider: str  # the VideoProvider class: Class(client, **credentials[, base_url=][, models=])
    catalog: str  # its tuple of ModelCaps
    image_transport: ImageTransport
    credentials: tuple[Credential, ...] = ()
    settings_prefix: str | None = None  # VIDGATE_<PREFIX>_<FIELD>; None: the vendor has no settings
    base_url: str | None = None  # the default of VIDGATE_<PREFIX>_BASE_URL
    options: tuple[Option, ...] = ()
    # "module:function" giving the caps of any names a channel lists: the vendor serves whatever names its
    # channel lists (in env-only setups, its `models` option)
    caps_for: str | None = None
    callback: Callback | None = None
    strict_params: bool = False  # a size or duration it cannot do is a 400, never snapped
    how_to_enable: str | None = None  # for the enable hint; default: set its credential settings
    make: Callable[[Construct], VideoProvider] | None = None  # default: the constructor convention above

    def setting(self, field: str) -> str:
        """The Settings attribute of one of this vendor's fields (env name: VIDGATE_ + upper case)."""
        if self.settings_prefix is None:
            raise KeyError(f"{self.name} has no settings")
        return f"{self.settings_prefix}_{field}"

    @property
    def credential_fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.credentials)

    def settings_fields(self) -> dict[str, tuple[Any, Any]]:
        """The Settings fields this vendor contributes: name -> (type, default)."""
        if self.settings_prefix is None:
            return {}
        out: dict[str, tuple[Any, Any]] = {}
        for cred in self.credentials:
            out[self.setting(cred.field)] = (SecretStr | None if cred.secret else str | None, None)
        if self.base_url is not None:
            out[self.setting("base_url")] = (str, self.base_url)
        for opt in self.options:
            out[self.setting(opt.field)] = (opt.type, opt.default)
        return out

    def env_names(self) -> list[str]:
        return [f"VIDGATE_{name.upper()}" for name in self.settings_fields()]

    @property
    def open_models(self) -> bool:
        return self.caps_for is not None

    def model_caps(self, names: tuple[str, ...] | None = None) -> tuple[ModelCaps, ...]:
        """Its catalog; for an open-models vendor given a channel's names, the caps of those names."""
        if names and self.caps_for is not None:
            return _load(self.caps_for)(names)  # type: ignore[no-any-return]
        return _load(self.catalog)  # type: ignore[no-any-return]

    def create(self, c: Construct) -> VideoProvider:
        if self.make is not None:
            return self.make(c)
        kwargs: dict[str, Any] = dict(c.credentials)
        if c.base_url:
            kwargs["base_url"] = c.base_url.rstrip("/")
        if self.open_models and c.models:
            kwargs["models"] = tuple(c.models)
        return _load(self.provider)(c.client, **kwargs)  # type: ignore[no-any-return]


@functools.cache
def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _sandbox(c: Construct) -> VideoProvider:
    cls = _load("app.providers.sandbox:SandboxProvider")
    return cls(work_dir=c.storage_dir / "sandbox", **c.options)  # type: ignore[no-any-return]


def _vertex(c: Construct) -> VideoProvider:
    """Vertex takes its location from `VIDGATE_VERTEX_LOCATION` (an option: it has a default)."""
    kwargs: dict[str, Any] = {**c.credentials, "location": c.options["location"]}
    if c.base_url:
        kwargs["base_url"] = c.base_url.rstrip("/")
    return _load("app.providers.vertex:VertexProvider")(c.client, **kwargs)  # type: ignore[no-any-return]


# the built-in vendor: a channel of its own (named after it) unless `sandbox: false` / VIDGATE_SANDBOX_ENABLED=false
BUILTIN = "sandbox"

_API_KEY = (Credential("api_key"),)
_AK_SK = (Credential("access_key"), Credential("secret_key"))

VENDORS: dict[str, VendorSpec] = {
    spec.name: spec
    for spec in (
        VendorSpec(
            name=BUILTIN,
            title="built-in sandbox",
            provider="app.providers.sandbox:SandboxProvider",
            catalog="app.providers.sandbox:MODELS",
            image_transport="bytes",  # the service hands it image bytes (it fetches image_url itself)
            settings_prefix="sandbox",
            options=(Option("latency_ms", int, 2000), Option("progress_steps", int, 4), Option("fps", int, 24)),
            strict_params=True,
            how_to_enable="set VIDGATE_SANDBOX_ENABLED=true (or sandbox: true in VIDGATE_CONFIG)",
            make=_sandbox,
        ),
        VendorSpec(
            name="openai_compat",
            title="OpenAI-compatible",
            provider="app.providers.openai_compat:OpenAICompatProvider",
            catalog="app.providers.openai_compat:MODELS",
            # bytes go up as the `input_reference` file part, URLs as input_reference[image_url]
            image_transport="either",
            credentials=_API_KEY,
            settings_prefix="openai",
            base_url="https://api.openai.com/v1",
            # comma-separated names the upstream serves; empty: the Sora models
            options=(Option("models", str, ""),),
            caps_for="app.providers.openai_compat:model_caps",
        ),
        VendorSpec(
            name="wanxiang",
            title="Aliyun Wanxiang",
            provider="app.providers.wanxiang:WanxiangProvider",
            catalog="app.providers.wanxiang:MODELS",
            image_transport="either",  # a public URL or a `data:{mime};base64,…` URI for every image field (§4.1)
            credentials=_API_KEY,
            settings_prefix="dashscope",
            base_url="https://dashscope.aliyuncs.com",
        ),
        VendorSpec(
            name="kling",
            title="Kling",
            provider="app.providers.kling:KlingProvider",
            catalog="app.providers.kling:MODELS",
            image_transport="either",  # http(s) URL or raw base64, never a data: URL
            credentials=_AK_SK,
            settings_prefix="kling",
            base_url="https://api-singapore.klingai.com",
            options=(Option("webhook_secret", SecretStr | None, None),),  # verifies Kling's signed callbacks
            callback=Callback("standard_webhooks", setting="webhook_secret"),
        ),
        VendorSpec(
            name="jimeng",
            title="Jimeng (Volcengine)",
            provider="app.providers.jimeng:JimengProvider",
            catalog="app.providers.jimeng:MODELS",
            image_transport="either",  # §2.2: `binary_data_base64` or `image_urls`
            credentials=_AK_SK,
            settings_prefix="jimeng",
            base_url="https://visual.volcengineapi.com",
        ),
        VendorSpec(
            name="vidu",
            title="Vidu",
            provider="app.providers.vidu:ViduProvider",
            catalog="app.providers.vidu:MODELS",
            image_transport="either",  # a public URL or a `data:image/...;base64,` URI in `images[]`
            credentials=_API_KEY,
            settings_prefix="vidu",
            base_url="https://api.vidu.com",
            callback=Callback("vidu_hmac", credential="api_key"),  # signed with the API token of the task
        ),
        VendorSpec(
            name="luma",
            title="Luma Dream Machine",
            provider="app.providers.luma:LumaProvider",
            catalog="app.providers.luma:MODELS",
            image_transport="url",  # keyframes take http(s) URLs only: uploads go as signed vidgate links
            credentials=_API_KEY,
            settings_prefix="luma",
            base_url="https://api.lumalabs.ai/dream-machine/v1",
            callback=Callback("token"),  # Luma POSTs the Generation to callback_url, unsigned
        ),
        VendorSpec(
            name="runway",
            title="Runway",
            provider="app.providers.runway:RunwayProvider",
            catalog="app.providers.runway:MODELS",
            # `promptImage`: a data URI under 5 MB, else an HTTPS URL on a domain (a signed vidgate link)
            image_transport="either",
            credentials=_API_KEY,
            settings_prefix="runway",
            base_url="https://api.dev.runwayml.com",  # not api.runwayml.com
        ),
        VendorSpec(
            name="seedance",
            title="Seedance (Volcengine Ark / BytePlus)",
            provider="app.providers.seedance:SeedanceProvider",
            catalog="app.providers.seedance:MODELS",
            image_transport="either",  # a URL as-is, bytes inline as a `data:image/<fmt>;base64,` URI (§4.2)
            credentials=_API_KEY,
            settings_prefix="seedance",
            # BytePlus ModelArk (international): https://ark.ap-southeast.bytepluses.com
            base_url="https://ark.cn-beijing.volces.com",
            callback=Callback("token"),  # Ark POSTs the task to `callback_url` and signs nothing
        ),
        VendorSpec(
            name="gemini",
            title="Google Veo (Gemini API)",
            provider="app.providers.gemini:GeminiProvider",
            catalog="app.providers.gemini:MODELS",
            image_transport="bytes",  # inline `bytesBase64Encoded` only; the API fetches no URLs
            credentials=_API_KEY,
            settings_prefix="gemini",
            base_url="https://generativelanguage.googleapis.com",
        ),
        VendorSpec(
            name="vertex",
            title="Google Veo (Vertex AI)",
            provider="app.providers.vertex:VertexProvider",
            catalog="app.providers.vertex:MODELS",
            image_transport="bytes",  # inline `bytesBase64Encoded` (gcsUri needs Cloud Storage: out of scope)
            # the key file's path is no secret (the file is); the project is part of every API path
            credentials=(Credential("credentials_file", secret=False), Credential("project", secret=False)),
            settings_prefix="vertex",
            base_url="https://{location}-aiplatform.googleapis.com",  # a template the adapter fills
            options=(Option("location", str, "us-central1"),),
            make=_vertex,
        ),
        VendorSpec(
            name="minimax",
            title="MiniMax Hailuo",
            provider="app.providers.minimax:MiniMaxProvider",
            catalog="app.providers.minimax:MODELS",
            image_transport="either",  # §4.1: a public URL or a `data:image/...;base64,` URL
            credentials=_API_KEY,
            settings_prefix="minimax",
            base_url="https://api.minimax.io",  # China: https://api.minimaxi.com (keys are per platform)
            # §9: unsigned; MiniMax first POSTs {"challenge": ...} and wants it echoed within 3 s
            callback=Callback("token", challenge="challenge"),
        ),
    )
}


def settings_fields() -> dict[str, tuple[Any, Any]]:
    """Every vendor's Settings fields, for `app.config`."""
    out: dict[str, tuple[Any, Any]] = {}
    for row in VENDORS.values():
        out.update(row.settings_fields())
    return out
