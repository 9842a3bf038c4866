"""The batch pipeline: photos in, one entry per usable photo and one error per unusable file out.

A plain function of its inputs so it can run in a thread, a worker process or the CLI unchanged.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import numpy as np

from service.batches.results import BatchOutcome, EntryResult, FaceResult, FileError, RankedMatch, decide
from service.common.time import utcnow
from service.gallery.gallery import NamedMatch
from service.recognition.confidence import rounded_confidence
from service.recognition.faces import FaceCandidate, FaceModel, crop_jpeg
from service.recognition.images import BudgetExceededError, ImageError
from service.recognition.photos import PhotoSource, clean_filename, load_photo
from service.recognition.quality import QualityLimits, assess

logger = logging.getLogger("service.batches")

Search = Callable[[np.ndarray], list[list[NamedMatch]]]
A = TypeVar("A")
R = TypeVar("R")
PREFETCH_DEPTH = 2  # photos done and waiting at most: bounds memory while keeping every thread busy


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
    found: int  # faces detected, including those beyond the limits
    passes: str  # the detection passes it took, e.g. "640" or "640+1280"


@dataclass(slots=True)
class _Refused:
    filename: str
    error: str


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP" if pixels >= 100_000 else f"{pixels:,} pixels"


class PixelBudget:
    """The decoded pixels one request may still use, handed out in upload order to photos read concurrently.

    A photo waits for the photos before it to be admitted or refused, so which photos fit never depends on
    which thread read faster.
    """

    def __init__(self, pixels: int | None) -> None:
        self.left = pixels
        self._next = 0  # the position whose turn it is
        self._done: set[int] = set()
        self._turns = threading.Condition()

    def take(self, position: int, pixels: int) -> None:
        """Charge ``pixels`` to photo ``position`` once every earlier photo had its turn; refuse if they do not fit."""
        if self.left is None:
            return  # no budget: nothing to wait for
        with self._turns:
            self._turns.wait_for(lambda: self._next >= position)
            try:
                if pixels > self.left:
                    raise BudgetExceededError(
                        f"Not processed: this request's pixel budget is used up ({_megapixels(pixels)} to "
                        f"decode, {_megapixels(max(self.left, 0))} left); send it in another request"
                    )
                self.left -= pixels
            finally:
                self._pass(position)

    def skip(self, position: int) -> None:
        """Photo ``position`` takes nothing (refused before its header was read, or already charged)."""
        with self._turns:
            self._pass(position)

    def _pass(self, position: int) -> None:
        if position < self._next:
            return
        self._done.add(position)
        while self._next in self._done:
            self._done.discard(self._next)
            self._next += 1
        self._turns.notify_all()


def prefetched(
    work: Callable[[A], R], items: Sequence[A], depth: int = PREFETCH_DEPTH, workers: int = 1
) -> Iterator[R]:
    """``work(item)`` for each item in order, on ``workers`` helper threads, at most ``depth + workers - 1``
    items ahead of the consumer (``depth`` with one worker)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photo") as pool:
        pending: deque[Future[R]] = deque()
        upcoming = iter(items)
        for item in itertools.islice(upcoming, depth + workers - 1):
            pending.append(pool.submit(work, item))
        try:
            while pending:
                result = pending.popleft().result()
                for item in itertools.islice(upcoming, 1):
                    pending.append(pool.submit(work, item))
                yield result
        finally:
            for future in pending:  # the consumer stopped early: drop the work not yet started
                future.cancel()


def _ranked(matches: list[NamedMatch]) -> list[RankedMatch]:
    return [
        RankedMatch(
            rank=rank,
            person=m.name,
            confidence=rounded_confidence(m.similarity),
            similarity=round(float(m.similarity), 4),
            identity_id=m.identity_id,
        )
        for rank, m in enumerate(matches, start=1)
    ]


def _face(candidate: FaceCandidate, matches: list[NamedMatch], quality: QualityLimits | None) -> FaceResult:
    x1, y1, x2, y2 = (round(float(v), 1) for v in candidate.box)
    return FaceResult(
        box=(x1, y1, x2, y2),
        det_score=round(float(candidate.det_score), 4),
        matches=_ranked(matches),
        quality=assess(candidate, quality) if quality is not None else None,
    )


def recognize_photos(
    photos: Sequence[PhotoSource],
    *,
    model: FaceModel,
    search: Search,
    threshold: float,
    limits: Limits,
    log_label: str = "",
    observer: Observer | None = None,
    keep_faces: bool = False,
    quality: QualityLimits | None = None,
) -> BatchOutcome:
    """Decode, detect, embed (all faces together) and search every photo; never raises for a bad file.

    With ``keep_faces`` each entry also carries its faces' aligned crops (JPEG) and embeddings, for review;
    with ``quality`` each face is measured, and one that fails a limit is never recognised.
    """
    outcome = BatchOutcome(total_uploaded=len(photos))
    detected: list[_Detected] = []
    observe = observer or _Silent()
    budget = PixelBudget(limits.max_batch_pixels)

    def examine(position: int) -> _Detected | _Refused:
        # Runs on one of the model's pipeline threads: one photo, decoded then detected, start to end.
        photo = photos[position]
        filename = clean_filename(photo.filename)

        def admit(width: int, height: int, pixels: int) -> None:
            try:
                model.check_dimensions(width, height)
            except ImageError:
                budget.skip(position)  # a refused photo costs nothing
                raise
            budget.take(position, pixels)

        started = time.perf_counter()
        try:
            image, _ = load_photo(
                photo,
                max_bytes=limits.max_file_bytes,
                max_pixels=limits.max_image_pixels,
                min_side=model.det_size,
                max_side=limits.max_decoded_side,
                admit=admit,
            )
            decoded = time.perf_counter()
            observe.stage("decode", decoded - started)
            # Largest faces first: the limits keep the ones a person would look at and count the rest.
            detection = model.find_faces(image, limits.max_faces_per_photo)
        except ImageError as exc:
            return _Refused(filename, str(exc))
        finally:
            budget.skip(position)  # no-op once admitted; lets the next photos on if this one failed before
        finished = time.perf_counter()
        observe.stage("detect", finished - decoded)
        found = detection.found
        logger.debug("photo detected %s file=%r faces=%d passes=%s", log_label, filename, found, detection.passes)
        return _Detected(position, filename, detection.candidates, finished - started, found, detection.passes)

    faces_left = limits.max_faces_per_batch
    finished_at: list[datetime] = []
    workers = max(1, model.pipeline_workers)
    for result in prefetched(examine, range(len(photos)), workers=workers):
        if isinstance(result, _Refused):
            outcome.errors.append(FileError(filename=result.filename, error=result.error))
            observe.photo(usable=False)
            logger.info("photo rejected %s file=%r error=%r", log_label, result.filename, result.error)
            continue
        # The request's face limit goes to the photos in upload order, whichever thread finished first.
        result.candidates = result.candidates[: max(0, faces_left)]
        faces_left -= len(result.candidates)
        detected.append(result)
        finished_at.append(utcnow())  # taken in upload order, so the entries' timestamps are too

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
    for item, done_at in zip(detected, finished_at, strict=True):
        faces = []
        for candidate in item.candidates:
            faces.append(_face(candidate, matches[cursor], quality))
            cursor += 1
        top_3 = faces[0].matches if faces else []
        best = decide(faces[0], threshold) if faces else None
        recognized = best is not None
        elapsed_ms = round((item.seconds + per_face_seconds * len(faces)) * 1000)
        entry = EntryResult(
            position=item.position,
            filename=item.filename,
            timestamp=done_at,
            recognized=recognized,
            primary_person=best.person if recognized and best else None,
            primary_confidence=best.confidence if recognized and best else None,
            top_3=top_3,
            face_count=item.found,
            processing_time_ms=elapsed_ms,
            faces=faces,
            detection=item.passes,
            crops=[crop_jpeg(c.crop) for c in item.candidates] if keep_faces else None,
            embeddings=embeddings[cursor - len(faces) : cursor] if keep_faces else None,
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
