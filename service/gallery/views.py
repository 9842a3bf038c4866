"""People and their faces as clients see them."""

from __future__ import annotations

from msgspec import Struct

from service.common.errors import RejectedPhoto
from service.common.time import format_timestamp
from service.db.models import Face, Identity

IDENTITIES_PATH = "/api/identities"


def thumbnail_url(identity_id: int, face_id: int) -> str:
    """Where a face's thumbnail is served."""
    return f"{IDENTITIES_PATH}/{identity_id}/faces/{face_id}/thumbnail"


class IdentityOut(Struct):
    id: int
    name: str
    face_count: int
    created_at: str
    thumbnail_url: str | None = None  # the newest face's thumbnail


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
    rejected: list[RejectedPhoto]


class IdentityListResponse(Struct):
    success: bool
    total: int
    identities: list[IdentityOut]
    limit: int
    offset: int


class IdentityResponse(Struct):
    success: bool
    identity: IdentityDetailOut


def identity_out(identity: Identity, face_count: int, newest_face: int | None = None) -> IdentityOut:
    """A person's summary."""
    return IdentityOut(
        id=identity.id,
        name=identity.name,
        face_count=face_count,
        created_at=format_timestamp(identity.created_at),
        thumbnail_url=thumbnail_url(identity.id, newest_face) if newest_face else None,
    )


def identity_detail(identity: Identity, faces: list[Face]) -> IdentityDetailOut:
    """A person with every enrolled face."""
    return IdentityDetailOut(
        id=identity.id,
        name=identity.name,
        face_count=len(faces),
        created_at=format_timestamp(identity.created_at),
        faces=[
            FaceInfoOut(
                id=f.id,
                filename=f.filename,
                det_score=round(f.det_score, 4),
                created_at=format_timestamp(f.created_at),
                thumbnail_url=thumbnail_url(identity.id, f.id),
            )
            for f in faces
        ],
    )
