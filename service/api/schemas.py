"""Response shapes (msgspec); field names follow the spec exactly, extras are additive."""

from __future__ import annotations

from msgspec import Struct


class MatchOut(Struct):
    rank: int
    person: str
    confidence: float
    similarity: float | None = None  # extra: raw cosine similarity


class PrimaryResult(Struct):
    person: str
    confidence: float | None


class EntryMetadata(Struct, omit_defaults=True):
    face_count: int
    processing_time_ms: int
    has_multiple_faces: bool
    # Only when a face limit was reached: how many of the faces were recognised, and a note saying so.
    faces_recognized: int | None = None
    note: str | None = None


class FaceOut(Struct):
    box: list[float]
    det_score: float
    matches: list[MatchOut]


class EntryOut(Struct):
    timestamp: str
    batch_id: str
    filename: str
    domain: str
    recognized: bool
    primary_result: PrimaryResult
    top_3_matches: list[MatchOut]
    metadata: EntryMetadata
    faces: list[FaceOut]  # extra: every face with its box and own matches, largest first


class SummaryOut(Struct):
    total_photos: int
    recognized_count: int
    unrecognized_count: int
    recognition_rate: float
    unique_persons: int
    persons_list: list[str]
    avg_confidence: float


class FileErrorOut(Struct):
    filename: str
    error: str


class RecognizeResponse(Struct):
    success: bool
    batch_id: str
    total_uploaded: int
    total_processed: int
    summary: SummaryOut
    message: str
    log_url: str
    errors: list[FileErrorOut]
    threshold: float
    export_url: str


class BatchLogResponse(Struct):
    success: bool
    batch_id: str
    total_photos: int
    summary: SummaryOut
    entries: list[EntryOut]
    created_at: str
    total_uploaded: int
    threshold: float
    errors: list[FileErrorOut]


class BatchListItem(Struct):
    batch_id: str
    total_photos: int
    summary: SummaryOut
    created_at: str
    total_uploaded: int


class BatchListResponse(Struct):
    success: bool
    total: int
    batches: list[BatchListItem]
    limit: int
    offset: int


class ErrorResponse(Struct):
    success: bool
    error: str


class MessageResponse(Struct):
    success: bool
    message: str


class WhoAmIResponse(Struct, omit_defaults=True):
    success: bool
    domain: str
    role: str
    worker_pid: int | None = None  # admin tokens only: which server process answered


class HealthResponse(Struct):
    status: str
    service: str
    version: str
    log_directory_exists: bool
    endpoints: list[str]
    database: str
    models_loaded: bool
    model: str
    index_loaded: bool
    indexed_domains: int
    indexed_faces: int


class IdentityOut(Struct):
    id: int
    name: str
    face_count: int
    created_at: str
    thumbnail_url: str | None = None  # extra: the newest face's thumbnail


class FaceInfoOut(Struct):
    id: int
    filename: str
    det_score: float
    created_at: str
    thumbnail_url: str


class IdentityDetailOut(Struct):
    id: int
    name: str
    face_count: int
    created_at: str
    faces: list[FaceInfoOut]


class EnrolledOut(Struct):
    filename: str
    face_id: int
    note: str | None = None


class EnrollmentResponse(Struct):
    success: bool
    identity: IdentityOut
    enrolled: list[EnrolledOut]
    rejected: list[FileErrorOut]


class IdentityListResponse(Struct):
    success: bool
    total: int
    identities: list[IdentityOut]
    limit: int
    offset: int


class IdentityResponse(Struct):
    success: bool
    identity: IdentityDetailOut


class RenameRequest(Struct):
    name: str
