"""Checking an index file against SQL: a file only behind SQL is caught up from the change log and is not
a failure; a file that is damaged, ahead, beyond the log, or wrong once caught up is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import GalleryChange
from service.gallery import enrollment
from service.gallery.enrollment import PreparedFace
from service.gallery.gallery import Gallery
from service.search.store import IndexStore

DOMAIN = "example.com"


def face(seed: int) -> PreparedFace:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return PreparedFace(f"{seed}.jpg", vector / np.linalg.norm(vector), 0.9, f"{seed:064d}", b"", None)


@pytest.fixture
def replicas(sessions: sessionmaker[Session], tmp_path: Path) -> tuple[Gallery, Gallery]:
    """Two replicas: one database, each with its own index folder (so each has its own file)."""
    return (
        Gallery(sessions, IndexStore(tmp_path / "index-a", 512, "test")),
        Gallery(sessions, IndexStore(tmp_path / "index-b", 512, "test")),
    )


def enroll(gallery: Gallery, name: str, *seeds: int) -> enrollment.EnrollmentResult:
    return enrollment.enroll(gallery, DOMAIN, [face(s) for s in seeds], [], model_name="test", name=name)


def fresh_view(gallery: Gallery) -> Gallery:
    """The same database and index folder as a newly started process sees them (nothing in memory)."""
    return Gallery(gallery.sessions, IndexStore(gallery.store.directory, 512, "test"))


def add_ghost(gallery: Gallery) -> None:
    """Put a face that SQL never had into the file, keeping the file's version."""
    found = gallery.store.read_file(DOMAIN)
    assert found is not None
    index, version = found
    index.add(np.array([9999]), np.array([1]), face(99).embedding[None, :])
    gallery.store.save(DOMAIN, index, version)


def test_a_file_at_sqls_version_with_the_same_faces_is_ok(replicas: tuple[Gallery, Gallery]) -> None:
    a, _ = replicas
    enroll(a, "Ann", 1, 2)
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert check.consistent, check.problems
    assert check.behind == 0
    assert (check.file_version, check.sql_version, check.sql_faces) == (1, 1, 2)


def test_a_file_behind_by_changes_in_the_log_is_behind_not_failed(replicas: tuple[Gallery, Gallery]) -> None:
    a, b = replicas
    ann = enroll(a, "Ann", 1, 2)
    enroll(b, "Bob", 3)  # replica b's changes reach only b's file
    assert ann.identity is not None
    enrollment.delete_face(b, DOMAIN, ann.identity.id, ann.enrolled[0].face_id)
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert check.consistent, check.problems
    assert (check.file_version, check.sql_version, check.behind) == (1, 3, 2)
    assert check.repaired is None


def test_repair_catches_a_file_behind_up_by_replaying_and_saves_it(replicas: tuple[Gallery, Gallery]) -> None:
    a, b = replicas
    enroll(a, "Ann", 1)
    enroll(b, "Bob", 2)
    check = fresh_view(a).verify(DOMAIN, repair=True)
    assert check.repaired == "caught up: replayed 1 change(s), saved at gallery version 2"
    found = fresh_view(a).store.read_file(DOMAIN)
    assert found is not None
    assert found[1] == 2
    assert found[0].ntotal == 2


def test_a_file_with_a_ghost_face_fails(replicas: tuple[Gallery, Gallery]) -> None:
    a, _ = replicas
    enroll(a, "Ann", 1)
    add_ghost(a)
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert check.problems == ["1 face(s) in the index but not in SQL, e.g. [9999]"]


def test_a_file_behind_that_was_wrong_at_its_own_version_still_fails_once_replayed(
    replicas: tuple[Gallery, Gallery],
) -> None:
    a, b = replicas
    enroll(a, "Ann", 1)
    add_ghost(a)
    enroll(b, "Bob", 2)
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert check.behind == 1
    assert check.problems == ["after replaying 1 change(s): 1 face(s) in the index but not in SQL, e.g. [9999]"]


def test_a_file_missing_a_face_fails(replicas: tuple[Gallery, Gallery]) -> None:
    a, _ = replicas
    result = enroll(a, "Ann", 1, 2)
    found = a.store.read_file(DOMAIN)
    assert found is not None
    found[0].remove(np.array([result.enrolled[0].face_id]))
    a.store.save(DOMAIN, found[0], found[1])
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert check.problems == [f"1 face(s) in SQL but not in the index, e.g. [{result.enrolled[0].face_id}]"]


def test_a_file_ahead_of_sql_fails(replicas: tuple[Gallery, Gallery]) -> None:
    a, _ = replicas
    enroll(a, "Ann", 1)
    found = a.store.read_file(DOMAIN)
    assert found is not None
    a.store.save(DOMAIN, found[0], 5)
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert check.problems == ["file is at gallery version 5, ahead of SQL (1)"]


def test_a_file_behind_beyond_the_change_log_fails(replicas: tuple[Gallery, Gallery]) -> None:
    a, b = replicas
    enroll(a, "Ann", 1)
    enroll(b, "Bob", 2)
    with a.sessions.begin() as session:
        session.execute(delete(GalleryChange).where(GalleryChange.version == 2))  # a pruned log
    check = fresh_view(a).verify(DOMAIN, repair=False)
    assert len(check.problems) == 1
    assert "cannot be caught up" in check.problems[0]


def test_a_corrupt_file_fails_and_repair_rebuilds_it_from_sql(replicas: tuple[Gallery, Gallery]) -> None:
    a, _ = replicas
    enroll(a, "Ann", 1, 2)
    a.store.path_for(DOMAIN).write_bytes(b"not an index")
    check = fresh_view(a).verify(DOMAIN, repair=True)
    assert check.problems == ["index file is unreadable (damaged, or written for another model or file format)"]
    assert check.repaired == "rebuilt from SQL (2 faces)"
    assert fresh_view(a).verify(DOMAIN, repair=False).consistent


def test_a_missing_file_fails(replicas: tuple[Gallery, Gallery]) -> None:
    a, _ = replicas
    enroll(a, "Ann", 1)
    a.store.path_for(DOMAIN).unlink()
    assert fresh_view(a).verify(DOMAIN, repair=False).problems == ["no index file"]
