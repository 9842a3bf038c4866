"""The people use cases — enroll, add photos, list, read, rename, delete, thumbnails — for the API and the CLI.

:class:`GalleryService` owns the sessions and transactions (through :mod:`service.gallery.enrollment`);
callers parse their input, call it and show the result. Client mistakes are :mod:`service.common.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.common.errors import NothingUsableError
from service.db import identities as queries
from service.db.models import Identity
from service.gallery import enrollment
from service.gallery.enrollment import EnrollmentResult, IdentityNotFoundError
from service.gallery.gallery import Gallery
from service.gallery.views import (
    EnrolledOut,
    EnrollmentResponse,
    IdentityDetailOut,
    IdentityListResponse,
    identity_detail,
    identity_out,
)
from service.recognition.faces import FaceModel
from service.recognition.photos import PhotoSource
from service.settings import Settings

NOTHING_ENROLLED = "No photo could be enrolled"


def _not_found(identity_id: int) -> IdentityNotFoundError:
    return IdentityNotFoundError(f"Identity {identity_id} not found")


class GalleryService:
    """The people of every domain of one database, embedded with one model."""

    def __init__(self, gallery: Gallery, model: FaceModel, settings: Settings) -> None:
        self.gallery = gallery
        self.sessions = gallery.sessions
        self.model = model
        self.settings = settings

    def _enroll(
        self, domain: str, photos: Sequence[PhotoSource], *, name: str | None, identity_id: int | None
    ) -> EnrollmentResult:
        prepared, rejected = enrollment.prepare_faces(
            photos,
            self.model,
            max_file_bytes=self.settings.max_file_bytes,
            max_image_pixels=self.settings.max_image_pixels,
        )
        result = enrollment.enroll(
            self.gallery, domain, prepared, rejected, model_name=self.model.name, name=name, identity_id=identity_id
        )
        if result.identity is None or not result.enrolled:
            raise NothingUsableError(NOTHING_ENROLLED, result.rejected, field="rejected")
        return result

    def enroll(self, domain: str, name: str, photos: Sequence[PhotoSource]) -> EnrollmentResponse:
        """A new person from photos (the largest face of each); :class:`NothingUsableError` if none has one."""
        enrollment.clean_name(name)  # a bad name is refused before any photo is decoded
        return self._response(self._enroll(domain, photos, name=name, identity_id=None))

    def add_photos(self, domain: str, identity_id: int, photos: Sequence[PhotoSource]) -> EnrollmentResponse:
        """More photos of an existing person."""
        return self._response(self._enroll(domain, photos, name=None, identity_id=identity_id))

    def enroll_or_add(
        self, domain: str, name: str, photos: Sequence[PhotoSource], *, add_to_existing: bool
    ) -> EnrollmentResponse:
        """Enroll ``name``, or add the photos to the person of that name when ``add_to_existing``."""
        existing = self.find(domain, name)
        if existing is None:
            return self.enroll(domain, name, photos)
        if not add_to_existing:
            raise enrollment.NameTakenError(f"A person named {existing.name!r} already exists")
        return self.add_photos(domain, existing.id, photos)

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
