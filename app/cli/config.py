"""`vidgate config check`: the channel config file (VIDGATE_CONFIG) validated without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.errors import CliError
from app.cli.output import TYPER
from app.config import Settings

group = typer.Typer(help="The channel config file (VIDGATE_CONFIG).", **TYPER)


@group.command("check")
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
