"""Identity index at scale: build, memory, recall, latency; the cost of a change; loading; many tenants.

Synthetic identities are clustered in a low-dimensional subspace, as real face embeddings are
(random isotropic vectors have no neighbourhood structure and would make any IVF index look bad).

Usage (each prints its own figures; run on demand, they take minutes and gigabytes):

    python benchmarks/index_scale.py scale [--sizes 10000,100000,1000000] [--kind flat|sq8]
    python benchmarks/index_scale.py changes [--faces 1000000] [--changes 300]
    python benchmarks/index_scale.py restart [--faces 1000000] [--behind 500]
    python benchmarks/index_scale.py tenants [--domains 10000] [--faces 100] [--budget-mb 512]
    python benchmarks/index_scale.py sql-rerank [--faces 100000]
"""

from __future__ import annotations

import gc
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import faiss
import httpx
import numpy as np

from benchmarks._common import current_rss_mb, machine
from service.search.index import ExactVectors, IdentityIndex, exact_search
from service.search.store import Change, IndexStore, SnapshotPolicy

DIM = 512
CHUNK = 100_000


def synthetic(count: int, seed: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """``count`` unit vectors, one per identity, generated in chunks (into ``out``, e.g. a memory map)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((64, DIM)).astype(np.float32)
    kinds = rng.standard_normal((1000, 64)).astype(np.float32)
    vectors = np.empty((count, DIM), dtype=np.float32) if out is None else out
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        traits = kinds[rng.integers(0, len(kinds), n)] + 0.7 * rng.standard_normal((n, 64)).astype(np.float32)
        block = traits @ basis + 2.0 * rng.standard_normal((n, DIM)).astype(np.float32)
        vectors[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors


def probes(vectors: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Queries like a second photo of an enrolled person (similarity ~0.8 to their vector)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(vectors), size=count, replace=False))
    base = np.asarray(vectors[rows])
    noisy = base + 0.03 * rng.standard_normal(base.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def vectors_by_id(vectors: np.ndarray) -> ExactVectors:
    """The exact-vector source of a re-ranked search when face id = row + 1 (stands in for SQL)."""

    def lookup(face_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.sort(np.asarray(face_ids, dtype=np.int64))
        return ids, np.asarray(vectors[ids - 1])

    return lookup


def anonymous_rss_mb() -> float:
    """This process's anonymous resident memory (RssAnon) in MB: its heap, not file pages it maps."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load_line() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


@contextmanager
def spilled(count: int) -> Iterator[np.ndarray]:
    """A float32 matrix of ``count`` rows on disk (memory-mapped): galleries bigger than memory fit."""
    with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp"), suffix=".f32") as handle:
        handle.truncate(count * DIM * 4)
        yield np.memmap(handle.name, dtype=np.float32, mode="r+", shape=(count, DIM))


@click.group()
def main() -> None:
    """Index benchmarks; each prints a table."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    click.echo(f"machine: {machine()}, FAISS {faiss.__version__}; {load_line()}")


# ----- scale: build, memory, recall, latency ---------------------------------------------------------
@main.command()
@click.option("--sizes", default="10000,100000,1000000", show_default=True)
@click.option("--queries", default=200, show_default=True)
@click.option("--kind", type=click.Choice(["flat", "sq8"]), default="flat", show_default=True)
@click.option("--spill/--no-spill", default=False, help="keep the synthetic vectors on disk (sizes beyond memory)")
def scale(sizes: str, queries: int, kind: str, spill: bool) -> None:
    """Build time, memory per face, recall@3 vs exact search and query latency per gallery size.

    ``sq8`` searches re-rank their short list with the exact vectors (here from an array standing in for
    SQL); its latency includes that, its memory does not (the exact vectors live in SQL, not in the index).
    """
    click.echo(
        f"{'faces':>10} {'kind':>5} {'nlist':>6} {'nprobe':>6} {'build s':>8} {'bytes/face':>11} "
        f"{'estimate':>9} {'recall@3':>9} {'1 query ms':>11} {'p95 ms':>7} {'batch ms/q':>11}"
    )
    for size in (int(s) for s in sizes.split(",")):
        with spilled(size) if spill else _in_memory(size) as vectors:
            synthetic(size, out=vectors)
            ids = np.arange(1, size + 1, dtype=np.int64)
            queries_ = probes(vectors, queries)
            exact = vectors_by_id(vectors) if kind == "sq8" else None
            gc.collect()
            before = anonymous_rss_mb()
            index = IdentityIndex(DIM, compress_above=0 if kind == "sq8" else None)
            started = time.perf_counter()
            index.build(ids, ids - 1, vectors)
            build = time.perf_counter() - started
            gc.collect()
            # Anonymous memory only: the memory-mapped vectors' cached pages count in RSS but belong to no index.
            per_face = (anonymous_rss_mb() - before) * 1024 * 1024 / size

            _, truth = exact_search(vectors, queries_, 3)
            found = index.search(queries_, k=3, exact=exact)
            hits = sum(len({m.face_id - 1 for m in row} & set(t.tolist())) for row, t in zip(found, truth, strict=True))
            singles = []
            for query in queries_[:100]:
                started = time.perf_counter()
                index.search(query[None, :], k=3, exact=exact)
                singles.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            index.search(queries_[:100], k=3, exact=exact)
            batched = 1000 * (time.perf_counter() - started) / 100
            click.echo(
                f"{size:>10} {index.kind:>5} {index.nlist:>6} {index.nprobe:>6} {build:>8.1f} {per_face:>11.0f} "
                f"{index.memory_bytes() / size:>9.0f} {hits / truth.size:>9.4f} {statistics.median(singles):>11.3f} "
                f"{percentile(singles, 0.95):>7.3f} {batched:>11.3f}"
            )
            del index
            gc.collect()
    click.echo(load_line())


@contextmanager
def _in_memory(count: int) -> Iterator[np.ndarray]:
    yield np.empty((count, DIM), dtype=np.float32)


def _drop_cached(path: Path) -> None:
    """Ask the kernel to forget a file's cached pages (so reading it, or RSS, is not flattered)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# ----- changes: the index part of one enrollment or deletion -------------------------------------------
@main.command()
@click.option("--faces", default=1_000_000, show_default=True)
@click.option("--changes", default=300, show_default=True, help="enrollments, then as many deletions")
@click.option("--every", default=200, show_default=True, help="snapshot after this many changes (in the background)")
def changes(faces: int, changes: int, every: int) -> None:
    """Time ``IndexStore.update`` (what an enrollment or deletion waits for) while snapshots run behind it."""
    vectors = synthetic(faces)
    ids = np.arange(1, faces + 1, dtype=np.int64)
    with tempfile.TemporaryDirectory() as folder:
        store = IndexStore(Path(folder), DIM, "bench", policy=SnapshotPolicy(every_changes=every, background=True))
        started = time.perf_counter()
        store.get("big.test", 1, _returning((ids, ids - 1, vectors)))
        click.echo(f"built {faces:,} faces in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        while store.unsaved_domains():
            time.sleep(0.05)
        first_save = time.perf_counter() - started
        size_mb = store.path_for("big.test").stat().st_size / 1e6
        click.echo(f"first snapshot in the background: {first_save:.1f} s, {size_mb:,.0f} MB")
        del vectors
        gc.collect()
        rss = [current_rss_mb(os.getpid())]
        sampler = _RssSampler()
        fresh = synthetic(changes, seed=5)
        add_ms, remove_ms = [], []
        version = 1
        with sampler:
            for n in range(changes):
                face_id = np.array([faces + 1 + n])

                def add(index: IdentityIndex, face_id: np.ndarray = face_id, n: int = n) -> None:
                    index.add(face_id, face_id, fresh[n : n + 1])

                started = time.perf_counter()
                store.update("big.test", version, version + 1, add, _never)
                add_ms.append(1000 * (time.perf_counter() - started))
                version += 1
            for n in range(changes):
                face_id = np.array([1 + 3 * n])
                started = time.perf_counter()
                store.update("big.test", version, version + 1, lambda index, f=face_id: index.remove(f), _never)
                remove_ms.append(1000 * (time.perf_counter() - started))
                version += 1
        rss.append(current_rss_mb(os.getpid()))
        click.echo(
            f"{'change':>10} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}\n"
            f"{'enroll':>10} {changes:>6} {statistics.median(add_ms):>8.2f} {percentile(add_ms, 0.95):>8.2f} "
            f"{max(add_ms):>8.2f}\n"
            f"{'delete':>10} {changes:>6} {statistics.median(remove_ms):>8.2f} {percentile(remove_ms, 0.95):>8.2f} "
            f"{max(remove_ms):>8.2f}"
        )
        click.echo(
            f"RSS before {rss[0]:,.0f} MB, after {rss[1]:,.0f} MB, highest while changing and snapshotting "
            f"{sampler.highest:,.0f} MB ({2 * changes // every} background snapshots)"
        )
        index = store.loaded("big.test")
        assert index is not None
        before = current_rss_mb(os.getpid())
        started = time.perf_counter()
        with _RssSampler() as old_style:
            _old_style_save(index, Path(folder) / "old.npz")
        click.echo(
            f"what every change used to pay (serialise + copy + fsync the whole file): "
            f"{time.perf_counter() - started:.1f} s, RSS +{old_style.highest - before:,.0f} MB at its peak"
        )
        store.close()
    click.echo(load_line())


def _returning(
    gallery: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A loader handing out a gallery already in memory."""
    return lambda: gallery


def _never() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raise AssertionError("the index should be in memory")


def _old_style_save(index: IdentityIndex, path: Path) -> None:
    """The previous persistence, for comparison: one serialised blob, saved through a buffer, fsynced."""
    blob = faiss.serialize_index(index._index)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array([1, 1, DIM, 0]), model=np.array("bench"), index=blob)
    with open(path, "wb") as handle:
        handle.write(buffer.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())


class _RssSampler:
    """The highest RSS of this process while the block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.highest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.highest = max(self.highest, current_rss_mb(os.getpid()))


# ----- restart: load a large domain from its file and replay the changes since ----------------------
@main.command()
@click.option("--faces", default=1_000_000, show_default=True)
@click.option("--behind", default=500, show_default=True, help="changes logged after the file's version")
def restart(faces: int, behind: int) -> None:
    """Time a new process's first use of a large domain: read the file, replay the logged changes."""
    vectors = synthetic(faces)
    ids = np.arange(1, faces + 1, dtype=np.int64)
    fresh = synthetic(behind, seed=7)
    log: list[Change] = [("add", faces + 1 + n, faces + 1 + n, fresh[n]) for n in range(behind)]

    def delta(after: int, upto: int) -> list[Change] | None:
        return log[after - 1 : upto - 1] if after >= 1 else None

    with tempfile.TemporaryDirectory() as folder:
        IndexStore(Path(folder), DIM, "bench").rebuild("big.test", 1, _returning((ids, ids - 1, vectors)))
        del vectors
        gc.collect()
        size_mb = Path(IndexStore(Path(folder), DIM, "bench").path_for("big.test")).stat().st_size / 1e6
        # Cold: ask the kernel to drop the file's cached pages first (it may keep some on a busy machine).
        _drop_cached(IndexStore(Path(folder), DIM, "bench").path_for("big.test"))
        for label in ("cold cache", "warm cache"):
            store = IndexStore(Path(folder), DIM, "bench")
            before = current_rss_mb(os.getpid())
            started = time.perf_counter()
            index = store.get("big.test", 1 + behind, _never, delta)
            took = time.perf_counter() - started
            click.echo(
                f"{label}: loaded {index.ntotal:,} faces ({size_mb:,.0f} MB file) and replayed {behind} changes "
                f"in {took:.2f} s; RSS +{current_rss_mb(os.getpid()) - before:,.0f} MB"
            )
            del index, store
            gc.collect()
    click.echo(load_line())


# ----- tenants: many small domains, lazy loading, memory budget ----------------------------------------
@main.command()
@click.option("--domains", default=10_000, show_default=True)
@click.option("--faces", default=100, show_default=True, help="faces per domain")
@click.option("--budget-mb", default=512, show_default=True, help="FACEREC_INDEX_MEMORY_MB")
@click.option("--searches", default=3_000, show_default=True, help="cold domains searched in-process")
@click.option("--serve/--no-serve", default=True, help="also time `facerec serve` to healthy on these domains")
def tenants(domains: int, faces: int, budget_mb: int, searches: int, serve: bool) -> None:
    """Start time, memory within the budget and the first search of a cold domain, with many small tenants."""
    from sqlalchemy import insert

    from service.db import migrate
    from service.db.models import Identity, IndexState
    from service.db.session import create_db_engine, create_session_factory
    from service.gallery.gallery import Gallery

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        migrate.upgrade(url)
        engine = create_db_engine(url)
        sessions = create_session_factory(engine)
        names = [f"tenant-{n:05d}.test" for n in range(domains)]
        people = faces // 2
        with sessions.begin() as session:
            session.execute(insert(IndexState), [{"domain": d, "version": 1} for d in names])
            session.execute(
                insert(Identity),
                [
                    {"id": n * people + p + 1, "domain": d, "name": f"person {p}"}
                    for n, d in enumerate(names)
                    for p in range(people)
                ],
            )
        started = time.perf_counter()
        writer = IndexStore(Path(folder) / "index", DIM, "buffalo_s", memory_budget=1)  # holds one at a time
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((faces, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        template = IdentityIndex(DIM)
        template.build(np.arange(faces), np.arange(faces) // 2, vectors)
        arrays: dict[str, np.ndarray] = {}
        template.write_arrays(lambda name, array: arrays.__setitem__(name, np.array(array)))
        # Setup only (not measured): every domain is the template with its own ids (one id sequence shared by
        # every tenant, so a domain's ids are far from 0), saved without 10,000 fsyncs.
        real_fsync, os.fsync = os.fsync, lambda _fd: None
        for n, domain in enumerate(names):
            own = dict(arrays)
            for name in own:
                if name.startswith("ids_") or name == "map_faces":
                    own[name] = arrays[name] + n * faces + 1
            own["map_owners"] = arrays["map_owners"] + n * people + 1
            writer.save(domain, IdentityIndex.read_arrays(own.__getitem__, set(own), DIM), 1)
        os.fsync = real_fsync
        click.echo(f"wrote {domains:,} index files of {faces} faces in {time.perf_counter() - started:.0f} s")

        if serve:
            _serve_to_healthy(folder, url, budget_mb)

        gc.collect()
        store = IndexStore(Path(folder) / "index", DIM, "buffalo_s", memory_budget=budget_mb * 1024 * 1024)
        gallery = Gallery(sessions, store)
        before = current_rss_mb(os.getpid())
        order = random.Random(1).sample(names, min(searches, domains))
        query = rng.standard_normal((1, DIM)).astype(np.float32)
        first = []
        for domain in order:
            started = time.perf_counter()
            hits = gallery.search(domain, query, k=3)
            first.append(1000 * (time.perf_counter() - started))
            assert len(hits[0]) == 3
        warm = []
        for domain in order[-50:]:
            started = time.perf_counter()
            gallery.search(domain, query, k=3)
            warm.append(1000 * (time.perf_counter() - started))
        grown = current_rss_mb(os.getpid()) - before
        click.echo(
            f"first search of a cold domain ({len(order):,} domains, file + SQL version + names): "
            f"p50 {statistics.median(first):.1f} ms, p95 {percentile(first, 0.95):.1f} ms, max {max(first):.1f} ms; "
            f"warm p50 {statistics.median(warm):.2f} ms"
        )
        click.echo(
            f"in memory: {len(store.loaded_domains()):,} domains, {store.memory_bytes() / 2**20:,.0f} MB estimated "
            f"(budget {budget_mb} MB), {store.evictions:,} unloaded; RSS grew {grown:,.0f} MB"
        )
        engine.dispose()
    click.echo(load_line())


def _serve_to_healthy(folder: str, url: str, budget_mb: int) -> None:
    """Start `facerec serve` on the prepared data and time it until health answers 200."""
    port = 8000 + random.Random().randrange(1000, 9000)
    env = {
        **os.environ,
        "FACEREC_DATABASE_URL": url,
        "FACEREC_STORAGE_DIR": f"{folder}/storage",
        "FACEREC_INDEX_DIR": f"{folder}/index",
        "FACEREC_LOG_LEVEL": "WARNING",
        "FACEREC_AUTO_MIGRATE": "false",
        "FACEREC_INDEX_MEMORY_MB": str(budget_mb),
    }
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port)], env=env)
    try:
        body: dict[str, object] = {}
        while process.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/batch-photos/health", timeout=1)
                if response.status_code == 200:
                    body = response.json()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        took = time.perf_counter() - started
        click.echo(
            f"`facerec serve` to healthy with these domains: {took:.1f} s (models loaded and warmed up; "
            f"{body.get('indexed_domains')} domains loaded); server RSS {current_rss_mb(process.pid):,.0f} MB"
        )
    finally:
        process.terminate()
        process.wait(timeout=60)


# ----- sql-rerank: a compressed domain searched through the gallery, exact vectors from SQL -----------
@main.command("sql-rerank")
@click.option("--faces", default=100_000, show_default=True)
@click.option("--database-url", default=None, help="an empty migrated database (default: a new SQLite file)")
def sql_rerank(faces: int, database_url: str | None) -> None:
    """One query through ``Gallery.search`` on a flat and on an SQ8 domain: what re-ranking from SQL costs."""
    from sqlalchemy import insert

    from service.db import migrate
    from service.db.gallery import embedding_to_bytes
    from service.db.models import Face, Identity, IndexState
    from service.db.session import create_db_engine, create_session_factory
    from service.gallery.gallery import Gallery

    vectors = synthetic(faces)
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{folder}/bench.db"
        migrate.upgrade(url)
        engine = create_db_engine(url)
        sessions = create_session_factory(engine)
        for domain in ("flat.test", "sq8.test"):
            with sessions.begin() as session:
                session.execute(insert(IndexState), [{"domain": domain, "version": 1}])
                # Two faces a person: search needs 3 distinct people, as in a real gallery.
                owners = session.scalars(
                    insert(Identity).returning(Identity.id, sort_by_parameter_order=True),
                    [{"domain": domain, "name": f"person {p}"} for p in range(faces // 2)],
                ).all()
                for start in range(0, faces, 10_000):
                    session.execute(
                        insert(Face),
                        [
                            {
                                "identity_id": owners[row // 2],
                                "domain": domain,
                                "embedding": embedding_to_bytes(vectors[row]),
                                "det_score": 0.9,
                                "filename": f"{row}.jpg",
                                "content_sha256": f"{row:064d}",
                                "model_name": "bench",
                            }
                            for row in range(start, min(faces, start + 10_000))
                        ],
                    )
        queries = probes(vectors, 100)
        click.echo(f"{'kind':>5} {'faces':>9} {'p50 ms':>8} {'p95 ms':>8}  (one query: SQL version, index, names)")
        for domain, compress in (("flat.test", None), ("sq8.test", 0)):
            store = IndexStore(Path(folder) / domain, DIM, "bench", compress_above=compress)
            gallery = Gallery(sessions, store)
            gallery.search(domain, queries[:1])  # loads (builds) the index
            took = []
            for query in queries:
                started = time.perf_counter()
                gallery.search(domain, query[None, :], k=3)
                took.append(1000 * (time.perf_counter() - started))
            index = store.loaded(domain)
            assert index is not None
            click.echo(f"{index.kind:>5} {faces:>9,} {statistics.median(took):>8.2f} {percentile(took, 0.95):>8.2f}")
        engine.dispose()
    click.echo(load_line())


if __name__ == "__main__":
    main()
