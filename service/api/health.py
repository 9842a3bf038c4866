"""Health (no auth) and the caller's own identity."""

from __future__ import annotations

import os
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from sqlalchemy import text

from service import __version__
from service.api.auth import EXCLUDE_OPT_KEY
from service.api.schemas import HealthResponse, WhoAmIResponse
from service.api.state import Services
from service.db.tokens import Principal

SPEC_ENDPOINTS = [
    "POST /api/batch-photos/recognize",
    "GET /api/batch-photos/logs/<batch_id>",
    "GET /api/batch-photos/logs/<batch_id>/export",
    "GET /api/batch-photos/logs",
    "DELETE /api/batch-photos/logs/<batch_id>",
    "GET /api/batch-photos/health",
]


def _database_ok(services: Services) -> bool:
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@get("/api/batch-photos/health", opt={EXCLUDE_OPT_KEY: True}, sync_to_thread=True, summary="Service health")
def health(services: NamedDependency[Services]) -> HealthResponse:
    """Whether the service, its database, models and index are ready; no token needed."""
    database_ok = _database_ok(services)
    loaded = services.gallery.store.loaded_domains()
    return HealthResponse(
        status="healthy" if database_ok else "degraded",
        service="batch_photo_recognition",
        version="v1",
        log_directory_exists=services.settings.storage_dir.is_dir(),
        endpoints=SPEC_ENDPOINTS,
        database="ok" if database_ok else "unreachable",
        models_loaded=services.model is not None,
        model=f"{services.model.name} (facerec {__version__})",
        index_loaded=True,
        indexed_domains=len(loaded),
        indexed_faces=sum(loaded.values()),
        worker_pid=os.getpid(),
    )


@get("/api/auth/me", summary="The calling token's domain and role")
async def whoami(request: Request[Principal, str, Any]) -> WhoAmIResponse:
    """Who the token belongs to: lets a client check a token and see whether it is an admin."""
    return WhoAmIResponse(success=True, domain=request.user.domain, role=request.user.role)
