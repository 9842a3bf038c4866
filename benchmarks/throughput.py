"""Batch throughput: the service against the models' own cost and against a bare loop, in one run.

Printed for each photo set:

- the model floor: decode (the service's reduced decode), detect and embed, each stage alone on the same photos
  with every thread to itself; the floor is max(decode, detect) + embed, since the service decodes the next
  photo on another thread while the current one is detected (the serial sum is printed too);
- the bare loop: what a script would do with the same model files (OpenCV full-size decode, SCRFD on a 640
  square, ArcFace face by face);
- the service: one 100-photo batch through the live HTTP API, timed by the client (upload and answer included)
  and by the server (its request-duration metric), with the stage times from its /metrics.

Then one single-photo request: the server's time against that photo's model time (decode + detect + embed with
the models configured as the server configures them), best of ``--repeat`` each.

The machine may be shared: the load average is printed before and after; compare ratios within one run.

Usage: python benchmarks/throughput.py [--photos 100] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import httpx
import numpy as np
import onnxruntime as ort
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD
from insightface.utils import face_align
from PIL import Image

from benchmarks._common import FACES, Server, live_server, machine, multipart, phone_photos, shared_photos
from service.recognition.faces import FaceModel
from service.recognition.images import DecodedImage, decode_image
from service.recognition.models import find_model_pack
from service.settings import Settings

SINGLE_PHOTO = FACES / "face_recognition" / "examples" / "knn_examples" / "test" / "obama1.jpg"
DEFAULTS = Settings()
MAX_FACES_PER_PHOTO = DEFAULTS.max_faces_per_photo


def load() -> str:
    """The 1-minute load average against the cores: how shared the machine is right now."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def bare_models(threads: int) -> tuple[SCRFD, ArcFaceONNX]:
    """The two model files in plain onnxruntime sessions, as a script would open them."""
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


def service_model(threads: int, *, detector_threads: int | None = None) -> FaceModel:
    """The models with the default settings, warmed up (``detector_threads`` None: as the server builds them)."""
    model = FaceModel(
        find_model_pack(None),
        threads=threads,
        detector_threads=detector_threads,
        det_size=DEFAULTS.det_size,
        det_threshold=DEFAULTS.det_threshold,
        embed_batch_size=DEFAULTS.embed_batch_size,
    )
    model.warm_up()
    return model


def decode(data: bytes, model: FaceModel) -> DecodedImage:
    """The service's decode: JPEGs reduced for the detector, long side at most 4 x det_size."""
    return decode_image(
        data, max_pixels=DEFAULTS.max_image_pixels, min_side=model.det_size, max_side=4 * model.det_size
    )


@dataclass(frozen=True)
class Floor:
    """Milliseconds per photo of each model stage run alone, best of the repeats."""

    decode: float
    detect: float
    embed: float
    faces: int

    @property
    def overlapped(self) -> float:
        """The floor when decoding is hidden behind detection, as the service arranges it."""
        return max(self.decode, self.detect) + self.embed

    @property
    def serial(self) -> float:
        """Every stage one after another."""
        return self.decode + self.detect + self.embed


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs of ``work()``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def model_floor(paths: list[Path], model: FaceModel, repeat: int) -> Floor:
    """Each stage alone over ``paths``: decode, detect (+ align), embed (batched as the service batches)."""
    datas = [path.read_bytes() for path in paths]
    images = [decode(data, model) for data in datas]
    crops = [c.crop for image in images for c in model.detect_largest(image, MAX_FACES_PER_PHOTO)[0]]
    decode_s = best_of(repeat, lambda: [decode(data, model) for data in datas])
    detect_s = best_of(repeat, lambda: [model.detect_largest(image, MAX_FACES_PER_PHOTO) for image in images])
    embed_s = best_of(repeat, lambda: model.embed(crops))
    per_photo = 1000 / len(paths)
    return Floor(decode_s * per_photo, detect_s * per_photo, embed_s * per_photo, len(crops))


def single_photo_model_time(path: Path, model: FaceModel, repeat: int) -> float:
    """Milliseconds of decode + detect + embed of one photo, best of ``repeat``."""
    data = path.read_bytes()

    def work() -> None:
        image = decode(data, model)
        model.embed([c.crop for c in model.detect_largest(image, MAX_FACES_PER_PHOTO)[0]])

    return 1000 * best_of(repeat, work)


def server_metrics(server: Server) -> dict[str, float]:
    """The server's own figures: request duration of the recognise route, and pipeline stage sums and counts."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    figures: dict[str, float] = {}
    for line in text.splitlines():
        found = re.match(r'facerec_http_request_duration_seconds_(sum|count)\{.*path="([^"]+)".*\} (\S+)', line)
        if found and found.group(2).endswith("/recognize"):
            figures[f"request_{found.group(1)}"] = figures.get(f"request_{found.group(1)}", 0.0) + float(found[3])
        found = re.match(r'facerec_stage_seconds_(sum|count)\{stage="(\w+)"\} (\S+)', line)
        if found:
            figures[f"{found.group(2)}_{found.group(1)}"] = float(found.group(3))
    return figures


def service_batch(server: Server, token: str, paths: list[Path]) -> tuple[float, float, dict[str, float], int]:
    """One batch request: client seconds (upload and answer included), server seconds, stage seconds, faces."""
    parts = multipart(paths)
    before = server_metrics(server)
    started = time.perf_counter()
    response = httpx.post(
        f"{server.url}/api/batch-photos/recognize", headers={"Authorization": token}, files=parts, timeout=600
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    after = server_metrics(server)
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    log = httpx.get(f"{server.url}{response.json()['log_url']}", headers={"Authorization": token}, timeout=60).json()
    faces = sum(e["metadata"]["face_count"] for e in log["entries"])
    return elapsed, delta["request_sum"], delta, faces


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
@click.option("--threads", default=2, show_default=True, help="FACEREC_INFERENCE_THREADS of the server")
def main(photos: int, repeat: int, threads: int) -> None:
    """Print the model floor, the bare loop and the service per photo, their ratios, and one photo's overhead."""
    click.echo(f"machine: {machine()}; {load()} at the start")
    detector, recognizer = bare_models(threads)
    alone = service_model(threads, detector_threads=threads)  # each stage alone has every thread
    as_served = service_model(threads)  # the detector leaves a thread to the decoder, as in the server
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
            service_batch(server, token, sets["shared photos"][:5])  # warm the server
            click.echo(f"server start to healthy: {server.started_in:.2f} s; FACEREC_INFERENCE_THREADS={threads}")
            click.echo("\nms per photo, best of the repeats:")
            header = (
                f"{'photo set':<18} {'decode':>7} {'detect':>7} {'embed':>6} {'floor':>6} {'serial':>7} "
                f"{'bare':>6} {'service':>8} {'(server)':>9} {'svc/floor':>10} {'svc/bare':>9} {'faces':>6}"
            )
            click.echo(header)
            stages = {}
            for name, paths in sets.items():
                floor = model_floor(paths, alone, repeat)
                bare = min(bare_loop(paths, detector, recognizer)[0] for _ in range(repeat)) * 1000 / len(paths)
                served = [service_batch(server, token, paths) for _ in range(repeat)]
                client, serverside, stage_delta, faces = min(served, key=lambda s: s[0])
                client_ms, server_ms = client * 1000 / len(paths), serverside * 1000 / len(paths)
                stages[name] = {
                    stage: 1000 * stage_delta[f"{stage}_sum"] / len(paths) for stage in ("decode", "detect", "embed")
                }
                click.echo(
                    f"{name:<18} {floor.decode:>7.1f} {floor.detect:>7.1f} {floor.embed:>6.1f} "
                    f"{floor.overlapped:>6.1f} {floor.serial:>7.1f} {bare:>6.1f} {client_ms:>8.1f} {server_ms:>9.1f} "
                    f"{client_ms / floor.overlapped:>10.2f} {client_ms / bare:>9.2f} {faces:>6}"
                )
                assert faces == floor.faces, f"the service found {faces} faces, the models alone {floor.faces}"
            click.echo(
                "floor = max(decode, detect) + embed, each stage alone; serial = their sum; service = the client's "
                "time for the whole request, (server) = the server's own request time"
            )
            for name, figures in stages.items():
                click.echo(
                    f"{name}: the server's stage times (its /metrics; decode runs beside detect): "
                    + ", ".join(f"{stage} {ms:.1f}" for stage, ms in figures.items())
                    + " ms/photo"
                )

            model_ms = single_photo_model_time(SINGLE_PHOTO, as_served, 5 * repeat)
            singles = [service_batch(server, token, [SINGLE_PHOTO]) for _ in range(5 * repeat)]
            server_ms = 1000 * min(s[1] for s in singles)
            client_ms = 1000 * min(s[0] for s in singles)
            click.echo(
                f"\none photo ({SINGLE_PHOTO.name}, {np.prod(Image.open(SINGLE_PHOTO).size) / 1e6:.1f} MP): "
                f"model time {model_ms:.1f} ms (decode + detect + embed, models as the server builds them), "
                f"server time {server_ms:.1f} ms (+{server_ms - model_ms:.1f}), client round trip {client_ms:.1f} ms"
            )
    click.echo(
        f"12 MP JPEG decode: full size {full_ms:.0f} ms, service (reduced for a 640 px detector) "
        f"{reduced_ms:.0f} ms = {reduced_ms / full_ms:.2f} of full"
    )
    click.echo(f"{load()} at the end")


if __name__ == "__main__":
    main()
