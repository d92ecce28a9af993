"""Failures as one line for the operator: what is wrong and which setting to change."""

from __future__ import annotations

import typer

from app.cli.output import one_line, safe_url
from app.config import Settings

# click's exception base, whether typer uses click itself or (typer >= 0.2x) a vendored copy of it
ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class CliError(ClickException):  # type: ignore[misc,valid-type]
    """A failure the operator can fix: printed as one line; exit status 1 (2 for a usage mistake)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _settings_or_none() -> Settings | None:
    try:
        return Settings()
    except Exception:
        return None


def _explain_database(exc: Exception, settings: Settings | None) -> str:
    from sqlalchemy.engine import make_url

    orig = getattr(exc, "orig", None) or exc
    detail = one_line(orig)
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
    shown = safe_url(url) if url else "the database"
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
        return one_line(exc.message)
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        err = exc.errors()[0]
        name = f"VIDGATE_{str(err['loc'][0]).upper()}" if err["loc"] else "a VIDGATE_ setting"
        return f"invalid setting {name}: {one_line(str(err['msg']).removeprefix('Value error, '))}"
    if isinstance(exc, ConfigError):
        return f"config file (VIDGATE_CONFIG): {one_line(exc)}; `vidgate config check` lists every problem"
    settings = _settings_or_none()
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError) or (
        isinstance(exc, sa_exc.InvalidRequestError) and "async" in str(exc)
    ):
        return (
            f"VIDGATE_DATABASE_URL is not a database URL vidgate can use ({one_line(exc)}); "
            "use postgresql://user:password@host:5432/name or sqlite:///path/to/vidgate.db"
        )
    if isinstance(exc, sa_exc.DBAPIError):
        return _explain_database(exc, settings)
    if isinstance(exc, CommandError):
        return f"migration failed: {one_line(exc)} (VIDGATE_DATABASE_URL may name another application's database)"
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        url = settings.resolved_database_url if settings else ""
        target = f"the database {safe_url(url)}" if url and not url.startswith("sqlite") else "a server"
        reason = exc.strerror or one_line(exc) or type(exc).__name__
        return f"cannot connect to {target}: {reason}; check VIDGATE_DATABASE_URL and that the server is running"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return (
            f"{where}{exc.strerror or one_line(exc)}; check VIDGATE_STORAGE_DIR, VIDGATE_DATABASE_URL, VIDGATE_CONFIG"
        )
    if isinstance(exc, ValueError):  # the channel config read by the registry (unknown model, alias, ...)
        return f"{one_line(exc)} (check VIDGATE_CONFIG; `vidgate config check` lists every problem)"
    return f"{type(exc).__name__}: {one_line(exc)} (run `vidgate --debug ...` for the traceback)"
