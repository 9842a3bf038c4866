"""The batch pipeline: photos in, one entry per usable photo and one error per unusable file out.

A plain function of its inputs so it can run in a thread, a worker process or the CLI unchanged.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import numpy as np

from service.batches.results import BatchOutcome, EntryResult, FaceResult, FileError, RankedMatch
from service.db.models import utcnow
from service.gallery.gallery import NamedMatch
from service.recognition.confidence import rounded_confidence
from service.recognition.faces import FaceCandidate, FaceModel
from service.recognition.images import DecodedImage, ImageError
from service.recognition.photos import PhotoSource, clean_filename, load_photo

logger = logging.getLogger("service.batches")

Search = Callable[[np.ndarray], list[list[NamedMatch]]]
A = TypeVar("A")
R = TypeVar("R")
PREFETCH_DEPTH = 2  # decoded photos waiting at most: bounds memory while keeping the detector busy


class Observer(Protocol):
    """Receives timings and outcomes (the app passes its metrics; tests and the CLI may pass nothing)."""

    def stage(self, name: str, seconds: float) -> None: ...

    def photo(self, usable: bool, faces: int = 0, recognized: bool = False) -> None: ...


class _Silent:
    def stage(self, name: str, seconds: float) -> None:
        pass

    def photo(self, usable: bool, faces: int = 0, recognized: bool = False) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-photo and per-request limits: they bound the work and memory one request can cause."""

    max_file_bytes: int
    max_image_pixels: int
    max_faces_per_photo: int = 100
    max_faces_per_batch: int = 1000
    max_batch_pixels: int | None = None  # decoded pixels per request
    max_decoded_side: int | None = None  # larger decodes are scaled down to this long side


@dataclass(slots=True)
class _Detected:
    position: int
    filename: str
    candidates: list[FaceCandidate]  # the faces that will be recognised
    seconds: float
    finished_at: datetime
    found: int  # faces detected, including those beyond the limits


def prefetched(work: Callable[[A], R], items: Sequence[A], depth: int = PREFETCH_DEPTH) -> Iterator[R]:
    """``work(item)`` for each item in order, computed up to ``depth`` items ahead on a helper thread.

    Decoding the next photo (Pillow, one core) overlaps detecting the current one (onnxruntime).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending: deque[Future[R]] = deque()
        upcoming = iter(items)
        for item in itertools.islice(upcoming, depth):
            pending.append(pool.submit(work, item))
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(upcoming, 1):
                pending.append(pool.submit(work, item))
            yield result


def _ranked(matches: list[NamedMatch]) -> list[RankedMatch]:
    return [
        RankedMatch(
            rank=rank,
            person=m.name,
            confidence=rounded_confidence(m.similarity),
            similarity=m.similarity,
            identity_id=m.identity_id,
        )
        for rank, m in enumerate(matches, start=1)
    ]


def recognize_photos(
    photos: Sequence[PhotoSource],
    *,
    model: FaceModel,
    search: Search,
    threshold: float,
    limits: Limits,
    log_label: str = "",
    observer: Observer | None = None,
) -> BatchOutcome:
    """Decode, detect, embed (all faces together) and search every photo; never raises for a bad file."""
    outcome = BatchOutcome(total_uploaded=len(photos))
    detected: list[_Detected] = []
    observe = observer or _Silent()

    pixels_left = limits.max_batch_pixels

    def read(photo: PhotoSource) -> tuple[DecodedImage | ImageError, float]:
        # Runs on the one decode thread, in photo order, so the pixel budget needs no lock.
        nonlocal pixels_left
        started = time.perf_counter()
        try:
            image, _ = load_photo(
                photo,
                max_bytes=limits.max_file_bytes,
                max_pixels=limits.max_image_pixels,
                min_side=model.det_size,
                max_side=limits.max_decoded_side,
                pixel_budget=pixels_left,
            )
            model.check_shape(image)
        except ImageError as exc:
            return exc, time.perf_counter() - started
        if pixels_left is not None:
            pixels_left -= image.decoded_pixels
        observe.stage("decode", time.perf_counter() - started)
        return image, time.perf_counter() - started

    faces_left = limits.max_faces_per_batch

    for position, (photo, (image, read_seconds)) in enumerate(zip(photos, prefetched(read, photos), strict=True)):
        filename = clean_filename(photo.filename)
        if isinstance(image, ImageError):
            outcome.errors.append(FileError(filename=filename, error=str(image)))
            observe.photo(usable=False)
            logger.info("photo rejected %s file=%r error=%r", log_label, filename, str(image))
            continue
        started = time.perf_counter()
        try:
            # Largest faces first: the limits keep the ones a person would look at and count the rest.
            kept, found = model.detect_largest(image, max(0, min(limits.max_faces_per_photo, faces_left)))
        except ImageError as exc:
            outcome.errors.append(FileError(filename=filename, error=str(exc)))
            observe.photo(usable=False)
            logger.info("photo rejected %s file=%r error=%r", log_label, filename, str(exc))
            continue
        observe.stage("detect", time.perf_counter() - started)
        seconds = read_seconds + time.perf_counter() - started
        faces_left -= len(kept)
        logger.debug("photo detected %s file=%r faces=%d", log_label, filename, found)
        detected.append(_Detected(position, filename, kept, seconds, utcnow(), found=found))

    crops = [c.crop for item in detected for c in item.candidates]
    shared_started = time.perf_counter()
    embeddings = model.embed(crops)
    searched_at = time.perf_counter()
    matches = search(embeddings) if len(embeddings) else []
    observe.stage("embed", searched_at - shared_started)
    observe.stage("search", time.perf_counter() - searched_at)
    shared_seconds = time.perf_counter() - shared_started
    per_face_seconds = shared_seconds / len(crops) if crops else 0.0

    cursor = 0
    for item in detected:
        faces = []
        for candidate in item.candidates:
            faces.append(FaceResult(box=candidate.box, det_score=candidate.det_score, matches=_ranked(matches[cursor])))
            cursor += 1
        top_3 = faces[0].matches if faces else []
        best = top_3[0] if top_3 else None
        recognized = best is not None and best.confidence >= threshold
        elapsed_ms = round((item.seconds + per_face_seconds * len(faces)) * 1000)
        entry = EntryResult(
            position=item.position,
            filename=item.filename,
            timestamp=item.finished_at,
            recognized=recognized,
            primary_person=best.person if recognized and best else None,
            primary_confidence=best.confidence if recognized and best else None,
            top_3=top_3,
            face_count=item.found,
            processing_time_ms=elapsed_ms,
            faces=faces,
        )
        outcome.entries.append(entry)
        observe.photo(usable=True, faces=entry.face_count, recognized=entry.recognized)
        logger.info(
            "photo processed %s file=%r faces=%d person=%r confidence=%s ms=%d",
            log_label,
            entry.filename,
            entry.face_count,
            entry.primary_person or "Unknown",
            entry.primary_confidence,
            entry.processing_time_ms,
        )
    return outcome
