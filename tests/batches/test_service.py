"""BatchService, the batch use cases the API and the CLI share: real models, real photos, a real database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.batches.service import BatchRequest, BatchService
from service.common.errors import NotFoundError, NothingUsableError
from service.gallery.gallery import Gallery
from service.gallery.service import GalleryService
from service.recognition.faces import FaceModel
from service.recognition.photos import FilePhoto
from service.search.store import IndexStore
from service.settings import Settings
from tests.conftest import KNN

DOMAIN = "example.com"


@pytest.fixture
def gallery(sessions: sessionmaker[Session], tmp_path: Path, face_model: FaceModel) -> Iterator[Gallery]:
    gallery = Gallery(sessions, IndexStore(tmp_path / "index", 512, face_model.name))
    yield gallery
    gallery.close()


@pytest.fixture
def batches(
    sessions: sessionmaker[Session], face_model: FaceModel, gallery: Gallery, settings: Settings
) -> BatchService:
    people = GalleryService(gallery, face_model, settings)
    people.enroll(DOMAIN, "Obama", [FilePhoto(KNN / "train" / "obama" / "obama.jpg")])
    return BatchService(sessions, face_model, gallery, settings)


def request(*paths: Path, domain: str = DOMAIN) -> BatchRequest:
    return BatchRequest(photos=[FilePhoto(p) for p in paths], domain=domain, threshold=70.0)


def test_recognize_stores_the_batch_and_its_log_reads_it_back(batches: BatchService) -> None:
    run = batches.recognize(request(KNN / "test" / "obama1.jpg"))
    log = batches.log(DOMAIN, run.batch.id)
    assert run.summary.persons_list == ["Obama"]
    assert [e.primary_result.person for e in log.entries] == ["Obama"]
    assert log.entries[0].top_3_matches[0].identity_id == log.entries[0].faces[0].matches[0].identity_id


def test_a_batch_without_a_usable_photo_is_refused_with_each_reason_and_nothing_is_stored(
    batches: BatchService, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("not a photo")
    with pytest.raises(NothingUsableError) as refused:
        batches.recognize(request(note))
    assert [(f.filename, f.error.startswith("Unsupported")) for f in refused.value.files] == [("note.txt", True)]
    assert batches.page(DOMAIN, 10, 0).total == 0


def test_another_domain_s_batch_is_not_found_for_reading_exporting_or_deleting(batches: BatchService) -> None:
    batch_id = batches.recognize(request(KNN / "test" / "obama1.jpg")).batch.id
    for use in (batches.log, batches.export, batches.delete):
        with pytest.raises(NotFoundError, match="Batch not found"):
            use("other.org", batch_id)
    assert batches.page(DOMAIN, 10, 0).total == 1


def test_deleting_a_batch_removes_it_from_the_list(batches: BatchService) -> None:
    batch_id = batches.recognize(request(KNN / "test" / "obama1.jpg")).batch.id
    batches.delete(DOMAIN, batch_id)
    assert batches.page(DOMAIN, 10, 0).total == 0
    with pytest.raises(NotFoundError):
        batches.log(DOMAIN, batch_id)
