"""Batch throughput: a 100-photo batch through the live HTTP API vs a bare loop over the same models.

The bare loop is what a script would do with the same model files: decode with OpenCV at full size,
SCRFD at 640, then ArcFace face by face. The service adds HTTP, multipart, decoding checks, search and
SQL; the ratio shows what that costs (below 1.0 means the service is faster than the naive loop).

Usage: python benchmarks/throughput.py [--photos 100] [--repeat 3]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import cv2
import httpx
import onnxruntime as ort
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD
from insightface.utils import face_align
from PIL import Image

from benchmarks._common import FACES, live_server, machine, multipart, phone_photos, shared_photos
from service.recognition.images import decode_image
from service.recognition.models import find_model_pack


def bare_models(threads: int) -> tuple[SCRFD, ArcFaceONNX]:
    pack = find_model_pack(None)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    detector = SCRFD(str(pack.detector), session=ort.InferenceSession(str(pack.detector), options, providers=providers))
    recognizer = ArcFaceONNX(
        str(pack.recognizer), session=ort.InferenceSession(str(pack.recognizer), options, providers=providers)
    )
    return detector, recognizer


def bare_loop(paths: list[Path], detector: SCRFD, recognizer: ArcFaceONNX) -> tuple[float, int]:
    """Seconds for decode + detect + embed-one-by-one over ``paths``, and faces found."""
    faces = 0
    started = time.perf_counter()
    for path in paths:
        image = cv2.imread(str(path))
        if image is None:
            continue
        _, landmarks = detector.detect(image, input_size=(640, 640))
        for points in landmarks:
            recognizer.get_feat(face_align.norm_crop(image, landmark=points))
            faces += 1
    return time.perf_counter() - started, faces


def service_batch(url: str, token: str, paths: list[Path]) -> tuple[float, int]:
    """Seconds for one batch request (upload included), and faces found."""
    parts = multipart(paths)
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/api/batch-photos/recognize", headers={"Authorization": token}, files=parts, timeout=600
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    log = httpx.get(f"{url}{response.json()['log_url']}", headers={"Authorization": token}, timeout=60).json()
    return elapsed, sum(e["metadata"]["face_count"] for e in log["entries"])


def decode_costs(paths: list[Path], min_side: int) -> tuple[float, float]:
    """Mean ms per photo: a full-size decode vs the service's reduced decode."""
    full, reduced = [], []
    for path in paths:
        data = path.read_bytes()
        started = time.perf_counter()
        Image.open(path).convert("RGB").load()
        full.append(time.perf_counter() - started)
        started = time.perf_counter()
        decode_image(data, max_pixels=100_000_000, min_side=min_side)
        reduced.append(time.perf_counter() - started)
    return 1000 * statistics.mean(full), 1000 * statistics.mean(reduced)


@click.command()
@click.option("--photos", default=100, show_default=True)
@click.option("--repeat", default=3, show_default=True, help="runs per measurement; the best is reported")
@click.option("--threads", default=2, show_default=True)
def main(photos: int, repeat: int, threads: int) -> None:
    """Print per-photo cost of the service and of the bare model loop, and their ratio."""
    detector, recognizer = bare_models(threads)
    with tempfile.TemporaryDirectory() as folder:
        sets = {
            "shared photos": shared_photos(photos),
            "12 MP phone JPEGs": phone_photos(photos, Path(folder)),
        }
        full_ms, reduced_ms = decode_costs(sets["12 MP phone JPEGs"][:3], 640)
        with live_server(inference_threads=str(threads)) as server:
            token = server.cli("token", "create", "--domain", "bench", "--admin").strip().splitlines()[-1]
            server.cli(
                "enroll", str(FACES / "face_recognition" / "examples" / "knn_examples" / "train"), "--domain", "bench"
            )
            service_batch(server.url, token, sets["shared photos"][:5])  # warm the server
            click.echo(f"machine: {machine()}; server start to healthy: {server.started_in:.2f} s")
            click.echo(
                f"{'photo set':<20} {'bare loop ms/photo':>19} {'service ms/photo':>17} {'ratio':>7} {'faces':>6}"
            )
            for name, paths in sets.items():
                bare = min(bare_loop(paths, detector, recognizer)[0] for _ in range(repeat))
                served = [service_batch(server.url, token, paths) for _ in range(repeat)]
                best = min(s[0] for s in served)
                click.echo(
                    f"{name:<20} {1000 * bare / len(paths):>19.1f} {1000 * best / len(paths):>17.1f} "
                    f"{best / bare:>7.2f} {served[0][1]:>6}"
                )
        click.echo(
            f"12 MP JPEG decode: full size {full_ms:.0f} ms, service (reduced for a 640 px detector) "
            f"{reduced_ms:.0f} ms = {reduced_ms / full_ms:.2f} of full"
        )


if __name__ == "__main__":
    main()
