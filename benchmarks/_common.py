"""Helpers shared by the benchmark scripts: photo sets, a live server in a subprocess, memory readings."""

from __future__ import annotations

import io
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "faces"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def machine() -> str:
    """One line describing this machine."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def shared_photos(count: int) -> list[Path]:
    """The shared face photos, repeated in a fixed order up to ``count``."""
    photos = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return list(itertools.islice(itertools.cycle(photos), count))


def phone_photos(count: int, folder: Path) -> list[Path]:
    """12 MP (4000x3000) JPEGs made by upscaling shared photos, like a phone camera's."""
    sources = [
        FACES / "face_recognition" / "examples" / "knn_examples" / "test" / "obama1.jpg",
        FACES / "face_recognition" / "examples" / "knn_examples" / "test" / "johnsnow_test1.jpg",
        FACES / "facenet_pytorch" / "data" / "test_images" / "paul_rudd" / "1.jpg",
    ]
    made = []
    for index, source in enumerate(sources):
        target = folder / f"phone_{index}.jpg"
        Image.open(source).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(
            target, "JPEG", quality=90
        )
        made.append(target)
    return list(itertools.islice(itertools.cycle(made), count))


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    started_in: float

    def cli(self, *args: str) -> str:
        """Run a facerec command against the server's database; returns its stdout."""
        return subprocess.run(
            [sys.executable, "-m", "service", *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout


@contextmanager
def live_server(port: int = 8765, **settings: str) -> Iterator[Server]:
    """``facerec serve`` on a fresh SQLite database in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "FACEREC_DATABASE_URL": f"sqlite:///{folder}/bench.db",
            "FACEREC_STORAGE_DIR": f"{folder}/storage",
            "FACEREC_INDEX_DIR": f"{folder}/index",
            "FACEREC_LOG_LEVEL": "WARNING",
            **{f"FACEREC_{k.upper()}": v for k, v in settings.items()},
        }
        subprocess.run([sys.executable, "-m", "service", "db", "upgrade"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env={**env, "FACEREC_AUTO_MIGRATE": "false"},
        )
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{url}/api/batch-photos/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.02)
        try:
            yield Server(url, process, env, time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)


def multipart(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """``photos[]`` parts for httpx."""
    return [("photos[]", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
