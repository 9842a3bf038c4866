"""Build the Litestar application: routes, auth, error mapping, and the lifespan holding models and index."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from litestar import Litestar, Router
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from service import __version__
from service.api.admin import stats
from service.api.audit import AuditMiddleware, audit_trail
from service.api.auth import auth_middleware, create_auth_limiter
from service.api.batches import BatchLogController, BatchUploadController
from service.api.errors import EXCEPTION_HANDLERS
from service.api.health import health, whoami
from service.api.identities import IdentityController
from service.api.metrics import HTTP_METRICS, metrics
from service.api.state import DEPENDENCIES, Services
from service.api.unknown import UnknownFacesController
from service.api.uploads import SpoolBudget
from service.batches.retention import RetentionTask
from service.batches.service import BatchService
from service.batches.unknown import UnknownFacesService
from service.common.runner import BoundedRunner
from service.db.migrate import is_up_to_date
from service.db.session import create_db_engine, create_session_factory
from service.gallery.gallery import Gallery
from service.gallery.service import GalleryService
from service.metrics import ServiceMetrics
from service.recognition.faces import EMBEDDING_DIM, FaceModel
from service.recognition.models import find_model_pack
from service.recognition.probe import ModelProbe
from service.search.store import IndexStore, SnapshotPolicy
from service.settings import LOG_FORMAT, Settings
from service.web.api_docs import OfflineSwaggerRenderPlugin
from service.web.cors import cors_config
from service.web.routes import TEMPLATES_DIR, web_router

logger = logging.getLogger("service")
SMALL_BODY_LIMIT = 1024 * 1024  # JSON bodies of the non-upload routes


class SchemaOutOfDateError(RuntimeError):
    """The database has not been migrated to the newest schema."""


def build_services(settings: Settings, model: FaceModel | None = None) -> Services:
    """Open the database, load the models (warmed up) unless ``model`` is an already loaded one, and prepare
    the index store (domains load lazily)."""
    engine = create_db_engine(
        settings.database_url, settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout
    )
    if not is_up_to_date(engine, settings.database_url):
        engine.dispose()
        raise SchemaOutOfDateError("The database schema is not up to date: run `facerec db upgrade`")
    sessions = create_session_factory(engine)
    if model is None:
        model = FaceModel(
            find_model_pack(settings.model_dir),
            threads=settings.inference_threads,
            providers=settings.providers,
            det_size=settings.det_size,
            det_threshold=settings.det_threshold,
            embed_batch_size=settings.embed_batch_size,
            min_image_side=settings.min_image_side,
            max_aspect_ratio=settings.max_aspect_ratio,
        )
        model.warm_up()
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    # Indexes load on a domain's first search or change (file plus the change log since), not here: a
    # server with 10,000 tenants starts at once, and the least recently used are unloaded over the budget.
    store = IndexStore(
        settings.index_dir,
        dim=EMBEDDING_DIM,
        model_name=model.name,
        memory_budget=int(settings.index_memory_mb * 1024 * 1024),
        policy=SnapshotPolicy(
            every_changes=settings.index_snapshot_changes,
            idle_seconds=settings.index_snapshot_idle_seconds,
            background=True,
        ),
        compress_above=settings.index_compress_above,
    )
    gallery = Gallery(sessions, store)
    runner = BoundedRunner(settings.inference_workers, settings.max_queued_batches, settings.max_batches_per_token)
    spool = SpoolBudget(int(settings.upload_spool_mb * 1024 * 1024))
    metrics = ServiceMetrics()
    return Services(
        settings,
        engine,
        sessions,
        model,
        gallery,
        runner,
        metrics,
        spool,
        batches=BatchService(sessions, model, gallery, settings, metrics),
        people=GalleryService(gallery, model, settings),
        unknown=UnknownFacesService(sessions, gallery, model, settings),
        probe=ModelProbe(model),
    )


def create_app(settings: Settings | None = None, model: FaceModel | None = None) -> Litestar:
    """The application for ``settings`` (read from the environment when omitted); ``model``, when given, is an
    already loaded (and warmed) model that the app uses instead of loading its own."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await anyio.to_thread.run_sync(build_services, settings, model)
        app.state.services = services
        app.state.sessions = services.sessions
        app.state.auth_limiter = create_auth_limiter(settings)
        logger.info(
            "facerec %s ready: model %s, database %s",
            __version__,
            services.model.name,
            services.engine.url.render_as_string(hide_password=True),
        )
        retention = None
        if settings.batch_retention_days is not None or settings.audit_retention_days is not None:
            retention = RetentionTask(
                services.sessions,
                settings.batch_retention_days,
                settings.retention_interval_seconds,
                settings.audit_retention_days,
            )
            retention.start()
        try:
            yield
        finally:
            if retention is not None:
                retention.stop()
            services.runner.shutdown()
            services.gallery.close()  # saves the indexes changed since their last snapshot
            services.engine.dispose()

    uploads = Router(
        path="/",
        route_handlers=[BatchUploadController, IdentityController],
        request_max_body_size=settings.max_upload_bytes,
    )
    return Litestar(
        route_handlers=[
            uploads,
            BatchLogController,
            UnknownFacesController,
            stats,
            audit_trail,
            health,
            whoami,
            metrics,
            web_router(),
        ],
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        dependencies=DEPENDENCIES,
        middleware=[HTTP_METRICS.middleware, auth_middleware(), AuditMiddleware()],
        logging_config=LoggingConfig(
            root={"handlers": ["queue_listener"], "level": settings.log_level.upper()},
            formatters={"standard": {"format": LOG_FORMAT}},
            log_exceptions="never",  # unexpected errors are logged once, by the 500 handler
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=SMALL_BODY_LIMIT,
        cors_config=cors_config(settings),
        openapi_config=OpenAPIConfig(
            title="facerec",
            version=__version__,
            description="Batch face recognition: upload photos, get per-photo logs, CSV export and statistics.",
            path="/api/docs",
            render_plugins=[OfflineSwaggerRenderPlugin()],
            # Lets "Authorize" in the docs send the token, as the spec's clients do (`Authorization: <token>`).
            components=Components(
                security_schemes={
                    "token": SecurityScheme(
                        type="apiKey",
                        name="Authorization",
                        security_scheme_in="header",
                        description="An API token (`facerec token create`); `Bearer <token>` works too",
                    )
                }
            ),
            security=[{"token": []}],
        ),
    )
