"""Batches are stored all-or-nothing under unique ids."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.batches.ids import is_batch_id, new_batch_id
from service.batches.recording import store_batch
from service.batches.results import BatchOutcome, EntryResult, RankedMatch
from service.db.models import Batch, BatchEntry

MOMENT = datetime(2023, 12, 15, 14, 30, 22)


def entry(position: int, filename: str | None = "photo.jpg") -> EntryResult:
    match = RankedMatch(rank=1, person="Ann", confidence=90.0, similarity=0.6, identity_id=1)
    return EntryResult(
        position=position,
        filename=filename,  # type: ignore[arg-type]
        timestamp=MOMENT,
        recognized=True,
        primary_person="Ann",
        primary_confidence=90.0,
        top_3=[match],
        face_count=1,
        processing_time_ms=12,
        faces=[],
    )


def test_batch_ids_are_utc_time_plus_four_digits() -> None:
    batch_id = new_batch_id(MOMENT)
    assert batch_id.startswith("20231215_143022_")
    assert is_batch_id(batch_id)


def test_many_batches_in_the_same_second_get_unique_ids(sessions: sessionmaker[Session]) -> None:
    ids = set()
    for _ in range(60):
        batch, _ = store_batch(sessions, BatchOutcome([entry(0)], [], 1), domain="d", threshold=70, started_at=MOMENT)
        ids.add(batch.id)
    assert len(ids) == 60
    assert all(i.startswith("20231215_143022_") for i in ids)


def test_a_failure_while_writing_entries_leaves_no_batch_behind(sessions: sessionmaker[Session]) -> None:
    broken = BatchOutcome([entry(0), entry(1, filename=None)], [], 2)  # the second entry violates NOT NULL
    with pytest.raises(IntegrityError):
        store_batch(sessions, broken, domain="d", threshold=70, started_at=MOMENT)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0
        assert session.scalar(select(func.count()).select_from(BatchEntry)) == 0
