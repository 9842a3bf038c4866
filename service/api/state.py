"""What the lifespan puts on ``app.state`` and how handlers receive it."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.api.uploads import SpoolBudget, UploadLimits
from service.common.runner import BoundedRunner
from service.gallery.gallery import Gallery
from service.metrics import ServiceMetrics
from service.recognition.faces import FaceModel
from service.settings import Settings


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

    def upload_limits(self) -> UploadLimits:
        """What one photo upload request may hold."""
        return UploadLimits(
            max_files=self.settings.max_batch_size,
            max_file_bytes=self.settings.max_file_bytes,
            max_field_bytes=self.settings.max_form_field_bytes,
        )


def provide_services(state: State) -> Services:
    """Dependency provider: the process's services."""
    services: Services = state.services
    return services
