"""The alembic migrations of vidgate's schema. They live inside the package, so an installed vidgate
(a wheel, the Docker image) migrates from any working directory; `alembic.ini` at the top of a
checkout points here too, for developers who run `alembic` themselves."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from app.config import Settings

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(settings: Settings) -> Config:
    """An alembic config for `settings`' database, independent of the working directory and of any ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["url"] = settings.resolved_database_url
    cfg.attributes["configure_logger"] = False
    return cfg
