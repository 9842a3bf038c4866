"""How well unknown faces are grouped into people, and how long grouping takes.

1. The labelled single-face photos of ../shared/faces, recognised with nobody enrolled: their faces are
   grouped (service.search.clusters, the service's threshold) and compared with the true people — purity
   (the share of faces in a group that are its majority person) and completeness (the share of a person's
   faces in their biggest group) — over a range of thresholds; and the similarities of same-person and
   different-person pairs the threshold sits between.
2. The time to group N synthetic faces (identities of ``--per-person`` faces around a random centre, spread
   like real ones: same-person similarity ~0.6-0.8), default 10,000.

Usage: python benchmarks/clustering.py [--faces 10000] [--per-person 10]
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click
import numpy as np

from benchmarks._common import FACES, machine
from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from service.recognition.models import find_model_pack
from service.search.clusters import DEFAULT_SIMILARITY, cluster_faces

KNN = FACES / "face_recognition" / "examples" / "knn_examples"
EXAMPLES = FACES / "face_recognition" / "examples"


def labelled_photos() -> dict[Path, str]:
    """The shared photos that hold one known person's face, and who."""
    photos = {p: p.parent.name for p in sorted((KNN / "train").glob("*/*"))}
    photos |= {p: p.parent.name for p in sorted((FACES / "facenet_pytorch" / "data" / "test_images").glob("*/1.jpg"))}
    photos |= {
        KNN / "test" / "obama1.jpg": "obama",
        KNN / "test" / "alex_lacamoire1.jpg": "alex_lacamoire",
        KNN / "test" / "johnsnow_test1.jpg": "kit_harington",
        EXAMPLES / "biden.jpg": "biden",
        EXAMPLES / "lin-manuel-miranda.png": "lin_manuel_miranda",
        EXAMPLES / "alex-lacamoire.png": "alex_lacamoire",
    }
    photos |= {p: "obama" for p in sorted(EXAMPLES.glob("obama*.jpg"))}
    photos |= {p: "obama" for p in sorted((FACES / "face_recognition" / "tests" / "test_images").glob("obama*.jpg"))}
    photos |= {FACES / "face_recognition" / "tests" / "test_images" / "biden.jpg": "biden"}
    return photos


def scores(groups: list[list[int]], labels: list[str]) -> tuple[float, float]:
    """(purity, completeness) of groups of face indices against the true labels."""
    majority = sum(Counter(labels[i] for i in group).most_common(1)[0][1] for group in groups)
    purity = majority / len(labels)
    biggest: dict[str, int] = {}
    for group in groups:
        for person, count in Counter(labels[i] for i in group).items():
            biggest[person] = max(biggest.get(person, 0), count)
    completeness = sum(biggest.values()) / len(labels)
    return purity, completeness


def synthetic(count: int, per_person: int, seed: int = 7) -> np.ndarray:
    """Unit vectors in groups of ``per_person`` around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count // per_person + 1, 512)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.repeat(centres, per_person, axis=0)[:count]
    vectors += rng.standard_normal(vectors.shape).astype(np.float32) * 0.03
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


@click.command()
@click.option("--faces", default=10_000, show_default=True, help="synthetic faces to group for the timing")
@click.option("--per-person", default=10, show_default=True)
def main(faces: int, per_person: int) -> None:
    """Print purity and completeness on the shared photos, then the time to group ``faces`` faces."""
    click.echo(machine())
    model = FaceModel(find_model_pack(None), threads=2)
    embeddings, labels = [], []
    for photo, person in labelled_photos().items():
        found = model.detect(decode_image(photo.read_bytes(), max_pixels=80_000_000, min_side=model.det_size))
        if len(found) == 1:
            embeddings.append(model.embed([found[0].crop])[0])
            labels.append(person)
    vectors = np.array(embeddings)
    similar = vectors @ vectors.T
    people = np.array(labels)
    same = similar[(people[:, None] == people[None, :]) & ~np.eye(len(people), dtype=bool)]
    other = similar[people[:, None] != people[None, :]]
    click.echo(f"{len(labels)} labelled faces of {len(set(labels))} people")
    click.echo(f"same person: min {same.min():.3f}, median {np.median(same):.3f}; "
               f"different people: max {other.max():.3f}, median {np.median(other):.3f}")  # fmt: skip
    click.echo(f"{'threshold':>9} {'groups':>7} {'purity':>7} {'complete':>9}")
    for threshold in (0.2, 0.3, DEFAULT_SIMILARITY, 0.5, 0.6):
        groups = cluster_faces(vectors, threshold)
        purity, completeness = scores(groups, labels)
        mark = "  <- default" if threshold == DEFAULT_SIMILARITY else ""
        click.echo(f"{threshold:>9.2f} {len(groups):>7} {purity:>7.3f} {completeness:>9.3f}{mark}")
    data = synthetic(faces, per_person)
    started = time.perf_counter()
    groups = cluster_faces(data, DEFAULT_SIMILARITY)
    seconds = time.perf_counter() - started
    truth = [str(i // per_person) for i in range(faces)]
    purity, completeness = scores(groups, truth)
    click.echo(
        f"{faces} synthetic faces ({per_person} a person): grouped in {seconds:.2f} s into {len(groups)} groups "
        f"(purity {purity:.3f}, completeness {completeness:.3f})"
    )


if __name__ == "__main__":
    main()
