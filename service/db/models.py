"""SQLAlchemy 2 typed models; SQL is the source of truth for every piece of state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from service.common.names import name_key
from service.common.time import utcnow

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiToken(Base):
    """An API token; only its SHA-256 hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Identity(Base):
    """An enrolled person, unique by name within a domain."""

    __tablename__ = "identities"
    __table_args__ = (
        # One person per name, whatever its case, spacing or Unicode form (service.common.names.name_key).
        UniqueConstraint("domain", "name_key", name="uq_identities_domain_name_key"),
        {"sqlite_autoincrement": True},  # never reuse a deleted person's id (thumbnail URLs are cached)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = name_key(name)
        return name


class Face(Base):
    """One enrolled face: its embedding lives here so the index can always be rebuilt."""

    __tablename__ = "faces"
    __table_args__ = (
        UniqueConstraint("identity_id", "content_sha256", name="uq_faces_identity_content"),
        Index("ix_faces_domain_id", "domain", "id"),
        {"sqlite_autoincrement": True},  # never reuse a deleted face's id (thumbnail URLs are cached)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(255))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    det_score: Mapped[float] = mapped_column(Float)
    filename: Mapped[str] = mapped_column(String(255))
    content_sha256: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(64))
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class IndexState(Base):
    """Per-domain gallery version; bumped in the same transaction as every gallery change."""

    __tablename__ = "index_state"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class GalleryChange(Base):
    """One change of a domain's gallery at one version: lets other processes update their index by delta."""

    __tablename__ = "gallery_changes"
    __table_args__ = (Index("ix_gallery_changes_domain_version", "domain", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))  # "add", "remove" or "none"
    face_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    identity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IndexSnapshot(Base):
    """The gallery version of one domain's index file in one index folder (its holder): the change log
    after the oldest such version is kept, so every holder's file can be caught up by replaying it."""

    __tablename__ = "index_snapshots"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    saved_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Batch(Base):
    """One recognition batch; written together with all its entries in one transaction."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_domain_created", "domain", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    threshold: Mapped[float] = mapped_column(Float)
    total_uploaded: Mapped[int] = mapped_column(Integer)
    total_processed: Mapped[int] = mapped_column(Integer)
    recognized_count: Mapped[int] = mapped_column(Integer)
    avg_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    persons_list: Mapped[list[str]] = mapped_column(JSON, default=list)
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class BatchEntry(Base):
    """The result for one photo; flat top-3 columns so CSV export is a plain streamed query."""

    __tablename__ = "batch_entries"
    __table_args__ = (Index("ix_batch_entries_batch_position", "batch_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(DateTime)
    filename: Mapped[str] = mapped_column(String(255))
    recognized: Mapped[bool] = mapped_column(Boolean)
    primary_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    primary_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    match1_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    match1_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    match2_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    match2_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    match3_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    match3_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    face_count: Mapped[int] = mapped_column(Integer)
    processing_time_ms: Mapped[int] = mapped_column(Integer)
    detection: Mapped[str | None] = mapped_column(String(32), nullable=True)  # passes taken, e.g. "640+1280"
    # Before migration 0005 every face's box and matches were kept here; they are now rows of batch_faces.
    faces: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class BatchFace(Base):
    """One recognised face of a batch entry: where it is, what the model matched, who it was decided to be
    (the model's best match at the batch's threshold, or an admin's correction), and optionally its aligned
    crop and embedding for review (``FACEREC_KEEP_BATCH_FACES``)."""

    __tablename__ = "batch_faces"
    __table_args__ = (
        Index("ix_batch_faces_batch_id", "batch_id", "id"),
        Index("ix_batch_faces_entry", "entry_id", "face_number"),
        Index("ix_batch_faces_domain_identity", "domain", "identity_id"),
        {"sqlite_autoincrement": True},  # crop URLs name face ids; a deleted one must never come back
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("batch_entries.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    face_number: Mapped[int] = mapped_column(Integer)  # 0 = the largest face of the photo
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    det_score: Mapped[float] = mapped_column(Float)
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the model's top 3, best first
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # FaceQuality; None: unmeasured
    identity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # who it is; None = Unknown
    person: Mapped[str | None] = mapped_column(String(255), nullable=True)  # their name when decided
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    corrected: Mapped[bool] = mapped_column(Boolean, default=False)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)  # "not a face" / ignored when grouping unknowns
    crop: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # aligned 112x112 JPEG
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # 512 float32


class FaceCorrection(Base):
    """An admin's correction of a batch face: who, when, and what it was before and after."""

    __tablename__ = "face_corrections"
    __table_args__ = (Index("ix_face_corrections_batch", "batch_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    face_id: Mapped[int] = mapped_column(ForeignKey("batch_faces.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the CLI
    corrected_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    old_identity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    old_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    new_identity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    added_face_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the gallery face it became


class MaintenanceLease(Base):
    """Who runs a periodic job until when: every worker and replica tries to take it, one holds it."""

    __tablename__ = "maintenance_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class AuditEvent(Base):
    """An admin action or a failed attempt at one: who (token), when, what, on which ids, and how it ended."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_domain_at", "domain", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the command line
    actor: Mapped[str] = mapped_column(String(255))  # the token's name, or "cli"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))  # the ids involved, e.g. "identity 5 face 9"
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[int] = mapped_column(Integer)  # HTTP status, or 0 (done) / 1 (refused) for the CLI
