"""Enrolling people: photos -> one face each -> SQL rows and index vectors, kept in step."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from service.common.errors import (
    ALREADY_ENROLLED,
    DUPLICATE_PHOTO,
    INVALID_PHOTO,
    NO_FACE,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RejectedPhoto,
)
from service.db import gallery as gallery_queries
from service.db import identities as queries
from service.db.batches import Redaction, redact_person
from service.db.models import Face, Identity
from service.gallery.gallery import Gallery
from service.gallery.selection import Chosen, PhotoFaces
from service.recognition.faces import FaceCandidate, FaceModel, crop_jpeg
from service.recognition.images import ImageError
from service.recognition.photos import PhotoSource, clean_filename, load_photo

logger = logging.getLogger("service.gallery")
MAX_NAME_LENGTH = 255
MAX_FACES_PER_ENROLLMENT_PHOTO = 20  # a crowd photo is no enrollment photo; the largest faces are considered
ENROLL_ATTEMPTS = 3  # a transaction that raced another adding the same photo is read again


class NameTakenError(ConflictError):
    """Another identity of the domain has this name (in any case, spacing or Unicode form)."""

    @classmethod
    def of(cls, existing: Identity) -> NameTakenError:
        """The error naming the person who has the name, and how to add photos to them instead."""
        error = cls(
            f"A person named {existing.name!r} already exists (id {existing.id}); to add photos to them, "
            f"POST them to /api/identities/{existing.id}/photos"
        )
        error.details = {"existing": {"id": existing.id, "name": existing.name}}
        return error


class LooksLikeSomeoneError(ConflictError):
    """A new person's face matches a person already enrolled."""

    def __init__(self, filename: str, existing_id: int, name: str, confidence: float) -> None:
        super().__init__(
            f"The face in {filename} looks like {name!r} (id {existing_id}, confidence {confidence:g}), who is "
            f"already enrolled: add the photos to them (POST /api/identities/{existing_id}/photos), or send "
            "force=true to enroll a new person anyway"
        )
        self.details = {"existing": {"id": existing_id, "name": name, "confidence": confidence}}


class IdentityNotFoundError(NotFoundError):
    """No such identity (or face) in this domain."""


class InvalidNameError(InvalidInputError):
    """The name is empty, too long or holds control characters."""


@dataclass(frozen=True, slots=True)
class PreparedFace:
    """The chosen face of one photo, embedded and ready to store."""

    filename: str
    embedding: np.ndarray
    det_score: float
    content_sha256: str
    thumbnail: bytes
    note: str | None


@dataclass(frozen=True, slots=True)
class Enrolled:
    filename: str
    face_id: int
    note: str | None = None


@dataclass(slots=True)
class EnrollmentResult:
    """What an enrollment did: the identity, the faces stored and the photos refused."""

    identity: Identity | None
    face_count: int = 0
    enrolled: list[Enrolled] = field(default_factory=list)
    rejected: list[RejectedPhoto] = field(default_factory=list)


def clean_name(name: str) -> str:
    """A valid person name, or :class:`InvalidNameError`."""
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise InvalidNameError("Invalid name: name must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"Invalid name: name must be at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in cleaned):
        raise InvalidNameError("Invalid name: name must not contain control characters")
    return cleaned


def read_photos(
    photos: Sequence[PhotoSource],
    model: FaceModel,
    *,
    max_file_bytes: int,
    max_image_pixels: int,
    max_faces: int = MAX_FACES_PER_ENROLLMENT_PHOTO,
) -> tuple[list[PhotoFaces], list[RejectedPhoto]]:
    """Decode each photo and find its faces (the ``max_faces`` largest), all embedded in one run; a photo that
    cannot be read, repeats another or holds no face is refused with the reason."""
    found: list[tuple[str, str, list[FaceCandidate]]] = []
    rejected: list[RejectedPhoto] = []
    seen: set[str] = set()
    for photo in photos:
        filename = clean_filename(photo.filename)
        try:
            image, data = load_photo(
                photo, max_bytes=max_file_bytes, max_pixels=max_image_pixels, min_side=model.det_size
            )
        except ImageError as exc:
            rejected.append(RejectedPhoto(filename, str(exc), [INVALID_PHOTO]))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            rejected.append(RejectedPhoto(filename, "The same photo appears twice in this upload", [DUPLICATE_PHOTO]))
            continue
        seen.add(digest)
        try:
            candidates, _ = model.detect_largest(image, max_faces)
        except ImageError as exc:
            rejected.append(RejectedPhoto(filename, str(exc), [INVALID_PHOTO]))
            continue
        logger.debug("enrollment photo read file=%r faces=%d", filename, len(candidates))
        if not candidates:
            rejected.append(RejectedPhoto(filename, "No face found in the photo", [NO_FACE]))
            continue
        found.append((filename, digest, candidates))
    vectors = iter(model.embed([c.crop for _, _, candidates in found for c in candidates]))
    read = [
        PhotoFaces(filename, digest, candidates, np.array([next(vectors) for _ in candidates]))
        for filename, digest, candidates in found
    ]
    return read, rejected


def prepared_face(chosen: Chosen) -> PreparedFace:
    """A chosen face, ready to store."""
    return PreparedFace(
        chosen.photo.filename,
        chosen.embedding,
        chosen.face.det_score,
        chosen.photo.content_sha256,
        crop_jpeg(chosen.face.crop),
        chosen.note,
    )


def enroll(
    gallery: Gallery,
    domain: str,
    prepared: list[PreparedFace],
    rejected: list[RejectedPhoto],
    *,
    model_name: str,
    name: str | None = None,
    identity_id: int | None = None,
) -> EnrollmentResult:
    """Store faces for a new person (``name``) or an existing one (``identity_id``), then index them.

    A new person is only created when at least one face is stored. Photos already enrolled for the
    person (same bytes) are refused rather than stored twice.
    """
    for attempt in range(ENROLL_ATTEMPTS):
        result = EnrollmentResult(identity=None, rejected=list(rejected))
        try:
            stored = _store_faces(gallery, domain, prepared, result, model_name, name, identity_id)
        except IntegrityError:
            if identity_id is None:
                raise NameTakenError(f"A person named {clean_name(name or '')!r} already exists") from None
            with gallery.sessions() as session:
                if queries.get_identity(session, domain, identity_id) is None:
                    # Deleted after we read it (SQLite has no row lock to stop that): the faces' foreign key
                    # failed. Adding to a person who is gone is a "not found", never a name clash.
                    raise IdentityNotFoundError(f"Identity {identity_id} not found") from None
            # The person is there: another request stored one of these photos for them at the same time.
            # Read again, and the photos it stored are refused as already enrolled.
            logger.info("enrollment raced another for identity %d (attempt %d); retrying", identity_id, attempt + 1)
            continue
        if stored is None:
            return result
        rows, identity, old, new = stored
        break
    else:
        raise ConflictError(f"Identity {identity_id} is being changed by another request; retry")

    fresh_vectors = {face.content_sha256: face.embedding for face in prepared}
    vectors = np.vstack([fresh_vectors[row.content_sha256] for row in rows])
    face_ids = np.array([row.id for row in rows], dtype=np.int64)
    owner = np.full(len(rows), identity.id, dtype=np.int64)
    gallery.apply(domain, old, new, lambda index: index.add(face_ids, owner, vectors))
    return result


def _store_faces(
    gallery: Gallery,
    domain: str,
    prepared: list[PreparedFace],
    result: EnrollmentResult,
    model_name: str,
    name: str | None,
    identity_id: int | None,
) -> tuple[list[Face], Identity, int, int] | None:
    """One transaction of :func:`enroll`: the stored face rows, the person and the gallery versions before
    and after, or None when no photo was new (``result`` says why)."""
    with gallery.sessions.begin() as session:
        if identity_id is None:
            assert name is not None
            clean = clean_name(name)
            existing = queries.find_by_name(session, domain, clean)
            if existing is not None:
                raise NameTakenError.of(existing)
            identity = Identity(domain=domain, name=clean)
            known: dict[str, int] = {}
        else:
            found = queries.lock_identity(session, domain, identity_id)
            if found is None:
                raise IdentityNotFoundError(f"Identity {identity_id} not found")
            identity = found
            known = queries.content_hashes(session, identity.id)
        fresh: list[PreparedFace] = []
        for face in prepared:
            if face.content_sha256 in known:
                already = f"This photo is already enrolled (face {known[face.content_sha256]})"
                result.rejected.append(RejectedPhoto(face.filename, already, [ALREADY_ENROLLED]))
            elif any(face.content_sha256 == other.content_sha256 for other in fresh):
                twice = "The same photo appears twice in this upload"
                result.rejected.append(RejectedPhoto(face.filename, twice, [DUPLICATE_PHOTO]))
            else:
                fresh.append(face)
        if not fresh:
            result.identity = identity if identity_id is not None else None
            return None
        session.add(identity)
        session.flush()
        rows = [
            Face(
                identity_id=identity.id,
                domain=domain,
                embedding=gallery_queries.embedding_to_bytes(face.embedding),
                det_score=face.det_score,
                filename=face.filename,
                content_sha256=face.content_sha256,
                model_name=model_name,
                thumbnail=face.thumbnail,
            )
            for face in fresh
        ]
        session.add_all(rows)
        session.flush()
        old, new = gallery_queries.bump_version(session, domain, [("add", row.id, identity.id) for row in rows])
        result.identity = identity
        result.enrolled = [Enrolled(face.filename, row.id, face.note) for face, row in zip(fresh, rows, strict=True)]
        result.face_count = queries.face_count(session, identity.id)
    return rows, identity, old, new


def rename(gallery: Gallery, domain: str, identity_id: int, name: str) -> Identity:
    """Rename a person; search resolves names from SQL, so the new name applies at once."""
    clean = clean_name(name)
    try:
        with gallery.sessions.begin() as session:
            identity = queries.lock_identity(session, domain, identity_id)
            if identity is None:
                raise IdentityNotFoundError(f"Identity {identity_id} not found")
            other = queries.find_by_name(session, domain, clean)
            if other is not None and other.id != identity.id:
                raise NameTakenError.of(other)
            identity.name = clean
            session.flush()
            return identity
    except IntegrityError:
        raise NameTakenError(f"A person named {clean!r} already exists") from None
    except StaleDataError:
        # SQLite: the person was deleted between our read and our update.
        raise IdentityNotFoundError(f"Identity {identity_id} not found") from None


def delete_identity(gallery: Gallery, domain: str, identity_id: int) -> Identity:
    """Delete a person and all their faces; they leave the index before this returns."""
    with gallery.sessions.begin() as session:
        identity = queries.lock_identity(session, domain, identity_id)
        if identity is None:
            raise IdentityNotFoundError(f"Identity {identity_id} not found")
        # Log exactly the faces the DELETE removed, in the same transaction: a face missing from the log
        # would stay in every process's index (and in the index file, which carries SQL's version).
        face_ids = np.array(queries.delete_identity_rows(session, identity_id), dtype=np.int64)
        old, new = gallery_queries.bump_version(session, domain, [("remove", int(f), identity_id) for f in face_ids])
    gallery.apply(domain, old, new, lambda index: index.remove(face_ids))
    return identity


def erase_identity(gallery: Gallery, domain: str, identity_id: int) -> tuple[Identity, int, Redaction]:
    """Delete a person and their gallery faces, and remove them from every batch (their faces' crops and
    embeddings, their name wherever recorded) in one transaction; they leave the index before this returns.
    The person, how many gallery faces went, and what changed in the batches."""
    with gallery.sessions.begin() as session:
        identity = queries.lock_identity(session, domain, identity_id)
        if identity is None:
            raise IdentityNotFoundError(f"Identity {identity_id} not found")
        redaction = redact_person(session, domain, identity_id, identity.name)
        face_ids = np.array(queries.delete_identity_rows(session, identity_id), dtype=np.int64)
        old, new = gallery_queries.bump_version(session, domain, [("remove", int(f), identity_id) for f in face_ids])
    gallery.apply(domain, old, new, lambda index: index.remove(face_ids))
    return identity, len(face_ids), redaction


def delete_face(gallery: Gallery, domain: str, identity_id: int, face_id: int) -> None:
    """Delete one face of a person; it leaves the index before this returns."""
    with gallery.sessions.begin() as session:
        if queries.lock_identity(session, domain, identity_id) is None or not queries.delete_face_row(
            session, domain, identity_id, face_id
        ):
            raise IdentityNotFoundError(f"Face {face_id} of identity {identity_id} not found")
        old, new = gallery_queries.bump_version(session, domain, [("remove", face_id, identity_id)])
    gallery.apply(domain, old, new, lambda index: index.remove(np.array([face_id], dtype=np.int64)))
