"""Prometheus metrics of the service's own work, on a registry of the app's own (nothing global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """Counters and histograms the batch pipeline reports to; the ``/metrics`` route exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.batches = Counter("facerec_batches", "Batches stored", registry=self.registry)
        self.photos = Counter("facerec_photos", "Uploaded files by outcome", ["outcome"], registry=self.registry)
        self.faces = Counter("facerec_faces", "Faces found in processed photos", registry=self.registry)
        self.results = Counter(
            "facerec_photo_results", "Processed photos by recognition result", ["result"], registry=self.registry
        )
        self.stage_seconds = Histogram(
            "facerec_stage_seconds",
            "Time spent per pipeline stage (decode and detect per photo; embed and search per batch)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.index_faces = Gauge(
            "facerec_index_faces", "Faces in a domain's loaded index", ["domain"], registry=self.registry
        )

    def stage(self, name: str, seconds: float) -> None:
        """Record the duration of one pipeline stage."""
        self.stage_seconds.labels(stage=name).observe(seconds)

    def photo(self, usable: bool, faces: int = 0, recognized: bool = False) -> None:
        """Record one uploaded file."""
        self.photos.labels(outcome="processed" if usable else "rejected").inc()
        if usable:
            self.faces.inc(faces)
            self.results.labels(result="recognized" if recognized else "unknown").inc()

    def batch(self) -> None:
        """Record one stored batch."""
        self.batches.inc()

    def set_index_sizes(self, sizes: dict[str, int]) -> None:
        """Publish the size of every loaded domain index."""
        for domain, faces in sizes.items():
            self.index_faces.labels(domain=domain).set(faces)
