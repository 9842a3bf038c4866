"""Enrollment endpoints (admin tokens only), scoped to the token's domain: parse the request, call
:class:`GalleryService`, return its result."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import JSONBody, Parameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED
from msgspec import Struct

from service.api.audit import AUDIT_OPT_KEY, note_for_audit
from service.api.auth import admin_only
from service.api.openapi import AddPhotosOperation, EnrollOperation
from service.api.schemas import MessageResponse, RenameRequest
from service.api.state import Uploads
from service.api.uploads import ReceivedForm, receive_photos
from service.batches.service import BatchService
from service.batches.views import Appearances
from service.common.runner import BoundedRunner
from service.db.tokens import Principal
from service.gallery.selection import face_choice
from service.gallery.service import ErasureReport, GalleryService
from service.gallery.views import IDENTITIES_PATH, EnrollmentResponse, IdentityListResponse, IdentityResponse

MAX_OFFSET = 2_147_483_647  # beyond SQL integer range nothing can be skipped to
# SQL integer ids: anything outside this range cannot exist (and must not reach the database as an overflow).
IdPath = Annotated[int, PathParameter(ge=1, le=2_147_483_647)]
JSON_BODY_LIMIT = 64 * 1024


def parse_flag(field: str, raw: str | None) -> bool:
    """A yes/no form field: true/1/yes/on or false/0/no/off (absent or blank: no)."""
    value = (raw or "").strip().lower()
    if value in ("", "false", "0", "no", "off"):
        return False
    if value in ("true", "1", "yes", "on"):
        return True
    raise ValidationException(f"{field} must be true or false (got {value[:20]!r})")


async def _receive(request: Request[Principal, Any, Any], runner: BoundedRunner, uploads: Uploads) -> ReceivedForm:
    runner.check(request.user.token_id)  # a full queue refuses before the upload is received
    return await receive_photos(
        request,
        uploads.limits,
        uploads.spool,
        too_many=lambda _sent: f"At most {uploads.limits.max_files} photos per request",
    )


def _field(form: ReceivedForm, name: str) -> str | None:
    """A text field as sent (cut to 255 characters), for the audit record."""
    value = form.fields.get(name)
    return None if value is None else value[:255]


def _names(form: ReceivedForm) -> list[str]:
    """The uploaded photos' file names (cut to 255 characters), for the audit record."""
    return [received.filename[:255] for received in form.files]


class DeletionResponse(Struct, omit_defaults=True):
    success: bool
    message: str
    erased: ErasureReport | None = None  # with erase=true: what was removed


class IdentityController(Controller):
    """People of the token's domain. Mounted under the upload router (large body limit) for the photo
    uploads; the JSON route sets its own small limit."""

    path = IDENTITIES_PATH
    guards = [admin_only]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        opt={AUDIT_OPT_KEY: "enroll"},
        summary="Enroll a new person from photos",
        operation_class=EnrollOperation,
    )
    async def create(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        runner: NamedDependency[BoundedRunner],
        uploads: NamedDependency[Uploads],
    ) -> EnrollmentResponse:
        """Multipart ``name`` and ``photos[]``: 201 with the person; 409 if the name exists; 400 if no face."""
        form = await _receive(request, runner, uploads)
        try:
            name = form.fields.get("name")
            # Noted before anything is judged, so a refused attempt says what it tried too.
            note_for_audit(
                request,
                name=_field(form, "name"),
                force=_field(form, "force"),
                face=_field(form, "face"),
                photos=_names(form),
            )
            if name is None:
                raise ValidationException("Missing form field: name")
            force = parse_flag("force", form.fields.get("force"))
            face = face_choice(form.fields.get("face"))
            return await runner.run(
                request.user.token_id, people.enroll, request.user.domain, name, form.files, force=force, face=face
            )
        finally:
            form.close()

    @post(
        "/{identity_id:int}/photos",
        status_code=HTTP_201_CREATED,
        opt={AUDIT_OPT_KEY: "add photos"},
        summary="Add photos to a person",
        operation_class=AddPhotosOperation,
    )
    async def add_photos(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        runner: NamedDependency[BoundedRunner],
        uploads: NamedDependency[Uploads],
        identity_id: IdPath,
    ) -> EnrollmentResponse:
        """Multipart ``photos[]``; answers like enrollment."""
        form = await _receive(request, runner, uploads)
        try:
            domain = request.user.domain
            note_for_audit(request, force=_field(form, "force"), photos=_names(form))
            force = parse_flag("force", form.fields.get("force"))
            return await runner.run(
                request.user.token_id, people.add_photos, domain, identity_id, form.files, force=force
            )
        finally:
            form.close()

    @get("/", summary="List people", sync_to_thread=True)
    def list_identities(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        limit: int = Parameter(default=50, ge=1, le=500),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
        q: str | None = Parameter(default=None, max_length=255, description="case-insensitive name search"),
    ) -> IdentityListResponse:
        """The domain's people by name, with face counts."""
        if q is not None and any(unicodedata.category(ch)[0] == "C" for ch in q):
            raise ValidationException("q must not contain control characters")
        return people.page(request.user.domain, limit, offset, q)

    @get("/{identity_id:int}", summary="A person with their faces", sync_to_thread=True)
    def get_identity(
        self, request: Request[Principal, str, Any], people: NamedDependency[GalleryService], identity_id: IdPath
    ) -> IdentityResponse:
        """One person and every enrolled face."""
        return IdentityResponse(success=True, identity=people.person(request.user.domain, identity_id))

    @patch(
        "/{identity_id:int}",
        opt={AUDIT_OPT_KEY: "rename"},
        summary="Rename a person",
        sync_to_thread=True,
        request_max_body_size=JSON_BODY_LIMIT,
    )
    def rename(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        identity_id: IdPath,
        data: JSONBody[RenameRequest],
    ) -> IdentityResponse:
        """JSON ``{"name": ...}``; 409 if another person has that name."""
        note_for_audit(request, name=data.name)
        return IdentityResponse(success=True, identity=people.rename(request.user.domain, identity_id, data.name))

    @delete(
        "/{identity_id:int}/faces/{face_id:int}",
        status_code=200,
        opt={AUDIT_OPT_KEY: "delete face"},
        summary="Delete a face",
        sync_to_thread=True,
    )
    def delete_face(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        identity_id: IdPath,
        face_id: IdPath,
    ) -> MessageResponse:
        """The face leaves search before the answer."""
        people.delete_face(request.user.domain, identity_id, face_id)
        return MessageResponse(success=True, message=f"Face {face_id} deleted")

    @delete(
        "/{identity_id:int}",
        status_code=200,
        opt={AUDIT_OPT_KEY: "delete person"},
        summary="Delete (or erase) a person",
        sync_to_thread=True,
    )
    def delete_identity(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        identity_id: IdPath,
        erase: bool = Parameter(
            default=False,
            description="also remove them from every batch: their faces' crops and embeddings, and their name "
            "(shown as [erased]; counts stay)",
        ),
    ) -> DeletionResponse:
        """The person and all faces leave search before the answer; with ``erase=true`` everything held about
        them goes, and the answer says what was removed."""
        if erase:
            report = people.erase_person(request.user.domain, identity_id)
            return DeletionResponse(success=True, message=f"Identity {report.name!r} erased", erased=report)
        name = people.delete_person(request.user.domain, identity_id)
        return DeletionResponse(success=True, message=f"Identity {name!r} deleted")

    @get(
        "/{identity_id:int}/faces/{face_id:int}/thumbnail",
        summary="A face thumbnail (JPEG)",
        media_type="image/jpeg",
        sync_to_thread=True,
        response_description="The aligned 112x112 face crop, JPEG",
    )
    def thumbnail(
        self,
        request: Request[Principal, str, Any],
        people: NamedDependency[GalleryService],
        identity_id: IdPath,
        face_id: IdPath,
    ) -> Response[bytes]:
        """The aligned 112x112 face crop stored at enrollment."""
        data = people.thumbnail(request.user.domain, identity_id, face_id)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @get("/{identity_id:int}/appearances", summary="Where a person was recognised in batches", sync_to_thread=True)
    def appearances(
        self,
        request: Request[Principal, str, Any],
        batches: NamedDependency[BatchService],
        identity_id: IdPath,
        limit: int = Parameter(default=50, ge=1, le=500),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> Appearances:
        """Every batch face recognised as this person (any face of a photo), newest first, with its crop."""
        return batches.appearances(request.user.domain, identity_id, limit, offset)
