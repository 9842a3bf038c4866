"""Design §4: the recogniser runs on all faces of a request in batches (``embed_batch_size``, 32 by default).
However many batches that takes, every face gets its own embedding, in order, as if embedded alone."""

from __future__ import annotations

import numpy as np
import pytest

from service.recognition.faces import EMBEDDING_DIM, FaceModel
from service.recognition.images import decode_image
from tests.conftest import FACES

FACE_COUNT = 70  # two full runs of 32 and a part of one
PHOTOS = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


@pytest.fixture(scope="module")
def crops(face_model: FaceModel) -> list[np.ndarray]:
    """Aligned 112x112 crops of every face in the shared photos, then their mirror images, 70 in all."""
    contents = {photo.read_bytes() for photo in PHOTOS}  # some photos are copies of others
    faces: list[np.ndarray] = []
    for data in sorted(contents):
        image = decode_image(data, max_pixels=80_000_000, min_side=face_model.det_size)
        faces.extend(candidate.crop for candidate in face_model.detect(image))
    faces += [np.ascontiguousarray(crop[:, ::-1]) for crop in faces]
    assert len(faces) >= FACE_COUNT
    return faces[:FACE_COUNT]


@pytest.fixture(scope="module")
def alone(face_model: FaceModel, crops: list[np.ndarray]) -> np.ndarray:
    """Each crop's embedding from a call of its own."""
    embeddings = np.vstack([face_model.embed([crop]) for crop in crops])
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, 0.0)
    assert similarity.max() < 0.999  # all different: a shuffled or repeated output cannot pass for the right one
    return embeddings


def test_more_faces_than_one_run_each_get_the_embedding_they_get_alone(
    face_model: FaceModel, crops: list[np.ndarray], alone: np.ndarray
) -> None:
    assert FACE_COUNT > 2 * face_model.embed_batch_size == 64
    together = face_model.embed(crops)
    assert together.shape == (FACE_COUNT, EMBEDDING_DIM)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_calls_of_a_few_faces_each_give_the_same_embeddings_as_alone(
    face_model: FaceModel, crops: list[np.ndarray], alone: np.ndarray
) -> None:
    in_sevens = np.vstack([face_model.embed(crops[start : start + 7]) for start in range(0, FACE_COUNT, 7)])
    np.testing.assert_allclose(in_sevens, alone, atol=1e-4)
