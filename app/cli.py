"""The `vidgate` console script.

Every failure is one line on stderr (what is wrong and which setting to change) and a non-zero exit;
`vidgate --debug ...` shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from app.config import Settings
from app.migrations import alembic_config

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.keys.models import ApiKey

# plain help (no boxes, no `<bool>` after flags) at up to 120 columns, so option names are never cut
_HELP = {"max_content_width": 120, "help_option_names": ["-h", "--help"]}
_TYPER = {
    "no_args_is_help": True,
    "rich_markup_mode": None,
    "pretty_exceptions_enable": False,
    "context_settings": _HELP,
}

cli = typer.Typer(help="vidgate: an OpenAI-compatible video generation gateway.", **_TYPER)
keys_cli = typer.Typer(help="Manage API keys.", **_TYPER)
config_cli = typer.Typer(help="The channel config file (VIDGATE_CONFIG).", **_TYPER)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(config_cli, name="config")

_state = {"debug": False}


@cli.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a command fails.")] = False,
) -> None:
    _state["debug"] = debug


# click's exception base, whether typer uses click itself or (typer >= 0.2x) a vendored copy of it
_ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class CliError(_ClickException):  # type: ignore[misc,valid-type]
    """A failure the operator can fix: printed as one line; exit status 1 (2 for a usage mistake)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _settings_or_none() -> Settings | None:
    try:
        return Settings()
    except Exception:
        return None


def _explain_database(exc: Exception, settings: Settings | None) -> str:
    from sqlalchemy.engine import make_url

    orig = getattr(exc, "orig", None) or exc
    detail = _one_line(orig)
    url = settings.resolved_database_url if settings else ""
    if url.startswith("sqlite"):
        path = make_url(url).database or url
        if "unable to open database file" in detail:
            if settings and settings.database_url:
                return f"cannot open the SQLite database {path}: set VIDGATE_DATABASE_URL to a writable place"
            storage = settings.storage_dir.resolve() if settings else "?"
            return (
                f"cannot open the SQLite database {path}: set VIDGATE_STORAGE_DIR (now {storage}) to a writable "
                "directory, or VIDGATE_DATABASE_URL"
            )
        if "no such table" in detail:
            return (
                f"the database {path} has no vidgate schema: run `vidgate migrate`, or set VIDGATE_DATABASE_URL "
                "(or VIDGATE_STORAGE_DIR) to the gateway's database"
            )
        return f"SQLite database {path}: {detail}; check VIDGATE_DATABASE_URL / VIDGATE_STORAGE_DIR"
    shown = _safe_url(url) if url else "the database"
    if "does not exist" in detail and "relation" in detail:
        return f"the database {shown} has no vidgate schema: run `vidgate migrate` (or fix VIDGATE_DATABASE_URL)"
    return f"database {shown}: {detail}; check VIDGATE_DATABASE_URL"


def explain(exc: BaseException) -> str:
    """One line for the operator: what failed and which setting to look at."""
    import socket

    from alembic.util import CommandError
    from pydantic import ValidationError
    from sqlalchemy import exc as sa_exc

    from app.channels.config import ConfigError
    from app.errors import GatewayError

    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, GatewayError):
        return _one_line(exc.message)
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        err = exc.errors()[0]
        name = f"VIDGATE_{str(err['loc'][0]).upper()}" if err["loc"] else "a VIDGATE_ setting"
        return f"invalid setting {name}: {_one_line(str(err['msg']).removeprefix('Value error, '))}"
    if isinstance(exc, ConfigError):
        return f"config file (VIDGATE_CONFIG): {_one_line(exc)}; `vidgate config check` lists every problem"
    settings = _settings_or_none()
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError) or (
        isinstance(exc, sa_exc.InvalidRequestError) and "async" in str(exc)
    ):
        return (
            f"VIDGATE_DATABASE_URL is not a database URL vidgate can use ({_one_line(exc)}); "
            "use postgresql://user:password@host:5432/name or sqlite:///path/to/vidgate.db"
        )
    if isinstance(exc, sa_exc.DBAPIError):
        return _explain_database(exc, settings)
    if isinstance(exc, CommandError):
        return f"migration failed: {_one_line(exc)} (VIDGATE_DATABASE_URL may name another application's database)"
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        url = settings.resolved_database_url if settings else ""
        target = f"the database {_safe_url(url)}" if url and not url.startswith("sqlite") else "a server"
        reason = exc.strerror or _one_line(exc) or type(exc).__name__
        return f"cannot connect to {target}: {reason}; check VIDGATE_DATABASE_URL and that the server is running"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return (
            f"{where}{exc.strerror or _one_line(exc)}; check VIDGATE_STORAGE_DIR, VIDGATE_DATABASE_URL, VIDGATE_CONFIG"
        )
    if isinstance(exc, ValueError):  # the channel config read by the registry (unknown model, alias, ...)
        return f"{_one_line(exc)} (check VIDGATE_CONFIG; `vidgate config check` lists every problem)"
    return f"{type(exc).__name__}: {_one_line(exc)} (run `vidgate --debug ...` for the traceback)"


def _storage_dir(settings: Settings) -> Path:
    """The storage directory, created (with its parents) if missing; a clear error when it cannot be."""
    path = settings.storage_dir.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"cannot create the storage directory {path} ({exc.strerror or exc}); "
            "set VIDGATE_STORAGE_DIR to a writable directory"
        ) from None
    return path


def _existing_database(settings: Settings) -> None:
    """Commands that only read refuse to create an empty SQLite file in the wrong directory."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    if not path.is_file():
        where = (
            "set VIDGATE_DATABASE_URL to the gateway's database"
            if settings.database_url
            else f"set VIDGATE_STORAGE_DIR (now {path.parent}) to the gateway's, or VIDGATE_DATABASE_URL"
        )
        raise CliError(f"no database at {path}: {where}; or run `vidgate migrate` to create one")


def _sqlite_directory(settings: Settings) -> None:
    """The directory of a SQLite database file, created if missing (SQLite creates the file, not the folder)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    folder = Path(url.database).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        setting = "VIDGATE_DATABASE_URL" if settings.database_url else "VIDGATE_STORAGE_DIR"
        raise CliError(
            f"cannot create {folder} for the SQLite database ({exc.strerror or exc}); set {setting} to a writable place"
        ) from None


def _migrate(settings: Settings) -> None:
    from alembic import command

    _storage_dir(settings)
    _sqlite_directory(settings)
    command.upgrade(alembic_config(settings), "head")


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision."""
    settings = Settings()
    _migrate(settings)
    typer.echo(f"database at head: {_safe_url(settings.resolved_database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- shared helpers for the key, channel and usage commands ----------------------------------------

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")

# One vocabulary for the admin API and the CLI: each key field of app/admin/schemas.py is the option
# `--<field with dashes>` (clearing it: `--clear-<field>`). The older short spellings still work, hidden.
RpmOpt = Annotated[
    int | None,
    typer.Option("--rpm-limit", min=0, metavar="N", help="Generations the key may start per minute (rpm_limit)."),
]
ConcurrentOpt = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent", min=0, metavar="N", help="Unfinished videos the key may have at once (max_concurrent)."
    ),
]
QuotaOpt = Annotated[
    float | None,
    typer.Option(
        "--quota-credits", min=0, metavar="CREDITS", help="Credits the key may spend in total (quota_credits)."
    ),
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires-at",
        metavar="WHEN",
        help="When the key stops working (expires_at): ISO date/time (UTC unless given), unix seconds, or 30d/12h/90m.",
    ),
]
IpOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ip-allowlist",
        metavar="IP",
        help="Allowed client IP or CIDR network (ip_allowlist); repeat or comma-separate.",
    ),
]
ModelsOpt = Annotated[
    str | None,
    typer.Option(
        "--models", metavar="MODEL,...", help="Comma-separated models the key may use (models; default: all)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tab-separated text.")]

DEPRECATED_OPTIONS = {
    "--rpm": "--rpm-limit",
    "--quota": "--quota-credits",
    "--expires": "--expires-at",
    "--ip": "--ip-allowlist",
    "--enable": "--enabled",
    "--disable": "--disabled",
    "--clear-rpm": "--clear-rpm-limit",
    "--clear-quota": "--clear-quota-credits",
    "--clear-expires": "--clear-expires-at",
    "--clear-ip": "--clear-ip-allowlist",
}


class KeyCommand(TyperCommand):
    """Accepts the deprecated option spellings (hidden from --help) as the API-named ones."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                out.extend(args[i:])
                break
            name, eq, value = arg.partition("=")
            new = DEPRECATED_OPTIONS.get(name)
            if new is not None:
                typer.echo(f"warning: {name} is deprecated; use {new}", err=True)
                arg = new + eq + value
            out.append(arg)
        return super().parse_args(ctx, out)


def option_of(field: str) -> str:
    """The CLI option for an admin API field."""
    return "--" + field.replace("_", "-")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, *, option: str, past: bool = False) -> float:
    """Unix seconds from an ISO date/time (naive means UTC), unix seconds, or a duration from now
    (forward, or backward when `past`: `--since 7d` is a week ago)."""
    from app.db import now

    text = value.strip()
    m = _DURATION.match(text.lower())
    if m:
        delta = float(m[1]) * _UNIT_SECONDS[m[2]]
        return now() - delta if past else now() + delta
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise typer.BadParameter("must not be negative", param_hint=option)
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date/time, unix seconds or a duration such as 30d", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _limit_options(
    *, rpm: int | None, max_concurrent: int | None, quota: float | None, expires: str | None, ip: list[str] | None
) -> dict[str, Any]:
    return {
        "rpm_limit": rpm,
        "max_concurrent": max_concurrent,
        "quota_credits": quota,
        "expires_at": parse_time(expires, option="--expires-at") if expires else None,
        "ip_allowlist": _csv(ip),
    }


def _validated(model: type[M], fields: dict[str, Any]) -> M:
    """The admin API's own validation, reported against the CLI option."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(msg, param_hint=option_of(field) if field else None) from None


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    from app.db import create_engine, create_sessionmaker

    _existing_database(settings)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            yield s
    finally:
        await engine.dispose()


def _gateway_call(run: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; the API's errors become a message on stderr and exit status 1."""
    from app.errors import GatewayError

    async def main() -> T:
        return await run()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise CliError(exc.message) from None


async def _check_models(settings: Settings, models: list[str] | None) -> None:
    """Models must exist in the channel config, as the admin API requires."""
    if not models:
        return
    import httpx

    from app.admin import service as admin
    from app.providers.registry import build_registry

    async with httpx.AsyncClient() as client:
        admin.check_models(build_registry(settings, client), models)


async def _one_key(session: AsyncSession, ident: str) -> ApiKey:
    from app.admin import service as admin
    from app.errors import NotFound

    found = await admin.find_key(session, ident)
    if not found:
        raise NotFound(f"no key matches {ident!r}")
    if len(found) > 1:
        raise NotFound(f"{len(found)} keys match {ident!r}; name the key by its id")
    return found[0]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _limit_tokens(k: ApiKey) -> list[str]:
    return [
        f"rpm_limit={_num(k.rpm_limit)}",
        f"max_concurrent={_num(k.max_concurrent)}",
        f"credits={_num(float(k.used_credits or 0.0))}/{_num(k.quota_credits)}",
        f"expires_at={_iso(k.expires_at)}",
        f"ip_allowlist={','.join(k.ip_allowlist or []) or 'any'}",
    ]


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
        _num(k.rpm_limit),
        _num(k.max_concurrent),
        _num(float(k.used_credits or 0.0)),
        _num(k.quota_credits),
        _iso(k.expires_at),
        ",".join(k.ip_allowlist or []) or "any",
    ]
    return "\t".join(cells)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API without the task engine.")] = False,
) -> None:
    """Migrate the database, create the bootstrap key, and serve the API (with the task engine)."""
    import uvicorn

    from app.main import create_app
    from app.observability import configure_logging
    from app.server import uvicorn_options

    settings = Settings()
    if no_worker:
        settings.run_engine = False
    configure_logging(settings)
    _migrate(settings)
    typer.echo(f"vidgate serving on http://{host}:{port}/v1  (database: {_safe_url(settings.resolved_database_url)})")
    if settings.bootstrap_api_key is not None:
        typer.echo("bootstrap API key: set by VIDGATE_BOOTSTRAP_API_KEY")
    uvicorn.run(create_app(settings), **uvicorn_options(settings, host=host, port=port))


@cli.command()
def worker(
    grace: Annotated[float, typer.Option(help="Seconds to finish work in flight on SIGTERM.")] = 30.0,
) -> None:
    """Run the task engine and the webhook dispatcher without the HTTP API (scale it separately)."""
    from app.observability import configure_logging
    from app.worker import run_worker

    settings = Settings()
    configure_logging(settings)
    _migrate(settings)
    typer.echo(f"vidgate worker on {_safe_url(settings.resolved_database_url)}")
    asyncio.run(run_worker(settings, grace_s=grace))


@keys_cli.command("create", cls=KeyCommand)
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
    fields: dict[str, Any] = {"name": name, "owner": owner, "models": _csv([models] if models else None)}
    fields["enabled"] = enabled
    fields |= _limit_options(rpm=rpm, max_concurrent=max_concurrent, quota=quota, expires=expires, ip=ip)
    body = _validated(KeyCreate, fields)
    _migrate(settings)

    async def run() -> str:
        await _check_models(settings, body.models)
        async with _session(settings) as s:
            key, secret = await keys.create_key(s, **body.model_dump())
            await s.commit()
            limits = " ".join(_limit_tokens(key))
            typer.echo(f"created key {key.id} ({key.prefix}…) owner={key.owner} models={key.models or 'all'} {limits}")
            return secret

    typer.echo(_gateway_call(run))


@keys_cli.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List keys (never their secrets), one per line under a header row; columns as the admin API's fields."""
    from app.admin.schemas import KeyOut
    from app.keys import service

    settings = Settings()

    async def run() -> None:
        async with _session(settings) as s:
            rows = await service.list_keys(s)
            if as_json:
                typer.echo(json.dumps([KeyOut.of(k).model_dump(mode="json") for k in rows], indent=2))
                return
            typer.echo(KEY_HEADER)
            for k in rows:
                typer.echo(_key_line(k))

    asyncio.run(run())


@keys_cli.command("update", cls=KeyCommand)
def keys_update(
    ident: Annotated[str, typer.Argument(metavar="KEY", help="Key id, display prefix or name.")],
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
    changes: dict[str, Any] = {"name": name, "models": _csv([models] if models else None), "enabled": enable}
    changes |= _limit_options(rpm=rpm, max_concurrent=max_concurrent, quota=quota, expires=expires, ip=ip)
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
    body = _validated(KeyUpdate, changes)
    _migrate(settings)

    async def run() -> str:
        await _check_models(settings, body.models)
        async with _session(settings) as s:
            key = await _one_key(s, ident)
            await keys.update_key(s, key, **body.changes())
            await s.commit()
            return f"{KEY_HEADER}\n{_key_line(key)}"

    typer.echo(_gateway_call(run))


@keys_cli.command("rotate")
def keys_rotate(ident: Annotated[str, typer.Argument(metavar="KEY", help="Key id, display prefix or name.")]) -> None:
    """A new secret for a key (same owner, limits, usage); the old one fails at once. Secret on the last line."""
    from app.admin import service as admin

    settings = Settings()
    _migrate(settings)

    async def run() -> str:
        async with _session(settings) as s:
            key = await _one_key(s, ident)
            secret = await admin.rotate_key(s, key)
            await s.commit()
            typer.echo(f"rotated key {key.id} ({key.prefix}…) owner={key.owner}")
            return secret

    typer.echo(_gateway_call(run))


@keys_cli.command("revoke")
def keys_revoke(ident: Annotated[str, typer.Argument(metavar="KEY", help="Key id, display prefix or name.")]) -> None:
    """Revoke a key; requests with it get 401 at once."""
    from app.keys import service

    settings = Settings()

    async def run() -> int:
        async with _session(settings) as s:
            n = await service.revoke_key(s, ident)
            await s.commit()
            return n

    n = asyncio.run(run())
    if n == 0:
        raise CliError(f"no active key matches {ident!r}")
    typer.echo(f"revoked {n} key(s)")


@cli.command()
def providers() -> None:
    """List enabled providers, their models and capabilities."""
    import httpx

    from app.providers.registry import build_registry

    settings = Settings()

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            reg = build_registry(settings, client)
            for pname in reg.providers:
                typer.echo(f"{pname}")
                for caps in (c for c in reg.models.values() if c.provider == pname):
                    ops = [op for op in ("remix", "edit", "extend") if getattr(caps, op)]
                    typer.echo(
                        f"  {caps.name}\n    sizes: {caps.sizes_text()}\n    seconds: {caps.seconds_text()}"
                        f" (default {caps.default_seconds})\n    image: {caps.image}"
                        f"{' + last frame' if caps.last_frame else ''}\n    operations: "
                        f"{', '.join(['create', *ops])}"
                    )
            if reg.aliases:
                typer.echo("aliases")
                for alias, target in sorted(reg.aliases.items()):
                    typer.echo(f"  {alias} -> {target}")

    asyncio.run(run())


@cli.command()
def channels(as_json: JsonOpt = False) -> None:
    """Channels from the config (read as the server reads it) with their shared health from the database."""
    import httpx

    from app.admin import service as admin
    from app.admin.schemas import ChannelOut
    from app.providers.registry import build_registry

    settings = Settings()

    async def run() -> list[ChannelOut]:
        async with httpx.AsyncClient() as client:
            registry = build_registry(settings, client)
            async with _session(settings) as s:
                return await admin.channel_report(s, registry)

    rows = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    typer.echo(
        "NAME\tVENDOR\tSTATE\tHEALTH\tPRIORITY\tWEIGHT\tFAILURES\tUNFINISHED\tCOOLDOWN_UNTIL\tLAST_SUCCESS"
        "\tLAST_ERROR_AT\tMODELS\tLAST_ERROR"
    )
    for r in rows:
        state = "retired" if r.retired else "enabled" if r.enabled else "disabled"
        error = " ".join((r.last_error or "-").split())[:300]  # one line, whatever the vendor said
        cells = [
            r.name,
            r.vendor,
            state,
            r.health,
            _num(r.priority),
            _num(r.weight),
            str(r.failures),
            str(r.unfinished_tasks),
            _iso(r.cooldown_until),
            _iso(r.last_success_at),
            _iso(r.last_error_at),
            ",".join(r.models) or "-",
            error,
        ]
        typer.echo("\t".join(cells))


@cli.command()
def usage(
    since: Annotated[str | None, typer.Option(help="From (inclusive): ISO date/time, unix seconds, or 7d ago.")] = None,
    until: Annotated[str | None, typer.Option(help="To (exclusive): ISO date/time, unix seconds, or 1h ago.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this key (id, display prefix or name).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model, as clients asked for it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tasks, seconds and credits per key and model (the admin API's `/admin/usage`)."""
    from app.admin import service as admin

    settings = Settings()
    start = parse_time(since, option="--since", past=True) if since else None
    end = parse_time(until, option="--until", past=True) if until else None

    async def run() -> Any:
        async with _session(settings) as s:
            key_id = key
            if key:
                found = await admin.find_key(s, key)
                key_id = found[0].id if len(found) == 1 else key
            return await admin.usage_report(s, since=start, until=end, key_id=key_id, model=model)

    report = _gateway_call(run)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    typer.echo("KEY_ID\tKEY_NAME\tMODEL\tTASKS\tCOMPLETED\tFAILED\tSECONDS\tCREDITS_CHARGED\tCREDITS_RESERVED")
    t = report.totals
    for r in report.data:
        typer.echo(
            f"{r.api_key_id}\t{r.key_name or '-'}\t{r.model}\t{r.tasks}\t{r.completed}\t{r.failed}"
            f"\t{_num(r.seconds)}\t{_num(r.credits_charged)}\t{_num(r.credits_reserved)}"
        )
    typer.echo(
        f"TOTAL\t-\t-\t{t.tasks}\t{t.completed}\t{t.failed}\t{_num(t.seconds)}"
        f"\t{_num(t.credits_charged)}\t{_num(t.credits_reserved)}"
    )


@config_cli.command("check")
def config_check(
    file: Annotated[
        Path | None, typer.Argument(help="The config file (default: VIDGATE_CONFIG).", show_default=False)
    ] = None,
) -> None:
    """Validate a channel config: unknown keys, unset ${VAR}s, unknown vendors and models. Prints `ok` when valid."""
    from app.channels.check import check_config

    settings = Settings()
    path = file or settings.config
    if path is None:
        raise CliError("no FILE given and VIDGATE_CONFIG is not set", exit_code=2)
    problems = check_config(path, sandbox_default=settings.sandbox_enabled)
    if problems:
        for problem in problems:
            typer.echo(f"{path}: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{path}: ok")


def main(args: list[str] | None = None) -> None:
    """The console script: usage errors and failures are one line on stderr (`--debug` for a traceback)."""
    try:
        code = cli(args=args, standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group without a command: its help, exit 2
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        if not isinstance(exc, CliError) and isinstance(exc, _ClickException):
            # click's (or typer's vendored click's) usage errors: one line, and where to read more
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            typer.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if _state["debug"]:
            raise
        typer.echo(f"error: {explain(exc)}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, CliError) else 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
