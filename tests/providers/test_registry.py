"""The rule "adding a vendor is one module + one VendorSpec row": everything else that names vendors is
either generated from `app.providers.vendors.VENDORS` or checked against it here."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import typing
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from app.channels.config import ChannelConfig, Vendor
from app.config import Settings
from app.providers.base import Cancellable, Recoverable, ServesVariants, VideoProvider
from app.providers.registry import declared_models, enable_hint
from app.providers.vendors import VENDORS, Construct, VendorSpec

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
WITH_SETTINGS = [s for s in VENDORS.values() if s.credentials]


def _module(spec: VendorSpec) -> str:
    return spec.provider.partition(":")[0]


def _build(spec: VendorSpec, tmp_path: Path, client: httpx.AsyncClient) -> VideoProvider:
    options = {opt.field: opt.default for opt in spec.options}
    creds = dict.fromkeys(spec.credential_fields, "x")
    return spec.create(Construct(client, creds, spec.base_url, None, options, tmp_path))


class TestTheTable:
    def test_rows_are_keyed_by_their_name(self) -> None:
        assert all(name == spec.name for name, spec in VENDORS.items())

    @pytest.mark.parametrize("spec", VENDORS.values(), ids=list(VENDORS))
    def test_catalog_models_belong_to_the_vendor(self, spec: VendorSpec) -> None:
        caps = spec.model_caps()
        assert caps, f"{spec.name} declares no model"
        assert {c.provider for c in caps} == {spec.name}
        # a name two APIs sell (Veo on the Gemini API and on Vertex AI) belongs to the first row declaring it
        earlier = list(VENDORS)[: list(VENDORS).index(spec.name) + 1]
        assert all(declared_models()[c.name] in earlier for c in caps)

    @pytest.mark.parametrize("spec", WITH_SETTINGS, ids=[s.name for s in WITH_SETTINGS])
    def test_base_url_default_is_the_adapters(self, spec: VendorSpec) -> None:
        assert spec.base_url == importlib.import_module(_module(spec)).DEFAULT_BASE_URL

    @pytest.mark.parametrize("spec", VENDORS.values(), ids=list(VENDORS))
    async def test_each_row_builds_a_provider(self, spec: VendorSpec, tmp_path: Path) -> None:
        async with httpx.AsyncClient() as client:
            provider = _build(spec, tmp_path, client)
        assert isinstance(provider, VideoProvider)
        assert provider.name == spec.name

    async def test_optional_abilities(self, tmp_path: Path) -> None:
        async with httpx.AsyncClient() as client:
            built = {name: _build(spec, tmp_path, client) for name, spec in VENDORS.items()}
        assert {n for n, p in built.items() if isinstance(p, Recoverable)} == {"kling", "luma"}
        assert {n for n, p in built.items() if isinstance(p, ServesVariants)} == {"openai_compat"}
        cancellable = {"sandbox", "wanxiang", "vidu", "luma", "runway", "seedance"}
        assert {n for n, p in built.items() if isinstance(p, Cancellable)} == cancellable

    def test_enable_hint_names_the_credential_settings(self) -> None:
        hint = enable_hint("kling-v1")
        assert hint is not None
        assert "the Kling vendor" in hint and "VIDGATE_KLING_ACCESS_KEY and VIDGATE_KLING_SECRET_KEY" in hint
        assert "VIDGATE_SANDBOX_ENABLED=true" in (enable_hint("sandbox") or "")
        assert enable_hint("no-such-model") is None


class TestSettingsComeFromTheTable:
    @pytest.mark.parametrize("spec", VENDORS.values(), ids=list(VENDORS))
    def test_settings_expose_every_vendor_field(self, spec: VendorSpec) -> None:
        for name, (_, default) in spec.settings_fields().items():
            assert name in Settings.model_fields, name
            assert Settings.model_fields[name].default == default
        for cred in spec.credentials:
            field = Settings.model_fields[spec.setting(cred.field)]
            assert (SecretStr in typing.get_args(field.annotation)) is cred.secret

    def test_env_names_are_the_documented_ones(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VIDGATE_DASHSCOPE_API_KEY", "sk-env")
        monkeypatch.setenv("VIDGATE_KLING_WEBHOOK_SECRET", "whsec_x")
        monkeypatch.setenv("VIDGATE_OPENAI_MODELS", "a,b")
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.dashscope_api_key.get_secret_value() == "sk-env"  # type: ignore[attr-defined]
        assert settings.kling_webhook_secret.get_secret_value() == "whsec_x"  # type: ignore[attr-defined]
        assert settings.openai_models == "a,b"  # type: ignore[attr-defined]
        assert settings.vidu_base_url == "https://api.vidu.com"  # type: ignore[attr-defined]

    @pytest.mark.parametrize("spec", VENDORS.values(), ids=list(VENDORS))
    def test_env_example_lists_them(self, spec: VendorSpec) -> None:
        listed = set(re.findall(r"^#?\s*(VIDGATE_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
        assert set(spec.env_names()) <= listed


class TestDocsFollowTheTable:
    @pytest.mark.parametrize("spec", WITH_SETTINGS, ids=[s.name for s in WITH_SETTINGS])
    def test_readme_vendor_table_has_its_settings(self, spec: VendorSpec) -> None:
        readme = (ROOT / "README.md").read_text()
        table = readme[readme.index("## Vendors") :].split("\n\n")[2]
        first, *rest = (spec.setting(f).upper() for f in (*spec.credential_fields, "base_url"))
        rows = [line for line in table.splitlines() if f"`VIDGATE_{first}`" in line]
        assert len(rows) == 1, f"README's vendor table has no row for {spec.name}"
        for name in rest:
            assert f"`_{name.removeprefix(spec.settings_prefix.upper() + '_')}`" in rows[0]  # type: ignore[union-attr]

    def test_vendor_lists_in_the_docs_are_the_table(self) -> None:
        names = " | ".join(VENDORS)
        assert f"vendor: wanxiang            # required; {names}" in (ROOT / "gateway.example.yaml").read_text()
        assert f"vendor: wanxiang                     # {names}" in (ROOT / "README.md").read_text()

    def test_gateway_example_has_a_channel_per_vendor_with_its_credentials(self) -> None:
        example = yaml.safe_load((ROOT / "gateway.example.yaml").read_text())
        for spec in VENDORS.values():
            channels = [c for c in example["channels"] if c["vendor"] == spec.name]
            assert channels, f"gateway.example.yaml has no {spec.name} channel"
            assert all(set(c.get("credentials") or {}) == set(spec.credential_fields) for c in channels)


class TestChannelConfig:
    def test_vendor_names_are_exactly_the_table(self) -> None:
        assert typing.get_args(Vendor) == tuple(VENDORS)
        for name in VENDORS:
            ChannelConfig(name="c", vendor=name)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            ChannelConfig(name="c", vendor="klingg")  # type: ignore[arg-type]

    def test_missing_credentials_follow_the_table(self) -> None:
        for spec in VENDORS.values():
            cfg = ChannelConfig(name="c", vendor=spec.name)  # type: ignore[arg-type]
            assert cfg.missing_credentials() == list(spec.credential_fields)


# ---------------------------------------------------------------------------------------------
# Source rules, by reading app/


def _sources() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if "migrations" not in p.parts)


# string literals naming a vendor outside the table and the vendor's own module(s), and why they may
ALLOWED_NAMES = {("app/channels/check.py", "sandbox")}  # the config file's `sandbox:` switch, a key


def _own(path: Path, vendor: str) -> bool:
    rel = path.relative_to(APP / "providers") if path.is_relative_to(APP / "providers") else None
    return rel is not None and (rel.stem == vendor or rel.parts[0] == vendor)


def test_no_module_but_the_table_lists_vendor_names() -> None:
    found: list[str] = []
    for path in _sources():
        if path == APP / "providers" / "vendors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in VENDORS:
                rel = str(path.relative_to(ROOT))
                if not _own(path, node.value) and (rel, node.value) not in ALLOWED_NAMES:
                    found.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert not found, "vendor names belong in app/providers/vendors.py:\n" + "\n".join(found)


# what modules under app/providers may import: the providers package, the stdlib, the HTTP/validation/auth
# libraries, and the sandbox renderer's media libraries
ALLOWED_IMPORTS = {"httpx", "pydantic", "jwt", "google", "av", "numpy", "PIL"}  # google: google-auth (Vertex)
EXCEPTIONS = {
    # the registry builds channels from the settings and the channel config file
    "registry.py": {"app.config", "app.channels.config"},
    # the sandbox renderer probes what it renders, and decodes reference images, with the media package
    "sandbox": {"app.media"},
}


def _imports(tree: ast.AST) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def test_providers_import_no_database_web_or_domain_package() -> None:
    bad: list[str] = []
    for path in sorted((APP / "providers").rglob("*.py")):
        rel = path.relative_to(APP / "providers")
        allowed = EXCEPTIONS.get(rel.parts[0] if len(rel.parts) > 1 else rel.name, set())
        for name in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = name.partition(".")[0]
            if name == "app.providers" or name.startswith("app.providers."):
                continue
            if top in sys.stdlib_module_names or top in ALLOWED_IMPORTS or name in allowed:
                continue
            if any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad, bad
