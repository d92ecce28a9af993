"""The `vidgate` console script."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from alembic.config import Config

from app.config import Settings

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.keys.models import ApiKey

cli = typer.Typer(help="vidgate: an OpenAI-compatible video generation gateway.", no_args_is_help=True)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")

ROOT = Path(__file__).resolve().parent.parent


def _project_root() -> Path:
    """Where `migrations/` lives: beside the package in a checkout, else the working directory
    (an installed package, e.g. the Docker image, which copies migrations/ to its WORKDIR)."""
    for root in (ROOT, Path.cwd()):
        if (root / "migrations" / "env.py").is_file():
            return root
    raise RuntimeError("cannot find the migrations/ directory (run from the project directory)")


def alembic_config(settings: Settings) -> Config:
    root = _project_root()
    ini = root / "alembic.ini"
    cfg = Config(str(ini)) if ini.is_file() else Config()
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["url"] = settings.resolved_database_url
    cfg.attributes["configure_logger"] = False
    return cfg


def _migrate(settings: Settings) -> None:
    from alembic import command

    settings.storage_dir.mkdir(parents=True, exist_ok=True)
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

RpmOpt = Annotated[int | None, typer.Option("--rpm", min=0, help="Generations the key may start per minute.")]
ConcurrentOpt = Annotated[
    int | None, typer.Option("--max-concurrent", min=0, help="Unfinished videos the key may have at once.")
]
QuotaOpt = Annotated[float | None, typer.Option("--quota", min=0, help="Credits the key may spend in total.")]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires", help="When the key stops working: ISO date/time (UTC unless given), unix seconds, or 30d/12h/90m."
    ),
]
IpOpt = Annotated[
    list[str] | None, typer.Option("--ip", help="Allowed client IP or CIDR network; repeat or comma-separate.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tab-separated text.")]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# CLI option for each API field, so validation errors name what the operator typed
_OPTION_OF = {
    "name": "--name",
    "owner": "--owner",
    "models": "--models",
    "rpm_limit": "--rpm",
    "max_concurrent": "--max-concurrent",
    "quota_credits": "--quota",
    "expires_at": "--expires",
    "ip_allowlist": "--ip",
}


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
        "expires_at": parse_time(expires, option="--expires") if expires else None,
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
        raise typer.BadParameter(msg, param_hint=_OPTION_OF.get(field, field or None)) from None


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    from app.db import create_engine, create_sessionmaker

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
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


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
        f"rpm={_num(k.rpm_limit)}",
        f"max_concurrent={_num(k.max_concurrent)}",
        f"credits={_num(float(k.used_credits or 0.0))}/{_num(k.quota_credits)}",
        f"expires={_iso(k.expires_at)}",
        f"ip={','.join(k.ip_allowlist or []) or 'any'}",
    ]


def _key_line(k: ApiKey) -> str:
    from app.admin.schemas import key_status

    models = ",".join(k.models or []) or "all"
    return "\t".join([k.id, f"{k.prefix}…", k.name, k.owner, key_status(k), models, *_limit_tokens(k)])


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


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key.")],
    models: Annotated[str | None, typer.Option(help="Comma-separated models the key may use (default: all).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner id; keys with one owner see the same videos.")] = None,
    rpm: RpmOpt = None,
    max_concurrent: ConcurrentOpt = None,
    quota: QuotaOpt = None,
    expires: ExpiresOpt = None,
    ip: IpOpt = None,
) -> None:
    """Create a key. The secret is printed once, alone on the last line."""
    from app.admin.schemas import KeyCreate
    from app.keys import service as keys

    settings = Settings()
    fields: dict[str, Any] = {"name": name, "owner": owner, "models": _csv([models] if models else None)}
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
    """List keys (never their secrets): id, prefix, name, owner, state, models, then the limits."""
    from app.admin.schemas import KeyOut
    from app.keys import service

    settings = Settings()

    async def run() -> None:
        async with _session(settings) as s:
            rows = await service.list_keys(s)
            if as_json:
                typer.echo(json.dumps([KeyOut.of(k).model_dump(mode="json") for k in rows], indent=2))
                return
            for k in rows:
                typer.echo(_key_line(k))

    asyncio.run(run())


@keys_cli.command("update")
def keys_update(
    ident: Annotated[str, typer.Argument(help="Key id, display prefix or name.")],
    name: Annotated[str | None, typer.Option("--name", help="A new label.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated models the key may use.")] = None,
    rpm: RpmOpt = None,
    max_concurrent: ConcurrentOpt = None,
    quota: QuotaOpt = None,
    expires: ExpiresOpt = None,
    ip: IpOpt = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Turn the key on or off.")] = None,
    clear_models: Annotated[bool, typer.Option("--clear-models", help="Every model again.")] = False,
    clear_rpm: Annotated[bool, typer.Option("--clear-rpm", help="No per-minute limit.")] = False,
    clear_max_concurrent: Annotated[bool, typer.Option("--clear-max-concurrent", help="No concurrency limit.")] = False,
    clear_quota: Annotated[bool, typer.Option("--clear-quota", help="No credit quota.")] = False,
    clear_expires: Annotated[bool, typer.Option("--clear-expires", help="Never expires.")] = False,
    clear_ip: Annotated[bool, typer.Option("--clear-ip", help="Any client address.")] = False,
) -> None:
    """Change a key's name or limits; prints the key as `keys list` does."""
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
            option = _OPTION_OF[field]
            raise typer.BadParameter(f"both set and cleared (--clear-{option[2:]})", param_hint=option)
        changes[field] = None
    if not changes:
        typer.echo("error: nothing to change; see `vidgate keys update --help`", err=True)
        raise typer.Exit(2)
    body = _validated(KeyUpdate, changes)
    _migrate(settings)

    async def run() -> str:
        await _check_models(settings, body.models)
        async with _session(settings) as s:
            key = await _one_key(s, ident)
            await keys.update_key(s, key, **body.changes())
            await s.commit()
            return _key_line(key)

    typer.echo(_gateway_call(run))


@keys_cli.command("rotate")
def keys_rotate(ident: Annotated[str, typer.Argument(help="Key id, display prefix or name.")]) -> None:
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
def keys_revoke(ident: Annotated[str, typer.Argument(help="Key id, display prefix or name.")]) -> None:
    """Revoke a key; requests with it get 401 at once."""
    from app.db import create_engine, create_sessionmaker
    from app.keys import service

    settings = Settings()

    async def run() -> int:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with create_sessionmaker(engine)() as s:
                n = await service.revoke_key(s, ident)
                await s.commit()
                return n
        finally:
            await engine.dispose()

    n = asyncio.run(run())
    if n == 0:
        typer.echo(f"no active key matches {ident!r}", err=True)
        raise typer.Exit(1)
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
    from sqlalchemy.exc import SQLAlchemyError

    from app.admin import service as admin
    from app.admin.schemas import ChannelOut
    from app.providers.registry import build_registry

    settings = Settings()

    async def run() -> list[ChannelOut]:
        async with httpx.AsyncClient() as client:
            registry = build_registry(settings, client)
            async with _session(settings) as s:
                return await admin.channel_report(s, registry)

    try:
        rows = asyncio.run(run())
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot read channel health ({type(exc).__name__}); run `vidgate migrate`?", err=True)
        raise typer.Exit(1) from None
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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
