"""The detector sees each photo at its own aspect ratio, padded to a multiple of 32 instead of to a 640 square,
and finds the same faces as on the square."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from insightface.model_zoo.scrfd import SCRFD

from service.recognition.detection_policy import DetectionPolicy
from service.recognition.faces import FaceCandidate, FaceModel, align_face, detector_input_size
from service.recognition.images import DecodedImage, decode_image
from service.recognition.models import find_model_pack
from tests.conftest import FACES

PHOTOS = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
BOX_TOLERANCE = 5.0  # pixels at the detector's scale (long side 640)
SCORE_TOLERANCE = 0.03


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (640, 640, (640, 640)),
        (1280, 720, (640, 384)),  # 360 rows of photo, padded to 384
        (720, 1280, (384, 640)),
        (2000, 1428, (640, 480)),  # 456.96 rows, padded to 480
        (320, 240, (640, 480)),  # a small photo is scaled up, as on the square
        (2000, 100, (640, 32)),  # never less than one stride
    ],
)
def test_the_long_side_is_det_size_and_the_short_side_is_padded_to_a_multiple_of_32(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert detector_input_size(width, height, 640) == expected


@pytest.mark.parametrize("det_size", [160, 320, 640, 650, 1024])
@pytest.mark.parametrize(("width", "height"), [(1, 1), (1000, 999), (999, 1000), (4000, 3000), (577, 880), (3, 61)])
def test_the_input_holds_the_scaled_photo_with_less_than_one_stride_of_padding(
    det_size: int, width: int, height: int
) -> None:
    input_width, input_height = detector_input_size(width, height, det_size)
    assert input_width % 32 == 0
    assert input_height % 32 == 0
    side = max(input_width, input_height)
    assert det_size <= side < det_size + 32
    scale = side / max(width, height)
    for padded, photo in ((input_width, width * scale), (input_height, height * scale)):
        assert photo <= padded < photo + 32


def _square_detections(detector: SCRFD, image: DecodedImage) -> list[tuple[np.ndarray, float]]:
    """insightface's default: the photo letterboxed into a 640 x 640 square; boxes in decoded pixels, largest first,
    clipped to the photo as the service reports them (#20: a face cut by the frame has its box inside the photo)."""
    boxes, _ = detector.detect(image.pixels, input_size=(640, 640), det_thresh=0.5)
    height, width = image.pixels.shape[:2]
    limits = np.array([width, height, width, height], dtype=np.float64)
    found = [(np.clip(box[:4], 0, limits), float(box[4])) for box in boxes]
    return sorted(found, key=lambda f: -float((f[0][2] - f[0][0]) * (f[0][3] - f[0][1])))


def _box_in_decoded_pixels(candidate: FaceCandidate, image: DecodedImage) -> np.ndarray:
    return np.array(candidate.box) / image.scale


@pytest.fixture(scope="module")
def one_pass_model() -> FaceModel:
    """The service's detector input without the retries of #20 (a bordered retry, a finer pass): the pass
    these tests compare with the square input."""
    return FaceModel(find_model_pack(None), threads=2, policy=DetectionPolicy(border_retry=False, fine_size=0))


@pytest.fixture(scope="module")
def square_detector() -> SCRFD:
    return SCRFD(str(find_model_pack(None).detector))


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: str(p.relative_to(FACES)))
def test_every_shared_photo_has_the_faces_it_has_on_the_square_input(
    one_pass_model: FaceModel, square_detector: SCRFD, photo: Path
) -> None:
    image = decode_image(photo.read_bytes(), max_pixels=80_000_000, min_side=one_pass_model.det_size)
    ours = one_pass_model.detect(image)
    square = _square_detections(square_detector, image)
    assert len(ours) == len(square) >= 1
    to_detector = 640 / max(image.pixels.shape[:2])
    for candidate, (box, score) in zip(ours, square, strict=True):
        offset = np.abs(_box_in_decoded_pixels(candidate, image) - box).max() * to_detector
        assert offset <= BOX_TOLERANCE
        assert candidate.det_score == pytest.approx(score, abs=SCORE_TOLERANCE)


def test_the_faces_found_on_the_padded_input_embed_like_the_square_ones(
    face_model: FaceModel, square_detector: SCRFD
) -> None:
    # The photo where padding moved a box most (a face cut by the photo's bottom edge) still names the same face.
    image = decode_image(
        (FACES / "face_recognition" / "tests" / "test_images" / "obama_partial_face2.jpg").read_bytes(),
        max_pixels=80_000_000,
        min_side=face_model.det_size,
    )
    [ours] = face_model.detect(image)
    _, landmarks = square_detector.detect(image.pixels, input_size=(640, 640), det_thresh=0.5)
    ours_vector, square_vector = face_model.embed([ours.crop, align_face(image.pixels, landmarks[0])])
    assert float(ours_vector @ square_vector) > 0.95
