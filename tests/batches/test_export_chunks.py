"""CSV export reads a batch in chunks, each on a connection given back before the chunk is sent on."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.batches.export import ROWS_PER_CHUNK, stream_csv
from service.db.session import create_db_engine, create_session_factory
from service.settings import Settings
from tests.batches.stored import store_batch
from tests.conftest import auth

BATCH_ID = "20231215_143022_1234"
ROWS = 2345  # two full chunks and a partial one


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    sessions = create_session_factory(engine)
    # Inserted out of upload order: entry ids do not follow positions, the CSV must.
    store_batch(sessions, BATCH_ID, ROWS, shuffled=True)
    return sessions


def filenames(csv_bytes: bytes) -> list[str]:
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
    assert rows[0][0] == "Timestamp"
    return [row[1] for row in rows[1:]]


def expected_filenames(rows: int) -> list[str]:
    return [f"photo_{position:05d}.jpg" for position in range(rows)]


def test_no_database_connection_is_held_while_a_chunk_waits_to_be_sent(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    chunks = []
    for chunk in stream_csv(sessions, BATCH_ID, "example.com"):
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        chunks.append(chunk)
    assert len(chunks) == -(-ROWS // ROWS_PER_CHUNK)
    assert filenames(b"".join(chunks)) == expected_filenames(ROWS)


def test_an_export_across_chunk_boundaries_has_every_row_once_in_upload_order(
    client: httpx.Client, sessions: sessionmaker[Session], tokens: Callable[..., str]
) -> None:
    response = client.get(f"/api/batch-photos/logs/{BATCH_ID}/export", headers=auth(tokens()))
    assert response.status_code == 200
    assert filenames(response.content) == expected_filenames(ROWS)


def test_an_export_of_exactly_one_chunk_ends_cleanly(engine: Engine) -> None:
    sessions = create_session_factory(engine)
    store_batch(sessions, BATCH_ID, ROWS_PER_CHUNK)
    assert filenames(b"".join(stream_csv(sessions, BATCH_ID, "example.com"))) == expected_filenames(ROWS_PER_CHUNK)


def test_an_empty_batch_exports_just_the_header(engine: Engine) -> None:
    sessions = create_session_factory(engine)
    store_batch(sessions, BATCH_ID, 0)
    assert filenames(b"".join(stream_csv(sessions, BATCH_ID, "example.com"))) == []
