"""Hostile uploads against a live server: time, what was processed, and the server's resident memory.

Cases (issue #13): a batch of 640x640 PNGs of one face tiled hundreds of times; token A flooding the
queue with such batches while token B sends one photo (fair scheduling); blank 79-MP PNGs that
compress to a few hundred KB (pixel budget); a 1 GB text field streamed to the upload route (field
cap). A server is started with its default limits on a temporary SQLite database, in a subprocess
whose memory is read from /proc (peak per case: VmHWM reset before it, VmRSS sampled meanwhile).

Usage: python benchmarks/hostile.py [--cases 1,2,3,4] [--tile 32] [--photos 25] [--flood 5] [--blank 10]
       [--blank-size 10000x7900] [--field-bytes 1000000000]
"""

from __future__ import annotations

import io
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import click
import httpx
from PIL import Image

from benchmarks._common import FACES, current_rss_mb, live_server, machine, peak_rss_mb, shared_photos

TILE_SOURCE = FACES / "face_recognition" / "examples" / "obama.jpg"
SINGLE_PHOTO = FACES / "face_recognition" / "examples" / "knn_examples" / "test" / "obama1.jpg"
GALLERY = FACES / "face_recognition" / "examples" / "knn_examples" / "train"
RECOGNIZE = "/api/batch-photos/recognize"
TIMEOUT = 900.0


class MemoryWatch:
    """The server's resident memory before a case and its peak during it (VmHWM reset first, VmRSS sampled)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid = pid
        self.every = every
        self.before = 0.0
        self.peak = 0.0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mb(self.pid))
            time.sleep(self.every)

    @property
    def delta(self) -> float:
        """Peak minus the resident memory before the case, in MB."""
        return self.peak - self.before

    def __enter__(self) -> MemoryWatch:
        self.before = self.peak = current_rss_mb(self.pid)
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self._sampler.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._sampler.join()
        if self.hwm_reset:
            self.peak = max(self.peak, peak_rss_mb(self.pid))


@dataclass
class Answer:
    """One HTTP answer and when it came."""

    status: int
    started: float
    finished: float
    body: Any
    retry_after: str | None = None

    @property
    def seconds(self) -> float:
        """Latency from sending to the whole answer."""
        return self.finished - self.started


@dataclass
class Row:
    """One line of the summary table."""

    case: str
    seconds: float
    outcome: str
    memory: MemoryWatch


@dataclass
class FaceCounts:
    """Faces of a batch as its log tells them."""

    detected: int = 0  # every face the detector found (the entries' face_count)
    recognised: int = 0  # faces embedded and searched (within the limits)
    matched: int = 0  # of those, faces whose best match reached the threshold
    per_photo: list[tuple[int, int]] = field(default_factory=list)  # (detected, recognised)


def post_batch(url: str, token: str, files: list[tuple[str, bytes]]) -> Answer:
    """POST ``files`` as ``photos[]``; a transport error is status 0."""
    parts = [("photos[]", (name, data, "application/octet-stream")) for name, data in files]
    started = time.perf_counter()
    try:
        response = httpx.post(f"{url}{RECOGNIZE}", files=parts, headers={"Authorization": token}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return Answer(0, started, time.perf_counter(), repr(exc))
    finished = time.perf_counter()
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:300]
    return Answer(response.status_code, started, finished, body, response.headers.get("Retry-After"))


def batch_faces(url: str, token: str, batch_id: str, threshold: float = 70.0) -> FaceCounts:
    """Count the faces of a stored batch from its log."""
    response = httpx.get(f"{url}/api/batch-photos/logs/{batch_id}", headers={"Authorization": token}, timeout=120)
    response.raise_for_status()
    counts = FaceCounts()
    for entry in response.json()["entries"]:
        found = entry["metadata"]["face_count"]
        kept = len(entry["faces"])
        counts.detected += found
        counts.recognised += kept
        counts.matched += sum(1 for f in entry["faces"] if f["matches"] and f["matches"][0]["confidence"] >= threshold)
        counts.per_photo.append((found, kept))
    return counts


def png_bytes(image: Image.Image) -> bytes:
    """An image as a maximally compressed PNG."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True, compress_level=9)
    return buffer.getvalue()


def tiled_face(source: Path, box: tuple[float, float, float, float], tile: int, side: int = 640) -> bytes:
    """A ``side`` x ``side`` PNG of the face in ``box`` (with a margin) repeated in ``tile``-pixel squares."""
    x1, y1, x2, y2 = box
    half = max(x2 - x1, y2 - y1) * 0.65
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    face = Image.open(source).convert("RGB").crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
    small = face.resize((tile, tile), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (side, side))
    for left in range(0, side, tile):
        for top in range(0, side, tile):
            canvas.paste(small, (left, top))
    return png_bytes(canvas)


def blank_png(width: int, height: int) -> bytes:
    """A solid-colour RGB PNG: many pixels, few bytes."""
    return png_bytes(Image.new("RGB", (width, height), (200, 180, 160)))


def flood(
    url: str, token_a: str, token_b: str, a_files: list[tuple[str, bytes]], b_file: tuple[str, bytes], a_requests: int
) -> tuple[list[Answer], Answer]:
    """Token A sends ``a_requests`` batches at once; a moment later token B sends one photo."""
    a_answers: list[Answer] = []
    lock = threading.Lock()

    def send_a() -> None:
        answer = post_batch(url, token_a, a_files)
        with lock:
            a_answers.append(answer)

    threads = [threading.Thread(target=send_a) for _ in range(a_requests)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # A's small uploads are received and queued by then
    b_answer = post_batch(url, token_b, [b_file])
    for thread in threads:
        thread.join()
    return sorted(a_answers, key=lambda a: a.finished), b_answer


@dataclass
class FieldAnswer:
    """The answer to a request with an oversized text field."""

    status: int
    seconds: float
    body_bytes_sent: int  # handed to the kernel before the answer (loopback buffers hold a few MB of it)
    detail: str


def read_answer(sock: socket.socket, most: int = 16384) -> bytes:
    """An HTTP answer's head and (up to ``most`` bytes of) its body, as far as the server sends it."""
    answer = b""
    try:
        while b"\r\n\r\n" not in answer and len(answer) < most:
            data = sock.recv(65536)
            if not data:
                return answer
            answer += data
        head, _, body = answer.partition(b"\r\n\r\n")
        declared = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
        length = min(most, int(declared[0].split(b":")[1])) if declared else 0
        while len(body) < length:
            data = sock.recv(65536)
            if not data:
                break
            body += data
        return head + b"\r\n\r\n" + body
    except OSError as exc:
        return answer + f"\r\n(read error: {exc!r})".encode()


def oversized_field(url: str, token: str, size: int, chunked: bool, block: int = 64 * 1024) -> FieldAnswer:
    """Stream a multipart body whose ``threshold`` field is ``size`` bytes, stopping when the server answers."""
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    boundary = "hostile-benchmark-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="threshold"\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(head) + size + len(tail)}"
    request = (
        f"POST {RECOGNIZE} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{length}\r\n\r\n"
    ).encode()

    def pieces() -> Iterator[bytes]:
        yield head
        filler = b"7" * block
        left = size
        while left > 0:
            yield filler[: min(left, block)]
            left -= block
        yield tail

    sent = 0
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(request)
        started = time.perf_counter()
        finished_sending = True
        for piece in pieces():
            if select.select([sock], [], [], 0)[0]:
                finished_sending = False
                break  # the server has answered
            framed = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
            try:
                sock.sendall(framed)
            except OSError:
                finished_sending = False
                break
            sent += len(piece)
        if finished_sending and chunked:
            sock.sendall(b"0\r\n\r\n")
        answer = read_answer(sock)
        seconds = time.perf_counter() - started
    status_line, _, rest = answer.partition(b"\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        status = 0
    body = rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")
    return FieldAnswer(status, seconds, sent, body[:200] or status_line.decode("latin-1"))


def describe_errors(body: Any) -> tuple[int, int, list[str]]:
    """Photos processed, photos refused by the pixel budget, and the first distinct error texts of an answer."""
    if not isinstance(body, dict):
        return 0, 0, [str(body)[:200]]
    errors = [e["error"] for e in body.get("errors", [])]
    budget = sum(1 for e in errors if "pixel budget" in e)
    return int(body.get("total_processed", 0)), budget, list(dict.fromkeys(errors))[:3]


@dataclass
class Run:
    """A live server with two tokens of one domain, and what the cases found."""

    url: str
    pid: int
    token_a: str
    token_b: str
    b_file: tuple[str, bytes]
    b_alone: float = 0.0
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    a_batches: list[float] = field(default_factory=list)  # seconds each tiled batch held the worker


def face_box(run: Run, source: Path) -> tuple[float, float, float, float]:
    """The largest face of ``source`` as the server finds it."""
    answer = post_batch(run.url, run.token_a, [(source.name, source.read_bytes())])
    if answer.status != 200:
        raise click.ClickException(f"batch of {source.name} failed: {answer.status} {answer.body}")
    log = httpx.get(
        f"{run.url}/api/batch-photos/logs/{answer.body['batch_id']}",
        headers={"Authorization": run.token_a},
        timeout=60,
    ).json()
    x1, y1, x2, y2 = log["entries"][0]["faces"][0]["box"]
    return float(x1), float(y1), float(x2), float(y2)


def tiled_batch(run: Run, a_files: list[tuple[str, bytes]], tile: int, tiled_kb: float) -> None:
    """Case 1: one batch of tiled-face PNGs."""
    with MemoryWatch(run.pid) as memory:
        answer = post_batch(run.url, run.token_a, a_files)
    if answer.status != 200:
        raise click.ClickException(f"tiled batch failed: {answer.status} {answer.body}")
    faces = batch_faces(run.url, run.token_a, answer.body["batch_id"])
    run.a_batches.append(answer.seconds)
    first = faces.per_photo[0] if faces.per_photo else (0, 0)
    run.rows.append(
        Row(
            f"1. {len(a_files)} tiled PNGs in 1 batch",
            answer.seconds,
            f"{faces.detected:,} faces found, {faces.recognised:,} recognised ({faces.matched:,} matched)",
            memory,
        )
    )
    run.notes.append(
        f"1. tiled PNG: 640x640, {640 // tile}x{640 // tile} tiles of {tile} px, {tiled_kb:.0f} KB; the detector "
        f"finds {first[0]} faces in one (no limit), {first[1]} recognised with the default limits; "
        f"(found, recognised) per photo: {sorted(set(faces.per_photo), reverse=True)}"
    )


def fairness(run: Run, a_files: list[tuple[str, bytes]], flood_size: int) -> None:
    """Case 2: B's one photo while A has one batch, then while A floods the queue."""
    for label, a_requests in (("2a", 1), ("2b", flood_size)):
        with MemoryWatch(run.pid) as memory:
            a_answers, b_answer = flood(run.url, run.token_a, run.token_b, a_files, run.b_file, a_requests)
        accepted = [a for a in a_answers if a.status == 200]
        refused = [a for a in a_answers if a.status != 200]
        # Each accepted A batch held the worker from the previous A answer (or its start) to its own answer.
        previous = min((a.started for a in accepted), default=0.0)
        held = []
        for answer in accepted:
            held.append(answer.finished - max(previous, answer.started))
            previous = answer.finished
        run.a_batches.extend(held)
        before_b = sum(1 for a in accepted if a.finished < b_answer.finished)
        run.rows.append(
            Row(
                f"{label}. A: {a_requests} tiled batch{'es at once' if a_requests > 1 else ''}; B: 1 photo",
                max(a.finished for a in [*a_answers, b_answer]) - min(a.started for a in a_answers),
                f"B {b_answer.status} in {b_answer.seconds:.1f} s, after {before_b} of A's {len(accepted)} batches; "
                f"A {len(accepted)}x200, {len(refused)} refused",
                memory,
            )
        )
        run.notes.append(
            f"{label}. A's answers (s, in order): {[round(a.seconds, 1) for a in a_answers]}, statuses "
            f"{[a.status for a in a_answers]}; A's batches held the worker {[round(h, 1) for h in held]} s; "
            f"B (sent 2 s after A) answered in {b_answer.seconds:.1f} s (alone: {run.b_alone:.2f} s)"
        )
        if refused:
            run.notes.append(
                f"    A refused with Retry-After {[a.retry_after for a in refused]}: {str(refused[0].body)[:160]}"
            )


def blank_batch(run: Run, count: int, width: int, height: int) -> None:
    """Case 3: blank PNGs of many pixels and few bytes, in one batch."""
    data = blank_png(width, height)
    with MemoryWatch(run.pid) as memory:
        answer = post_batch(run.url, run.token_a, [(f"blank_{i:02d}.png", data) for i in range(count)])
    processed, by_budget, errors = describe_errors(answer.body)
    run.rows.append(
        Row(
            f"3. {count} blank {width}x{height} PNGs",
            answer.seconds,
            f"{answer.status}: {processed} processed, {by_budget} refused by the pixel budget",
            memory,
        )
    )
    run.notes.append(
        f"3. blank PNG: {width}x{height} ({width * height / 1e6:.0f} MP decoded each, "
        f"{count * width * height / 1e6:.0f} MP in all), {len(data) / 1024:.0f} KB; errors: {errors}"
    )


def huge_field(run: Run, size: int) -> None:
    """Case 4: one text field of ``size`` bytes, streamed chunked and with a declared Content-Length."""
    for chunked in (True, False):
        framing = "chunked" if chunked else "Content-Length"
        with MemoryWatch(run.pid) as memory:
            answer = oversized_field(run.url, run.token_a, size, chunked)
        run.rows.append(
            Row(
                f"4. {size / 1e9:g} GB text field ({framing})",
                answer.seconds,
                f"{answer.status} after {answer.body_bytes_sent / 1024:,.0f} KiB of the body sent",
                memory,
            )
        )
        run.notes.append(f"4. {framing}: {answer.detail}")


@click.command()
@click.option("--cases", default="1,2,3,4", show_default=True, help="which cases to run (case 5 is always printed)")
@click.option("--tile", default=32, show_default=True, help="side in pixels of one face tile of the 640x640 PNG")
@click.option("--photos", default=25, show_default=True, help="tiled photos per batch")
@click.option("--flood", "flood_size", default=5, show_default=True, help="batches token A sends at once (cap: 4)")
@click.option("--blank", default=10, show_default=True, help="blank PNGs in one batch")
@click.option("--blank-size", default="10000x7900", show_default=True, help="WIDTHxHEIGHT of the blank PNGs")
@click.option("--field-bytes", default=1_000_000_000, show_default=True, help="size of the streamed text field")
@click.option("--port", default=8768, show_default=True)
def main(
    cases: str, tile: int, photos: int, flood_size: int, blank: int, blank_size: str, field_bytes: int, port: int
) -> None:
    """Print what each hostile case cost the server (time, work done or refused, memory)."""
    chosen = {c.strip() for c in cases.split(",")}
    load_before = os.getloadavg()
    with live_server(port=port) as server:
        pid = server.process.pid
        startup_rss, startup_hwm = current_rss_mb(pid), peak_rss_mb(pid)
        with MemoryWatch(pid) as whole_run:
            tokens = [
                server.cli("token", "create", "--domain", "hostile", "--name", name).strip().splitlines()[-1]
                for name in ("A", "B")
            ]
            server.cli("enroll", str(GALLERY), "--domain", "hostile")
            run = Run(server.url, pid, tokens[0], tokens[1], (SINGLE_PHOTO.name, SINGLE_PHOTO.read_bytes()))
            box = face_box(run, TILE_SOURCE)
            # An ordinary batch first, so the memory it takes (model arenas, batched embedding) is in the baseline.
            ordinary = post_batch(run.url, run.token_a, [(p.name, p.read_bytes()) for p in shared_photos(20)])
            run.b_alone = min(post_batch(run.url, run.token_b, [run.b_file]).seconds for _ in range(3))
            ready_rss = current_rss_mb(pid)

            tiled = tiled_face(TILE_SOURCE, box, tile)
            a_files = [(f"tiled_{i:03d}.png", tiled) for i in range(photos)]
            if "1" in chosen:
                tiled_batch(run, a_files, tile, len(tiled) / 1024)
            if "2" in chosen:
                fairness(run, a_files, flood_size)
            if "3" in chosen:
                width, height = (int(v) for v in blank_size.lower().split("x"))
                blank_batch(run, blank, width, height)
            if "4" in chosen:
                huge_field(run, field_bytes)
            healthy = httpx.get(f"{run.url}/api/batch-photos/health", timeout=30).status_code
        end_rss = current_rss_mb(pid)

    click.echo(f"machine: {machine()}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    click.echo(
        f"server: default limits; RSS after start-up {startup_rss:.0f} MB (start-up peak {startup_hwm:.0f} MB); "
        f"warm-up: an ordinary batch of 20 shared photos took {ordinary.seconds:.1f} s ({ordinary.status})"
    )
    header = f"{'case':<46} {'seconds':>8}  {'RSS before':>10} {'peak':>6} {'delta':>6}  outcome"
    click.echo(header)
    click.echo("-" * len(header))
    for row in run.rows:
        m = row.memory
        click.echo(
            f"{row.case:<46} {row.seconds:>8.2f}  {m.before:>7.0f} MB {m.peak:>6.0f} {m.delta:>+6.0f}  {row.outcome}"
        )
    for note in run.notes:
        click.echo(note)
    if run.a_batches:
        ordered = sorted(run.a_batches)
        click.echo(
            f"one tiled batch held the worker {ordered[0]:.1f}-{ordered[-1]:.1f} s "
            f"(median {ordered[len(ordered) // 2]:.1f} s over {len(ordered)} batches; the machine's load varied)"
        )
    run_peak = max([whole_run.peak, *(row.memory.peak for row in run.rows)])
    click.echo(
        f"5. server RSS: {startup_rss:.0f} MB after start-up, {ready_rss:.0f} MB after enrolment and warm-up, "
        f"peak {run_peak:.0f} MB over the whole run (+{run_peak - ready_rss:.0f} MB over warm), "
        f"{end_rss:.0f} MB at the end; health after: {healthy}"
    )


if __name__ == "__main__":
    main()
