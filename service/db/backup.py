"""A consistent copy of the database while the service runs, and putting one back into an empty database.

SQLite: the online backup API copies a snapshot page by page while writers go on (a batch being written
is in the copy whole or not at all: it is one transaction). PostgreSQL: ``pg_dump`` in its custom format
(one snapshot) and ``pg_restore``; without them installed, the command says so.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from service.db.session import create_db_engine, sqlite_file

SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


def _libpq_url(url: str) -> str:
    """The URL as libpq tools take it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client tools (e.g. `apt install postgresql-client`) "
            f"or back up with your own {name} against the database"
        )
    return found


def backup(database_url: str, target: Path) -> str:
    """Copy the database to ``target`` (a new file); what kind of copy it is."""
    if target.exists():
        raise BackupError(f"{target} exists: choose a new file")
    source = sqlite_file(database_url)
    if source is not None:
        if not source.is_file():
            raise BackupError(f"no database at {source}")
        with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
            live.backup(copy)  # a consistent snapshot while the service writes
        return "SQLite online backup"
    if make_url(database_url).get_backend_name() != "postgresql":
        raise BackupError("backups are supported for SQLite and PostgreSQL")
    subprocess.run(  # noqa: S603 - fixed arguments, the URL is the operator's own
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", _libpq_url(database_url)],
        check=True,
        capture_output=True,
    )
    return "pg_dump (custom format)"


def _is_empty(database_url: str) -> bool:
    engine = create_db_engine(database_url)
    try:
        return not inspect(engine).get_table_names()
    finally:
        engine.dispose()


def restore(source: Path, database_url: str) -> str:
    """Put a backup into the configured database, which must be empty (a new data folder or database)."""
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    header = source.read_bytes()[:16]
    target = sqlite_file(database_url)
    if header.startswith(SQLITE_HEADER):
        if target is None:
            raise BackupError("this is a SQLite backup: restore it with a SQLite FACEREC_DATABASE_URL")
        if target.exists() and target.stat().st_size and not _is_empty(database_url):
            raise BackupError(f"{target} already holds data: restore into an empty data folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as backup_file, sqlite3.connect(target) as live:
            backup_file.backup(live)
        return "SQLite"
    if header.startswith(PG_DUMP_HEADER):
        if make_url(database_url).get_backend_name() != "postgresql":
            raise BackupError("this is a PostgreSQL dump: restore it with a PostgreSQL FACEREC_DATABASE_URL")
        if not _is_empty(database_url):
            raise BackupError("the database already holds tables: restore into an empty database")
        subprocess.run(  # noqa: S603 - fixed arguments
            [_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={_libpq_url(database_url)}", str(source)],
            check=True,
            capture_output=True,
        )
        return "PostgreSQL"
    raise BackupError(f"{source} is not a facerec backup (neither a SQLite file nor a pg_dump custom archive)")
