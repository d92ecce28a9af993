"""`vidgate providers`: the enabled providers, their models and capabilities."""

from __future__ import annotations

import asyncio

import typer

from app.cli.output import TYPER
from app.config import Settings

group = typer.Typer(**TYPER)


@group.command()
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
                        f"{' + last frame' if caps.last_frame else ''}\n"
                        f"    audio: {'yes' if caps.audio else 'no'}\n    operations: "
                        f"{', '.join(['create', *ops])}"
                    )
            if reg.aliases:
                typer.echo("aliases")
                for alias, target in sorted(reg.aliases.items()):
                    typer.echo(f"  {alias} -> {target}")

    asyncio.run(run())
