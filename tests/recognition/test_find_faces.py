"""Every face a person can see is found (#20): close-cropped portraits, crowds of small faces, and no
invented faces — real detector, photos built from ../shared/faces."""

from __future__ import annotations

import io
from itertools import combinations

import numpy as np
import pytest
from PIL import Image, ImageOps

from service.recognition.detection_policy import DetectionPolicy
from service.recognition.faces import FaceModel
from service.recognition.images import DecodedImage, decode_image
from service.recognition.models import find_model_pack
from tests.conftest import FACES, KNN

STRANGERS = FACES / "facenet_pytorch" / "data" / "test_images"
PORTRAITS = [*sorted((KNN / "train").glob("*/*")), *sorted(STRANGERS.glob("*/1.jpg"))]
Box = tuple[float, float, float, float]
LIMIT = 80_000_000


def decoded(image: Image.Image, model: FaceModel) -> DecodedImage:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return decode_image(buffer.getvalue(), max_pixels=LIMIT, min_side=model.det_size, max_side=4 * model.det_size)


def portrait(path: object) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def boxes(face_model: FaceModel) -> list[tuple[Image.Image, Box]]:
    """Each portrait and its face's box."""
    return [(p, face_model.detect(decoded(p, face_model))[0].box) for p in map(portrait, PORTRAITS)]


def tight_crop(photo: Image.Image, box: Box, grey: bool = False) -> Image.Image:
    crop = photo.crop(tuple(int(v) for v in box)).resize((150, 150))
    return crop.convert("L").convert("RGB") if grey else crop


@pytest.mark.parametrize("grey", [False, True], ids=["colour", "grey"])
def test_a_portrait_cropped_at_the_face_is_found_by_searching_it_inside_a_border(
    face_model: FaceModel, boxes: list[tuple[Image.Image, Box]], grey: bool
) -> None:
    for photo, box in boxes:
        found = face_model.find_faces(decoded(tight_crop(photo, box, grey), face_model), None)
        assert found.found == 1
        assert found.passes == "640+border"
        x1, y1, x2, y2 = found.candidates[0].box
        assert 0 <= x1 < x2 <= 150
        assert 0 <= y1 < y2 <= 150


def test_without_the_bordered_retry_the_same_crops_find_nothing(
    boxes: list[tuple[Image.Image, Box]], face_model: FaceModel
) -> None:
    one_pass = FaceModel(find_model_pack(None), threads=1, policy=DetectionPolicy(border_retry=False))
    missed = sum(one_pass.find_faces(decoded(tight_crop(p, b), one_pass), None).found == 0 for p, b in boxes)
    assert missed >= len(boxes) // 2  # what the retry is for


def test_a_photo_without_a_face_still_has_none_after_every_retry(face_model: FaceModel) -> None:
    rng = np.random.default_rng(3)
    for image in (
        Image.new("RGB", (150, 150), (200, 180, 160)),
        Image.fromarray(rng.integers(0, 255, (1500, 2400, 3), dtype=np.uint8)),
        portrait(FACES / "face_recognition" / "examples" / "obama.jpg").crop((0, 0, 60, 60)).resize((150, 150)),
    ):
        found = face_model.find_faces(decoded(image, face_model), None)
        assert (found.found, found.candidates) == (0, [])


def crowd(boxes: list[tuple[Image.Image, Box]], side: int, size: tuple[int, int]) -> Image.Image:
    """40 faces of ``side`` px (box width), each with a little context, on a grid."""
    canvas = Image.new("RGB", size, (120, 120, 120))
    columns, rows = 8, 5
    cell_w, cell_h = size[0] // columns, size[1] // rows
    for n in range(columns * rows):
        photo, (x1, y1, x2, y2) = boxes[n % len(boxes)]
        pad, scale = 0.6 * (x2 - x1), side / (x2 - x1)
        patch = photo.crop((int(x1 - pad), int(y1 - pad), int(x2 + pad), int(y2 + pad)))
        patch = patch.resize((max(1, int(patch.width * scale)), max(1, int(patch.height * scale))))
        left = (n % columns) * cell_w + (cell_w - patch.width) // 2
        top = (n // columns) * cell_h + (cell_h - patch.height) // 2
        canvas.paste(patch, (left, top))
    return canvas


@pytest.mark.parametrize(("side", "size", "passes"), [(40, (1920, 1200), "640+1280"), (150, (3600, 2250), "640")])
def test_every_face_of_a_crowd_is_found_once_inside_the_photo(
    face_model: FaceModel,
    boxes: list[tuple[Image.Image, Box]],
    side: int,
    size: tuple[int, int],
    passes: str,
) -> None:
    image = decoded(crowd(boxes, side, size), face_model)
    found = face_model.find_faces(image, None)
    assert found.found == 40
    assert found.passes == passes
    for face in found.candidates:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.width
        assert 0 <= y1 < y2 <= image.height
    for a, b in combinations(found.candidates, 2):  # no face twice
        ax1, ay1, ax2, ay2 = a.box
        bx1, by1, bx2, by2 = b.box
        inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
        assert inter < 0.3 * min((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1))
