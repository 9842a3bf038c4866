"""GalleryService, the people use cases the API and the CLI share: real models, photos and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.common.errors import ConflictError, InvalidInputError, NotFoundError, NothingUsableError
from service.gallery.gallery import Gallery
from service.gallery.service import GalleryService
from service.recognition.faces import FaceModel
from service.recognition.photos import FilePhoto
from service.search.store import IndexStore
from service.settings import Settings
from tests.conftest import KNN

DOMAIN = "example.com"
OBAMA = FilePhoto(KNN / "train" / "obama" / "obama.jpg")
BIDEN = FilePhoto(KNN / "train" / "biden" / "biden.jpg")


@pytest.fixture
def people(
    sessions: sessionmaker[Session], tmp_path: Path, face_model: FaceModel, settings: Settings
) -> Iterator[GalleryService]:
    gallery = Gallery(sessions, IndexStore(tmp_path / "index", 512, face_model.name))
    yield GalleryService(gallery, face_model, settings)
    gallery.close()


def test_enroll_creates_the_person_with_one_face_per_photo(people: GalleryService) -> None:
    enrolled = people.enroll(DOMAIN, "Barack Obama", [OBAMA])
    assert (enrolled.identity.name, enrolled.identity.face_count) == ("Barack Obama", 1)
    assert people.person(DOMAIN, enrolled.identity.id).faces[0].filename == "obama.jpg"


def test_a_name_taken_is_a_conflict_and_a_blank_name_invalid_input(people: GalleryService) -> None:
    people.enroll(DOMAIN, "Barack Obama", [OBAMA])
    with pytest.raises(ConflictError, match="already exists"):
        people.enroll(DOMAIN, "Barack Obama", [BIDEN])
    with pytest.raises(InvalidInputError, match="Invalid name"):
        people.enroll(DOMAIN, "   ", [BIDEN])


def test_photos_with_no_usable_face_are_refused_each_with_its_reason(people: GalleryService, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(NothingUsableError) as refused:
        people.enroll(DOMAIN, "Nobody", [FilePhoto(empty)])
    assert [(f.filename, f.error) for f in refused.value.files] == [("empty.jpg", "File is empty")]
    assert refused.value.field == "rejected"
    assert people.page(DOMAIN, 10, 0).total == 0


def test_enroll_or_add_adds_to_the_existing_person_only_when_asked(people: GalleryService) -> None:
    first = people.enroll_or_add(DOMAIN, "Joe", [BIDEN], add_to_existing=False)
    with pytest.raises(ConflictError):
        people.enroll_or_add(DOMAIN, "Joe", [OBAMA], add_to_existing=False)
    group = FilePhoto(KNN / "test" / "obama_and_biden.jpg")
    again = people.enroll_or_add(DOMAIN, "joe", [group], add_to_existing=True)  # the name in any case
    assert again.identity.id == first.identity.id
    assert again.identity.face_count == 2
    assert "the one most like Joe" in (again.enrolled[0].note or "")


def test_another_domain_s_person_is_not_found(people: GalleryService) -> None:
    person = people.enroll(DOMAIN, "Barack Obama", [OBAMA]).identity
    with pytest.raises(NotFoundError):
        people.person("other.org", person.id)
    with pytest.raises(NotFoundError):
        people.add_photos("other.org", person.id, [BIDEN])
    with pytest.raises(NotFoundError):
        people.thumbnail("other.org", person.id, 1)
