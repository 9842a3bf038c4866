"""The quality measures of every face in ../shared/faces: the figures the enrollment and recognition
limits (FACEREC_MIN_EYE_DISTANCE, ..._MIN_DET_SCORE, ..._MIN_SHARPNESS, ..._MAX_YAW) were chosen from.

Prints, per measure, the distribution over the faces of the labelled photos, and the same photos degraded
(shrunk, blurred) so the limits can be seen to separate them.

Usage: python benchmarks/face_quality.py
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks._common import FACES, machine
from service.recognition.faces import FaceModel
from service.recognition.images import DecodedImage, decode_image
from service.recognition.models import find_model_pack
from service.recognition.quality import measure

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def faces_of(model: FaceModel, image: DecodedImage) -> list[tuple[float, float, float, float, float]]:
    """(eye distance, det score, sharpness, yaw, pitch) of every face."""
    return [(*measure(c)[:1], c.det_score, *measure(c)[1:]) for c in model.detect(image)]


def degrade(image: DecodedImage, kind: str) -> DecodedImage:
    pixels = image.pixels
    if kind == "blurred":
        pixels = cv2.GaussianBlur(pixels, (0, 0), sigmaX=max(2.0, pixels.shape[1] / 200))
    elif kind == "shrunk":
        pixels = cv2.resize(pixels, (max(32, pixels.shape[1] // 6), max(32, pixels.shape[0] // 6)))
        pixels = cv2.resize(pixels, (image.pixels.shape[1], image.pixels.shape[0]), interpolation=cv2.INTER_LINEAR)
    return DecodedImage(pixels, image.scale, image.width, image.height, image.format)


def main() -> None:
    """Print the distribution of each quality measure over the shared photos, plain and degraded."""
    print(machine())
    model = FaceModel(find_model_pack(None), threads=2)
    photos = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    names = ("eye distance px", "det score", "sharpness", "yaw", "pitch")
    for kind in ("plain", "blurred", "shrunk"):
        rows = []
        for photo in photos:
            image = decode_image(photo.read_bytes(), max_pixels=80_000_000, min_side=model.det_size)
            rows += faces_of(model, image if kind == "plain" else degrade(image, kind))
        values = np.array(rows)
        print(f"\n{kind}: {len(values)} faces from {len(photos)} photos")
        print(f"{'measure':<16} {'min':>8} {'p5':>8} {'p25':>8} {'median':>8} {'p95':>8} {'max':>8}")
        for column, name in enumerate(names):
            v = values[:, column] if len(values) else np.zeros(1)
            p = np.percentile(v, [0, 5, 25, 50, 95, 100])
            print(f"{name:<16} " + " ".join(f"{x:>8.2f}" for x in p))


if __name__ == "__main__":
    main()
