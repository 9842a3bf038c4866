"""Health (no auth) and the caller's own identity."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text

from service import __version__
from service.api.auth import EXCLUDE_OPT_KEY
from service.api.schemas import HealthResponse, WhoAmIResponse
from service.api.state import Services
from service.db.tokens import Principal

logger = logging.getLogger("service.api")

SPEC_ENDPOINTS = [
    "POST /api/batch-photos/recognize",
    "GET /api/batch-photos/logs/<batch_id>",
    "GET /api/batch-photos/logs/<batch_id>/export",
    "GET /api/batch-photos/logs",
    "DELETE /api/batch-photos/logs/<batch_id>",
    "GET /api/batch-photos/health",
]


@dataclass(frozen=True, slots=True)
class Checks:
    """What one health check found."""

    database: bool
    models: bool
    index: bool

    @property
    def status(self) -> str:
        """``healthy``; ``degraded`` when only the index fails; else ``unhealthy``."""
        if self.database and self.models:
            return "healthy" if self.index else "degraded"
        return "unhealthy"


def database_reachable(services: Services) -> bool:
    """Whether a pooled connection answers ``SELECT 1`` (pre-ping replaces dead ones first)."""
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("health: database unreachable: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return False
    return True


def indexes_usable(services: Services) -> bool:
    """Whether indexes can be loaded and saved: the index folder is writable and no domain's index failed
    to load or save since (domains load on first use, so health does not load them all)."""
    for domain in services.gallery.store.failed_loads():
        try:
            services.gallery.index(domain)  # retried here, so a recovered domain stops failing health
        except Exception:
            logger.debug("health: the index of domain %r still does not load", domain, exc_info=True)
    problems = services.gallery.store.problems()
    for problem in problems:
        logger.warning("health: search index: %s", problem)
    return not problems


@get(
    "/api/batch-photos/health",
    opt={EXCLUDE_OPT_KEY: True},
    sync_to_thread=True,
    summary="Service health",
    description="200 when the database answers, the models run and the indexes load and save; 503 otherwise.",
)
def health(services: NamedDependency[Services]) -> Response[HealthResponse]:
    """Whether the service, its database, models and index are ready; no token needed."""
    database = database_reachable(services)
    models = services.probe.models_answer()
    checks = Checks(database=database, models=models, index=database and indexes_usable(services))
    loaded = services.gallery.store.loaded_domains()
    body = HealthResponse(
        status=checks.status,
        service="batch_photo_recognition",
        version="v1",
        log_directory_exists=services.settings.storage_dir.is_dir(),
        endpoints=SPEC_ENDPOINTS,
        database="ok" if database else "unreachable",
        models_loaded=checks.models,
        model=f"{services.model.name} (facerec {__version__})",
        index_loaded=checks.index,
        indexed_domains=len(loaded),
        indexed_faces=sum(loaded.values()),
    )
    # Anything short of healthy is a 503, so container health checks and load balancers act on it.
    status_code = HTTP_200_OK if checks.status == "healthy" else HTTP_503_SERVICE_UNAVAILABLE
    return Response(body, status_code=status_code)


@get("/api/auth/me", summary="The calling token's domain and role")
async def whoami(request: Request[Principal, str, Any]) -> WhoAmIResponse:
    """Who the token belongs to: lets a client check a token and see whether it is an admin.

    Admin tokens also see which server process answered (``worker_pid``); health no longer shows it to anyone.
    """
    principal = request.user
    return WhoAmIResponse(
        success=True,
        domain=principal.domain,
        role=principal.role,
        worker_pid=os.getpid() if principal.is_admin else None,
    )
