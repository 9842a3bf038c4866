"""What a batch produces, as one msgspec type per concept: the pipeline builds them, SQL stores them as JSON
(``msgspec.to_builtins``) and the API serves them as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from msgspec import Struct

from service.common.errors import FileError
from service.recognition.quality import FaceQuality

__all__ = ["BatchOutcome", "EntryResult", "FaceResult", "FileError", "RankedMatch", "decide"]


class RankedMatch(Struct, frozen=True):
    """One of a face's top matches."""

    rank: int
    person: str
    confidence: float  # 0-100, one decimal
    similarity: float | None = None  # raw cosine similarity, 4 decimals (not kept in the spec's columns)
    identity_id: int | None = None  # the person's id (not kept in the spec's columns)


class FaceResult(Struct, frozen=True):
    """One detected face, its box in the photo's pixels, its matches (best first) and its quality."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    det_score: float
    matches: list[RankedMatch]
    quality: FaceQuality | None = None  # None: not measured (batches recognised before it was)


def decide(face: FaceResult, threshold: float) -> RankedMatch | None:
    """Who a face is: its best match when that reaches the threshold and the face is good enough to trust
    it (a blurred, tiny or turned-away face never is, however lucky its match), else nobody (Unknown)."""
    best = face.matches[0] if face.matches else None
    usable = face.quality is None or not face.quality.issues
    return best if best is not None and usable and best.confidence >= threshold else None


@dataclass(frozen=True, slots=True)
class EntryResult:
    """The result for one usable photo, before it is stored."""

    position: int
    filename: str
    timestamp: datetime
    recognized: bool
    primary_person: str | None
    primary_confidence: float | None
    top_3: list[RankedMatch]
    face_count: int
    processing_time_ms: int
    faces: list[FaceResult]
    detection: str = ""  # the detection passes the photo took ("640", "640+border", "640+1280")
    crops: list[bytes] | None = None  # each face's aligned crop (JPEG), when batch faces are kept
    embeddings: np.ndarray | None = None  # each face's embedding (n x 512), when batch faces are kept


@dataclass(slots=True)
class BatchOutcome:
    """Everything a batch run produced, before it is stored."""

    entries: list[EntryResult] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    total_uploaded: int = 0
