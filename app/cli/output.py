"""How the commands print: help settings, one-line messages, table cells."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# plain help (no boxes, no `<bool>` after flags) at up to 120 columns, so option names are never cut
TYPER: dict[str, Any] = {
    "no_args_is_help": True,
    "rich_markup_mode": None,
    "pretty_exceptions_enable": False,
    "context_settings": {"max_content_width": 120, "help_option_names": ["-h", "--help"]},
}


def one_line(value: object) -> str:
    return " ".join(str(value).split())


def safe_url(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def iso(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
