"""Plain result records of a batch, independent of HTTP and SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RankedMatch:
    """One of a face's top matches."""

    rank: int
    person: str
    confidence: float  # 0-100, one decimal
    similarity: float  # raw cosine similarity
    identity_id: int


@dataclass(frozen=True, slots=True)
class FaceResult:
    """One detected face and its matches (extra detail beyond the spec's primary face)."""

    box: tuple[float, float, float, float]
    det_score: float
    matches: list[RankedMatch]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form, as stored and served."""
        return {
            "box": [round(v, 1) for v in self.box],
            "det_score": round(self.det_score, 4),
            "matches": [
                {"rank": m.rank, "person": m.person, "confidence": m.confidence, "similarity": round(m.similarity, 4)}
                for m in self.matches
            ],
        }


@dataclass(frozen=True, slots=True)
class EntryResult:
    """The result for one usable photo."""

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


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be used, and why."""

    filename: str
    error: str


@dataclass(slots=True)
class BatchOutcome:
    """Everything a batch run produced, before it is stored."""

    entries: list[EntryResult] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    total_uploaded: int = 0
