"""Detection where photos are hard: close-cropped portraits, small faces in large photos, one big face.

Builds, from the single-person photos of ../shared/faces:
- tight crops: each face cut at the detector's own box and resized to 150x150 (colour and grey), and the
  same with a 30% margin;
- crowd mosaics: 40 faces (with a little context) of 40, 80 and 150 px laid out in large canvases
  (1920x1200 for 40 and 80 px, 3600x2250 for 150 px);
- one big face: a portrait upscaled to fill a 2000x2000 photo.
and prints, for each kind, recall (faces found / faces placed), the passes detection took and milliseconds
per photo, with the finer and bordered passes on (the service's default) and off (one 640 pass).

Usage: python benchmarks/detection.py
"""

from __future__ import annotations

import io
import time
from collections import Counter

from PIL import Image, ImageOps

from benchmarks._common import FACES, machine
from service.recognition.detection_policy import DetectionPolicy
from service.recognition.faces import FaceModel
from service.recognition.images import decode_image
from service.recognition.models import find_model_pack

KNN = FACES / "face_recognition" / "examples" / "knn_examples"
PORTRAITS = [
    *sorted((KNN / "train").glob("*/*")),
    *sorted((FACES / "facenet_pytorch" / "data" / "test_images").glob("*/1.jpg")),
]
OFF = DetectionPolicy(border_retry=False, fine_size=0)
Portrait = tuple[Image.Image, tuple[float, float, float, float]]


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def face_boxes(model: FaceModel) -> list[Portrait]:
    """Each portrait and its largest face's box."""
    found = []
    for path in PORTRAITS:
        photo = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        faces = model.detect(decode_image(jpeg(photo), max_pixels=80_000_000, min_side=model.det_size))
        if faces:
            found.append((photo, faces[0].box))
    return found


def tight(photo: Image.Image, box: tuple[float, float, float, float], margin: float, grey: bool) -> bytes:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    crop = photo.crop((int(x1 - dx), int(y1 - dy), int(x2 + dx), int(y2 + dy))).resize((150, 150))
    return jpeg(crop.convert("L") if grey else crop)


def mosaic(
    faces: list[tuple[Image.Image, tuple[float, float, float, float]]], side: int, size: tuple[int, int]
) -> bytes:
    """40 faces of ``side`` px (box width) with context, on a grid in a canvas of ``size``."""
    canvas = Image.new("RGB", size, (120, 120, 120))
    columns, rows = 8, 5
    cell_w, cell_h = size[0] // columns, size[1] // rows
    for n in range(columns * rows):
        photo, (x1, y1, x2, y2) = faces[n % len(faces)]
        scale = side / (x2 - x1)
        pad = 0.6 * (x2 - x1)
        patch = photo.crop((int(x1 - pad), int(y1 - pad), int(x2 + pad), int(y2 + pad)))
        patch = patch.resize((max(1, int(patch.width * scale)), max(1, int(patch.height * scale))))
        column, row = n % columns, n // columns
        canvas.paste(
            patch, (column * cell_w + (cell_w - patch.width) // 2, row * cell_h + (cell_h - patch.height) // 2)
        )
    return jpeg(canvas)


def measure(model: FaceModel, photos: list[bytes], placed: int) -> tuple[float, float, str]:
    """(recall, ms per photo, passes taken) over the photos, each holding ``placed`` faces."""
    found, passes = 0, Counter[str]()
    started = time.perf_counter()
    for data in photos:
        image = decode_image(data, max_pixels=80_000_000, min_side=model.det_size, max_side=4 * model.det_size)
        result = model.find_faces(image, None)
        found += min(result.found, placed)
        passes[result.passes] += 1
    ms = (time.perf_counter() - started) * 1000 / len(photos)
    return found / (placed * len(photos)), ms, ", ".join(f"{k} ×{v}" for k, v in passes.most_common())


def main() -> None:
    """Print recall and time per kind of photo, with the extra passes on and off."""
    print(machine())
    model = FaceModel(find_model_pack(None), threads=2)
    model.warm_up()
    faces = face_boxes(model)
    kinds = {
        "tight 150x150 colour": ([tight(p, b, 0.0, False) for p, b in faces], 1),
        "tight 150x150 grey": ([tight(p, b, 0.0, True) for p, b in faces], 1),
        "30% margin 150x150": ([tight(p, b, 0.3, False) for p, b in faces], 1),
        "40 faces of 40 px, 1920x1200": ([mosaic(faces, 40, (1920, 1200))], 40),
        "40 faces of 80 px, 1920x1200": ([mosaic(faces, 80, (1920, 1200))], 40),
        "40 faces of 150 px, 3600x2250": ([mosaic(faces, 150, (3600, 2250))], 40),
        "one big face, 2000x2000": ([jpeg(p.resize((2000, 2000))) for p, _ in faces[:4]], 1),
        "the shared portraits as they are": ([jpeg(p) for p, _ in faces], 1),
    }
    print(f"{'kind':<34} {'photos':>6} {'recall':>7} {'ms/photo':>9} {'(one pass)':>11} {'recall':>7}  passes")
    for name, (photos, placed) in kinds.items():
        model.policy = DetectionPolicy()
        recall, ms, passes = measure(model, photos, placed)
        model.policy = OFF
        base_recall, base_ms, _ = measure(model, photos, placed)
        print(f"{name:<34} {len(photos):>6} {recall:>7.2f} {ms:>9.1f} {base_ms:>11.1f} {base_recall:>7.2f}  {passes}")
    model.policy = DetectionPolicy()


if __name__ == "__main__":
    main()
