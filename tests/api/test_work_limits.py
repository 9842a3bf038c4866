"""Work per request is bounded: faces per photo and per batch, decoded pixels per batch; what is left out is
counted and said, never silently dropped, and never a failed batch."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from service.settings import Settings
from tests.conftest import KNN, app_client, auth

PHOTO = KNN / "test" / "obama1.jpg"


@pytest.fixture(scope="module")
def tiled_faces(face_model: FaceModel) -> bytes:
    """A 640x640 PNG of one real face repeated 4x4: sixteen faces that cost almost nothing to upload."""
    data = PHOTO.read_bytes()
    [face] = face_model.detect(decode_image(data, max_pixels=10**8))
    x1, y1, x2, y2 = face.box
    margin = 0.4 * (x2 - x1)
    crop = Image.open(io.BytesIO(data)).convert("RGB").crop((x1 - margin, y1 - margin, x2 + margin, y2 + margin))
    tile = crop.resize((160, 160))
    sheet = Image.new("RGB", (640, 640))
    for row in range(4):
        for column in range(4):
            sheet.paste(tile, (column * 160, row * 160))
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return buffer.getvalue()


def upload(http: httpx.Client, token: str, *files: tuple[str, bytes]) -> httpx.Response:
    parts = [("photos[]", (name, content, "application/octet-stream")) for name, content in files]
    return http.post("/api/batch-photos/recognize", headers=auth(token), files=parts)


def entries(http: httpx.Client, token: str, response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 200, response.text
    log: list[dict[str, object]] = http.get(response.json()["log_url"], headers=auth(token)).json()["entries"]
    return log


def test_the_tiled_photo_really_holds_sixteen_faces(
    client: httpx.Client, tokens: Callable[..., str], tiled_faces: bytes
) -> None:
    token = tokens()
    [entry] = entries(client, token, upload(client, token, ("tiles.png", tiled_faces)))
    assert entry["metadata"] == {
        "face_count": 16,
        "processing_time_ms": entry["metadata"]["processing_time_ms"],
        "has_multiple_faces": True,
        "detection": entry["metadata"]["detection"],  # #20: the passes it took
    }  # type: ignore[index]


def test_a_photo_with_more_faces_than_the_limit_keeps_the_largest_and_says_so(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str], tiled_faces: bytes
) -> None:
    limited = settings.model_copy(update={"max_faces_per_photo": 5})
    token = tokens()
    with app_client(limited, face_model) as http:
        [entry] = entries(http, token, upload(http, token, ("tiles.png", tiled_faces)))
    metadata = entry["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["face_count"] == 16
    assert metadata["faces_recognized"] == 5
    assert metadata["note"] == "16 faces detected; the 5 largest were recognised (face limit reached)"
    assert len(entry["faces"]) == 5  # type: ignore[arg-type]


def test_a_batch_stops_recognising_faces_at_its_face_limit_but_keeps_every_photo(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str], tiled_faces: bytes
) -> None:
    limited = settings.model_copy(update={"max_faces_per_batch": 20})
    token = tokens()
    with app_client(limited, face_model) as http:
        response = upload(http, token, *[(f"t{i}.png", tiled_faces) for i in range(3)])
        logged = entries(http, token, response)
    assert response.json()["total_processed"] == 3
    recognised = [len(e["faces"]) for e in logged]  # type: ignore[arg-type]
    assert recognised == [16, 4, 0]
    assert [e["metadata"]["face_count"] for e in logged] == [16, 16, 16]  # type: ignore[index]


def test_photos_past_the_batch_pixel_budget_are_refused_with_the_reason(
    settings: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    budget = settings.model_copy(update={"max_batch_megapixels": 1.0})
    big = io.BytesIO()
    Image.new("RGB", (800, 800), (90, 90, 90)).save(big, "PNG")  # 0.64 MP decoded each
    token = tokens()
    with app_client(budget, face_model) as http:
        response = upload(
            http, token, ("a.png", big.getvalue()), ("b.png", big.getvalue()), ("c.jpg", PHOTO.read_bytes())
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_processed"] == 1
    assert [e["filename"] for e in body["errors"]] == ["b.png", "c.jpg"]
    assert all("pixel budget" in e["error"] for e in body["errors"])
