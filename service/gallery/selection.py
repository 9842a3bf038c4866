"""Which face of each photo to enroll, and whether it is fit to be enrolled.

A gallery face mislabels every later batch, so the face is chosen, not assumed: the one most like the person's
existing faces when adding photos; the one consistent across the photos of a new person; the one the client
names when a single photo holds several faces. Rules only: reading photos and storing faces happen elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.common.errors import NOT_LIKE_OTHER_PHOTOS, NOT_LIKE_PERSON, InvalidInputError, RejectedPhoto
from service.recognition.confidence import rounded_confidence
from service.recognition.faces import FaceCandidate
from service.recognition.quality import FaceQuality, QualityLimits, assess, describe


@dataclass(frozen=True, slots=True)
class PhotoFaces:
    """One photo of an enrollment: every face found in it (largest first) with its embedding."""

    filename: str
    content_sha256: str
    faces: list[FaceCandidate]
    embeddings: np.ndarray  # len(faces) x 512, unit length


@dataclass(frozen=True, slots=True)
class Chosen:
    """The face of a photo that will be enrolled, and why it was the one."""

    photo: PhotoFaces
    index: int
    quality: FaceQuality
    note: str | None = None

    @property
    def face(self) -> FaceCandidate:
        """The chosen face."""
        return self.photo.faces[self.index]

    @property
    def embedding(self) -> np.ndarray:
        """The chosen face's embedding."""
        vector: np.ndarray = self.photo.embeddings[self.index]
        return vector


class AmbiguousFaceError(InvalidInputError):
    """A new person from one photo with several faces: the client must say which (``faces`` lists them)."""

    def __init__(self, filename: str, faces: Sequence[FaceCandidate], qualities: Sequence[FaceQuality]) -> None:
        super().__init__(
            f"{filename} holds {len(faces)} faces: say which one is the person with face=<number> (0 = the "
            "largest, as listed in faces) or face=x1,y1,x2,y2 (a box around it)"
        )
        self.details = {
            "filename": filename,
            "faces": [
                {
                    "face": number,
                    "box": [round(float(v), 1) for v in face.box],
                    "det_score": round(float(face.det_score), 4),
                    "quality_issues": quality.issues,
                }
                for number, (face, quality) in enumerate(zip(faces, qualities, strict=True))
            ],
        }


def face_choice(raw: str | None) -> int | tuple[float, float, float, float] | None:
    """The ``face`` field: a face number, or a box ``x1,y1,x2,y2`` around it; None when absent."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if text.isdigit() and len(text) <= 4:
        return int(text)
    parts = text.replace(" ", "").split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]) or not all(np.isfinite(box)):
        raise InvalidInputError(f"face must be a face number or a box x1,y1,x2,y2 (got {text[:40]!r})")
    return (box[0], box[1], box[2], box[3])


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pick_named(photo: PhotoFaces, choice: int | tuple[float, float, float, float]) -> int:
    """The face a client named: by number, or the one its box overlaps most."""
    if isinstance(choice, int):
        if choice >= len(photo.faces):
            raise InvalidInputError(f"face {choice} does not exist: {photo.filename} holds {len(photo.faces)} face(s)")
        return choice
    overlaps = [_overlap(face.box, choice) for face in photo.faces]
    best = int(np.argmax(overlaps))
    if overlaps[best] < 0.3:
        raise InvalidInputError(f"no face of {photo.filename} is inside the box {list(choice)}")
    return best


def best_similarity(embeddings: np.ndarray, references: np.ndarray) -> np.ndarray:
    """For each embedding, its highest cosine similarity to any reference (−1 when there are none)."""
    if not len(references) or not len(embeddings):
        return np.full(len(embeddings), -1.0)
    return np.asarray((embeddings @ references.T).max(axis=1))


def choose_like(
    photos: Sequence[PhotoFaces], references: np.ndarray, name: str, threshold: float, *, force: bool
) -> tuple[list[tuple[PhotoFaces, int, str | None]], list[RejectedPhoto]]:
    """For photos of an existing person: each photo's face most like their gallery faces; a photo whose best
    face is below the threshold is refused with its best confidence, unless ``force``."""
    chosen, refused = [], []
    for photo in photos:
        similarities = best_similarity(photo.embeddings, references)
        index = int(np.argmax(similarities))
        confidence = rounded_confidence(float(similarities[index]))
        if confidence < threshold and not force:
            refused.append(
                RejectedPhoto(
                    photo.filename,
                    f"No face in this photo looks like {name}: the closest has confidence {confidence:g} (at least "
                    f"{threshold:g} needed); send force=true to enroll it anyway",
                    [NOT_LIKE_PERSON],
                    can_force=True,
                )
            )
            continue
        note = None
        if len(photo.faces) > 1:
            note = f"{len(photo.faces)} faces found; enrolled face {index}, the one most like {name} ({confidence:g})"
        chosen.append((photo, index, note))
    return chosen, refused


def choose_consistent(
    photos: Sequence[PhotoFaces], threshold: float, *, force: bool
) -> tuple[list[tuple[PhotoFaces, int, str | None]], list[RejectedPhoto]]:
    """For a new person from several photos: in each, the face most like the faces of the other photos (a photo
    of one face counts for more: it can only be them); a photo whose chosen face looks like nobody in the others
    is refused, unless ``force``."""
    anchors = [p for p in photos if len(p.faces) == 1]
    picks: dict[int, int] = {}
    for number, photo in enumerate(photos):
        if len(photo.faces) == 1:
            picks[number] = 0
            continue
        others = [p for p in (anchors or photos) if p is not photo]
        scores = sum(
            (best_similarity(photo.embeddings, other.embeddings) for other in others), np.zeros(len(photo.faces))
        )
        picks[number] = int(np.argmax(scores))
    chosen, refused = [], []
    for number, photo in enumerate(photos):
        index = picks[number]
        rest = np.array([photos[n].embeddings[i] for n, i in picks.items() if n != number])
        confidence = rounded_confidence(float(best_similarity(photo.embeddings[index : index + 1], rest)[0]))
        if len(rest) and confidence < threshold and not force:
            refused.append(
                RejectedPhoto(
                    photo.filename,
                    f"The face in this photo does not look like the person in the other photos (confidence "
                    f"{confidence:g}; at least {threshold:g} needed); send force=true to enroll it anyway",
                    [NOT_LIKE_OTHER_PHOTOS],
                    can_force=True,
                )
            )
            continue
        note = (
            f"{len(photo.faces)} faces found; enrolled face {index}, the one that matches the other photos"
            if len(photo.faces) > 1
            else None
        )
        chosen.append((photo, index, note))
    return chosen, refused


def check_quality(
    picks: Sequence[tuple[PhotoFaces, int, str | None]], limits: QualityLimits
) -> tuple[list[Chosen], list[RejectedPhoto]]:
    """The picked faces that meet the enrollment limits; the others refused with each reason."""
    chosen, refused = [], []
    for photo, index, note in picks:
        quality = assess(photo.faces[index], limits)
        if quality.issues:
            refused.append(RejectedPhoto(photo.filename, f"Not enrolled: {describe(quality, limits)}", quality.issues))
        else:
            chosen.append(Chosen(photo, index, quality, note))
    return chosen, refused
