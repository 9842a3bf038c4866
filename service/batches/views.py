"""Stored batches as clients see them: the spec's shapes (field names exact), plus additive extras."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from msgspec import Struct

from service.batches.results import FaceResult, RankedMatch
from service.batches.summary import Summary
from service.common.errors import FileError
from service.common.time import format_timestamp
from service.db.models import Batch, BatchEntry
from service.recognition.quality import FaceQuality


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
    detection: str | None = None  # the detection passes the photo took: "640", "640+border", "640+1280"


class FaceView(FaceResult, frozen=True, kw_only=True):
    """A recognised face of a stored entry: the model's result plus who it was decided to be."""

    face_id: int
    person: str  # "Unknown" when nobody
    identity_id: int | None
    confidence: float | None
    corrected: bool  # an admin decided it, not the model
    crop_url: str | None  # the aligned crop, when batch faces are kept


class PersonInPhoto(Struct):
    """Someone recognised in a photo, on any face."""

    person: str
    identity_id: int | None
    confidence: float | None
    box: tuple[float, float, float, float]
    face: int  # the index of their face in ``faces``


class EntryView(Struct):
    timestamp: str
    batch_id: str
    filename: str
    domain: str
    recognized: bool
    primary_result: PrimaryResult
    top_3_matches: list[RankedMatch]
    metadata: EntryMetadata
    faces: list[FaceView]  # extra: every recognised face with its box, matches and person, largest first
    people: list[PersonInPhoto]  # extra: everyone recognised in the photo, best first


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


def crop_url(batch_id: str, face_id: int) -> str:
    """Where a stored batch face's crop is served."""
    return f"/api/batch-photos/logs/{batch_id}/faces/{face_id}/crop"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def face_view(row: Any, batch_id: str) -> FaceView:
    """A stored face (a ``service.db.batches.FACE_COLUMNS`` row)."""
    return FaceView(
        box=(row.x1, row.y1, row.x2, row.y2),
        det_score=row.det_score,
        matches=msgspec.convert(_json(row.matches), list[RankedMatch]),
        quality=msgspec.convert(_json(row.quality), FaceQuality) if row.quality is not None else None,
        face_id=row.id,
        person=row.person if row.person is not None else "Unknown",
        identity_id=row.identity_id,
        confidence=row.confidence,
        corrected=bool(row.corrected),
        crop_url=crop_url(batch_id, row.id) if row.has_crop else None,
    )


def people_in(faces: list[FaceView]) -> list[PersonInPhoto]:
    """Everyone recognised on the faces, each once (their best face), best confidence first."""
    best: dict[int | str, PersonInPhoto] = {}
    for number, face in enumerate(faces):
        if face.person == "Unknown" and face.identity_id is None:
            continue
        key = face.identity_id if face.identity_id is not None else face.person
        seen = best.get(key)
        if seen is None or (face.confidence or 0.0) > (seen.confidence or 0.0):
            best[key] = PersonInPhoto(face.person, face.identity_id, face.confidence, face.box, number)
    return sorted(best.values(), key=lambda p: -(p.confidence or 0.0))


def entry_view(entry: BatchEntry, batch: Batch, face_rows: list[Any]) -> EntryView:
    """One stored entry in the spec's shape, with every face's detail and the people in it as extras."""
    faces = [face_view(row, batch.id) for row in face_rows]
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
            detection=entry.detection,
        ),
        faces=faces,
        people=people_in(faces),
    )


def batch_log(batch: Batch, entries: list[BatchEntry], faces: dict[int, list[Any]]) -> BatchLog:
    """A batch's detailed log (``faces``: each entry's stored face rows by entry id)."""
    return BatchLog(
        success=True,
        batch_id=batch.id,
        total_photos=batch.total_processed,
        summary=stored_summary(batch),
        entries=[entry_view(entry, batch, faces.get(entry.id, [])) for entry in entries],
        created_at=format_timestamp(batch.created_at),
        total_uploaded=batch.total_uploaded,
        threshold=batch.threshold,
        errors=[FileError(error["filename"], error["error"]) for error in batch.errors],
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


class Appearance(Struct):
    """A batch face recognised as a person."""

    batch_id: str
    filename: str
    timestamp: str
    face: int  # the face's index in the entry's ``faces``
    face_id: int
    confidence: float | None
    corrected: bool
    box: tuple[float, float, float, float]
    crop_url: str | None


class Appearances(Struct):
    success: bool
    total: int
    appearances: list[Appearance]
    limit: int
    offset: int


def appearance(row: Any) -> Appearance:
    """A ``service.db.batches.appearances`` row."""
    return Appearance(
        batch_id=row.batch_id,
        filename=row.filename,
        timestamp=format_timestamp(row.timestamp),
        face=row.face_number,
        face_id=row.id,
        confidence=row.confidence,
        corrected=bool(row.corrected),
        box=(row.x1, row.y1, row.x2, row.y2),
        crop_url=crop_url(row.batch_id, row.id) if row.has_crop else None,
    )
