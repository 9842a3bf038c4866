"""Batch throughput: the service against the models' own cost and against a bare loop, in one run.

Printed for each photo set (the shared photos repeated to ``--photos``; with ``--phone-photos`` also 12 MP
JPEGs made from them), in ms per photo:

- the model floor: decode (the service's reduced decode), detect and embed, each stage alone on the same photos
  with every thread to itself; floor = max(decode, detect) + embed, since the service decodes the next photo on
  another thread while the current one is detected (serial = the three added up);
- the bare loop: what a script would do with the same model files (OpenCV full-size decode, SCRFD on a 640
  square, ArcFace face by face);
- the service: one batch through the live HTTP API, timed by the client (upload and answer included) and by the
  server (its request-duration metric), with the server's own stage times from its /metrics.

Then single-photo requests: the server's time against that photo's model time (decode + detect + embed with the
models configured as the server configures them).

Every measurement is repeated ``--repeat`` times, the kinds interleaved so that a burst of load elsewhere hurts
them alike, and the best is kept. The machine may be shared: the cores that other processes used during the
measurements are printed; compare ratios within one run.

Usage: python benchmarks/throughput.py [--photos 100] [--repeat 5] [--threads 2] [--phone-photos]
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import click
import cv2
import httpx
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
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def _busy_seconds() -> float:
    """CPU seconds every process of the machine has used (all cores) since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _process_seconds(pid: int) -> float:
    """CPU seconds one process (all its threads) has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class OtherLoad:
    """The cores that processes other than this benchmark and its server used while measurements ran."""

    pids: list[int] = field(default_factory=lambda: [os.getpid()])
    samples: list[float] = field(default_factory=list)

    def measure(self, work: Callable[[], T]) -> tuple[float, T]:
        """Run ``work``: its wall seconds and result (the other processes' cores meanwhile are recorded)."""
        busy, ours = _busy_seconds(), sum(_process_seconds(pid) for pid in self.pids)
        started = time.perf_counter()
        result = work()
        elapsed = time.perf_counter() - started
        others = (_busy_seconds() - busy) - (sum(_process_seconds(pid) for pid in self.pids) - ours)
        self.samples.append(max(0.0, others / elapsed))
        return elapsed, result

    def seconds(self, work: Callable[[], object]) -> float:
        """Run ``work``: its wall seconds."""
        return self.measure(work)[0]

    def summary(self) -> str:
        """Mean and worst of the samples."""
        if not self.samples:
            return "no measurements"
        return (
            f"other processes used {statistics.mean(self.samples):.2f} of {os.cpu_count()} cores on average "
            f"during the measurements (most: {max(self.samples):.2f})"
        )


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


def bare_loop(paths: list[Path], detector: SCRFD, recognizer: ArcFaceONNX) -> int:
    """Decode + detect + embed-one-by-one over ``paths``; faces found."""
    faces = 0
    for path in paths:
        image = cv2.imread(str(path))
        if image is None:
            continue
        _, landmarks = detector.detect(image, input_size=(640, 640))
        for points in landmarks:
            recognizer.get_feat(face_align.norm_crop(image, landmark=points))
            faces += 1
    return faces


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


@dataclass
class Figures:
    """Best times of one photo set, in seconds for the whole set."""

    photos: int
    best: dict[str, float] = field(default_factory=dict)
    faces: dict[str, int] = field(default_factory=dict)
    server_stages: dict[str, float] = field(default_factory=dict)

    def keep(self, kind: str, seconds: float) -> None:
        """Remember ``seconds`` if it is the best of its kind so far."""
        self.best[kind] = min(seconds, self.best.get(kind, float("inf")))

    def ms(self, kind: str) -> float:
        """Best milliseconds per photo."""
        return 1000 * self.best[kind] / self.photos

    @property
    def floor(self) -> float:
        """max(decode, detect) + embed: the decode thread hides decoding behind detection."""
        return max(self.ms("decode"), self.ms("detect")) + self.ms("embed")

    @property
    def serial(self) -> float:
        """Every stage one after another."""
        return self.ms("decode") + self.ms("detect") + self.ms("embed")


def server_metrics(server: Server) -> dict[str, float]:
    """The server's own figures: request duration of the recognise route, and pipeline stage sums."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    figures: dict[str, float] = {}
    for line in text.splitlines():
        found = re.match(r'facerec_http_request_duration_seconds_sum\{[^}]*path="([^"]+)"[^}]*\} (\S+)', line)
        if found and found.group(1).endswith("/recognize"):
            figures["request"] = figures.get("request", 0.0) + float(found.group(2))
        found = re.match(r'facerec_stage_seconds_sum\{stage="(\w+)"\} (\S+)', line)
        if found:
            figures[found.group(1)] = float(found.group(2))
    return figures


@dataclass
class Served:
    """One request to the service."""

    client: float  # seconds, upload and answer included
    server: float  # seconds, the server's request-duration metric
    stages: dict[str, float]  # seconds per pipeline stage, from the server's metrics
    faces: int


def service_batch(server: Server, token: str, parts: list[tuple[str, tuple[str, bytes, str]]]) -> Served:
    """One recognise request with ``parts``."""
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
    return Served(elapsed, delta["request"], delta, faces)


def measure_set(
    paths: list[Path],
    repeat: int,
    alone: FaceModel,
    bare: tuple[SCRFD, ArcFaceONNX],
    server: Server,
    token: str,
    load: OtherLoad,
) -> Figures:
    """The floor's stages, the bare loop and the service on ``paths``, ``repeat`` interleaved rounds."""
    figures = Figures(len(paths))
    datas = [path.read_bytes() for path in paths]
    parts = multipart(paths)
    images = [decode(data, alone) for data in datas]
    crops = [c.crop for image in images for c in alone.detect_largest(image, MAX_FACES_PER_PHOTO)[0]]
    figures.faces["models"] = len(crops)
    for _ in range(repeat):
        figures.keep("decode", load.seconds(lambda: [decode(data, alone) for data in datas]))
        figures.keep("detect", load.seconds(lambda: [alone.detect_largest(i, MAX_FACES_PER_PHOTO) for i in images]))
        figures.keep("embed", load.seconds(lambda: alone.embed(crops)))
        seconds, figures.faces["bare"] = load.measure(lambda: bare_loop(paths, *bare))
        figures.keep("bare", seconds)
        served = load.measure(lambda: service_batch(server, token, parts))[1]
        if served.client < figures.best.get("service", float("inf")):
            figures.server_stages = served.stages
        figures.keep("service", served.client)
        figures.keep("server", served.server)
        figures.faces["service"] = served.faces
    return figures


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
@click.option("--repeat", default=5, show_default=True, help="rounds per measurement; the best is reported")
@click.option("--threads", default=2, show_default=True, help="FACEREC_INFERENCE_THREADS of the server")
@click.option(
    "--phone-photos/--no-phone-photos", "with_phone_photos", default=False, help="also 12 MP JPEGs (a slow bare loop)"
)
def main(photos: int, repeat: int, threads: int, with_phone_photos: bool) -> None:
    """Print the model floor, the bare loop and the service per photo, their ratios, and one photo's overhead."""
    click.echo(f"machine: {machine()}; 1-minute load average {os.getloadavg()[0]:.1f} at the start")
    bare = bare_models(threads)
    alone = service_model(threads, detector_threads=threads)  # each stage alone has every thread
    as_served = service_model(threads)  # the detector leaves a thread to the decoder, as in the server
    with tempfile.TemporaryDirectory() as folder:
        sets = {"shared photos": shared_photos(photos)}
        if with_phone_photos:
            sets["12 MP phone JPEGs"] = phone_photos(photos, Path(folder))
            full_ms, reduced_ms = decode_costs(sets["12 MP phone JPEGs"][:3], 640)
        with live_server(inference_threads=str(threads)) as server:
            token = server.cli("token", "create", "--domain", "bench", "--admin").strip().splitlines()[-1]
            server.cli(
                "enroll", str(FACES / "face_recognition" / "examples" / "knn_examples" / "train"), "--domain", "bench"
            )
            service_batch(server, token, multipart(sets["shared photos"][:5]))  # warm the server
            load = OtherLoad([os.getpid(), server.process.pid])
            results = {
                name: measure_set(paths, repeat, alone, bare, server, token, load) for name, paths in sets.items()
            }

            single = Figures(1)
            single_parts = multipart([SINGLE_PHOTO])
            single_data = SINGLE_PHOTO.read_bytes()

            def one_photo_models() -> None:
                image = decode(single_data, as_served)
                as_served.embed([c.crop for c in as_served.detect_largest(image, MAX_FACES_PER_PHOTO)[0]])

            for _ in range(5 * repeat):
                single.keep("models", load.seconds(one_photo_models))
                served = load.measure(lambda: service_batch(server, token, single_parts))[1]
                single.keep("server", served.server)
                single.keep("client", served.client)

    click.echo(f"server start to healthy: {server.started_in:.2f} s; FACEREC_INFERENCE_THREADS={threads}")
    click.echo(f"\nms per photo, best of {repeat} interleaved rounds:")
    click.echo(
        f"{'photo set':<18} {'decode':>7} {'detect':>7} {'embed':>6} {'floor':>6} {'serial':>7} {'bare':>6} "
        f"{'service':>8} {'(server)':>9} {'svc/floor':>10} {'svc/bare':>9} {'faces':>6}"
    )
    for name, figures in results.items():
        service = figures.ms("service")
        click.echo(
            f"{name:<18} {figures.ms('decode'):>7.1f} {figures.ms('detect'):>7.1f} {figures.ms('embed'):>6.1f} "
            f"{figures.floor:>6.1f} {figures.serial:>7.1f} {figures.ms('bare'):>6.1f} {service:>8.1f} "
            f"{figures.ms('server'):>9.1f} {service / figures.floor:>10.2f} {service / figures.ms('bare'):>9.2f} "
            f"{figures.faces['service']:>6}"
        )
        assert figures.faces["service"] == figures.faces["models"], f"{name}: the service and the models disagree"
    click.echo(
        "floor = max(decode, detect) + embed, each stage alone with every thread; serial = the three added up; "
        "service = the client's time for the request, (server) = the server's own request time"
    )
    for name, figures in results.items():
        stages = ", ".join(
            f"{stage} {1000 * figures.server_stages[stage] / figures.photos:.1f}" for stage in ("decode", "detect")
        )
        embed = 1000 * (figures.server_stages["embed"] + figures.server_stages["search"]) / figures.photos
        click.echo(f"{name}, the server's stage times: {stages} (side by side), embed + search {embed:.1f} ms/photo")
    click.echo(
        f"\none photo ({SINGLE_PHOTO.name}), best of {5 * repeat}: model time {single.ms('models'):.1f} ms "
        f"(decode + detect + embed, the models as the server builds them); server time {single.ms('server'):.1f} ms "
        f"(+{single.ms('server') - single.ms('models'):.1f}); client round trip {single.ms('client'):.1f} ms"
    )
    if with_phone_photos:
        click.echo(
            f"12 MP JPEG decode: full size {full_ms:.0f} ms, service (reduced for a 640 px detector) "
            f"{reduced_ms:.0f} ms = {reduced_ms / full_ms:.2f} of full"
        )
    click.echo(f"load: {load.summary()}; 1-minute load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
