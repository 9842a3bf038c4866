"""An export holds every entry exactly once, in upload order, whatever the batch's size relative to the export's
chunks of 1,000 rows: just under, at and just over one and two chunks, over HTTP, from SQL and on the command
line's writer."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from service.batches.export import csv_chunks, stream_csv
from service.db.batches import iter_export_rows
from service.db.models import BatchEntry
from service.db.session import create_db_engine, create_session_factory
from service.settings import Settings
from tests.batches.stored import entry, store_batch
from tests.conftest import auth

BATCH_ID = "20231215_143022_1234"
AROUND_CHUNKS = [1, 999, 1000, 1001, 1999, 2000, 2001]


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine)


def store_last_first(sessions: sessionmaker[Session], rows: int) -> None:
    """A batch whose entries were inserted last position first: entry ids run against upload order, so a chunk
    boundary that leans on ids rather than positions loses or repeats rows."""
    store_batch(sessions, BATCH_ID, 0)
    with sessions.begin() as session:
        session.execute(insert(BatchEntry), [{"batch_id": BATCH_ID, **entry(p)} for p in reversed(range(rows))])


def filenames(csv_bytes: bytes) -> list[str]:
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
    assert rows[0][:2] == ["Timestamp", "Filename"]  # the header, once, first
    assert all(row[0] != "Timestamp" for row in rows[1:])
    return [row[1] for row in rows[1:]]


def in_upload_order(rows: int) -> list[str]:
    return [f"photo_{position:05d}.jpg" for position in range(rows)]


@pytest.mark.parametrize("rows", AROUND_CHUNKS)
def test_the_streamed_export_has_every_row_once_in_upload_order(sessions: sessionmaker[Session], rows: int) -> None:
    store_last_first(sessions, rows)
    assert filenames(b"".join(stream_csv(sessions, BATCH_ID, "example.com"))) == in_upload_order(rows)


@pytest.mark.parametrize("rows", [1000, 1001])
def test_the_http_export_has_every_row_once_in_upload_order(
    client: httpx.Client, sessions: sessionmaker[Session], tokens: Callable[..., str], rows: int
) -> None:
    store_last_first(sessions, rows)
    response = client.get(f"/api/batch-photos/logs/{BATCH_ID}/export", headers=auth(tokens()))
    assert response.status_code == 200
    assert filenames(response.content) == in_upload_order(rows)


@pytest.mark.parametrize("rows", AROUND_CHUNKS)
def test_the_command_line_export_writer_has_every_row_once_in_upload_order(
    sessions: sessionmaker[Session], rows: int
) -> None:
    store_last_first(sessions, rows)
    with sessions() as session:
        written = b"".join(csv_chunks(iter_export_rows(session, BATCH_ID), "example.com"))
    assert filenames(written) == in_upload_order(rows)
