"""Several processes share one database: each sees the others' gallery changes on its next search,
applied from the change log as a delta rather than reloaded in full."""

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
def two_processes(sessions: sessionmaker[Session], tmp_path: Path) -> tuple[Gallery, Gallery]:
    # Two workers: one database, one index folder, an index in each process's memory.
    first = Gallery(sessions, IndexStore(tmp_path / "index", 512, "test"))
    second = Gallery(sessions, IndexStore(tmp_path / "index", 512, "test"))
    return first, second


def best_name(gallery: Gallery, prepared: PreparedFace) -> str | None:
    hits = gallery.search(DOMAIN, prepared.embedding[None, :], k=1)[0]
    return hits[0].name if hits and hits[0].similarity > 0.99 else None


def test_another_process_sees_enrollments_renames_and_deletions_by_delta(
    two_processes: tuple[Gallery, Gallery],
) -> None:
    first, second = two_processes
    ann, bob = face(1), face(2)
    created = enrollment.enroll(first, DOMAIN, [ann], [], model_name="test", name="Ann")
    assert best_name(second, ann) == "Ann"
    loads = second.store.full_loads

    bob_result = enrollment.enroll(first, DOMAIN, [bob], [], model_name="test", name="Bob")
    assert best_name(second, bob) == "Bob"
    assert created.identity is not None
    assert bob_result.identity is not None
    enrollment.rename(first, DOMAIN, bob_result.identity.id, "Robert")
    assert best_name(second, bob) == "Robert"
    enrollment.delete_identity(first, DOMAIN, created.identity.id)
    assert best_name(second, ann) is None
    enrollment.delete_face(first, DOMAIN, bob_result.identity.id, bob_result.enrolled[0].face_id)
    assert best_name(second, bob) is None
    assert second.store.full_loads == loads  # every change arrived as a delta


def test_changes_made_in_both_processes_interleave_correctly(two_processes: tuple[Gallery, Gallery]) -> None:
    first, second = two_processes
    faces = [face(seed) for seed in range(10, 16)]
    for number, prepared in enumerate(faces):
        writer = first if number % 2 == 0 else second
        enrollment.enroll(writer, DOMAIN, [prepared], [], model_name="test", name=f"P{number}")
    for gallery in (first, second):
        assert [best_name(gallery, prepared) for prepared in faces] == [f"P{n}" for n in range(6)]
        assert gallery.verify(DOMAIN, repair=False).consistent


def test_a_pruned_change_log_falls_back_to_a_full_reload(two_processes: tuple[Gallery, Gallery]) -> None:
    first, second = two_processes
    ann, bob = face(21), face(22)
    enrollment.enroll(first, DOMAIN, [ann], [], model_name="test", name="Ann")
    assert best_name(second, ann) == "Ann"
    enrollment.enroll(first, DOMAIN, [bob], [], model_name="test", name="Bob")
    with first.sessions.begin() as session:
        session.execute(delete(GalleryChange))
    loads = second.store.full_loads
    assert best_name(second, bob) == "Bob"
    assert second.store.full_loads == loads + 1


def test_one_delta_can_span_many_versions_of_adds_and_removes(two_processes: tuple[Gallery, Gallery]) -> None:
    first, second = two_processes
    assert best_name(second, face(30)) is None  # second loads the (empty) index now
    loads = second.store.full_loads
    trio = [face(31), face(32), face(33)]
    gone = enrollment.enroll(first, DOMAIN, trio, [], model_name="test", name="Trio")
    kept = enrollment.enroll(first, DOMAIN, [face(34)], [], model_name="test", name="Kept")
    assert gone.identity is not None
    enrollment.delete_face(first, DOMAIN, gone.identity.id, gone.enrolled[0].face_id)
    enrollment.delete_identity(first, DOMAIN, gone.identity.id)
    assert [best_name(second, f) for f in [*trio, face(34)]] == [None, None, None, "Kept"]
    assert second.store.full_loads == loads
    assert kept.face_count == 1
