"""Prometheus metrics of the service's own work, on a registry of the app's own (nothing global).

With several server workers, prometheus_client's multiprocess mode shares every worker's figures through a
directory (``PROMETHEUS_MULTIPROC_DIR``), so that one scrape, answered by any worker, shows them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# prometheus_client writes every value to a file in this directory, instead of memory, when the variable is
# set as it is imported: the server's parent process sets it before it starts the workers.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
PRIVATE_DIR_PREFIX = "facerec-metrics-"


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
        # Every worker holds its own copy of the same domain index, so with several workers the sizes must
        # not be summed; the value set last (by the worker answering the latest scrape, or before it) follows
        # the index as it grows and shrinks, where the largest would keep a size from before a deletion.
        # "live": a dead worker's sizes leave the scrape with it. Single-process mode ignores the mode.
        self.index_faces = Gauge(
            "facerec_index_faces",
            "Faces in a domain's loaded index",
            ["domain"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
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

    def exposition(self) -> bytes:
        """What a scrape gets: every worker's figures in multiprocess mode, else this process's."""
        if os.environ.get(MULTIPROC_DIR_ENV):
            # Summed over the files of all workers, dead ones included, so counters never go back when a
            # worker is replaced. Only figures written to files exist here: the per-process collectors of the
            # default registry (process_*, python_*) cannot be combined and are left out.
            shared = CollectorRegistry()
            MultiProcessCollector(shared)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
            return generate_latest(shared)
        # The default registry holds Litestar's HTTP metrics and the process collectors.
        return generate_latest(REGISTRY) + generate_latest(self.registry)


def operator_directory() -> Path | None:
    """The operator's ``PROMETHEUS_MULTIPROC_DIR`` (created if missing), or None; a ValueError says why not."""
    configured = os.environ.get(MULTIPROC_DIR_ENV)
    if not configured:
        return None
    path = Path(configured)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{MULTIPROC_DIR_ENV}: cannot use {configured!r} as a directory: {exc}") from None
    return path


@contextmanager
def shared_between_workers() -> Iterator[Path]:
    """Multiprocess mode for the worker processes started inside the block; yields the shared directory.

    Unless the operator set ``PROMETHEUS_MULTIPROC_DIR``, a new private directory (empty, readable by this
    user only) is made, named in the environment the workers inherit, and removed with the variable at the
    end. The operator's directory is used as it is and left in place: emptying it between runs is theirs
    to do, as prometheus_client requires.
    """
    given = operator_directory()
    if given is not None:
        yield given
        return
    private = Path(tempfile.mkdtemp(prefix=PRIVATE_DIR_PREFIX))
    os.environ[MULTIPROC_DIR_ENV] = str(private)
    try:
        yield private
    finally:
        del os.environ[MULTIPROC_DIR_ENV]
        shutil.rmtree(private, ignore_errors=True)
