"""What the lifespan puts on ``app.state`` and how handlers receive it."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.batches.runner import BoundedRunner
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


def provide_services(state: State) -> Services:
    """Dependency provider: the process's services."""
    services: Services = state.services
    return services
