"""What the caller's domain stores (admin)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from msgspec import Struct
from sqlalchemy.orm import Session, sessionmaker

from service.api.auth import admin_only
from service.db.stats import domain_stats
from service.db.tokens import Principal


class StatsResponse(Struct):
    success: bool
    domain: str
    batches: int
    entries: int
    batch_faces: int
    batch_face_bytes: int  # crops and embeddings kept with batches
    people: int
    gallery_faces: int
    gallery_bytes: int  # enrolled embeddings and thumbnails


@get("/api/stats", summary="What the domain stores (admin)", guards=[admin_only], sync_to_thread=True)
def stats(request: Request[Principal, str, Any], sessions: NamedDependency[sessionmaker[Session]]) -> StatsResponse:
    """Batches, entries, stored batch faces, people and gallery faces of the token's domain, with their bytes."""
    with sessions() as session:
        [row] = domain_stats(session, request.user.domain)
    return StatsResponse(
        success=True,
        domain=row.domain,
        batches=row.batches,
        entries=row.entries,
        batch_faces=row.batch_faces,
        batch_face_bytes=row.batch_face_bytes,
        people=row.people,
        gallery_faces=row.gallery_faces,
        gallery_bytes=row.gallery_bytes,
    )
