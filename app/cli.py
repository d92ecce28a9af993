"""The `vidgate` console script."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from alembic.config import Config

from app.config import Settings

cli = typer.Typer(help="vidgate: an OpenAI-compatible video generation gateway.", no_args_is_help=True)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(settings: Settings) -> Config:
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.is_file() else Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
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


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve the API without the task engine.")] = False,
) -> None:
    """Migrate the database, create the bootstrap key, and serve the API (with the task engine)."""
    import uvicorn

    from app.main import create_app

    settings = Settings()
    if no_worker:
        settings.run_engine = False
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _migrate(settings)
    typer.echo(f"vidgate serving on http://{host}:{port}/v1  (database: {_safe_url(settings.resolved_database_url)})")
    if settings.bootstrap_api_key is not None:
        typer.echo("bootstrap API key: set by VIDGATE_BOOTSTRAP_API_KEY")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key.")],
    models: Annotated[str | None, typer.Option(help="Comma-separated models the key may use (default: all).")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner id; keys with one owner see the same videos.")] = None,
) -> None:
    """Create a key. The secret is printed once, alone on the last line."""
    from app.db import create_engine, create_sessionmaker
    from app.keys import service

    settings = Settings()
    _migrate(settings)
    allowed = [m.strip() for m in models.split(",") if m.strip()] if models else None

    async def run() -> str:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with create_sessionmaker(engine)() as s:
                key, secret = await service.create_key(s, name=name, owner=owner, models=allowed)
                await s.commit()
                typer.echo(f"created key {key.id} ({key.prefix}…) owner={key.owner} models={key.models or 'all'}")
                return secret
        finally:
            await engine.dispose()

    typer.echo(asyncio.run(run()))


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    from app.db import create_engine, create_sessionmaker
    from app.keys import service

    settings = Settings()

    async def run() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with create_sessionmaker(engine)() as s:
                for k in await service.list_keys(s):
                    state = "revoked" if k.revoked_at else "active"
                    typer.echo(
                        f"{k.id}\t{k.prefix}…\t{k.name}\t{k.owner}\t{state}\t{','.join(k.models or []) or 'all'}"
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
