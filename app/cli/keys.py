"""`vidgate keys create|list|update|rotate|revoke`: API keys, with the admin API's fields and checks.

Each command is one transaction of its own, committed here when the command has done its work."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.database import gateway_call, session, upgrade
from app.cli.errors import CliError
from app.cli.options import (
    ConcurrentOpt,
    ExpiresOpt,
    IpOpt,
    JsonOpt,
    KeyCommand,
    ModelsOpt,
    QuotaOpt,
    RpmOpt,
    csv,
    limit_options,
    option_of,
    validated,
)
from app.cli.output import TYPER, iso, num
from app.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.keys.models import ApiKey

group = typer.Typer(help="Manage API keys.", **TYPER)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Key id, display prefix or name.")]

# `keys list` / `keys update`: columns named as the admin API's fields
KEY_HEADER = (
    "ID\tPREFIX\tNAME\tOWNER\tSTATUS\tMODELS\tRPM_LIMIT\tMAX_CONCURRENT\tUSED_CREDITS\tQUOTA_CREDITS"
    "\tEXPIRES_AT\tIP_ALLOWLIST"
)


def _key_line(k: ApiKey) -> str:
    from app.admin.schemas import key_status

    cells = [
        k.id,
        f"{k.prefix}…",
        k.name,
        k.owner,
        key_status(k),
        ",".join(k.models or []) or "all",
        num(k.rpm_limit),
        num(k.max_concurrent),
        num(float(k.used_credits or 0.0)),
        num(k.quota_credits),
        iso(k.expires_at),
        ",".join(k.ip_allowlist or []) or "any",
    ]
    return "\t".join(cells)


def _limit_tokens(k: ApiKey) -> list[str]:
    return [
        f"rpm_limit={num(k.rpm_limit)}",
        f"max_concurrent={num(k.max_concurrent)}",
        f"credits={num(float(k.used_credits or 0.0))}/{num(k.quota_credits)}",
        f"expires_at={iso(k.expires_at)}",
        f"ip_allowlist={','.join(k.ip_allowlist or []) or 'any'}",
    ]


async def _check_models(settings: Settings, models: list[str] | None) -> None:
    """Models must exist in the channel config, as the admin API requires."""
    if not models:
        return
    import httpx

    from app.admin import service as admin
    from app.providers.registry import build_registry

    async with httpx.AsyncClient() as client:
        admin.check_models(build_registry(settings, client), models)


async def _one_key(s: AsyncSession, ident: str) -> ApiKey:
    from app.admin import service as admin
    from app.errors import NotFound

    found = await admin.find_key(s, ident)
    if not found:
        raise NotFound(f"no key matches {ident!r}")
    if len(found) > 1:
        raise NotFound(f"{len(found)} keys match {ident!r}; name the key by its id")
    return found[0]


@group.command("create", cls=KeyCommand)
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key (name).")],
    models: ModelsOpt = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Owner id; keys with one owner see the same videos (owner).")
    ] = None,
    rpm: RpmOpt = None,
    max_concurrent: ConcurrentOpt = None,
    quota: QuotaOpt = None,
    expires: ExpiresOpt = None,
    ip: IpOpt = None,
    enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="Create it on or off (enabled).")] = True,
) -> None:
    """Create a key. The secret is printed once, alone on the last line."""
    from app.admin.schemas import KeyCreate
    from app.keys import service as keys

    settings = Settings()
    fields: dict[str, Any] = {"name": name, "owner": owner, "models": csv([models] if models else None)}
    fields["enabled"] = enabled
    fields |= limit_options(rpm=rpm, max_concurrent=max_concurrent, quota=quota, expires=expires, ip=ip)
    body = validated(KeyCreate, fields)
    upgrade(settings)

    async def run() -> str:
        await _check_models(settings, body.models)
        async with session(settings) as s:
            key, secret = await keys.create_key(s, **body.model_dump())
            await s.commit()
            limits = " ".join(_limit_tokens(key))
            typer.echo(f"created key {key.id} ({key.prefix}…) owner={key.owner} models={key.models or 'all'} {limits}")
            return secret

    typer.echo(gateway_call(run))


@group.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List keys (never their secrets), one per line under a header row; columns as the admin API's fields."""
    from app.admin.schemas import KeyOut
    from app.keys import service

    settings = Settings()

    async def run() -> None:
        async with session(settings) as s:
            rows = await service.list_keys(s)
            if as_json:
                typer.echo(json.dumps([KeyOut.of(k).model_dump(mode="json") for k in rows], indent=2))
                return
            typer.echo(KEY_HEADER)
            for k in rows:
                typer.echo(_key_line(k))

    asyncio.run(run())


@group.command("update", cls=KeyCommand)
def keys_update(
    ident: KeyArg,
    name: Annotated[str | None, typer.Option("--name", help="A new label (name).")] = None,
    models: ModelsOpt = None,
    rpm: RpmOpt = None,
    max_concurrent: ConcurrentOpt = None,
    quota: QuotaOpt = None,
    expires: ExpiresOpt = None,
    ip: IpOpt = None,
    enable: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Turn the key on or off (enabled).")
    ] = None,
    clear_models: Annotated[bool, typer.Option("--clear-models", help="Every model again.")] = False,
    clear_rpm: Annotated[bool, typer.Option("--clear-rpm-limit", help="No per-minute limit.")] = False,
    clear_max_concurrent: Annotated[bool, typer.Option("--clear-max-concurrent", help="No concurrency limit.")] = False,
    clear_quota: Annotated[bool, typer.Option("--clear-quota-credits", help="No credit quota.")] = False,
    clear_expires: Annotated[bool, typer.Option("--clear-expires-at", help="Never expires.")] = False,
    clear_ip: Annotated[bool, typer.Option("--clear-ip-allowlist", help="Any client address.")] = False,
) -> None:
    """Change a key's name or limits; prints the key as `keys list` does (header row, then the key)."""
    from app.admin.schemas import KeyUpdate
    from app.keys import service as keys

    settings = Settings()
    changes: dict[str, Any] = {"name": name, "models": csv([models] if models else None), "enabled": enable}
    changes |= limit_options(rpm=rpm, max_concurrent=max_concurrent, quota=quota, expires=expires, ip=ip)
    changes = {k: v for k, v in changes.items() if v is not None}
    clears = {
        "models": clear_models,
        "rpm_limit": clear_rpm,
        "max_concurrent": clear_max_concurrent,
        "quota_credits": clear_quota,
        "expires_at": clear_expires,
        "ip_allowlist": clear_ip,
    }
    for field, clear in clears.items():
        if not clear:
            continue
        if field in changes:
            option = option_of(field)
            raise typer.BadParameter(f"both set and cleared (--clear-{option[2:]})", param_hint=option)
        changes[field] = None
    if not changes:
        raise CliError("nothing to change; see `vidgate keys update --help`", exit_code=2)
    body = validated(KeyUpdate, changes)
    upgrade(settings)

    async def run() -> str:
        await _check_models(settings, body.models)
        async with session(settings) as s:
            key = await _one_key(s, ident)
            await keys.update_key(s, key, **body.changes())
            await s.commit()
            return f"{KEY_HEADER}\n{_key_line(key)}"

    typer.echo(gateway_call(run))


@group.command("rotate")
def keys_rotate(ident: KeyArg) -> None:
    """A new secret for a key (same owner, limits, usage); the old one fails at once. Secret on the last line."""
    from app.admin import service as admin

    settings = Settings()
    upgrade(settings)

    async def run() -> str:
        async with session(settings) as s:
            key = await _one_key(s, ident)
            secret = await admin.rotate_key(s, key)
            await s.commit()
            typer.echo(f"rotated key {key.id} ({key.prefix}…) owner={key.owner}")
            return secret

    typer.echo(gateway_call(run))


@group.command("revoke")
def keys_revoke(ident: KeyArg) -> None:
    """Revoke a key; requests with it get 401 at once."""
    from app.keys import service

    settings = Settings()

    async def run() -> int:
        async with session(settings) as s:
            n = await service.revoke_key(s, ident)
            await s.commit()
            return n

    n = asyncio.run(run())
    if n == 0:
        raise CliError(f"no active key matches {ident!r}")
    typer.echo(f"revoked {n} key(s)")
