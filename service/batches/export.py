"""CSV export of a batch in the spec's 14 columns, produced row by row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from service.db.models import BatchEntry

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
ROWS_PER_CHUNK = 500


def format_timestamp(value: object) -> str:
    """ISO 8601 with microseconds, as the spec shows (``2023-12-15T14:30:22.123456``)."""
    return f"{value:%Y-%m-%dT%H:%M:%S.%f}"


def safe_text(value: str | None) -> str:
    """Text cell a spreadsheet will not run as a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def csv_row(entry: BatchEntry, domain: str) -> list[str]:
    """One entry in the spec's column order."""
    return [
        format_timestamp(entry.timestamp),
        safe_text(entry.filename),
        safe_text(domain),
        "Yes" if entry.recognized else "No",
        safe_text(entry.primary_person) if entry.recognized else "Unknown",
        _number(entry.primary_confidence),
        safe_text(entry.match1_person),
        _number(entry.match1_confidence),
        safe_text(entry.match2_person),
        _number(entry.match2_confidence),
        safe_text(entry.match3_person),
        _number(entry.match3_confidence),
        str(entry.face_count),
        str(entry.processing_time_ms),
    ]


def csv_chunks(entries: Iterable[BatchEntry], domain: str, *, header: bool = True) -> Iterator[bytes]:
    """The CSV (UTF-8, header line first unless ``header`` is false) in chunks of a few hundred rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for count, entry in enumerate(entries, start=1):
        writer.writerow(csv_row(entry, domain))
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
