"""Migration 0005 moves the faces batches kept as JSON into batch_faces rows, and back on downgrade."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import text

from service.db import migrate
from service.db.session import create_db_engine

FACES = [
    {
        "box": [10.0, 20.0, 110.0, 140.0],
        "det_score": 0.91,
        "matches": [{"rank": 1, "person": "Ann", "confidence": 96.0, "similarity": 0.6}],
    },
    {
        "box": [200.0, 20.0, 260.0, 90.0],
        "det_score": 0.85,
        "matches": [{"rank": 1, "person": "Bob", "confidence": 88.0, "similarity": 0.5}],
    },
    {
        "box": [300.0, 20.0, 340.0, 70.0],
        "det_score": 0.7,
        "matches": [{"rank": 1, "person": "Ann", "confidence": 40.0, "similarity": 0.2}],
    },
]


def test_faces_kept_as_json_become_rows_with_their_people_and_come_back_on_downgrade(database_url: str) -> None:
    migrate.downgrade(database_url, "0004")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO identities (domain, name, created_at, updated_at) VALUES ('d', 'Bob', :t, :t)"),
                {"t": datetime(2026, 1, 1)},
            )
            connection.execute(
                text(
                    "INSERT INTO batches (id, domain, created_at, threshold, total_uploaded, total_processed, "
                    "recognized_count, avg_confidence, persons_list, errors) "
                    "VALUES ('20260101_000000_0001', 'd', :t, 70, 1, 1, 1, 96, :persons, :errors)"
                ),
                {"t": datetime(2026, 1, 1), "persons": json.dumps(["Ann"]), "errors": "[]"},
            )
            connection.execute(
                text(
                    "INSERT INTO batch_entries (batch_id, position, timestamp, filename, recognized, primary_person, "
                    "primary_confidence, face_count, processing_time_ms, faces) VALUES "
                    "('20260101_000000_0001', 0, :t, 'group.jpg', :yes, 'Ann', 96, 3, 40, :faces)"
                ),
                {"t": datetime(2026, 1, 1), "yes": True, "faces": json.dumps(FACES)},
            )
        migrate.upgrade(database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT face_number, x1, person, confidence, identity_id FROM batch_faces ORDER BY face_number")
            ).all()
            bob = connection.execute(text("SELECT id FROM identities WHERE name = 'Bob'")).scalar()
            left = connection.execute(text("SELECT faces FROM batch_entries")).scalar()
        # The largest face is the entry's primary result; the others their best match at the batch's threshold.
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
            (0, 10.0, "Ann", 96.0),
            (1, 200.0, "Bob", 88.0),
            (2, 300.0, None, None),
        ]
        assert [r[4] for r in rows] == [None, bob, None]  # resolved by name where the person exists
        assert (json.loads(left) if isinstance(left, str) else left) == []
        migrate.downgrade(database_url, "0004")
        with engine.connect() as connection:
            restored = connection.execute(text("SELECT faces FROM batch_entries")).scalar()
        restored = json.loads(restored) if isinstance(restored, str) else restored
        assert [f["box"] for f in restored] == [f["box"] for f in FACES]
        assert [f["matches"] for f in restored] == [f["matches"] for f in FACES]
    finally:
        migrate.upgrade(database_url)
        engine.dispose()
