"""The audit trail over HTTP: admin actions recorded as they answer (failed attempts too), and read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.params import Parameter
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from msgspec import Struct
from sqlalchemy.orm import Session, sessionmaker

from service.api.auth import admin_only
from service.common.time import format_timestamp
from service.db import audit as audit_queries
from service.db.tokens import Principal

AUDIT_OPT_KEY = "audit"  # a route handler's opt: the action its successful or failed calls record
AUDIT_NOTES_KEY = "facerec.audit_notes"  # in the request's scope state: what the handler asked to be recorded
MAX_CAPTURED_BODY = 64 * 1024
MAX_NOTED_ITEMS = 100  # of a list noted (file names, face ids): the record says how many more there were


def note_for_audit(request: Request[Any, Any, Any], **details: Any) -> None:
    """Add what an audited call asked for (the name enrolled, the faces named, the files sent) to its record.

    The middleware records path ids, query and answer by itself; request bodies it cannot read (multipart
    uploads stream past it), so the handler says what in them matters. ``None`` values are left out.
    """
    notes = request.scope.get("state", {}).get(AUDIT_NOTES_KEY)
    if notes is None:
        return  # not an audited route, or no audit middleware (e.g. a bare test app)
    for key, value in details.items():
        if value is None:
            continue
        if isinstance(value, list) and len(value) > MAX_NOTED_ITEMS:
            notes[f"{key}_more"] = len(value) - MAX_NOTED_ITEMS
            value = value[:MAX_NOTED_ITEMS]
        notes[key] = value


class AuditMiddleware(ASGIMiddleware):
    """Records every call to a route marked ``opt={"audit": "<action>"}`` by an authenticated token, with its
    path ids, query, the ids its answer created, and its status — refusals (403, 404, 409 ...) included."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the call through, noting its status and answer, then record it."""
        status = 500
        body = bytearray()
        notes: dict[str, Any] = {}
        scope.setdefault("state", {})[AUDIT_NOTES_KEY] = notes

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and len(body) < MAX_CAPTURED_BODY:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await next_app(scope, receive, noting)
        finally:
            await self._record(scope, status, bytes(body), notes)

    @staticmethod
    async def _record(scope: Scope, status: int, body: bytes, notes: dict[str, Any]) -> None:
        handler = scope.get("route_handler")
        action = handler.opt.get(AUDIT_OPT_KEY) if handler is not None else None
        principal = scope.get("user")
        if not action or not isinstance(principal, Principal):
            return
        path_ids = {key: value for key, value in (scope.get("path_params") or {}).items()}
        details: dict[str, Any] = {"method": scope.get("method", ""), "path": scope["path"], **notes}
        if scope.get("query_string"):
            details["query"] = scope["query_string"].decode("latin-1")[:255]
        created = _created_ids(body)
        if created:
            details["created"] = created
        target = " ".join(f"{key.removesuffix('_id')} {value}" for key, value in path_ids.items())
        sessions: sessionmaker[Session] = scope["litestar_app"].state.services.sessions
        await anyio.to_thread.run_sync(
            lambda: audit_queries.record(
                sessions,
                principal.domain,
                str(action),
                target=target,
                status=status,
                token_id=principal.token_id,
                actor=principal.name or f"token {principal.token_id}",
                details=details,
            )
        )


def _created_ids(body: bytes) -> dict[str, Any]:
    """The ids an answer names (the person enrolled, the gallery faces made) — the ids the action involved."""
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(answer, dict):
        return {}
    found: dict[str, Any] = {}
    identity = answer.get("identity")
    if isinstance(identity, dict) and "id" in identity:
        found["identity_id"] = identity["id"]
    faces = [e.get("face_id") for e in answer.get("enrolled") or [] if isinstance(e, dict)]
    if faces and all(isinstance(f, int) for f in faces):
        found["face_ids"] = faces
    elif isinstance(answer.get("enrolled"), list) and all(isinstance(f, int) for f in answer["enrolled"]):
        found["face_ids"] = answer["enrolled"]
    return found


class AuditEventOut(Struct):
    at: str
    actor: str
    token_id: int | None
    action: str
    target: str
    status: int
    details: dict[str, Any]


class AuditResponse(Struct):
    success: bool
    events: list[AuditEventOut]  # oldest first


@get("/api/audit", summary="The domain's audit trail (admin)", guards=[admin_only], sync_to_thread=True)
def audit_trail(
    request: Request[Principal, str, Any],
    sessions: NamedDependency[sessionmaker[Session]],
    since: Annotated[datetime | None, Parameter(description="events from this time (UTC) on")] = None,
    limit: int = Parameter(default=200, ge=1, le=5000, description="at most this many (the newest)"),
) -> AuditResponse:
    """Every admin action of the token's domain, and every failed attempt at one: who, when, what, which ids."""
    if since is not None and since.tzinfo is not None:
        since = since.astimezone(UTC).replace(tzinfo=None)
    with sessions() as session:
        rows = audit_queries.events(session, request.user.domain, since, limit)
    return AuditResponse(
        success=True,
        events=[
            AuditEventOut(
                at=format_timestamp(row.at),
                actor=row.actor,
                token_id=row.token_id,
                action=row.action,
                target=row.target,
                status=row.status,
                details=row.details,
            )
            for row in rows
        ],
    )
