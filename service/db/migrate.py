"""Run Alembic migrations from code (CLI, server start-up, tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from service.db.session import normalize_url, sqlite_file


def migrations_dir() -> Path:
    """The Alembic script folder: inside the installed wheel, else the repository's ``migrations/``."""
    packaged = Path(__file__).resolve().parent.parent / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at our scripts and the given database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade the database schema to ``revision`` (a new SQLite file's folder is created first)."""
    path = sqlite_file(normalize_url(database_url))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Downgrade the database schema to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)


def is_up_to_date(engine: Engine, database_url: str) -> bool:
    """Whether the database is at the newest migration."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    # Reading the version is not a migration: keep Alembic's "Context impl ..." lines out of the log.
    alembic_logger = logging.getLogger("alembic.runtime.migration")
    level = alembic_logger.level
    alembic_logger.setLevel(logging.WARNING)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        alembic_logger.setLevel(level)
    return set(current) == set(script.get_heads())
