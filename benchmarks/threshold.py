"""Measure genuine vs impostor similarity on the labelled photos and suggest the match threshold.

Usage: python benchmarks/threshold.py [--faces ../shared/faces]

Each labelled single-person photo is embedded (largest face). Every pair of distinct photos is a
genuine pair (same person) or an impostor pair (different people). The script prints both
distributions in similarity and in confidence, and the threshold range that separates them.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import click
import numpy as np

from service.recognition.confidence import confidence_from_similarity
from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from service.recognition.models import find_model_pack

LABELLED = {
    "alex_lacamoire": [
        "face_recognition/examples/knn_examples/train/alex_lacamoire/img1.jpg",
        "face_recognition/examples/knn_examples/test/alex_lacamoire1.jpg",
        "face_recognition/examples/alex-lacamoire.png",
    ],
    "biden": [
        "face_recognition/examples/knn_examples/train/biden/biden.jpg",
        "face_recognition/examples/knn_examples/train/biden/biden2.jpg",
    ],
    "kit_harington": [
        "face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg",
        "face_recognition/examples/knn_examples/train/kit_harington/john2.jpeg",
        "face_recognition/examples/knn_examples/test/johnsnow_test1.jpg",
    ],
    "obama": [
        "face_recognition/examples/knn_examples/train/obama/obama.jpg",
        "face_recognition/examples/knn_examples/train/obama/obama2.jpg",
        "face_recognition/examples/knn_examples/test/obama1.jpg",
        "face_recognition/examples/obama-240p.jpg",
        "face_recognition/examples/obama-1080p.jpg",
        "face_recognition/examples/obama_small.jpg",
        "face_recognition/tests/test_images/obama3.jpg",
        "face_recognition/tests/test_images/obama_partial_face.jpg",
        "face_recognition/tests/test_images/obama_partial_face2.jpg",
    ],
    "rose_leslie": [
        "face_recognition/examples/knn_examples/train/rose_leslie/img1.jpg",
        "face_recognition/examples/knn_examples/train/rose_leslie/img2.jpg",
    ],
    "lin_manuel_miranda": ["face_recognition/examples/lin-manuel-miranda.png"],
    "angelina_jolie": ["facenet_pytorch/data/test_images/angelina_jolie/1.jpg"],
    "kate_siegel": ["facenet_pytorch/data/test_images/kate_siegel/1.jpg"],
    "paul_rudd": ["facenet_pytorch/data/test_images/paul_rudd/1.jpg"],
    "shea_whigham": ["facenet_pytorch/data/test_images/shea_whigham/1.jpg"],
}


def _stats(name: str, values: np.ndarray) -> str:
    conf = np.array([confidence_from_similarity(float(v)) for v in values])
    return (
        f"{name:<9} n={len(values):>4}  similarity min {values.min():.3f} median {np.median(values):.3f} "
        f"max {values.max():.3f}  |  confidence min {conf.min():5.1f} median {np.median(conf):5.1f} "
        f"max {conf.max():5.1f}"
    )


@click.command()
@click.option("--faces", "faces_dir", type=click.Path(path_type=Path), default=Path("../shared/faces"))
def main(faces_dir: Path) -> None:
    """Print genuine/impostor similarity distributions and the separating threshold."""
    model = FaceModel(find_model_pack(None), threads=2)
    embeddings: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    for person, files in LABELLED.items():
        for relative in files:
            data = (faces_dir / relative).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            faces = model.analyze([decode_image(data, max_pixels=100_000_000, min_side=640)])[0]
            if not faces:
                click.echo(f"no face: {relative}")
                continue
            embeddings.append((person, faces[0].embedding))
    genuine, impostor = [], []
    for (p1, e1), (p2, e2) in itertools.combinations(embeddings, 2):
        (genuine if p1 == p2 else impostor).append(float(e1 @ e2))
    g, i = np.array(genuine), np.array(impostor)
    click.echo(f"photos: {len(embeddings)}, people: {len({p for p, _ in embeddings})}")
    click.echo(_stats("genuine", g))
    click.echo(_stats("impostor", i))
    low, high = float(i.max()), float(g.min())
    click.echo(
        f"separating similarity range: {low:.3f} .. {high:.3f} "
        f"(confidence {confidence_from_similarity(low):.1f} .. {confidence_from_similarity(high):.1f})"
    )
    for threshold in (40.0, 50.0, 55.0, 60.0, 70.0):
        far = float(np.mean([confidence_from_similarity(v) >= threshold for v in i]))
        frr = float(np.mean([confidence_from_similarity(v) < threshold for v in g]))
        click.echo(f"threshold {threshold:5.1f}: false accepts {far:.3%}, false rejects {frr:.3%}")


if __name__ == "__main__":
    main()
