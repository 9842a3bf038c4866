"""Gallery, identity and batch query rules on a real (SQLite) database: search and paging of people, what a
delete removes and reports, batch order and keyset pages, and the gallery's versions, change log and vectors."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.common.time import utcnow
from service.db import batches as batch_queries
from service.db import gallery as gallery_queries
from service.db import identities as queries
from service.db.models import Batch, BatchEntry, Face, GalleryChange, Identity, IndexSnapshot
from tests.batches.stored import START, entry, store_batch

DOMAIN = "example.com"
DIM = 4


def add_person(
    sessions: sessionmaker[Session], name: str, faces: int = 1, domain: str = DOMAIN
) -> tuple[int, list[int]]:
    """A person with ``faces`` faces (embedding i+1, i+2, ...); returns (identity id, face ids)."""
    with sessions.begin() as session:
        person = Identity(domain=domain, name=name)
        session.add(person)
        session.flush()
        face_ids = [add_face(session, person.id, domain, f"{name}-{i}", float(i + 1)) for i in range(faces)]
        return person.id, face_ids


def add_face(
    session: Session, identity_id: int, domain: str, digest: str, value: float, face_id: int | None = None
) -> int:
    face = Face(
        id=face_id,
        identity_id=identity_id,
        domain=domain,
        embedding=gallery_queries.embedding_to_bytes(np.arange(DIM, dtype=np.float32) + value),
        det_score=0.9,
        filename=f"{digest}.jpg",
        content_sha256=digest,
        model_name="test",
    )
    session.add(face)
    session.flush()
    return face.id


# ----- people ---------------------------------------------------------------------------------------------
def names(
    sessions: sessionmaker[Session], query: str | None, limit: int = 50, offset: int = 0
) -> tuple[int, list[str]]:
    with sessions() as session:
        total, rows = queries.list_identities(session, DOMAIN, limit, offset, query)
    return total, [row.identity.name for row in rows]


def test_people_are_listed_by_name_in_pages_with_the_total_of_all_pages(sessions: sessionmaker[Session]) -> None:
    for name in ("Cy", "Ann", "Bob", "Eve", "Dee"):
        add_person(sessions, name, faces=0)
    assert names(sessions, None) == (5, ["Ann", "Bob", "Cy", "Dee", "Eve"])
    assert names(sessions, None, limit=2) == (5, ["Ann", "Bob"])
    assert names(sessions, None, limit=2, offset=2) == (5, ["Cy", "Dee"])
    assert names(sessions, None, limit=2, offset=4) == (5, ["Eve"])


def test_the_name_filter_is_a_case_insensitive_substring_and_the_total_follows_it(
    sessions: sessionmaker[Session],
) -> None:
    for name in ("Ann Lee", "JOANNA", "Bob", "Dee Annan"):
        add_person(sessions, name, faces=0)
    assert names(sessions, "ann") == (3, ["Ann Lee", "Dee Annan", "JOANNA"])
    assert names(sessions, "ANN", limit=1, offset=1) == (3, ["Dee Annan"])
    assert names(sessions, "") == (4, ["Ann Lee", "Bob", "Dee Annan", "JOANNA"])
    assert names(sessions, "zed") == (0, [])


@pytest.mark.parametrize(("query", "expected"), [("%", ["100% Ann"]), ("_", ["ann_b"]), ("\\", ["back\\slash"])])
def test_like_wildcards_in_the_filter_are_literal_characters(
    sessions: sessionmaker[Session], query: str, expected: list[str]
) -> None:
    for name in ("100% Ann", "ann_b", "annab", "back\\slash", "plain"):
        add_person(sessions, name, faces=0)
    assert names(sessions, query) == (len(expected), expected)


def test_find_by_name_is_the_exact_name(sessions: sessionmaker[Session]) -> None:
    person, _ = add_person(sessions, "Ann Lee", faces=0)
    with sessions() as session:
        found = queries.find_by_name(session, DOMAIN, "Ann Lee")
        assert found is not None
        assert found.id == person
        assert queries.find_by_name(session, DOMAIN, "Ann") is None


def test_a_person_s_faces_their_count_and_content_hashes_are_theirs_alone(sessions: sessionmaker[Session]) -> None:
    ann, ann_faces = add_person(sessions, "Ann", faces=3)
    bob, bob_faces = add_person(sessions, "Bob", faces=1)
    with sessions() as session:
        assert queries.face_count(session, ann) == 3
        assert queries.face_count(session, bob) == 1
        assert queries.face_count(session, 999) == 0
        assert [face.id for face in queries.faces_of(session, ann)] == ann_faces
        assert queries.content_hashes(session, ann) == {
            "Ann-0": ann_faces[0],
            "Ann-1": ann_faces[1],
            "Ann-2": ann_faces[2],
        }
        assert queries.content_hashes(session, bob) == {"Bob-0": bob_faces[0]}


def test_a_face_is_found_and_deleted_only_under_its_own_person(sessions: sessionmaker[Session]) -> None:
    ann, ann_faces = add_person(sessions, "Ann", faces=2)
    bob, bob_faces = add_person(sessions, "Bob", faces=1)
    with sessions.begin() as session:
        assert queries.get_face(session, DOMAIN, bob, ann_faces[0]) is None
        assert queries.delete_face_row(session, DOMAIN, bob, ann_faces[0]) is False
        assert queries.delete_face_row(session, DOMAIN, ann, ann_faces[0]) is True
        assert queries.delete_face_row(session, DOMAIN, ann, ann_faces[0]) is False
    with sessions() as session:
        assert sorted(session.scalars(select(Face.id))) == sorted([ann_faces[1], *bob_faces])


def test_deleting_a_person_removes_and_reports_exactly_their_faces(sessions: sessionmaker[Session]) -> None:
    ann, ann_faces = add_person(sessions, "Ann", faces=3)
    _, bob_faces = add_person(sessions, "Bob", faces=2)
    with sessions.begin() as session:
        assert queries.delete_identity_rows(session, ann) == sorted(ann_faces)
    with sessions() as session:
        assert session.scalars(select(Identity.name)).all() == ["Bob"]
        assert sorted(session.scalars(select(Face.id))) == bob_faces
    with sessions.begin() as session:
        assert queries.delete_identity_rows(session, ann) == []


# ----- batches --------------------------------------------------------------------------------------------
def add_batch(sessions: sessionmaker[Session], batch_id: str, created_at: datetime, domain: str = DOMAIN) -> None:
    with sessions.begin() as session:
        session.add(
            Batch(
                id=batch_id,
                domain=domain,
                created_at=created_at,
                threshold=70.0,
                total_uploaded=0,
                total_processed=0,
                recognized_count=0,
                avg_confidence=None,
            )
        )


def test_batches_are_listed_newest_first_in_pages_with_the_total_of_all_pages(sessions: sessionmaker[Session]) -> None:
    for day in (3, 1, 5, 2, 4):
        add_batch(sessions, f"2023120{day}_000000_0001", START + timedelta(days=day))
    with sessions() as session:
        page = batch_queries.list_batches(session, DOMAIN, 50, 0)
        second = batch_queries.list_batches(session, DOMAIN, 2, 1)
        empty = batch_queries.list_batches(session, "nobody.example", 50, 0)
    assert [b.id[:8] for b in page.batches] == ["20231205", "20231204", "20231203", "20231202", "20231201"]
    assert (second.total, [b.id[:8] for b in second.batches]) == (5, ["20231204", "20231203"])
    assert (empty.total, empty.batches) == (0, [])


def test_within_one_second_the_batch_created_later_is_listed_first(sessions: sessionmaker[Session]) -> None:
    # Batch ids end in four random digits: within a second, only the creation time says which is newer.
    add_batch(sessions, "20231215_143022_9999", START)
    add_batch(sessions, "20231215_143022_0001", START + timedelta(microseconds=300))
    with sessions() as session:
        page = batch_queries.list_batches(session, DOMAIN, 50, 0)
    assert [b.id for b in page.batches] == ["20231215_143022_0001", "20231215_143022_9999"]


def test_batches_created_at_the_same_instant_are_listed_by_id_descending(sessions: sessionmaker[Session]) -> None:
    for batch_id in ("20231215_143022_0002", "20231215_143022_0009", "20231215_143022_0005"):
        add_batch(sessions, batch_id, START)
    with sessions() as session:
        page = batch_queries.list_batches(session, DOMAIN, 50, 0)
    assert [b.id for b in page.batches] == ["20231215_143022_0009", "20231215_143022_0005", "20231215_143022_0002"]


def test_a_batch_and_its_entries_are_stored_together(sessions: sessionmaker[Session]) -> None:
    batch = Batch(
        id="20231215_143022_1234",
        domain=DOMAIN,
        threshold=70.0,
        total_uploaded=2,
        total_processed=2,
        recognized_count=1,
        avg_confidence=90.0,
    )
    with sessions.begin() as session:
        batch_queries.insert_batch(session, batch, [BatchEntry(**entry(1)), BatchEntry(**entry(0))])
    with sessions() as session:
        stored = batch_queries.get_batch(session, DOMAIN, "20231215_143022_1234")
        assert stored is not None
        assert [e.position for e in batch_queries.iter_entries(session, "20231215_143022_1234")] == [0, 1]


def test_entries_and_export_rows_come_in_upload_order_with_the_export_columns(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_1234", 7, shuffled=True)
    store_batch(sessions, "20231215_143022_9999", 2)
    with sessions() as session:
        positions = [e.position for e in batch_queries.iter_entries(session, "20231215_143022_1234", chunk=3)]
        rows = list(batch_queries.iter_export_rows(session, "20231215_143022_1234", chunk=3))
    assert positions == list(range(7))
    assert [row[1] for row in rows] == [f"photo_{p:05d}.jpg" for p in range(7)]
    first = entry(1)
    assert tuple(rows[1]) == (
        first["timestamp"],
        first["filename"],
        first["recognized"],
        first["primary_person"],
        first["primary_confidence"],
        "Ann",
        90.0,
        "Bob",
        40.0,
        None,
        None,
        1,
        1,
    )


def test_export_pages_continue_after_the_last_row_even_across_equal_positions(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_1234", 0)
    with sessions.begin() as session:
        for position in (0, 1, 1, 1, 2, 3):
            session.add(BatchEntry(batch_id="20231215_143022_1234", **{**entry(position), "filename": f"{position}"}))
    pages, after = [], None
    with sessions() as session:
        while True:
            page = batch_queries.export_page(session, "20231215_143022_1234", after, 2)
            if not page.rows:
                assert page.after is None
                break
            pages.append([row[1] for row in page.rows])
            after = page.after
    assert pages == [["0", "1"], ["1", "1"], ["2", "3"]]


def test_an_export_page_s_position_is_its_last_row_s_position_and_id(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_1234", 5)
    with sessions() as session:
        ids = session.scalars(select(BatchEntry.id).order_by(BatchEntry.position)).all()
        page = batch_queries.export_page(session, "20231215_143022_1234", None, 3)
        rest = batch_queries.export_page(session, "20231215_143022_1234", page.after, 3)
    assert page.after == (2, ids[2])
    assert len(page.rows[0]) == len(batch_queries.EXPORT_COLUMNS)
    assert [row[1] for row in rest.rows] == ["photo_00003.jpg", "photo_00004.jpg"]
    assert rest.after == (4, ids[4])


def test_deleting_a_batch_removes_it_and_its_entries_only(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_0001", 3)
    store_batch(sessions, "20231215_143022_0002", 2)
    with sessions.begin() as session:
        assert batch_queries.delete_batch(session, DOMAIN, "20231215_143022_0001") is True
    with sessions() as session:
        assert session.scalars(select(Batch.id)).all() == ["20231215_143022_0002"]
        assert session.scalar(select(func.count()).select_from(BatchEntry)) == 2
    with sessions.begin() as session:
        assert batch_queries.delete_batch(session, DOMAIN, "20231215_143022_0001") is False


# ----- gallery: versions and the change log -------------------------------------------------------------
def bump(sessions: sessionmaker[Session], changes: list[tuple[str, int, int]], domain: str = DOMAIN) -> tuple[int, int]:
    with sessions.begin() as session:
        return gallery_queries.bump_version(session, domain, changes)


def test_every_change_bumps_the_domain_s_version_by_one(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert gallery_queries.current_version(session, DOMAIN) == 0
    assert bump(sessions, [("add", 1, 1)]) == (0, 1)
    assert bump(sessions, []) == (1, 2)
    assert bump(sessions, [("add", 2, 1)], domain="other.example") == (0, 1)
    with sessions() as session:
        assert gallery_queries.current_version(session, DOMAIN) == 2
        assert gallery_queries.change_log_size(session, DOMAIN) == 2  # an empty change still logs its version


def test_changes_between_two_versions_are_those_versions_changes_in_order_with_their_vectors(
    sessions: sessionmaker[Session],
) -> None:
    ann, (first, second) = add_person(sessions, "Ann", faces=2)
    bump(sessions, [("add", first, ann)])
    bump(sessions, [])
    bump(sessions, [("add", second, ann), ("remove", 12345, ann)])
    bump(sessions, [("remove", first, ann)])
    with sessions() as session:
        changes = gallery_queries.changes_between(session, DOMAIN, 0, 3, DIM)
        assert gallery_queries.changes_between(session, DOMAIN, 3, 3, DIM) == []
        later = gallery_queries.changes_between(session, DOMAIN, 3, 4, DIM)
    assert changes is not None
    assert [(op, face, person) for op, face, person, _ in changes] == [
        ("add", first, ann),
        ("add", second, ann),
        ("remove", 12345, ann),
    ]
    assert changes[0][3] is not None
    assert changes[0][3].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert changes[1][3] is not None
    assert changes[1][3].shape == (DIM,)
    assert changes[2][3] is None  # that face is no longer stored
    assert later is not None
    assert [(op, face) for op, face, _, _ in later] == [("remove", first)]


def test_changes_between_is_none_when_the_log_no_longer_covers_every_version(sessions: sessionmaker[Session]) -> None:
    for face in (1, 2, 3):
        bump(sessions, [("add", face, 1)])
    with sessions.begin() as session:
        session.execute(GalleryChange.__table__.delete().where(GalleryChange.version == 2))
    with sessions() as session:
        assert gallery_queries.changes_between(session, DOMAIN, 0, 3, DIM) is None
        assert gallery_queries.changes_between(session, DOMAIN, 2, 3, DIM) is not None
        assert gallery_queries.changes_between(session, DOMAIN, 0, 1, DIM) is not None


def test_the_change_log_is_pruned_below_what_every_index_file_and_recent_readers_need(
    sessions: sessionmaker[Session],
) -> None:
    for face in range(1, 11):
        bump(sessions, [("add", face, 1)])
    keep = dict(keep_versions=3, holder_retention=timedelta(days=1))
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "a", 5, **keep) == 5  # versions 1..5 go
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "b", 6, **keep) == 0  # "a" still needs 6..
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "a", 10, **keep) == 1  # now "b" at 6 holds it
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "b", 10, **keep) == 1  # the last 3 versions stay
    with sessions() as session:
        kept = session.scalars(select(GalleryChange.version).where(GalleryChange.domain == DOMAIN)).all()
        holders = session.execute(select(IndexSnapshot.holder, IndexSnapshot.version)).all()
    assert sorted(kept) == [8, 9, 10]
    assert sorted(holders) == [("a", 10), ("b", 10)]


def test_an_index_folder_silent_beyond_the_retention_no_longer_holds_the_log_back(
    sessions: sessionmaker[Session],
) -> None:
    for face in range(1, 7):
        bump(sessions, [("add", face, 1)])
    keep = dict(keep_versions=1, holder_retention=timedelta(hours=1))
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "gone", 1, **keep) == 1
        session.execute(IndexSnapshot.__table__.update().values(saved_at=utcnow() - timedelta(hours=2)))
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "here", 6, **keep) == 4  # versions 2..5
    with sessions() as session:
        assert session.scalars(select(IndexSnapshot.holder)).all() == ["here"]


def test_recording_a_snapshot_prunes_and_forgets_only_its_own_domain(sessions: sessionmaker[Session]) -> None:
    for face in range(1, 6):
        bump(sessions, [("add", face, 1)])
        bump(sessions, [("add", face, 2)], domain="other.example")
    keep = dict(keep_versions=1, holder_retention=timedelta(hours=1))
    with sessions.begin() as session:
        gallery_queries.record_snapshot(session, "other.example", "theirs", 1, **keep)
        session.execute(IndexSnapshot.__table__.update().values(saved_at=utcnow() - timedelta(hours=2)))
    with sessions.begin() as session:
        assert gallery_queries.record_snapshot(session, DOMAIN, "mine", 5, **keep) == 4
    with sessions() as session:
        assert gallery_queries.change_log_size(session, "other.example") == 4  # only its version 1 was pruned
        holders = session.execute(select(IndexSnapshot.domain, IndexSnapshot.holder)).all()
    assert sorted(holders) == [(DOMAIN, "mine"), ("other.example", "theirs")]


def test_nothing_is_pruned_while_the_gallery_is_younger_than_the_versions_kept(sessions: sessionmaker[Session]) -> None:
    bump(sessions, [("add", 1, 1)])
    with sessions.begin() as session:
        assert (
            gallery_queries.record_snapshot(session, DOMAIN, "a", 1, keep_versions=1, holder_retention=timedelta(1))
            == 0
        )
    with sessions() as session:
        assert gallery_queries.change_log_size(session, DOMAIN) == 1


# ----- gallery: stored vectors ----------------------------------------------------------------------------
def test_an_embedding_survives_sql_as_float32() -> None:
    vector = np.array([0.1, -2.5, 3.25, 1e-8], dtype=np.float64)
    blob = gallery_queries.embedding_to_bytes(vector)
    assert len(blob) == 16
    restored = gallery_queries.embedding_from_bytes(blob)
    assert restored.dtype == np.float32
    assert restored.tolist() == vector.astype(np.float32).tolist()


@pytest.mark.parametrize("spill", [False, True])
def test_a_domain_s_gallery_loads_as_face_ids_owners_and_vectors_in_face_order(
    sessions: sessionmaker[Session], tmp_path: Path, spill: bool
) -> None:
    ann, ann_faces = add_person(sessions, "Ann", faces=2)
    bob, bob_faces = add_person(sessions, "Bob", faces=1)
    add_person(sessions, "Cy", faces=2, domain="other.example")
    spill_dir = tmp_path / "spill" / "new" if spill else None  # created, parents too
    with sessions() as session:
        face_ids, owners, vectors = gallery_queries.load_embeddings(session, DOMAIN, DIM, spill_dir)
        assert gallery_queries.face_count(session, DOMAIN) == 3
    assert face_ids.tolist() == [*ann_faces, *bob_faces]
    assert owners.tolist() == [ann, ann, bob]
    assert (face_ids.dtype, owners.dtype, vectors.dtype) == (np.int64, np.int64, np.float32)
    # With a spill folder the vectors are a read-only map of a file there, not a copy in memory.
    assert isinstance(vectors, np.memmap) is spill
    if spill_dir is not None:
        assert Path(str(vectors.filename)).parent == spill_dir
    assert vectors.tolist() == [[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0]]
    if spill_dir is not None:
        assert list(spill_dir.iterdir()) == []  # the spill file's name is gone once loaded


@pytest.mark.parametrize("spill", [False, True])
def test_an_empty_gallery_loads_as_empty_arrays_of_the_right_shape(
    sessions: sessionmaker[Session], tmp_path: Path, spill: bool
) -> None:
    with sessions() as session:
        face_ids, owners, vectors = gallery_queries.load_embeddings(session, DOMAIN, DIM, tmp_path if spill else None)
        assert gallery_queries.face_count(session, DOMAIN) == 0
    assert (face_ids.shape, owners.shape, vectors.shape) == ((0,), (0,), (0, DIM))
    assert (face_ids.dtype, owners.dtype, vectors.dtype) == (np.int64, np.int64, np.float32)


def test_a_gallery_larger_than_one_read_loads_whole(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gallery_queries, "STREAM_ROWS", 2)
    ann, ann_faces = add_person(sessions, "Ann", faces=5)
    with sessions() as session:
        face_ids, owners, vectors = gallery_queries.load_embeddings(session, DOMAIN, DIM)
    assert face_ids.tolist() == ann_faces
    assert owners.tolist() == [ann] * 5
    assert vectors[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_embeddings_by_id_returns_the_domain_s_stored_faces_among_those_asked(sessions: sessionmaker[Session]) -> None:
    ann, _ = add_person(sessions, "Ann", faces=0)
    cy, _ = add_person(sessions, "Cy", faces=0, domain="other.example")
    with sessions.begin() as session:
        for face_id, value in ((5, 1.0), (2500, 2.0), (4500, 3.0)):  # in three different reads of 2,000 ids
            add_face(session, ann, DOMAIN, f"f{face_id}", value, face_id=face_id)
        add_face(session, cy, "other.example", "theirs", 9.0, face_id=7)
    with sessions() as session:
        found, vectors = gallery_queries.embeddings_by_id(session, DOMAIN, np.array([4500, 7, 5, 2500, 5, 6000]), DIM)
        none_found, no_vectors = gallery_queries.embeddings_by_id(session, DOMAIN, [6000], DIM)
    assert sorted(zip(found.tolist(), vectors[:, 0].tolist(), strict=True)) == [(5, 1.0), (2500, 2.0), (4500, 3.0)]
    assert vectors.shape == (3, DIM)
    assert (none_found.tolist(), no_vectors.shape, no_vectors.dtype) == ([], (0, DIM), np.float32)
    assert found.dtype == np.int64


def test_identity_names_are_those_asked_for(sessions: sessionmaker[Session]) -> None:
    ann, _ = add_person(sessions, "Ann", faces=0)
    bob, _ = add_person(sessions, "Bob", faces=0)
    add_person(sessions, "Cy", faces=0)
    with sessions() as session:
        assert gallery_queries.identity_names(session, [bob, ann, bob, 999]) == {ann: "Ann", bob: "Bob"}
        assert gallery_queries.identity_names(session, []) == {}


def test_domains_with_a_gallery_are_those_with_faces_or_a_version(sessions: sessionmaker[Session]) -> None:
    add_person(sessions, "Ann", faces=1, domain="c.example")
    add_person(sessions, "Bob", faces=1, domain="a.example")
    add_person(sessions, "Cy", faces=1, domain="a.example")
    bump(sessions, [], domain="b.example")
    bump(sessions, [], domain="a.example")
    with sessions() as session:
        assert gallery_queries.gallery_domains(session) == ["a.example", "b.example", "c.example"]
        assert gallery_queries.versioned_domains(session) == ["a.example", "b.example"]
