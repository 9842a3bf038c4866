"""Batches written straight through the db layer (no photos, no models): fast, and as large as a test needs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Batch, BatchEntry

START = datetime(2023, 12, 15, 14, 30, 22, 123456)


def entry(position: int) -> dict[str, Any]:
    """The entry of upload position ``position``; its file name is ``photo_<position>.jpg``."""
    recognized = position % 3 != 0
    return dict(
        position=position,
        timestamp=START + timedelta(milliseconds=position),
        filename=f"photo_{position:05d}.jpg",
        recognized=recognized,
        primary_person="Ann" if recognized else None,
        primary_confidence=90.0 if recognized else None,
        match1_person="Ann",
        match1_confidence=90.0,
        match2_person="Bob",
        match2_confidence=40.0,
        match3_person=None,
        match3_confidence=None,
        face_count=1,
        processing_time_ms=position % 1000,
        faces=[],
    )


def store_batch(
    sessions: sessionmaker[Session], batch_id: str, rows: int, domain: str = "example.com", shuffled: bool = False
) -> None:
    """Store batch ``batch_id`` with ``rows`` entries; ``shuffled`` inserts them out of upload order."""
    positions = list(range(rows))
    if shuffled:
        random.Random(rows).shuffle(positions)
    batch = Batch(
        id=batch_id,
        domain=domain,
        created_at=START,
        threshold=70.0,
        total_uploaded=rows,
        total_processed=rows,
        recognized_count=sum(1 for p in positions if p % 3 != 0),
        avg_confidence=90.0,
        persons_list=["Ann"],
        errors=[],
    )
    with sessions.begin() as session:
        session.add(batch)
        session.flush()
        if positions:  # one multi-row INSERT per thousand rows: tens of thousands of entries in seconds
            session.execute(insert(BatchEntry), [{"batch_id": batch_id, **entry(p)} for p in positions])
