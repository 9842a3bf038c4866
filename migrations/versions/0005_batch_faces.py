"""batch faces: one row per recognised face of a batch entry (box, matches, who it is, optional crop and
embedding), and the corrections admins make to them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:00:00.000000

Existing entries kept their faces as JSON in ``batch_entries.faces``; they become rows here (the person of
a face is the entry's primary result for the largest face, and the best match at the batch's threshold for
the others, as new batches decide it), and the JSON is emptied so the rows are the one record.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 500


def _faces_table() -> sa.Table:
    return sa.table(
        "batch_faces",
        sa.column("batch_id", sa.String),
        sa.column("entry_id", sa.Integer),
        sa.column("domain", sa.String),
        sa.column("face_number", sa.Integer),
        sa.column("x1", sa.Float),
        sa.column("y1", sa.Float),
        sa.column("x2", sa.Float),
        sa.column("y2", sa.Float),
        sa.column("det_score", sa.Float),
        sa.column("matches", sa.JSON),
        sa.column("identity_id", sa.Integer),
        sa.column("person", sa.String),
        sa.column("confidence", sa.Float),
        sa.column("corrected", sa.Boolean),
    )


def _entries_table() -> sa.Table:
    return sa.table("batch_entries", sa.column("id", sa.Integer), sa.column("faces", sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table("batch_entries") as batch:
        batch.add_column(sa.Column("detection", sa.String(length=32), nullable=True))
    op.create_table(
        "batch_faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("face_number", sa.Integer(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("det_score", sa.Float(), nullable=False),
        sa.Column("matches", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=True),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("person", sa.String(length=255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("corrected", sa.Boolean(), nullable=False),
        sa.Column("dismissed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("crop", sa.LargeBinary(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_faces_batch_id_batches"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["batch_entries.id"], name=op.f("fk_batch_faces_entry_id_batch_entries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_faces")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_batch_faces_batch_id", "batch_faces", ["batch_id", "id"])
    op.create_index("ix_batch_faces_entry", "batch_faces", ["entry_id", "face_number"])
    op.create_index("ix_batch_faces_domain_identity", "batch_faces", ["domain", "identity_id"])
    op.create_table(
        "face_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(), nullable=False),
        sa.Column("old_identity_id", sa.Integer(), nullable=True),
        sa.Column("old_person", sa.String(length=255), nullable=True),
        sa.Column("new_identity_id", sa.Integer(), nullable=True),
        sa.Column("new_person", sa.String(length=255), nullable=True),
        sa.Column("added_face_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_face_corrections_batch_id_batches"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["face_id"], ["batch_faces.id"], name=op.f("fk_face_corrections_face_id_batch_faces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_corrections")),
    )
    op.create_index("ix_face_corrections_batch", "face_corrections", ["batch_id", "id"])
    _move_faces_out_of_json()


def _decided(face: dict[str, Any], number: int, entry: Any, threshold: float) -> tuple[str | None, float | None]:
    if number == 0:  # the spec's primary result is the largest face's
        return (entry.primary_person, entry.primary_confidence) if entry.recognized else (None, None)
    best = (face.get("matches") or [None])[0]
    if best and best.get("confidence") is not None and best["confidence"] >= threshold:
        return best["person"], best["confidence"]
    return None, None


def _move_faces_out_of_json() -> None:
    bind = op.get_bind()
    faces = _faces_table()
    last_id = 0
    while True:
        entries = bind.execute(
            sa.text(
                "SELECT e.id, e.batch_id, e.faces, e.recognized, e.primary_person, e.primary_confidence, "
                "b.domain, b.threshold FROM batch_entries e JOIN batches b ON b.id = e.batch_id "
                "WHERE e.id > :last ORDER BY e.id LIMIT :chunk"
            ),
            {"last": last_id, "chunk": CHUNK},
        ).all()
        if not entries:
            return
        rows = []
        for entry in entries:
            stored = entry.faces if not isinstance(entry.faces, str) else json.loads(entry.faces)
            for number, face in enumerate(stored or []):
                person, confidence = _decided(face, number, entry, entry.threshold)
                identity = None
                if person is not None:
                    identity = bind.execute(
                        sa.text("SELECT id FROM identities WHERE domain = :domain AND name = :name"),
                        {"domain": entry.domain, "name": person},
                    ).scalar()
                box = [float(v) for v in face.get("box", [0, 0, 0, 0])]
                rows.append(
                    {
                        "batch_id": entry.batch_id,
                        "entry_id": entry.id,
                        "domain": entry.domain,
                        "face_number": number,
                        "x1": box[0],
                        "y1": box[1],
                        "x2": box[2],
                        "y2": box[3],
                        "det_score": float(face.get("det_score", 0.0)),
                        "matches": face.get("matches") or [],
                        "identity_id": identity,
                        "person": person,
                        "confidence": confidence,
                        "corrected": False,
                    }
                )
        if rows:
            bind.execute(faces.insert(), rows)
        ids = [entry.id for entry in entries]
        entries_table = _entries_table()
        bind.execute(entries_table.update().where(entries_table.c.id.in_(ids)).values(faces=[]))
        last_id = ids[-1]


def downgrade() -> None:
    bind = op.get_bind()
    entry_ids = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT entry_id FROM batch_faces")).all()]
    for entry_id in entry_ids:
        faces = bind.execute(
            sa.text(
                "SELECT x1, y1, x2, y2, det_score, matches FROM batch_faces WHERE entry_id = :entry "
                "ORDER BY face_number"
            ),
            {"entry": entry_id},
        ).all()
        stored = [
            {
                "box": [f.x1, f.y1, f.x2, f.y2],
                "det_score": f.det_score,
                "matches": f.matches if not isinstance(f.matches, str) else json.loads(f.matches),
            }
            for f in faces
        ]
        entries_table = _entries_table()
        bind.execute(entries_table.update().where(entries_table.c.id == entry_id).values(faces=stored))
    op.drop_index("ix_face_corrections_batch", table_name="face_corrections")
    op.drop_table("face_corrections")
    op.drop_index("ix_batch_faces_domain_identity", table_name="batch_faces")
    op.drop_index("ix_batch_faces_entry", table_name="batch_faces")
    op.drop_index("ix_batch_faces_batch_id", table_name="batch_faces")
    op.drop_table("batch_faces")
    with op.batch_alter_table("batch_entries") as batch:
        batch.drop_column("detection")
