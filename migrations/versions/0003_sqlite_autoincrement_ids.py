"""ids of deleted people and faces are never reused (SQLite AUTOINCREMENT)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:00:00.000000

SQLite hands out max(rowid) + 1, so deleting the newest person or face and enrolling again reuses its id,
and a thumbnail cached under that URL would show someone else. AUTOINCREMENT tables never reuse an id;
SQLite cannot add it to an existing table, so the tables are recreated (batch mode copies every row).
PostgreSQL sequences never hand out an id twice: nothing to do there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the gallery change log column that remembers its ids (deleted ones too)
TABLES = {"identities": "identity_id", "faces": "face_id"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, logged in TABLES.items():
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
        # Start above every id ever used, also those deleted before this migration (still in the change log).
        op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :table").bindparams(table=table))
        op.execute(
            sa.text(
                f"INSERT INTO sqlite_sequence (name, seq) SELECT :table, MAX("  # noqa: S608 - names are constants
                f"COALESCE((SELECT MAX(id) FROM {table}), 0), "
                f"COALESCE((SELECT MAX({logged}) FROM gallery_changes), 0))"
            ).bindparams(table=table)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in reversed(TABLES):
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
        op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :table").bindparams(table=table))
