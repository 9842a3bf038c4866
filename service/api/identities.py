"""Enrollment endpoints (admin tokens only), scoped to the token's domain."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import JSONBody, Parameter, PathParameter
from litestar.status_codes import (
    HTTP_201_CREATED,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
)

from service.api.auth import admin_only
from service.api.openapi import AddPhotosOperation, EnrollOperation
from service.api.schemas import (
    EnrolledOut,
    EnrollmentResponse,
    FaceInfoOut,
    FileErrorOut,
    IdentityDetailOut,
    IdentityListResponse,
    IdentityOut,
    IdentityResponse,
    MessageResponse,
    RenameRequest,
)
from service.api.state import Services
from service.api.uploads import NoPhotosError, ReceivedForm, receive_form
from service.common.time import format_timestamp
from service.db import identities as queries
from service.db.models import Identity
from service.db.tokens import Principal
from service.gallery import enrollment
from service.gallery.enrollment import (
    EnrollmentResult,
    IdentityNotFoundError,
    InvalidNameError,
    NameTakenError,
    Rejected,
)

MAX_OFFSET = 2_147_483_647  # beyond SQL integer range nothing can be skipped to
BASE = "/api/identities"
# SQL integer ids: anything outside this range cannot exist (and must not reach the database as an overflow).
IdPath = Annotated[int, PathParameter(ge=1, le=2_147_483_647)]
JSON_BODY_LIMIT = 64 * 1024
PHOTO_FIELDS = ("photos[]", "photos")


def thumbnail_url(identity_id: int, face_id: int) -> str:
    """Where a face's thumbnail is served."""
    return f"{BASE}/{identity_id}/faces/{face_id}/thumbnail"


def identity_out(identity: Identity, face_count: int, newest_face: int | None = None) -> IdentityOut:
    """An identity's summary."""
    return IdentityOut(
        id=identity.id,
        name=identity.name,
        face_count=face_count,
        created_at=format_timestamp(identity.created_at),
        thumbnail_url=thumbnail_url(identity.id, newest_face) if newest_face else None,
    )


def _translate(exc: Exception) -> HTTPException:
    if isinstance(exc, NameTakenError):
        return HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc))
    if isinstance(exc, IdentityNotFoundError):
        return NotFoundException(str(exc))
    if isinstance(exc, InvalidNameError):
        return ValidationException(f"Invalid name: {exc}")
    raise exc


def _enrollment_response(result: EnrollmentResult, status_code: int) -> Response[Any]:
    assert result.identity is not None
    newest = result.enrolled[-1].face_id if result.enrolled else None
    body = EnrollmentResponse(
        success=True,
        identity=identity_out(result.identity, result.face_count, newest),
        enrolled=[EnrolledOut(e.filename, e.face_id, e.note) for e in result.enrolled],
        rejected=[FileErrorOut(r.filename, r.error) for r in result.rejected],
    )
    return Response(body, status_code=status_code)


def _nothing_enrolled(rejected: list[Rejected]) -> Response[Any]:
    return Response(
        {
            "success": False,
            "error": "No photo could be enrolled",
            "rejected": [{"filename": r.filename, "error": r.error} for r in rejected],
        },
        status_code=HTTP_400_BAD_REQUEST,
    )


async def _read_photos(request: Request[Principal, Any, Any], services: Services) -> ReceivedForm:
    services.runner.check(request.user.token_id)  # a full queue refuses before the upload is received
    form = await receive_form(request, services.upload_limits(), services.spool)
    if not form.files:
        form.close()
        raise NoPhotosError("No photos uploaded: send files in the photos[] form field")
    if form.photos_sent > services.settings.max_batch_size:
        form.close()
        raise ValidationException(f"At most {services.settings.max_batch_size} photos per request")
    return form


async def _enroll(
    services: Services,
    principal: Principal,
    form: ReceivedForm,
    *,
    name: str | None = None,
    identity_id: int | None = None,
) -> EnrollmentResult:
    settings = services.settings

    def work() -> EnrollmentResult:
        prepared, rejected = enrollment.prepare_faces(
            form.files,
            services.model,
            max_file_bytes=settings.max_file_bytes,
            max_image_pixels=settings.max_image_pixels,
        )
        return enrollment.enroll(
            services.gallery,
            principal.domain,
            prepared,
            rejected,
            model_name=services.model.name,
            name=name,
            identity_id=identity_id,
        )

    try:
        return await services.runner.run(principal.token_id, work)
    except (NameTakenError, IdentityNotFoundError, InvalidNameError) as exc:
        raise _translate(exc) from None


def _identity_detail(services: Services, domain: str, identity_id: int) -> IdentityResponse:
    with services.sessions() as session:
        identity = queries.get_identity(session, domain, identity_id)
        if identity is None:
            raise NotFoundException(f"Identity {identity_id} not found")
        faces = queries.faces_of(session, identity_id)
    return IdentityResponse(
        success=True,
        identity=IdentityDetailOut(
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
        ),
    )


class IdentityController(Controller):
    """People of the token's domain. Mounted under the upload router (large body limit) for the photo
    uploads; the JSON route sets its own small limit."""

    path = BASE
    guards = [admin_only]

    @post("/", summary="Enroll a new person from photos", operation_class=EnrollOperation)
    async def create(self, request: Request[Principal, str, Any], services: NamedDependency[Services]) -> Response[Any]:
        """Multipart ``name`` and ``photos[]``: 201 with the person; 409 if the name exists; 400 if no face."""
        form = await _read_photos(request, services)
        try:
            name = form.fields.get("name")
            if name is None:
                raise ValidationException("Missing form field: name")
            enrollment.clean_name(name)
            result = await _enroll(services, request.user, form, name=name)
        except InvalidNameError as exc:
            raise _translate(exc) from None
        finally:
            form.close()
        if result.identity is None or not result.enrolled:
            return _nothing_enrolled(result.rejected)
        return _enrollment_response(result, HTTP_201_CREATED)

    @post("/{identity_id:int}/photos", summary="Add photos to a person", operation_class=AddPhotosOperation)
    async def add_photos(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services], identity_id: IdPath
    ) -> Response[Any]:
        """Multipart ``photos[]``; answers like enrollment."""
        form = await _read_photos(request, services)
        try:
            result = await _enroll(services, request.user, form, identity_id=identity_id)
        finally:
            form.close()
        if not result.enrolled:
            return _nothing_enrolled(result.rejected)
        return _enrollment_response(result, HTTP_201_CREATED)

    @get("/", summary="List people", sync_to_thread=True)
    def list_identities(
        self,
        request: Request[Principal, str, Any],
        services: NamedDependency[Services],
        limit: int = Parameter(default=50, ge=1, le=500),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
        q: str | None = Parameter(default=None, max_length=255, description="case-insensitive name search"),
    ) -> IdentityListResponse:
        """The domain's people by name, with face counts."""
        if q is not None and any(unicodedata.category(ch)[0] == "C" for ch in q):
            raise ValidationException("q must not contain control characters")
        with services.sessions() as session:
            total, rows = queries.list_identities(session, request.user.domain, limit, offset, q)
        return IdentityListResponse(
            success=True,
            total=total,
            identities=[identity_out(r.identity, r.face_count, r.newest_face_id) for r in rows],
            limit=limit,
            offset=offset,
        )

    @get("/{identity_id:int}", summary="A person with their faces", sync_to_thread=True)
    def get_identity(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services], identity_id: IdPath
    ) -> IdentityResponse:
        """One person and every enrolled face."""
        return _identity_detail(services, request.user.domain, identity_id)

    @patch("/{identity_id:int}", summary="Rename a person", sync_to_thread=True, request_max_body_size=JSON_BODY_LIMIT)
    def rename(
        self,
        request: Request[Principal, str, Any],
        services: NamedDependency[Services],
        identity_id: IdPath,
        data: JSONBody[RenameRequest],
    ) -> IdentityResponse:
        """JSON ``{"name": ...}``; 409 if another person has that name."""
        try:
            enrollment.rename(services.gallery, request.user.domain, identity_id, data.name)
        except (NameTakenError, IdentityNotFoundError, InvalidNameError) as exc:
            raise _translate(exc) from None
        return _identity_detail(services, request.user.domain, identity_id)

    @delete("/{identity_id:int}/faces/{face_id:int}", status_code=200, summary="Delete a face", sync_to_thread=True)
    def delete_face(
        self,
        request: Request[Principal, str, Any],
        services: NamedDependency[Services],
        identity_id: IdPath,
        face_id: IdPath,
    ) -> MessageResponse:
        """The face leaves search before the answer."""
        try:
            enrollment.delete_face(services.gallery, request.user.domain, identity_id, face_id)
        except IdentityNotFoundError as exc:
            raise _translate(exc) from None
        return MessageResponse(success=True, message=f"Face {face_id} deleted")

    @delete("/{identity_id:int}", status_code=200, summary="Delete a person", sync_to_thread=True)
    def delete_identity(
        self, request: Request[Principal, str, Any], services: NamedDependency[Services], identity_id: IdPath
    ) -> MessageResponse:
        """The person and all faces leave search before the answer."""
        try:
            identity = enrollment.delete_identity(services.gallery, request.user.domain, identity_id)
        except IdentityNotFoundError as exc:
            raise _translate(exc) from None
        return MessageResponse(success=True, message=f"Identity {identity.name!r} deleted")

    @get(
        "/{identity_id:int}/faces/{face_id:int}/thumbnail",
        summary="A face thumbnail (JPEG)",
        media_type="image/jpeg",
        sync_to_thread=True,
    )
    def thumbnail(
        self,
        request: Request[Principal, str, Any],
        services: NamedDependency[Services],
        identity_id: IdPath,
        face_id: IdPath,
    ) -> Response[bytes]:
        """The aligned 112x112 face crop stored at enrollment."""
        with services.sessions() as session:
            face = queries.get_face(session, request.user.domain, identity_id, face_id)
            if face is None or face.thumbnail is None:
                raise NotFoundException(f"Face {face_id} of identity {identity_id} not found")
            data = face.thumbnail
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
