"""CSV export rules: how an unrecognised photo reads, empty cells, line endings, and chunking that neither loses,
repeats nor reorders a row (the HTTP export reads SQL page by page; the command line writes chunks)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.batches.export import (
    CSV_COLUMNS,
    FACE_CSV_COLUMNS,
    csv_chunks,
    csv_row,
    csv_text,
    face_csv_row,
    stream_csv,
)
from service.common.time import format_timestamp
from tests.batches.stored import store_batch

WHEN = datetime(2023, 12, 15, 14, 30, 24, 789012)


def unrecognised(**changes: Any) -> tuple[Any, ...]:
    """The spec's photo3 row: no face, nothing recognised (EXPORT_COLUMNS order)."""
    row = dict(
        timestamp=WHEN,
        filename="photo3.jpg",
        recognized=False,
        person=None,
        confidence=None,
        p1=None,
        c1=None,
        p2=None,
        c2=None,
        p3=None,
        c3=None,
        face_count=0,
        processing_ms=156,
    )
    row.update(changes)
    return tuple(row.values())


def parsed(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_an_unrecognised_photo_reads_no_unknown_and_leaves_the_number_cells_empty() -> None:
    # The spec's third example row.
    assert csv_row(unrecognised(), "example.com") == [
        "2023-12-15T14:30:24.789012",
        "photo3.jpg",
        "example.com",
        "No",
        "Unknown",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "0",
        "156",
    ]


def test_an_unrecognised_photo_is_unknown_even_with_a_best_guess_and_keeps_its_matches() -> None:
    row = csv_row(unrecognised(person="Ann", confidence=None, p1="Ann", c1=41.25, face_count=1), "example.com")
    assert row[3:8] == ["No", "Unknown", "", "Ann", "41.2"]


def test_confidences_have_one_decimal() -> None:
    row = csv_row(
        unrecognised(recognized=True, person="Ann", confidence=85.0, p1="Ann", c1=85.0, p2="Bob", c2=7.25), "d"
    )
    assert (row[5], row[7], row[9]) == ("85.0", "85.0", "7.2")


def test_timestamps_are_iso_8601_with_microseconds() -> None:
    assert format_timestamp(datetime(2023, 12, 15, 14, 30, 22)) == "2023-12-15T14:30:22.000000"
    assert csv_row(unrecognised(timestamp=datetime(2023, 1, 2, 3, 4, 5)), "d")[0] == "2023-01-02T03:04:05.000000"


@pytest.mark.parametrize("header", [True, False])
def test_csv_lines_end_with_crlf_and_the_header_comes_only_when_asked(header: bool) -> None:
    text = csv_text([unrecognised()], "example.com", header=header).decode("utf-8")
    lines = text.split("\r\n")
    assert lines[-1] == ""  # the last line ends with CRLF too
    assert "\n" not in text.replace("\r\n", "")
    assert (lines[0] == ",".join(CSV_COLUMNS)) is header
    assert len(lines) == (3 if header else 2)


def test_the_command_line_writer_ends_lines_with_crlf_too() -> None:
    text = b"".join(csv_chunks([unrecognised()] * 3, "example.com")).decode("utf-8")
    assert text.count("\r\n") == 4
    assert "\n" not in text.replace("\r\n", "")


def test_the_command_line_writer_writes_about_a_thousand_rows_a_chunk_each_row_once_in_order() -> None:
    entries = [unrecognised(filename=f"p{i:05d}.jpg") for i in range(2001)]
    chunks = list(csv_chunks(entries, "example.com"))
    assert len(chunks) == 3
    assert [len(parsed(chunk)) for chunk in chunks] == [1001, 1000, 1]  # the header rides in the first
    assert b"".join(chunks) == csv_text(entries, "example.com", header=True)  # nothing lost, doubled or moved


def test_the_command_line_writer_can_leave_out_the_header_for_a_later_part() -> None:
    rows = parsed(b"".join(csv_chunks([unrecognised()], "example.com", header=False)))
    assert [row[1] for row in rows] == ["photo3.jpg"]


def test_an_empty_export_from_the_command_line_is_just_the_header() -> None:
    assert b"".join(csv_chunks([], "example.com")) == (",".join(CSV_COLUMNS) + "\r\n").encode()


@pytest.mark.parametrize("rows", [0, 1, 4, 5, 6, 11])
def test_the_http_export_has_the_header_once_and_every_row_once_in_upload_order(
    sessions: sessionmaker[Session], rows: int
) -> None:
    store_batch(sessions, "20231215_143022_1234", rows, shuffled=True)
    chunks = list(stream_csv(sessions, "20231215_143022_1234", "example.com", rows_per_chunk=5))
    assert all(chunks)  # no empty chunk
    assert len(chunks) == max(1, -(-rows // 5))
    table = parsed(b"".join(chunks))
    assert table[0] == list(CSV_COLUMNS)
    assert [row[1] for row in table[1:]] == [f"photo_{p:05d}.jpg" for p in range(rows)]
    assert all(row[2] == "example.com" for row in table[1:])


def test_the_http_export_of_another_batch_is_only_the_header(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_1234", 3)
    chunks = list(stream_csv(sessions, "20231215_143022_9999", "example.com", rows_per_chunk=2))
    assert chunks == [(",".join(CSV_COLUMNS) + "\r\n").encode()]


def test_the_http_export_reads_a_thousand_rows_a_chunk_by_default(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_1234", 1001)
    chunks = list(stream_csv(sessions, "20231215_143022_1234", "=cmd"))
    assert [len(parsed(chunk)) for chunk in chunks] == [1001, 1]
    assert parsed(chunks[1])[0][2] == "'=cmd"  # the domain cell is neutralised in every chunk


def test_a_short_page_ends_the_http_export_without_another_query(sessions: sessionmaker[Session]) -> None:
    store_batch(sessions, "20231215_143022_1234", 7)
    opened = []

    def counting_sessions() -> Session:
        opened.append(1)
        return sessions()

    chunks = list(stream_csv(counting_sessions, "20231215_143022_1234", "example.com", rows_per_chunk=5))  # type: ignore[arg-type]
    assert [len(parsed(chunk)) for chunk in chunks] == [6, 2]
    assert len(opened) == 2


def test_a_face_row_is_formula_safe_and_numbers_faces_from_one() -> None:
    row = face_csv_row(
        (
            datetime(2026, 1, 2, 3, 4, 5, 6),
            "=HYPERLINK(x).jpg",
            1,
            1.0,
            2.0,
            3.25,
            4.0,
            "+Eve",
            91.23,
            [{"rank": 1, "person": "@Mallory", "confidence": 91.2}],
            True,
        )
    )
    assert row == [
        "2026-01-02T03:04:05.000006",
        "'=HYPERLINK(x).jpg",
        "2",
        "1.0",
        "2.0",
        "3.2",
        "4.0",
        "'+Eve",
        "91.2",
        "'@Mallory",
        "91.2",
        "",
        "",
        "",
        "",
        "Yes",
    ]
    assert len(row) == len(FACE_CSV_COLUMNS)


def test_an_unknown_face_row_says_unknown_with_no_confidence() -> None:
    row = face_csv_row((datetime(2026, 1, 1), "a.jpg", 0, 0.0, 0.0, 1.0, 1.0, None, None, "[]", False))
    assert row[7:9] == ["Unknown", ""]
    assert row[-1] == "No"
