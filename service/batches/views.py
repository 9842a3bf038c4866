"""Stored batches as clients see them: the spec's shapes (field names exact), plus additive extras."""

from __future__ import annotations

from msgspec import Struct

from service.batches.results import FaceResult, RankedMatch, faces_from_json
from service.batches.summary import Summary
from service.common.errors import FileError
from service.common.time import format_timestamp
from service.db.models import Batch, BatchEntry


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


class EntryView(Struct):
    timestamp: str
    batch_id: str
    filename: str
    domain: str
    recognized: bool
    primary_result: PrimaryResult
    top_3_matches: list[RankedMatch]
    metadata: EntryMetadata
    faces: list[FaceResult]  # extra: every face with its box and own matches, largest first


class BatchLog(Struct):
    success: bool
    batch_id: str
    total_photos: int
    summary: Summary
    entries: list[EntryView]
    created_at: str
    total_uploaded: int
    threshold: float
    errors: list[FileError]


class BatchListItem(Struct):
    batch_id: str
    total_photos: int
    summary: Summary
    created_at: str
    total_uploaded: int


class BatchPage(Struct):
    success: bool
    total: int
    batches: list[BatchListItem]
    limit: int
    offset: int


def stored_summary(batch: Batch) -> Summary:
    """The summary of a stored batch, from the figures saved with it."""
    total = batch.total_processed
    recognized = batch.recognized_count
    return Summary(
        total_photos=total,
        recognized_count=recognized,
        unrecognized_count=total - recognized,
        recognition_rate=round(recognized / total * 100, 2) if total else 0.0,
        unique_persons=len(batch.persons_list),
        persons_list=list(batch.persons_list),
        avg_confidence=batch.avg_confidence if batch.avg_confidence is not None else 0.0,
    )


def entry_view(entry: BatchEntry, batch: Batch) -> EntryView:
    """One stored entry in the spec's shape, with every face's detail as an extra."""
    faces = faces_from_json(entry.faces)
    primary_matches = faces[0].matches if faces else []
    columns = [
        (entry.match1_person, entry.match1_confidence),
        (entry.match2_person, entry.match2_confidence),
        (entry.match3_person, entry.match3_confidence),
    ]
    top = []
    for rank, (person, confidence) in enumerate(columns, start=1):
        if person is None:
            continue
        # The spec's columns hold name and confidence; the largest face's stored matches add the rest.
        same = primary_matches[rank - 1] if rank <= len(primary_matches) else None
        top.append(
            RankedMatch(
                rank=rank,
                person=person,
                confidence=confidence if confidence is not None else 0.0,
                similarity=same.similarity if same else None,
                identity_id=same.identity_id if same and same.person == person else None,
            )
        )
    primary = (
        PrimaryResult(person=entry.primary_person or "Unknown", confidence=entry.primary_confidence)
        if entry.recognized
        else PrimaryResult(person="Unknown", confidence=None)
    )
    limited = len(faces) < entry.face_count
    return EntryView(
        timestamp=format_timestamp(entry.timestamp),
        batch_id=batch.id,
        filename=entry.filename,
        domain=batch.domain,
        recognized=entry.recognized,
        primary_result=primary,
        top_3_matches=top,
        metadata=EntryMetadata(
            face_count=entry.face_count,
            processing_time_ms=entry.processing_time_ms,
            has_multiple_faces=entry.face_count > 1,
            faces_recognized=len(faces) if limited else None,
            note=(
                f"{entry.face_count} faces detected; the {len(faces)} largest were recognised (face limit reached)"
                if limited
                else None
            ),
        ),
        faces=faces,
    )


def batch_log(batch: Batch, entries: list[BatchEntry]) -> BatchLog:
    """A batch's detailed log."""
    return BatchLog(
        success=True,
        batch_id=batch.id,
        total_photos=batch.total_processed,
        summary=stored_summary(batch),
        entries=[entry_view(entry, batch) for entry in entries],
        created_at=format_timestamp(batch.created_at),
        total_uploaded=batch.total_uploaded,
        threshold=batch.threshold,
        errors=[FileError(**error) for error in batch.errors],
    )


def batch_list_item(batch: Batch) -> BatchListItem:
    """A batch's line in the list."""
    return BatchListItem(
        batch_id=batch.id,
        total_photos=batch.total_processed,
        summary=stored_summary(batch),
        created_at=format_timestamp(batch.created_at),
        total_uploaded=batch.total_uploaded,
    )
