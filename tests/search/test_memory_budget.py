"""Domains load on first use and the least recently used are unloaded beyond the memory budget; a domain
unloaded comes back from its file, with any change it had saved first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.search.index import IdentityIndex
from service.search.store import IndexStore, SnapshotPolicy

DIM = 512


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def small_gallery(seed: int, count: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    faces = unit(np.random.default_rng(seed).standard_normal((count, DIM)))
    first = 1 + seed * 1_000_000  # face ids of tenants sharing one id sequence are far apart
    return np.arange(first, first + count), np.arange(count), faces


def one_index_bytes() -> int:
    index = IdentityIndex(DIM)
    index.build(*small_gallery(0))
    return index.memory_bytes()


def test_no_domain_is_in_memory_before_its_first_use(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test", memory_budget=10 * one_index_bytes())
    assert store.loaded_domains() == {}
    store.get("a.test", 1, lambda: small_gallery(1))
    assert store.loaded_domains() == {"a.test": 100}


def test_the_least_recently_used_domain_is_unloaded_beyond_the_budget(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test", memory_budget=int(2.5 * one_index_bytes()))
    store.get("a.test", 1, lambda: small_gallery(1))
    store.get("b.test", 1, lambda: small_gallery(2))
    store.get("a.test", 1, lambda: small_gallery(1))  # a is now more recently used than b
    store.get("c.test", 1, lambda: small_gallery(3))
    assert set(store.loaded_domains()) == {"a.test", "c.test"}
    assert store.memory_budget is not None
    assert store.memory_bytes() <= store.memory_budget


def test_an_unloaded_domain_that_changed_is_saved_first(tmp_path: Path) -> None:
    policy = SnapshotPolicy(every_changes=1000)
    store = IndexStore(tmp_path, DIM, "test", memory_budget=int(1.5 * one_index_bytes()), policy=policy)
    store.get("a.test", 1, lambda: small_gallery(1))
    extra = unit(np.random.default_rng(50).standard_normal((1, DIM)))
    store.update(
        "a.test", 1, 2, lambda index: index.add(np.array([5]), np.array([500]), extra), lambda: small_gallery(1)
    )
    assert store.file_version("a.test") == 1
    store.get("b.test", 1, lambda: small_gallery(2))
    assert "a.test" not in store.loaded_domains()
    assert store.file_version("a.test") == 2


def test_an_unloaded_domain_comes_back_from_its_file_with_the_same_answers(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test", memory_budget=int(1.5 * one_index_bytes()))
    faces, owners, vectors = small_gallery(1)
    before = [m.face_id for m in store.get("a.test", 1, lambda: (faces, owners, vectors)).search(vectors[:1])[0]]
    store.get("b.test", 1, lambda: small_gallery(2))
    assert "a.test" not in store.loaded_domains()

    def must_not_rebuild() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise AssertionError("the file should have been used")

    after = store.get("a.test", 1, must_not_rebuild).search(vectors[:1])[0]
    assert [m.face_id for m in after] == before


def test_a_domain_larger_than_the_whole_budget_is_still_served(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test", memory_budget=one_index_bytes() // 2)
    faces, owners, vectors = small_gallery(1)
    index = store.get("big.test", 1, lambda: (faces, owners, vectors))
    assert index.search(vectors[:1], k=1)[0][0].face_id == faces[0]
    assert set(store.loaded_domains()) == {"big.test"}


def test_face_ids_far_apart_cost_no_memory_for_the_ids_between_them() -> None:
    rng = np.random.default_rng(4)
    index = IdentityIndex(DIM)
    index.build(np.array([7, 2_000_000_000]), np.array([1, 2]), unit(rng.standard_normal((2, DIM))))
    index.add(np.array([1_500_000_000]), np.array([3]), unit(rng.standard_normal((1, DIM))))
    assert index.memory_bytes() < 64 * 1024
    assert index.identity_count == 3


def test_a_domain_that_failed_to_load_is_reported_until_it_loads(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, DIM, "test")

    def database_gone() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise ConnectionError("database unreachable")

    with pytest.raises(ConnectionError):
        store.get("a.test", 1, database_gone)
    assert store.failed_loads() == ["a.test"]
    assert store.problems() == ["load a.test: database unreachable"]
    store.get("a.test", 1, lambda: small_gallery(1))
    assert store.problems() == []
