"""The batch pipeline's rules, with a stand-in face model and gallery (no model loading): the match decision at
the threshold, top-3 of the largest face, face counts and limits, unusable files, and what it reports."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from service.batches.pipeline import Limits, PixelBudget, prefetched, recognize_photos
from service.batches.results import BatchOutcome
from service.gallery.gallery import NamedMatch
from service.recognition.faces import Detection, FaceCandidate
from service.recognition.images import BudgetExceededError, DecodedImage, ImageError

BASE_WIDTH = 40  # photo i of a scenario is (BASE_WIDTH + i) pixels wide: that is how the stand-in model knows it
LIMITS = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000)
IDENTITY = {"Ann": 1, "Bob": 2, "Cy": 3, "Dee": 4}


@dataclass
class Shot:
    """What the stand-in detector finds in one photo: its faces, largest first, each with its gallery matches."""

    faces: list[list[tuple[str, float]]] = field(default_factory=list)  # per face: (person, similarity), best first
    found: int | None = None  # faces detected in all (default: len(faces))
    unreadable: bool = False  # the detector fails on it


@dataclass(frozen=True)
class BytesPhoto:
    """A photo already in memory."""

    filename: str
    data: bytes

    def size(self) -> int:
        return len(self.data)

    def read(self) -> bytes:
        return self.data


class StandInModel:
    """Duck-types the parts of FaceModel the pipeline uses; records what it was asked."""

    det_size = 32

    def __init__(
        self, shots: Sequence[Shot], detect_seconds: float = 0.0, embed_seconds: float = 0.0, workers: int = 2
    ) -> None:
        self.pipeline_workers = workers
        self.shots = list(shots)
        self.detect_seconds = detect_seconds
        self.embed_seconds = embed_seconds
        self.limits: list[int | None] = []  # the face limit of each detect call, in order
        self.detected_shapes: list[tuple[int, ...]] = []
        self.embed_calls: list[list[int]] = []
        self.matches_of_face: list[list[tuple[str, float]]] = []

    def check_dimensions(self, width: int, height: int) -> None:
        if height < 20:
            raise ImageError("Image is too small to search for faces")

    def find_faces(self, image: DecodedImage, limit: int | None) -> Detection:
        candidates, found = self.detect_largest(image, limit)
        return Detection(candidates, found, "32")

    def detect_largest(self, image: DecodedImage, limit: int | None) -> tuple[list[FaceCandidate], int]:
        shot = self.shots[image.width - BASE_WIDTH]
        self.limits.append(limit)
        self.detected_shapes.append(image.pixels.shape)
        time.sleep(self.detect_seconds)
        if shot.unreadable:
            raise ImageError("The face detector could not process this image")
        candidates = []
        for number, matches in enumerate(shot.faces[:limit]):
            self.matches_of_face.append(matches)
            candidates.append(
                FaceCandidate(
                    box=(float(number), 0.0, float(number) + 10.0, 10.0),
                    det_score=0.9 - number / 10,
                    landmarks=np.zeros((5, 2)),
                    crop=np.array([len(self.matches_of_face) - 1]),
                )
            )
        return candidates, len(shot.faces) if shot.found is None else shot.found

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        self.embed_calls.append([int(crop[0]) for crop in crops])
        time.sleep(self.embed_seconds)
        return np.array([[float(crop[0])] for crop in crops], dtype=np.float32).reshape(-1, 1)


class StandInGallery:
    """The search: each face's matches as the scenario says; refuses an empty query as a real index need not."""

    def __init__(self, model: StandInModel) -> None:
        self.model = model
        self.queries = 0

    def __call__(self, embeddings: np.ndarray) -> list[list[NamedMatch]]:
        assert len(embeddings), "searched the gallery with no faces"
        self.queries += 1
        return [
            [NamedMatch(IDENTITY[name], name, 100 + IDENTITY[name], similarity) for name, similarity in matches]
            for matches in (self.model.matches_of_face[int(vector[0])] for vector in embeddings)
        ]


class Recorder:
    """An observer that keeps every call."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []
        self.photos: list[tuple[bool, int, bool]] = []

    def stage(self, name: str, seconds: float) -> None:
        self.stages.append((name, seconds))

    def photo(self, usable: bool, faces: int = 0, recognized: bool = False) -> None:
        self.photos.append((usable, faces, recognized))


def png(width: int, height: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def photos_for(shots: Sequence[Shot], height: int = 40) -> list[BytesPhoto]:
    return [BytesPhoto(f"photo{i}.jpg", png(BASE_WIDTH + i, height)) for i in range(len(shots))]


def run(
    shots: Sequence[Shot],
    threshold: float = 70.0,
    limits: Limits = LIMITS,
    photos: Sequence[BytesPhoto] | None = None,
    model: StandInModel | None = None,
    observer: Recorder | None = None,
) -> BatchOutcome:
    model = model or StandInModel(shots)
    return recognize_photos(
        photos_for(shots) if photos is None else photos,
        model=model,  # type: ignore[arg-type]
        search=StandInGallery(model),
        threshold=threshold,
        limits=limits,
        log_label="batch=test",
        observer=observer,
    )


# ----- the match decision -------------------------------------------------------------------------------
def test_a_best_match_at_exactly_the_threshold_is_recognised() -> None:
    # similarity 0.30 is confidence 50.0 exactly
    [entry] = run([Shot([[("Ann", 0.30)]])], threshold=50.0).entries
    assert entry.recognized is True
    assert (entry.primary_person, entry.primary_confidence) == ("Ann", 50.0)


def test_a_best_match_just_below_the_threshold_is_unknown_but_keeps_its_matches() -> None:
    [entry] = run([Shot([[("Ann", 0.30), ("Bob", 0.1)]])], threshold=50.1).entries
    assert entry.recognized is False
    assert (entry.primary_person, entry.primary_confidence) == (None, None)
    assert [m.person for m in entry.top_3] == ["Ann", "Bob"]


def test_the_decision_follows_the_threshold_of_the_request() -> None:
    shots = [Shot([[("Ann", 0.45)]])]  # confidence 76.9
    assert run(shots, threshold=76.9).entries[0].recognized is True
    assert run(shots, threshold=77.0).entries[0].recognized is False
    assert run(shots, threshold=0.0).entries[0].recognized is True


def test_a_photo_without_faces_is_unknown_with_no_matches() -> None:
    [entry] = run([Shot([])], threshold=0.0).entries
    assert (entry.recognized, entry.primary_person, entry.primary_confidence) == (False, None, None)
    assert (entry.top_3, entry.faces, entry.face_count) == ([], [], 0)


def test_a_face_without_any_gallery_match_is_unknown() -> None:
    [entry] = run([Shot([[]])], threshold=0.0).entries
    assert (entry.recognized, entry.primary_person, entry.top_3, entry.face_count) == (False, None, [], 1)


# ----- top 3 ------------------------------------------------------------------------------------------------
def test_top_3_are_the_largest_face_s_matches_ranked_with_rounded_confidences() -> None:
    shot = Shot([[("Ann", 0.45), ("Bob", 0.35), ("Cy", 0.1)], [("Dee", 0.9)]])
    [entry] = run([shot]).entries
    assert [(m.rank, m.person, m.confidence, m.identity_id) for m in entry.top_3] == [
        (1, "Ann", 76.9, 1),
        (2, "Bob", 59.9, 2),
        (3, "Cy", 16.8, 3),
    ]
    assert [m.similarity for m in entry.top_3] == [0.45, 0.35, 0.1]
    assert (entry.primary_person, entry.primary_confidence) == ("Ann", 76.9)  # not Dee, a smaller face


def test_every_face_keeps_its_own_box_score_and_matches() -> None:
    shot = Shot([[("Ann", 0.45)], [("Dee", 0.9), ("Bob", 0.2)]])
    [entry] = run([shot]).entries
    assert [face.box for face in entry.faces] == [(0.0, 0.0, 10.0, 10.0), (1.0, 0.0, 11.0, 10.0)]
    assert [face.det_score for face in entry.faces] == [0.9, 0.8]
    assert [[(m.rank, m.person) for m in face.matches] for face in entry.faces] == [
        [(1, "Ann")],
        [(1, "Dee"), (2, "Bob")],
    ]


def test_each_photo_gets_the_matches_of_its_own_faces() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot([]), Shot([[("Bob", 0.8)], [("Cy", 0.7)]]), Shot([[("Dee", 0.6)]])]
    entries = run(shots).entries
    assert [e.primary_person for e in entries] == ["Ann", None, "Bob", "Dee"]
    assert [len(e.faces) for e in entries] == [1, 0, 2, 1]


def test_all_faces_of_a_request_are_embedded_together_and_searched_once() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot([[("Bob", 0.8)], [("Cy", 0.7)]])]
    model = StandInModel(shots)
    gallery = StandInGallery(model)
    recognize_photos(photos_for(shots), model=model, search=gallery, threshold=70, limits=LIMITS)  # type: ignore[arg-type]
    # One call with every face; the photos are detected on parallel threads, so their faces join it in the
    # order detection finished (each face's result is mapped back to its photo by position).
    assert [sorted(call) for call in model.embed_calls] == [[0, 1, 2]]
    assert gallery.queries == 1


def test_a_batch_without_faces_does_not_search_the_gallery() -> None:
    entries = run([Shot([]), Shot([])]).entries  # the stand-in gallery fails an empty search
    assert [e.face_count for e in entries] == [0, 0]


# ----- face counts and limits -------------------------------------------------------------------------------
def test_face_count_counts_every_face_found_even_beyond_the_per_photo_limit() -> None:
    shot = Shot([[("Ann", 0.9)], [("Bob", 0.8)], [("Cy", 0.7)]], found=5)
    model = StandInModel([shot])
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_faces_per_photo=2)
    [entry] = run([shot], limits=limits, model=model).entries
    assert entry.face_count == 5
    assert [face.matches[0].person for face in entry.faces] == ["Ann", "Bob"]
    assert model.limits == [2]


def test_the_per_request_face_limit_is_shared_by_the_photos_in_upload_order() -> None:
    two_faces = Shot([[("Ann", 0.9)], [("Bob", 0.8)]])
    model = StandInModel([two_faces] * 3)
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_faces_per_photo=10, max_faces_per_batch=3)
    entries = run([two_faces] * 3, limits=limits, model=model).entries
    # Photos are detected concurrently, each up to the per-photo limit; the request's limit is shared after.
    assert model.limits == [10, 10, 10]
    assert [len(e.faces) for e in entries] == [2, 1, 0]
    assert [e.face_count for e in entries] == [2, 2, 2]
    assert [e.primary_person for e in entries] == ["Ann", "Ann", None]


def test_the_default_limits_are_100_faces_a_photo_and_1000_a_request() -> None:
    model = StandInModel([Shot([])])
    run([Shot([])], model=model)
    assert model.limits == [100]
    assert (LIMITS.max_faces_per_photo, LIMITS.max_faces_per_batch) == (100, 1000)
    assert (LIMITS.max_batch_pixels, LIMITS.max_decoded_side) == (None, None)


# ----- unusable files -------------------------------------------------------------------------------------
def test_unusable_files_are_errors_and_the_usable_ones_keep_their_upload_positions() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot(), Shot([[("Bob", 0.9)]]), Shot(unreadable=True), Shot([[("Cy", 0.9)]])]
    photos = photos_for(shots)
    photos[1] = BytesPhoto("dir/../notes.txt", b"just some text")
    outcome = run(shots, photos=photos)
    assert outcome.total_uploaded == 5
    assert [(e.position, e.filename, e.primary_person) for e in outcome.entries] == [
        (0, "photo0.jpg", "Ann"),
        (2, "photo2.jpg", "Bob"),
        (4, "photo4.jpg", "Cy"),
    ]
    assert [error.filename for error in outcome.errors] == ["notes.txt", "photo3.jpg"]
    assert "Unsupported" in outcome.errors[0].error or "not" in outcome.errors[0].error.lower()
    assert outcome.errors[1].error == "The face detector could not process this image"


def test_a_file_over_the_size_limit_is_refused_without_decoding() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot([[("Bob", 0.9)]])]
    photos = photos_for(shots)
    limits = Limits(max_file_bytes=len(photos[0].data), max_image_pixels=1_000_000)
    photos[1] = BytesPhoto("big.png", photos[1].data + b"\0" * len(photos[0].data))
    outcome = run(shots, photos=photos, limits=limits)
    assert [e.filename for e in outcome.entries] == ["photo0.jpg"]
    assert [e.filename for e in outcome.errors] == ["big.png"]
    assert outcome.errors[0].error.startswith("File is too large")


def test_an_image_with_more_pixels_than_allowed_is_refused() -> None:
    shots = [Shot([[("Ann", 0.9)]])]
    outcome = run(shots, limits=Limits(max_file_bytes=1_000_000, max_image_pixels=BASE_WIDTH * 40 - 1))
    assert outcome.entries == []
    assert "Image is too large" in outcome.errors[0].error


def test_an_image_too_thin_for_the_detector_is_an_error_not_an_entry() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot([[("Bob", 0.9)]])]
    photos = photos_for(shots)
    photos[0] = BytesPhoto("thin.png", png(BASE_WIDTH, 10))
    outcome = run(shots, photos=photos)
    assert [e.filename for e in outcome.entries] == ["photo1.jpg"]
    assert [(e.filename, e.error) for e in outcome.errors] == [("thin.png", "Image is too small to search for faces")]


def test_the_pixel_budget_of_a_request_refuses_the_photos_beyond_it() -> None:
    shots = [Shot([[("Ann", 0.9)]])] * 4
    pixels = [(BASE_WIDTH + i) * 40 for i in range(4)]
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_batch_pixels=sum(pixels[:2]) + 10)
    outcome = run(shots, limits=limits)
    assert [e.position for e in outcome.entries] == [0, 1]
    assert [e.filename for e in outcome.errors] == ["photo2.jpg", "photo3.jpg"]
    assert all("pixel budget" in e.error for e in outcome.errors)


def test_a_photo_that_fits_the_budget_left_exactly_is_processed() -> None:
    shots = [Shot([[("Ann", 0.9)]])] * 2
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_batch_pixels=(2 * BASE_WIDTH + 1) * 40)
    assert [e.position for e in run(shots, limits=limits).entries] == [0, 1]


@dataclass(frozen=True)
class SlowPhoto:
    """A photo whose bytes take a while to arrive (a slow disk, a spooled upload)."""

    filename: str
    data: bytes
    delay: float

    def size(self) -> int:
        return len(self.data)

    def read(self) -> bytes:
        time.sleep(self.delay)
        return self.data


def test_the_pixel_budget_goes_to_photos_in_upload_order_even_when_an_earlier_one_is_slower_to_read() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot([[("Bob", 0.9)]]), Shot([[("Cy", 0.9)]])]
    photos = [
        SlowPhoto("slow.png", png(BASE_WIDTH), 0.3),
        SlowPhoto("fast.png", png(BASE_WIDTH + 1), 0.0),
        SlowPhoto("fast2.png", png(BASE_WIDTH + 2), 0.0),
    ]
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_batch_pixels=BASE_WIDTH * 40 + 50)
    outcome = run(shots, photos=photos, limits=limits)  # type: ignore[arg-type]
    assert [e.filename for e in outcome.entries] == ["slow.png"]
    assert [e.filename for e in outcome.errors] == ["fast.png", "fast2.png"]


def test_a_refused_photo_costs_nothing_from_the_pixel_budget() -> None:
    shots = [Shot([[("Ann", 0.9)]])] * 3
    photos = photos_for(shots)
    photos[0] = BytesPhoto("thin.png", png(BASE_WIDTH + 30, 19))  # decoded (1330 px), then refused as too thin
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_batch_pixels=(2 * BASE_WIDTH + 3) * 40)
    outcome = run(shots, photos=photos, limits=limits)
    assert [e.position for e in outcome.entries] == [1, 2]


def test_large_photos_reach_the_detector_scaled_down_to_the_decoded_side_limit() -> None:
    model = StandInModel([Shot([[("Ann", 0.9)]])])
    photo = BytesPhoto("wide.png", png(BASE_WIDTH, 20))
    limits = Limits(max_file_bytes=1_000_000, max_image_pixels=1_000_000, max_decoded_side=20)
    [entry] = run([Shot()], photos=[photo], limits=limits, model=model).entries
    assert model.detected_shapes == [(10, 20, 3)]
    assert entry.primary_person == "Ann"


def test_a_large_jpeg_is_decoded_reduced_to_the_detector_input_size() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (BASE_WIDTH * 8, 320), (120, 80, 40)).save(buffer, format="JPEG")
    model = StandInModel([Shot()] * (BASE_WIDTH * 7 + 1))  # the stand-in knows the photo by its original width
    run([Shot()], photos=[BytesPhoto("big.jpg", buffer.getvalue())], model=model)
    assert model.detected_shapes == [(40, 40, 3)]  # 1/8 scale: the short side stays >= det_size (32)


# ----- what the pipeline reports ------------------------------------------------------------------------
def test_processing_time_is_the_photo_s_own_work_plus_its_share_of_the_shared_embedding() -> None:
    shots = [Shot([[("Ann", 0.9)], [("Bob", 0.8)]]), Shot([[("Cy", 0.7)]])]
    # One pipeline thread: each photo's own time is then a separate stretch of the wall time. With two, the photos'
    # detections overlap and their times legitimately add up to more than the wall time, by however much a
    # loaded machine stretches the overlapping sleeps.
    model = StandInModel(shots, detect_seconds=0.05, embed_seconds=0.3, workers=1)  # 0.1 s of embedding per face
    started = time.perf_counter()
    entries = run(shots, model=model).entries
    wall_ms = (time.perf_counter() - started) * 1000
    assert all(isinstance(e.processing_time_ms, int) for e in entries)
    assert entries[0].processing_time_ms >= 50 + 200
    assert entries[1].processing_time_ms >= 50 + 100
    # The photos' times add up to the work done, not more: the shared embedding (300 ms) is not counted twice.
    assert sum(e.processing_time_ms for e in entries) <= wall_ms + 200


def test_timestamps_are_when_each_photo_was_done_in_upload_order() -> None:
    entries = run([Shot([[("Ann", 0.9)]]), Shot([[("Bob", 0.9)]])]).entries
    assert entries[0].timestamp <= entries[1].timestamp
    assert entries[0].timestamp.tzinfo is None or entries[0].timestamp.utcoffset() is not None


def test_the_observer_hears_every_stage_and_every_photo() -> None:
    recorder = Recorder()
    shots = [Shot([[("Ann", 0.9)], [("Bob", 0.2)]], found=3), Shot(unreadable=True), Shot([[("Cy", 0.1)]])]
    photos = photos_for(shots)
    photos.append(BytesPhoto("empty.jpg", b""))
    run(shots, photos=photos, observer=recorder)
    # rejected files as they are read; usable photos once their faces are matched, in upload order
    assert recorder.photos == [(False, 0, False), (False, 0, False), (True, 3, True), (True, 1, False)]
    names = [name for name, _ in recorder.stages]
    assert names.count("decode") == 3
    assert names.count("detect") == 2
    assert names[-2:] == ["embed", "search"]
    assert all(0 <= seconds < 60 for _, seconds in recorder.stages)


def test_the_embed_and_search_stages_are_timed_separately() -> None:
    recorder = Recorder()
    shots = [Shot([[("Ann", 0.9)]])]
    run(shots, model=StandInModel(shots, embed_seconds=0.2), observer=recorder)
    timings = dict(recorder.stages[-2:])
    assert 0.2 <= timings["embed"] < 60
    assert timings["search"] < 0.2


def test_every_photo_is_logged_with_its_outcome(caplog: pytest.LogCaptureFixture) -> None:
    shots = [Shot([[("Ann", 0.9)]], found=2), Shot(unreadable=True), Shot([[("Bob", 0.1)]])]
    photos = photos_for(shots)
    photos.append(BytesPhoto("notes.txt", b"text"))
    with caplog.at_level(logging.DEBUG, logger="service.batches"):
        run(shots, photos=photos)
    lines = [record.getMessage() for record in caplog.records]
    assert "photo detected batch=test file='photo0.jpg' faces=2 passes=32" in lines
    assert any(
        line.startswith("photo processed batch=test file='photo0.jpg' faces=2 person='Ann' confidence=99.2 ms=")
        for line in lines
    )
    assert any(
        line.startswith("photo processed batch=test file='photo2.jpg' faces=1 person='Unknown'") for line in lines
    )
    assert "photo rejected batch=test file='photo1.jpg' error='The face detector could not process this image'" in lines
    assert any(line.startswith("photo rejected batch=test file='notes.txt' error='Unsupported") for line in lines)
    levels = {record.getMessage().split(" ")[1]: record.levelno for record in caplog.records}
    assert levels == {"detected": logging.DEBUG, "processed": logging.INFO, "rejected": logging.INFO}


# ----- decoding ahead ---------------------------------------------------------------------------------------
def test_prefetched_keeps_the_order_and_decodes_at_most_depth_items_ahead() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            started.append(item)
        return item * 10

    results = []
    for result in prefetched(work, list(range(8)), depth=2):
        time.sleep(0.02)  # a slow consumer: the helper has all the time it wants to run ahead
        with lock:
            assert len(started) <= len(results) + 1 + 2
        results.append(result)
    assert results == [i * 10 for i in range(8)]
    assert sorted(started) == list(range(8))


def test_prefetched_uses_the_documented_default_depth_of_two() -> None:
    started: list[int] = []
    consumed = 0
    for _ in prefetched(started.append, list(range(6))):
        time.sleep(0.02)
        assert len(started) <= consumed + 1 + 2
        consumed += 1
    assert consumed == 6


def test_prefetched_passes_a_work_error_to_the_consumer() -> None:
    def work(item: int) -> int:
        if item == 1:
            raise ValueError("bad item")
        return item

    with pytest.raises(ValueError, match="bad item"):
        list(prefetched(work, [0, 1, 2]))


def test_prefetched_with_several_workers_keeps_the_order_and_bounds_the_work_ahead() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.01 * (item % 3))  # later items may finish first
        return item

    consumed = 0
    for result in prefetched(work, list(range(9)), depth=2, workers=3):
        with lock:
            assert len(started) <= consumed + 1 + 2 + 3 - 1
        assert result == consumed
        consumed += 1
    assert consumed == 9


# ----- photos at once -------------------------------------------------------------------------------------
class CountingModel(StandInModel):
    """A stand-in that records how many photos were being detected at the same time."""

    def __init__(self, shots: Sequence[Shot], workers: int) -> None:
        super().__init__(shots, detect_seconds=0.05, workers=workers)
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def detect_largest(self, image: DecodedImage, limit: int | None) -> tuple[list[FaceCandidate], int]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return super().detect_largest(image, limit)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_photos_are_detected_on_as_many_threads_as_the_model_has_pipeline_workers(workers: int) -> None:
    shots = [Shot([[("Ann", 0.9)]])] * 6
    model = CountingModel(shots, workers)
    entries = run(shots, model=model).entries
    assert model.most_at_once == workers
    assert [e.position for e in entries] == list(range(6))


def test_results_keep_the_upload_order_when_a_later_photo_is_done_first() -> None:
    shots = [Shot([[("Ann", 0.9)]]), Shot([[("Bob", 0.9)]])]
    photos = [SlowPhoto("slow.png", png(BASE_WIDTH), 0.2), SlowPhoto("fast.png", png(BASE_WIDTH + 1), 0.0)]
    outcome = run(shots, photos=photos)  # type: ignore[arg-type]
    assert [(e.filename, e.primary_person) for e in outcome.entries] == [("slow.png", "Ann"), ("fast.png", "Bob")]
    assert outcome.entries[0].timestamp <= outcome.entries[1].timestamp  # timestamps follow the upload order


# ----- the pixel budget across threads ----------------------------------------------------------------------
def test_the_pixel_budget_serves_a_later_photo_only_after_every_earlier_one_had_its_turn() -> None:
    budget = PixelBudget(100)
    outcomes: list[str] = []

    def take_later() -> None:
        try:
            budget.take(1, 60)
            outcomes.append("1 admitted")
        except BudgetExceededError:
            outcomes.append("1 refused")

    later = threading.Thread(target=take_later)
    later.start()
    time.sleep(0.05)
    assert outcomes == []  # photo 1 waits for photo 0's turn
    budget.take(0, 50)
    later.join(timeout=5)
    assert outcomes == ["1 refused"]  # 60 does not fit in the 50 photo 0 left
    assert budget.left == 50


def test_a_photo_that_skips_its_turn_lets_the_next_one_take_the_whole_budget() -> None:
    budget = PixelBudget(100)
    budget.skip(0)
    budget.take(1, 100)
    assert budget.left == 0
    with pytest.raises(BudgetExceededError, match="pixel budget is used up"):
        budget.take(2, 1)
    budget.take(3, 0)


def test_without_a_budget_every_photo_is_admitted_in_turn() -> None:
    budget = PixelBudget(None)
    for position in range(3):
        budget.take(position, 10**9)
    assert budget.left is None
