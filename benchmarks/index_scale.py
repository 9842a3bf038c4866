"""Identity index at scale: build time, memory per identity, recall@3 vs exact search, query latency.

Synthetic identities are clustered in a low-dimensional subspace, as real face embeddings are
(random isotropic vectors have no neighbourhood structure and would make any IVF index look bad).

Usage: python benchmarks/index_scale.py [--sizes 10000,100000,1000000] [--queries 200]
"""

from __future__ import annotations

import gc
import os
import time

import click
import faiss
import numpy as np

from benchmarks._common import current_rss_mb, machine
from service.search.index import IdentityIndex, exact_search

DIM = 512


def synthetic(count: int, seed: int = 0) -> np.ndarray:
    """``count`` unit vectors, one per identity, generated in chunks to keep memory flat."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((64, DIM)).astype(np.float32)
    kinds = rng.standard_normal((1000, 64)).astype(np.float32)
    out = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        traits = kinds[rng.integers(0, len(kinds), n)] + 0.7 * rng.standard_normal((n, 64)).astype(np.float32)
        block = traits @ basis + 2.0 * rng.standard_normal((n, DIM)).astype(np.float32)
        out[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def probes(vectors: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Queries like a second photo of an enrolled person (similarity ~0.8 to their vector)."""
    rng = np.random.default_rng(seed)
    base = vectors[rng.choice(len(vectors), size=count, replace=False)]
    noisy = base + 0.03 * rng.standard_normal(base.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


@click.command()
@click.option("--sizes", default="10000,100000,1000000", show_default=True)
@click.option("--queries", default=200, show_default=True)
def main(sizes: str, queries: int) -> None:
    """Print a table of build time, memory, recall and latency per gallery size."""
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    click.echo(f"machine: {machine()}, FAISS {faiss.__version__}")
    click.echo(
        f"{'identities':>10} {'nlist':>6} {'nprobe':>6} {'build s':>8} {'bytes/identity':>15} "
        f"{'recall@3':>9} {'1 query ms':>11} {'batch of 100 ms/q':>18}"
    )
    for size in (int(s) for s in sizes.split(",")):
        vectors = synthetic(size)
        ids = np.arange(1, size + 1, dtype=np.int64)
        owners = np.arange(size, dtype=np.int64)
        queries_ = probes(vectors, queries)
        gc.collect()
        before = current_rss_mb(os.getpid())
        index = IdentityIndex(DIM)
        started = time.perf_counter()
        index.build(ids, owners, vectors)
        build = time.perf_counter() - started
        gc.collect()
        per_identity = (current_rss_mb(os.getpid()) - before) * 1024 * 1024 / size

        _, truth = exact_search(vectors, queries_, 3)
        found = index.search(queries_, k=3)
        hits = sum(len({m.identity_id for m in row} & set(t.tolist())) for row, t in zip(found, truth, strict=True))
        recall = hits / truth.size

        singles = []
        for query in queries_[:100]:
            started = time.perf_counter()
            index.search(query[None, :], k=3)
            singles.append(time.perf_counter() - started)
        started = time.perf_counter()
        index.search(queries_[:100], k=3)
        batched = (time.perf_counter() - started) / 100
        click.echo(
            f"{size:>10} {index.nlist:>6} {index.nprobe:>6} {build:>8.1f} {per_identity:>15.0f} "
            f"{recall:>9.4f} {1000 * float(np.median(singles)):>11.3f} {1000 * batched:>18.3f}"
        )
        del index, vectors
        gc.collect()


if __name__ == "__main__":
    main()
