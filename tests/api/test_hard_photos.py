"""Close-cropped portraits are recognised and enrolled like any photo (#20), and say which passes they took."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image, ImageOps

from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from tests.conftest import KNN, auth, enroll_knn_train


def tight(path: Any, face_model: FaceModel, grey: bool = False) -> bytes:
    """The photo cut at the detector's own box around its face, 150x150 (as HR exports and thumbnails are)."""
    photo = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=95)
    [face] = face_model.detect(decode_image(buffer.getvalue(), max_pixels=80_000_000, min_side=face_model.det_size))
    crop = photo.crop(tuple(int(v) for v in face.box)).resize((150, 150))
    out = io.BytesIO()
    (crop.convert("L") if grey else crop).save(out, "JPEG", quality=92)
    return out.getvalue()


@pytest.mark.parametrize("grey", [False, True], ids=["colour", "grey"])
def test_tight_crops_are_found_and_named_after_enrolling_the_uncropped_photos(
    client: httpx.Client, admin: str, face_model: FaceModel, grey: bool
) -> None:
    enroll_knn_train(client, admin)
    probes = {
        "obama1.jpg": "obama",
        "alex_lacamoire1.jpg": "alex_lacamoire",
        "johnsnow_test1.jpg": "kit_harington",
    }
    files = [("photos[]", (name, tight(KNN / "test" / name, face_model, grey), "image/jpeg")) for name in probes]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=files).json()
    log: dict[str, Any] = client.get(body["log_url"], headers=auth(admin)).json()
    named = {e["filename"]: e["primary_result"]["person"] for e in log["entries"]}
    assert named == probes
    assert {e["metadata"]["detection"] for e in log["entries"]} == {"640+border"}
    assert all(e["metadata"]["face_count"] == 1 for e in log["entries"])


def test_a_person_can_be_enrolled_from_a_tight_crop(client: httpx.Client, admin: str, face_model: FaceModel) -> None:
    crop = tight(KNN / "train" / "obama" / "obama.jpg", face_model)
    response = client.post(
        "/api/identities",
        headers=auth(admin),
        data={"name": "Barack Obama"},
        files=[("photos[]", ("badge.jpg", crop, "image/jpeg"))],
    )
    assert response.status_code == 201, response.text
    probe = [("photos[]", ("o.jpg", (KNN / "test" / "obama1.jpg").read_bytes(), "image/jpeg"))]
    body = client.post("/api/batch-photos/recognize", headers=auth(admin), files=probe).json()
    assert body["summary"]["persons_list"] == ["Barack Obama"]
