"""The people use cases — enroll, add photos, list, read, rename, delete, thumbnails — for the API and the CLI.

:class:`GalleryService` owns the sessions and transactions (through :mod:`service.gallery.enrollment`);
callers parse their input, call it and show the result. Client mistakes are :mod:`service.common.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from msgspec import Struct

from service.common.errors import InvalidInputError, NothingUsableError, RejectedPhoto
from service.db import identities as queries
from service.db.gallery import embedding_from_bytes
from service.db.models import Identity
from service.gallery import enrollment
from service.gallery.enrollment import EnrollmentResult, IdentityNotFoundError
from service.gallery.gallery import Gallery
from service.gallery.selection import (
    AmbiguousFaceError,
    Chosen,
    PhotoFaces,
    check_quality,
    choose_consistent,
    choose_like,
    pick_named,
)
from service.gallery.views import (
    EnrolledOut,
    EnrollmentResponse,
    IdentityDetailOut,
    IdentityListResponse,
    identity_detail,
    identity_out,
)
from service.recognition.confidence import rounded_confidence
from service.recognition.faces import EMBEDDING_DIM, FaceModel
from service.recognition.photos import PhotoSource
from service.recognition.quality import assess
from service.settings import Settings

NOTHING_ENROLLED = "No photo could be enrolled"
logger = logging.getLogger("service.gallery")


class ErasureReport(Struct):
    """What erasing a person removed."""

    name: str
    gallery_faces: int  # enrolled faces deleted
    batch_faces: int  # batch faces that were theirs: crop and embedding deleted, name redacted
    matches: int  # other batch faces whose top matches named them (name redacted)
    entries: int  # batch entries whose recorded results named them (name redacted)
    batches: int


def _not_found(identity_id: int) -> IdentityNotFoundError:
    return IdentityNotFoundError(f"Identity {identity_id} not found")


class GalleryService:
    """The people of every domain of one database, embedded with one model."""

    def __init__(self, gallery: Gallery, model: FaceModel, settings: Settings) -> None:
        self.gallery = gallery
        self.sessions = gallery.sessions
        self.model = model
        self.settings = settings

    def _read(self, photos: Sequence[PhotoSource]) -> tuple[list[PhotoFaces], list[RejectedPhoto]]:
        return enrollment.read_photos(
            photos,
            self.model,
            max_file_bytes=self.settings.max_file_bytes,
            max_image_pixels=self.settings.max_image_pixels,
        )

    def _store(
        self,
        domain: str,
        chosen: list[Chosen],
        refused: list[RejectedPhoto],
        *,
        name: str | None = None,
        identity_id: int | None = None,
    ) -> EnrollmentResponse:
        prepared = [enrollment.prepared_face(face) for face in chosen]
        result = enrollment.enroll(
            self.gallery, domain, prepared, refused, model_name=self.model.name, name=name, identity_id=identity_id
        )
        if result.identity is None or not result.enrolled:
            raise NothingUsableError(NOTHING_ENROLLED, result.rejected, field="rejected")
        return self._response(result)

    def enroll(
        self,
        domain: str,
        name: str,
        photos: Sequence[PhotoSource],
        *,
        force: bool = False,
        face: int | tuple[float, float, float, float] | None = None,
    ) -> EnrollmentResponse:
        """A new person from photos: in each, the face consistent across them (or the ``face`` the client names
        in a single photo); refused when the name is taken, a face is unfit, or — unless ``force`` — the face
        looks like someone already enrolled or unlike the other photos."""
        clean = enrollment.clean_name(name)  # a bad or taken name is refused before any photo is decoded
        existing = self.find(domain, clean)
        if existing is not None:
            raise enrollment.NameTakenError.of(existing)
        read, refused = self._read(photos)
        threshold = self.settings.match_threshold
        if face is not None:
            if len(read) != 1:
                raise InvalidInputError("face chooses a face in one photo: send a single photo with it")
            picks: list[tuple[PhotoFaces, int, str | None]] = [(read[0], pick_named(read[0], face), None)]
        elif len(read) == 1 and len(read[0].faces) > 1:
            qualities = [assess(f, self.settings.enrollment_quality) for f in read[0].faces]
            raise AmbiguousFaceError(read[0].filename, read[0].faces, qualities)
        else:
            picks, unlike = choose_consistent(read, threshold, force=force)
            refused += unlike
        chosen, unfit = check_quality(picks, self.settings.enrollment_quality)
        refused += unfit
        if not force:
            self._refuse_if_enrolled(domain, chosen)
        return self._store(domain, chosen, refused, name=clean)

    def add_photos(
        self, domain: str, identity_id: int, photos: Sequence[PhotoSource], *, force: bool = False
    ) -> EnrollmentResponse:
        """More photos of an enrolled person: in each, the face most like their enrolled faces; a photo where
        no face looks like them is refused (unless ``force``), as is an unfit face."""
        with self.sessions() as session:
            identity = queries.get_identity(session, domain, identity_id)
            if identity is None:
                raise _not_found(identity_id)
            name = identity.name
            references = [embedding_from_bytes(f.embedding) for f in queries.faces_of(session, identity_id)]
        read, refused = self._read(photos)
        gallery = np.vstack(references) if references else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if len(gallery):
            picks, unlike = choose_like(read, gallery, name, self.settings.match_threshold, force=force)
        else:  # nobody to compare with: as for a new person
            picks, unlike = choose_consistent(read, self.settings.match_threshold, force=force)
        chosen, unfit = check_quality(picks, self.settings.enrollment_quality)
        return self._store(domain, chosen, [*refused, *unlike, *unfit], identity_id=identity_id)

    def _refuse_if_enrolled(self, domain: str, chosen: list[Chosen]) -> None:
        """:class:`LooksLikeSomeoneError` when a new person's face matches someone already enrolled."""
        if not chosen:
            return
        matches = self.gallery.search(domain, np.vstack([c.embedding for c in chosen]), k=1)
        for face, found in zip(chosen, matches, strict=True):
            if found and rounded_confidence(found[0].similarity) >= self.settings.match_threshold:
                best = found[0]
                raise enrollment.LooksLikeSomeoneError(
                    face.photo.filename, best.identity_id, best.name, rounded_confidence(best.similarity)
                )

    def enroll_or_add(
        self, domain: str, name: str, photos: Sequence[PhotoSource], *, add_to_existing: bool, force: bool = False
    ) -> EnrollmentResponse:
        """Enroll ``name``, or add the photos to the person of that name when ``add_to_existing``."""
        existing = self.find(domain, name)
        if existing is None:
            return self.enroll(domain, name, photos, force=force)
        if not add_to_existing:
            raise enrollment.NameTakenError.of(existing)
        return self.add_photos(domain, existing.id, photos, force=force)

    def find(self, domain: str, name: str) -> Identity | None:
        """The person of ``domain`` with this name, if any."""
        with self.sessions() as session:
            return queries.find_by_name(session, domain, enrollment.clean_name(name))

    def page(self, domain: str, limit: int, offset: int, query: str | None = None) -> IdentityListResponse:
        """The domain's people by name, with face counts; ``query`` filters names (case-insensitive)."""
        with self.sessions() as session:
            total, rows = queries.list_identities(session, domain, limit, offset, query)
        return IdentityListResponse(
            success=True,
            total=total,
            identities=[identity_out(r.identity, r.face_count, r.newest_face_id) for r in rows],
            limit=limit,
            offset=offset,
        )

    def person(self, domain: str, identity_id: int) -> IdentityDetailOut:
        """One person with every enrolled face."""
        with self.sessions() as session:
            identity = queries.get_identity(session, domain, identity_id)
            if identity is None:
                raise _not_found(identity_id)
            return identity_detail(identity, queries.faces_of(session, identity_id))

    def rename(self, domain: str, identity_id: int, name: str) -> IdentityDetailOut:
        """A new name for a person; search resolves names from SQL, so it applies at once."""
        enrollment.rename(self.gallery, domain, identity_id, name)
        return self.person(domain, identity_id)

    def delete_face(self, domain: str, identity_id: int, face_id: int) -> None:
        """Remove one face; it leaves search before this returns."""
        enrollment.delete_face(self.gallery, domain, identity_id, face_id)

    def delete_person(self, domain: str, identity_id: int) -> str:
        """Remove a person and all their faces; they leave search before this returns. Their name."""
        return enrollment.delete_identity(self.gallery, domain, identity_id).name

    def erase_person(self, domain: str, identity_id: int) -> ErasureReport:
        """Delete a person and everything held about them: gallery faces, and in every batch their faces'
        crops and embeddings and their name (shown as ``[erased]``; counts stay)."""
        identity, gallery_faces, redaction = enrollment.erase_identity(self.gallery, domain, identity_id)
        logger.info(
            "person erased domain=%r id=%d gallery_faces=%d batch_faces=%d entries=%d batches=%d",
            domain, identity_id, gallery_faces, redaction.faces, redaction.entries, redaction.batches,
        )  # fmt: skip
        return ErasureReport(
            name=identity.name,
            gallery_faces=gallery_faces,
            batch_faces=redaction.faces,
            matches=redaction.matches,
            entries=redaction.entries,
            batches=redaction.batches,
        )

    def thumbnail(self, domain: str, identity_id: int, face_id: int) -> bytes:
        """The aligned face crop (JPEG) stored at enrollment."""
        with self.sessions() as session:
            face = queries.get_face(session, domain, identity_id, face_id)
            if face is None or face.thumbnail is None:
                raise IdentityNotFoundError(f"Face {face_id} of identity {identity_id} not found")
            return face.thumbnail

    @staticmethod
    def _response(result: EnrollmentResult) -> EnrollmentResponse:
        assert result.identity is not None
        newest = result.enrolled[-1].face_id if result.enrolled else None
        return EnrollmentResponse(
            success=True,
            identity=identity_out(result.identity, result.face_count, newest),
            enrolled=[EnrolledOut(e.filename, e.face_id, e.note) for e in result.enrolled],
            rejected=result.rejected,
        )
