"""CSV export of a batch in the spec's 14 columns, produced row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from service.db import batches as batch_queries

CSV_COLUMNS = (
    "Timestamp",
    "Filename",
    "Domain",
    "Recognized",
    "Primary Person",
    "Primary Confidence (%)",
    "Match #1 Person",
    "Match #1 Confidence (%)",
    "Match #2 Person",
    "Match #2 Confidence (%)",
    "Match #3 Person",
    "Match #3 Confidence (%)",
    "Face Count",
    "Processing Time (ms)",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 1000


class ExportRow(Protocol):
    """An entry as ``service.db.batches.EXPORT_COLUMNS`` selects it, in that order."""

    def __iter__(self) -> Iterator[Any]: ...


def safe_text(value: str | None) -> str:
    """Text cell a spreadsheet will not run as a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def csv_row(entry: ExportRow, domain: str) -> list[str]:
    """One entry in the spec's column order (``domain`` is already made spreadsheet-safe by the caller)."""
    (timestamp, filename, recognized, person, confidence,
     p1, c1, p2, c2, p3, c3, face_count, processing_ms) = entry  # fmt: skip
    return [
        timestamp.isoformat(timespec="microseconds"),
        safe_text(filename),
        domain,
        "Yes" if recognized else "No",
        safe_text(person) if recognized else "Unknown",
        _number(confidence),
        safe_text(p1),
        _number(c1),
        safe_text(p2),
        _number(c2),
        safe_text(p3),
        _number(c3),
        str(face_count),
        str(processing_ms),
    ]


def csv_text(entries: Iterable[ExportRow], domain: str, *, header: bool) -> bytes:
    """Rows as CSV (UTF-8), with the header line first when ``header``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    safe_domain = safe_text(domain)
    writer.writerows(csv_row(entry, safe_domain) for entry in entries)
    return buffer.getvalue().encode("utf-8")


def stream_csv(
    sessions: sessionmaker[Session], batch_id: str, domain: str, *, rows_per_chunk: int = ROWS_PER_CHUNK
) -> Iterator[bytes]:
    """A batch's CSV, header first, in chunks of ``rows_per_chunk`` rows.

    Each chunk is read with its own short-lived session whose connection is back in the pool before the
    chunk is yielded: a client that reads slowly (or never) holds no database connection while the
    server waits to send, however many such downloads are open.
    """
    after: tuple[int, int] | None = None
    header = True
    while True:
        with sessions() as session:
            page = batch_queries.export_page(session, batch_id, after, rows_per_chunk)
        if page.rows or header:
            yield csv_text(page.rows, domain, header=header)
        if page.after is None or len(page.rows) < rows_per_chunk:
            return
        after, header = page.after, False


def csv_chunks(entries: Iterable[ExportRow], domain: str, *, header: bool = True) -> Iterator[bytes]:
    """The CSV (UTF-8, header line first unless ``header`` is false) in chunks of about a thousand rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    safe_domain = safe_text(domain)
    rows: list[list[str]] = []
    for entry in entries:
        rows.append(csv_row(entry, safe_domain))
        if len(rows) == ROWS_PER_CHUNK:
            writer.writerows(rows)
            rows.clear()
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(rows)
    yield buffer.getvalue().encode("utf-8")


FACE_CSV_COLUMNS = (
    "Timestamp",
    "Filename",
    "Face",
    "Left",
    "Top",
    "Right",
    "Bottom",
    "Person",
    "Confidence (%)",
    "Match #1 Person",
    "Match #1 Confidence (%)",
    "Match #2 Person",
    "Match #2 Confidence (%)",
    "Match #3 Person",
    "Match #3 Confidence (%)",
    "Corrected",
)


def face_csv_row(face: Iterable[Any]) -> list[str]:
    """One face in FACE_CSV_COLUMNS order (faces are numbered from 1, largest first)."""
    timestamp, filename, number, x1, y1, x2, y2, person, confidence, matches, corrected = face
    stored = matches if not isinstance(matches, str) else json.loads(matches)
    columns = []
    for match in [*(stored or [])[:3], None, None, None][:3]:
        columns += [safe_text(match["person"]), _number(match["confidence"])] if match else ["", ""]
    return [
        timestamp.isoformat(timespec="microseconds"),
        safe_text(filename),
        str(number + 1),
        *(f"{v:.1f}" for v in (x1, y1, x2, y2)),
        safe_text(person) if person is not None else "Unknown",
        _number(confidence),
        *columns,
        "Yes" if corrected else "No",
    ]


def stream_faces_csv(
    sessions: sessionmaker[Session], batch_id: str, *, rows_per_chunk: int = ROWS_PER_CHUNK
) -> Iterator[bytes]:
    """A batch's faces as CSV, one row per recognised face, header first, read from SQL chunk by chunk on
    short-lived sessions (as :func:`stream_csv`)."""
    after: int | None = None
    header = True
    while True:
        with sessions() as session:
            rows, last = batch_queries.face_export_page(session, batch_id, after, rows_per_chunk)
        if rows or header:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            if header:
                writer.writerow(FACE_CSV_COLUMNS)
            writer.writerows(face_csv_row(row) for row in rows)
            yield buffer.getvalue().encode("utf-8")
        if last is None or len(rows) < rows_per_chunk:
            return
        after, header = last, False
