"""Peer comparison: the same photos through the `face_recognition` library (dlib), if it is installed.

Install it in a separate environment (it is not a dependency of facerec):
    python -m venv /tmp/peer && /tmp/peer/bin/pip install dlib-bin face-recognition-models click pillow numpy
    /tmp/peer/bin/pip install --no-deps face_recognition httpx
Then run from the repository root (as a module, so it shares the photo sets of benchmarks/_common.py):
    /tmp/peer/bin/python -m benchmarks.peer [--photos 100]

It times face_recognition's own pipeline (load, HOG detection, 128-d encodings) per photo on the
same two photo sets as benchmarks/throughput.py, for comparison with that script's figures.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import click

from benchmarks._common import phone_photos, shared_photos


@click.command()
@click.option("--photos", default=100, show_default=True)
def main(photos: int) -> None:
    """Print face_recognition's ms per photo and faces found on both photo sets."""
    try:
        import face_recognition
    except ImportError:
        raise click.ClickException("face_recognition is not installed here (see this script's docstring)") from None
    click.echo(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; face_recognition {face_recognition.__version__}"
    )
    click.echo(f"{'photo set':<20} {'ms/photo':>9} {'faces':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for name, paths in (
            ("shared photos", shared_photos(photos)),
            ("12 MP phone JPEGs", phone_photos(photos, Path(folder))),
        ):
            faces = 0
            started = time.perf_counter()
            for path in paths:
                image = face_recognition.load_image_file(str(path))
                locations = face_recognition.face_locations(image, model="hog")
                faces += len(face_recognition.face_encodings(image, known_face_locations=locations))
            elapsed = time.perf_counter() - started
            click.echo(f"{name:<20} {1000 * elapsed / len(paths):>9.1f} {faces:>6}")


if __name__ == "__main__":
    main()
