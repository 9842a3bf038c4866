"""identity name keys: names are unique per domain ignoring case, Unicode-compatible forms and spacing

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:00:00.000000

Each person gets ``name_key`` (NFKC, case-folded, single spaces), unique per domain, replacing the exact-name
constraint. People whose names already clash under that rule ("Barack Obama" and "barack obama") are all kept:
the first enrolled keeps the key, the others get one suffixed with their id, and every clash is reported in the
migration's log so an operator can rename or merge them.
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")


def _key(name: str) -> str:
    # Frozen copy of service.common.names.name_key as of this revision.
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _sqlite_sequence(bind: sa.Connection) -> int | None:
    if bind.dialect.name != "sqlite":
        return None
    return bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'identities'")).scalar()


def _restore_sequence(bind: sa.Connection, seq: int | None) -> None:
    # Recreating the table (SQLite batch mode) must not let deleted ids come back.
    if bind.dialect.name == "sqlite" and seq is not None:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'identities'"))
        bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('identities', :seq)"), {"seq": seq})


def upgrade() -> None:
    bind = op.get_bind()
    seq = _sqlite_sequence(bind)
    with op.batch_alter_table("identities", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("name_key", sa.String(length=255), nullable=True))
    taken: dict[tuple[str, str], tuple[int, str]] = {}
    clashes = []
    for identity_id, domain, name in bind.execute(sa.text("SELECT id, domain, name FROM identities ORDER BY id")):
        key = _key(name)
        first = taken.get((domain, key))
        if first is None:
            taken[(domain, key)] = (identity_id, name)
        else:
            clashes.append(f"domain {domain!r}: {name!r} (id {identity_id}) clashes with {first[1]!r} (id {first[0]})")
            key = f"{key} #{identity_id}"
        bind.execute(sa.text("UPDATE identities SET name_key = :key WHERE id = :id"), {"key": key, "id": identity_id})
    for clash in clashes:
        logger.warning("people with the same name: %s; rename one or move its faces to the other", clash)
    with op.batch_alter_table(
        "identities",
        recreate="always" if bind.dialect.name == "sqlite" else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.alter_column("name_key", existing_type=sa.String(length=255), nullable=False)
        batch.drop_constraint("uq_identities_domain_name", type_="unique")
        batch.create_unique_constraint("uq_identities_domain_name_key", ["domain", "name_key"])
    _restore_sequence(bind, seq)


def downgrade() -> None:
    bind = op.get_bind()
    seq = _sqlite_sequence(bind)
    with op.batch_alter_table(
        "identities",
        recreate="always" if bind.dialect.name == "sqlite" else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.drop_constraint("uq_identities_domain_name_key", type_="unique")
        batch.create_unique_constraint("uq_identities_domain_name", ["domain", "name"])
        batch.drop_column("name_key")
    _restore_sequence(bind, seq)
