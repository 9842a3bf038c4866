"""The one set of migrations works on SQLite and PostgreSQL, both ways."""

from __future__ import annotations

from sqlalchemy import inspect

from service.db import migrate
from service.db.session import create_db_engine

TABLES = {"api_tokens", "identities", "faces", "index_state", "batches", "batch_entries"}


def test_database_is_at_head_after_upgrade(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        assert migrate.is_up_to_date(engine, database_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    engine = create_db_engine(database_url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
        assert not migrate.is_up_to_date(engine, database_url)
        migrate.upgrade(database_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
