"""Unknown faces: their groups per batch or across batches, naming a group (admin), dismissing faces and putting
them back (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from msgspec import Meta, Struct

from service.api.audit import AUDIT_OPT_KEY, note_for_audit
from service.api.auth import admin_only
from service.api.schemas import ErrorResponse, MessageResponse
from service.batches.unknown import DismissedFaces, NamedFaces, Naming, UnknownClusters, UnknownFacesService
from service.db.tokens import Principal

ERROR = ResponseSpec(data_container=ErrorResponse, description='`{"success": false, "error": "<message>"}`')
JSON_BODY_LIMIT = 64 * 1024
MAX_BATCHES = 100


# SQL integer ids: anything outside cannot exist and must not reach the database as an overflow.
SqlId = Annotated[int, Meta(ge=1, le=2_147_483_647)]
FaceIds = Annotated[list[SqlId], Meta(max_length=1000)]


class NameFacesRequest(Struct, forbid_unknown_fields=True):
    """Faces (ids from a cluster, minus any that are someone else) and who they are: a new person's ``name``
    or an enrolled person's ``identity_id``; ``force`` enrolls a new person who looks like someone enrolled."""

    face_ids: FaceIds
    name: Annotated[str, Meta(max_length=255)] | None = None
    identity_id: SqlId | None = None
    force: bool = False


class FaceIdsRequest(Struct, forbid_unknown_fields=True):
    face_ids: FaceIds


class UnknownFacesController(Controller):
    """Unrecognised faces of the caller's domain, grouped into people."""

    @get(
        "/api/batch-photos/logs/{batch_id:str}/unknown-faces",
        summary="A batch's unrecognised faces grouped into people",
        sync_to_thread=True,
        responses={404: ERROR},
    )
    def of_batch(
        self,
        request: Request[Principal, str, Any],
        unknown: NamedDependency[UnknownFacesService],
        batch_id: FromPath[str],
    ) -> UnknownClusters:
        """Each group is one person by cosine similarity of the stored embeddings; biggest first, single faces last."""
        return unknown.clusters(request.user.domain, batch_ids=[batch_id])

    @get(
        "/api/batch-photos/logs/{batch_id:str}/dismissed-faces",
        summary="A batch's dismissed unknown faces",
        sync_to_thread=True,
        responses={404: ERROR},
    )
    def dismissed_of_batch(
        self,
        request: Request[Principal, str, Any],
        unknown: NamedDependency[UnknownFacesService],
        batch_id: FromPath[str],
    ) -> DismissedFaces:
        """The faces an admin dismissed ("not a face", or nobody to name), newest first: put back with
        ``POST /api/unknown-faces/restore``."""
        return unknown.dismissed(request.user.domain, batch_id)

    @get("/api/unknown-faces", summary="Unrecognised faces across batches, grouped into people", sync_to_thread=True)
    def across_batches(
        self,
        request: Request[Principal, str, Any],
        unknown: NamedDependency[UnknownFacesService],
        since: Annotated[datetime | None, Parameter(description="only faces of photos from this time (UTC) on")] = None,
        batch: Annotated[list[str] | None, Parameter(description="only these batches (repeat the parameter)")] = None,
    ) -> UnknownClusters:
        """The newest ``FACEREC_UNKNOWN_FACES_LIMIT`` unknown faces of the domain, grouped: a person seen in many
        batches shows up once."""
        if batch is not None and len(batch) > MAX_BATCHES:
            raise ValidationException(f"at most {MAX_BATCHES} batch parameters")
        if since is not None and since.tzinfo is not None:  # timestamps are stored as naive UTC
            since = since.astimezone(UTC).replace(tzinfo=None)
        return unknown.clusters(request.user.domain, batch_ids=batch, since=since)

    @post(
        "/api/unknown-faces/name",
        status_code=200,
        opt={AUDIT_OPT_KEY: "name faces"},
        summary="Name a group of unknown faces (admin)",
        guards=[admin_only],
        sync_to_thread=True,
        request_max_body_size=JSON_BODY_LIMIT,
        responses={400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
    )
    def name(
        self,
        request: Request[Principal, str, Any],
        unknown: NamedDependency[UnknownFacesService],
        data: JSONBody[NameFacesRequest],
    ) -> NamedFaces:
        """Enrolls the person from the stored faces (quality and duplicate checks as any enrollment) and labels
        every one of them as the person in its batch — summaries and CSVs follow; each change is recorded."""
        note_for_audit(
            request, face_ids=data.face_ids, name=data.name, identity_id=data.identity_id, force=data.force or None
        )
        naming = Naming(data.face_ids, data.name, data.identity_id, data.force, request.user.token_id)
        return unknown.name(request.user.domain, naming)

    @post(
        "/api/unknown-faces/dismiss",
        status_code=200,
        opt={AUDIT_OPT_KEY: "dismiss faces"},
        summary="Leave faces out of unknown groups (admin)",
        guards=[admin_only],
        sync_to_thread=True,
        request_max_body_size=JSON_BODY_LIMIT,
        responses={403: ERROR, 404: ERROR},
    )
    def dismiss(
        self,
        request: Request[Principal, str, Any],
        unknown: NamedDependency[UnknownFacesService],
        data: JSONBody[FaceIdsRequest],
    ) -> MessageResponse:
        """ "Not a face", or nobody to name: the faces stay in their batches but leave the unknown groups."""
        note_for_audit(request, face_ids=data.face_ids)
        count = unknown.dismiss(request.user.domain, data.face_ids)
        return MessageResponse(success=True, message=f"{count} face(s) dismissed")

    @post(
        "/api/unknown-faces/restore",
        status_code=200,
        opt={AUDIT_OPT_KEY: "restore faces"},
        summary="Put dismissed faces back among the unknown faces (admin)",
        guards=[admin_only],
        sync_to_thread=True,
        request_max_body_size=JSON_BODY_LIMIT,
        responses={403: ERROR, 404: ERROR},
    )
    def restore(
        self,
        request: Request[Principal, str, Any],
        unknown: NamedDependency[UnknownFacesService],
        data: JSONBody[FaceIdsRequest],
    ) -> MessageResponse:
        """The undo of a dismissal: the faces are grouped with the batch's unknown faces again."""
        note_for_audit(request, face_ids=data.face_ids)
        count = unknown.restore(request.user.domain, data.face_ids)
        return MessageResponse(success=True, message=f"{count} face(s) put back")
