"""`vidgate migrate`, `vidgate serve` and `vidgate worker`: the schema, the API and the task engine."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli import database
from app.cli.output import TYPER, safe_url
from app.config import Settings

group = typer.Typer(**TYPER)


@group.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision."""
    settings = Settings()
    database.upgrade(settings)
    typer.echo(f"database at head: {safe_url(settings.resolved_database_url)}")


@group.command()
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
    database.upgrade(settings)
    typer.echo(f"vidgate serving on http://{host}:{port}/v1  (database: {safe_url(settings.resolved_database_url)})")
    if settings.bootstrap_api_key is not None:
        typer.echo("bootstrap API key: set by VIDGATE_BOOTSTRAP_API_KEY")
    uvicorn.run(create_app(settings), **uvicorn_options(settings, host=host, port=port))


@group.command()
def worker(
    grace: Annotated[float, typer.Option(help="Seconds to finish work in flight on SIGTERM.")] = 30.0,
) -> None:
    """Run the task engine and the webhook dispatcher without the HTTP API (scale it separately)."""
    from app.observability import configure_logging
    from app.worker import run_worker

    settings = Settings()
    configure_logging(settings)
    database.upgrade(settings)
    typer.echo(f"vidgate worker on {safe_url(settings.resolved_database_url)}")
    asyncio.run(run_worker(settings, grace_s=grace))
