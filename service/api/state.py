"""What the lifespan puts on ``app.state`` and how handlers receive it: each handler asks for what it uses
(``batches``, ``people``, ``runner``, ``uploads``, ``settings``) by name, through Litestar's dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.api.uploads import SpoolBudget, UploadLimits
from service.batches.service import BatchService
from service.batches.unknown import UnknownFacesService
from service.common.runner import BoundedRunner
from service.gallery.gallery import Gallery
from service.gallery.service import GalleryService
from service.metrics import ServiceMetrics
from service.recognition.faces import FaceModel
from service.recognition.probe import ModelProbe
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Uploads:
    """What one photo upload may hold, and the space shared by every upload being received."""

    limits: UploadLimits
    spool: SpoolBudget


@dataclass(slots=True)
class Services:
    """Long-lived objects created once per process in the lifespan."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    model: FaceModel
    gallery: Gallery
    runner: BoundedRunner
    metrics: ServiceMetrics
    spool: SpoolBudget  # space for uploads being received, shared by every request
    batches: BatchService
    people: GalleryService
    unknown: UnknownFacesService
    probe: ModelProbe  # whether the models answer, for health (probed at most every few seconds)

    @property
    def uploads(self) -> Uploads:
        """What one photo upload request may hold."""
        limits = UploadLimits(
            max_files=self.settings.max_batch_size,
            max_file_bytes=self.settings.max_file_bytes,
            max_field_bytes=self.settings.max_form_field_bytes,
        )
        return Uploads(limits, self.spool)


def provide_services(state: State) -> Services:
    """Dependency provider: the process's services."""
    services: Services = state.services
    return services


def _provider(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.services, name)

    provide.__name__ = f"provide_{name}"
    return Provide(provide, sync_to_thread=False)


DEPENDENCIES: dict[str, Provide] = {
    "services": Provide(provide_services, sync_to_thread=False),
    **{name: _provider(name) for name in ("settings", "runner", "batches", "people", "unknown", "uploads", "sessions")},
}
