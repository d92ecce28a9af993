"""`vidgate config check`: every problem in a channel config file, each with its place in the file.

`load_config` stops at the first problem and names pydantic's locations; an operator editing the file
wants all of them at once, in the file's own terms: `channels[1].vendor: unknown vendor 'klingg'`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.channels.config import _ENV_REF, ChannelConfig, GatewayConfig
from app.providers.vendors import BUILTIN, VENDORS


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def vendor_models(vendor: str) -> list[str] | None:
    """The model names a vendor declares; None when it serves whatever names the channel lists."""
    spec = VENDORS[vendor]
    if spec.open_models:
        return None
    return [m.name for m in spec.model_caps()]


def _unset_vars(value: Any, loc: tuple[Any, ...], env: Mapping[str, str], out: list[str]) -> None:
    if isinstance(value, str):
        for var in _ENV_REF.findall(value):
            if var not in env:
                out.append(f"{_where(loc)}: environment variable {var} is referenced but not set")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _unset_vars(item, (*loc, i), env, out)
    elif isinstance(value, dict):
        for key, item in value.items():
            _unset_vars(item, (*loc, key), env, out)


def _unknown_keys(raw: Mapping[str, Any], model: type[BaseModel], loc: tuple[Any, ...], out: list[str]) -> None:
    known = sorted(model.model_fields)
    for key in raw:
        if key not in model.model_fields:
            out.append(f"{_where((*loc, key))}: unknown key {key!r} (known: {', '.join(known)})")


def _check_channel(raw: Any, i: int, out: list[str]) -> str | None:
    """Keys, vendor, credentials and models of one channel; returns its vendor when that is known."""
    loc: tuple[Any, ...] = ("channels", i)
    if not isinstance(raw, dict):
        out.append(f"{_where(loc)}: a channel must be a mapping (name, vendor, credentials, ...)")
        return None
    _unknown_keys(raw, ChannelConfig, loc, out)
    vendor = raw.get("vendor")
    if vendor is None:
        out.append(f"{_where((*loc, 'vendor'))}: missing (known: {', '.join(sorted(VENDORS))})")
        return None
    if vendor not in VENDORS:
        out.append(f"{_where((*loc, 'vendor'))}: unknown vendor {vendor!r} (known: {', '.join(sorted(VENDORS))})")
        return None
    needed = VENDORS[vendor].credential_fields
    creds = raw.get("credentials") or {}
    if isinstance(creds, dict):
        for key in creds:
            if key not in needed:
                known = ", ".join(needed) or "none"
                out.append(f"{_where((*loc, 'credentials', key))}: unknown credential for {vendor} (known: {known})")
        for key in needed:
            if not creds.get(key):
                out.append(f"{_where((*loc, 'credentials'))}: {vendor} needs {key!r}")
    models = raw.get("models")
    declared = vendor_models(vendor)
    if isinstance(models, list) and declared is not None:
        for j, model in enumerate(models):
            if model not in declared:
                out.append(
                    f"{_where((*loc, 'models', j))}: unknown model {model!r} for vendor {vendor} "
                    f"(known: {', '.join(declared)})"
                )
    return str(vendor)


def _served_models(raw_channels: list[Any]) -> set[str] | None:
    served: set[str] = set()
    for raw in raw_channels:
        if not isinstance(raw, dict) or raw.get("vendor") not in VENDORS:
            return None  # already reported; alias checks would only add noise
        models = raw.get("models")
        declared = vendor_models(raw["vendor"])
        if isinstance(models, list):
            served |= {m for m in models if isinstance(m, str)}
        elif declared is not None:
            served |= set(declared)
    return served


def check_config(path: Path, env: Mapping[str, str] | None = None, *, sandbox_default: bool = True) -> list[str]:
    """Every problem found in the config file at `path`; empty when the gateway would accept it."""
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        return [f"cannot read the file: {exc.strerror or exc}"]
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {' '.join(str(exc).split())}"]
    if not isinstance(raw, dict):
        return ["(top level): must be a mapping with channels, aliases, prices, sandbox"]
    out: list[str] = []
    _unknown_keys(raw, GatewayConfig, (), out)
    _unset_vars(raw, (), env, out)
    filled = _fill_vars(raw, env)  # a variable set to "" is a blank credential, as the loader sees it
    channels = filled.get("channels") or []
    if not isinstance(channels, list):
        out.append("channels: must be a list of channels")
        channels = []
    for i, ch in enumerate(channels):
        _check_channel(ch, i, out)

    # everything else (types, names, weights, duplicate names) as the loader validates it;
    # what was reported above is not repeated
    try:
        GatewayConfig.model_validate(filled)
    except ValidationError as exc:
        for err in exc.errors():
            if err["type"] == "extra_forbidden" or (err["loc"][-1:] == ("vendor",) and err["type"] == "literal_error"):
                continue
            if err["type"] == "missing" and err["loc"][-1:] == ("vendor",):
                continue
            msg = str(err["msg"]).removeprefix("Value error, ")
            out.append(f"{_where(err['loc'])}: {msg}")

    served = _served_models(channels)
    sandbox = filled.get("sandbox")
    if served is not None and (sandbox if isinstance(sandbox, bool) else sandbox_default):
        served |= set(vendor_models(BUILTIN) or [])
    aliases = filled.get("aliases") or {}
    if served is not None and isinstance(aliases, dict):
        for alias, target in aliases.items():
            if isinstance(target, str) and target not in served:
                out.append(f"aliases.{alias}: points at {target!r}, which no channel serves")
    return out


def _fill_vars(value: Any, env: Mapping[str, str]) -> Any:
    """`${VAR}` replaced from `env`, unset ones by a placeholder (they are reported on their own)."""
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: env.get(m.group(1), "unset"), value)
    if isinstance(value, list):
        return [_fill_vars(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _fill_vars(v, env) for k, v in value.items()}
    return value
