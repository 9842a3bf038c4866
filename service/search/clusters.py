"""Group face embeddings into people without knowing how many there are.

Connected components of the "same person" graph: two faces are linked when their cosine similarity reaches
the threshold, and a group is every face reachable through links. On the labelled shared photos the same
person's faces are at least 0.53 apart from each other and different people at most 0.28
(benchmarks/clustering.py), so a threshold between them separates people without a guessed count (k-means
would need k). Links come from FAISS range search on an exact inner-product index: 10,000 faces in about a
second on two cores.
"""

from __future__ import annotations

import faiss
import numpy as np

DEFAULT_SIMILARITY = 0.40


def cluster_faces(embeddings: np.ndarray, similarity: float = DEFAULT_SIMILARITY) -> list[list[int]]:
    """Indices of ``embeddings`` (unit vectors) grouped by person: biggest group first, each group in index
    order; a face like no other is a group of its own (singletons come last)."""
    count = len(embeddings)
    if count == 0:
        return []
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    limits, _, neighbours = index.range_search(vectors, float(similarity))
    parent = np.arange(count)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees flat
            i = int(parent[i])
        return i

    for i in range(count):
        for j in neighbours[limits[i] : limits[i + 1]]:
            a, b = root(i), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda group: (-len(group), group[0]))
