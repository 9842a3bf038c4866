"""Concurrent changes to one person (photos added while the person is deleted) keep the index equal to SQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Identity
from service.gallery import enrollment
from service.gallery.enrollment import IdentityNotFoundError, PreparedFace
from service.gallery.gallery import Gallery
from service.search.store import IndexStore

DOMAIN = "example.com"
ROUNDS = 40


def face(seed: int) -> PreparedFace:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return PreparedFace(f"{seed}.jpg", vector / np.linalg.norm(vector), 0.9, f"{seed:064d}", b"", None)


@pytest.fixture
def gallery(sessions: sessionmaker[Session], tmp_path: Path) -> Gallery:
    return Gallery(sessions, IndexStore(tmp_path / "index", 512, "test"))


def race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in threads released together; each one's result or exception, in order."""
    start = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(number: int, call: Callable[[], object]) -> None:
        start.wait()
        try:
            outcomes[number] = call()
        except Exception as exc:  # the outcome is checked by the test
            outcomes[number] = exc

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_adding_photos_while_the_person_is_deleted_leaves_no_face_in_the_index_that_sql_lacks(
    gallery: Gallery,
) -> None:
    seed = 1000
    for round_number in range(ROUNDS):
        seed += 10
        person = enrollment.enroll(gallery, DOMAIN, [face(seed)], [], model_name="test", name=f"P{round_number}")
        assert person.identity is not None
        identity_id = person.identity.id
        more = [face(seed + 1), face(seed + 2)]
        added, deleted = race(
            partial(enrollment.enroll, gallery, DOMAIN, more, [], model_name="test", identity_id=identity_id),
            partial(enrollment.delete_identity, gallery, DOMAIN, identity_id),
        )
        assert not isinstance(deleted, Exception), deleted
        # Either the photos went in before the deletion (and left with the person) or the person was gone.
        assert isinstance(added, enrollment.EnrollmentResult | IdentityNotFoundError), added
        check = gallery.verify(DOMAIN, repair=False)
        assert check.consistent, f"round {round_number}: {check.problems}"
        assert check.sql_faces == check.index_faces == 0


def test_renaming_a_person_while_it_is_deleted_is_identity_not_found(gallery: Gallery) -> None:
    for round_number in range(ROUNDS // 2):
        person = enrollment.enroll(
            gallery, DOMAIN, [face(round_number)], [], model_name="test", name=f"R{round_number}"
        )
        assert person.identity is not None
        identity_id = person.identity.id
        renamed, deleted = race(
            partial(enrollment.rename, gallery, DOMAIN, identity_id, f"Renamed {identity_id}"),
            partial(enrollment.delete_identity, gallery, DOMAIN, identity_id),
        )
        assert not isinstance(deleted, Exception), deleted
        assert isinstance(renamed, Identity | IdentityNotFoundError), renamed


def test_the_same_photo_added_twice_at_once_is_stored_once_and_refused_once_as_already_enrolled(
    gallery: Gallery,
) -> None:
    for round_number in range(ROUNDS // 2):
        person = enrollment.enroll(
            gallery, DOMAIN, [face(5000 + round_number)], [], model_name="test", name=f"D{round_number}"
        )
        assert person.identity is not None
        same = [face(9000 + round_number)]
        first, second = race(
            partial(enrollment.enroll, gallery, DOMAIN, same, [], model_name="test", identity_id=person.identity.id),
            partial(enrollment.enroll, gallery, DOMAIN, same, [], model_name="test", identity_id=person.identity.id),
        )
        # Never "not found" or a name clash for a person who exists: one stores it, the other finds it there.
        results = [first, second]
        assert all(isinstance(r, enrollment.EnrollmentResult) for r in results), results
        enrolled = [len(r.enrolled) for r in results]  # type: ignore[union-attr]
        assert sorted(enrolled) == [0, 1]
        refused = next(r for r in results if not r.enrolled)  # type: ignore[union-attr]
        assert "already enrolled" in refused.rejected[0].error  # type: ignore[union-attr]


def test_the_same_photo_twice_in_one_call_is_stored_once(gallery: Gallery) -> None:
    person = enrollment.enroll(gallery, DOMAIN, [face(1), face(2), face(2)], [], model_name="test", name="Twice")
    assert [e.filename for e in person.enrolled] == ["1.jpg", "2.jpg"]
    assert [(r.filename, r.error) for r in person.rejected] == [
        ("2.jpg", "The same photo appears twice in this upload")
    ]
