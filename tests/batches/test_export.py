"""CSV cells are safe to open in a spreadsheet, in every text column, and the columns are the spec's."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from service.batches.export import CSV_COLUMNS, csv_chunks, csv_text, safe_text
from tests.api.spec_csv import spec_csv_header

FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]
# Where each text column's value sits in an export row (service.db.batches.EXPORT_COLUMNS order).
TEXT_FIELDS = {"Filename": 1, "Primary Person": 3, "Match #1 Person": 5, "Match #2 Person": 7, "Match #3 Person": 9}
# Both ways a CSV is written: the HTTP export (csv_text per chunk) and the command line (csv_chunks).
WRITERS: dict[str, Callable[[list[tuple[Any, ...]], str], bytes]] = {
    "http": lambda rows, domain: csv_text(rows, domain, header=True),
    "cli": lambda rows, domain: b"".join(csv_chunks(rows, domain)),
}


def export_row(**text: str) -> tuple[Any, ...]:
    """A recognised entry with three matches; ``text`` replaces text fields by column name."""
    row: list[Any] = [
        datetime(2023, 12, 15, 14, 30, 22, 123456),
        "photo.jpg",
        True,
        "Ann",
        90.0,
        "Ann",
        90.0,
        "Bob",
        40.0,
        "Cy",
        30.0,
        1,
        245,
    ]
    for column, value in text.items():
        row[TEXT_FIELDS[column]] = value
    return tuple(row)


def exported(csv_bytes: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"), newline="")))


@pytest.mark.parametrize("value", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_formula_like_text_is_prefixed_with_a_quote(value: str) -> None:
    assert safe_text(value) == "'" + value


@pytest.mark.parametrize("value", ["photo.jpg", "John Doe", "a=b.jpg", ""])
def test_ordinary_text_is_unchanged(value: str) -> None:
    assert safe_text(value) == value


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
@pytest.mark.parametrize("column", TEXT_FIELDS)
def test_every_text_column_neutralises_formula_like_text(column: str, start: str, writer: str) -> None:
    value = start + "HYPERLINK(evil)"
    [row] = exported(WRITERS[writer]([export_row(**{column: value})], "example.com"))
    assert row[column] == "'" + value


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
def test_the_domain_column_neutralises_a_formula_like_domain(start: str, writer: str) -> None:
    domain = start + "cmd.example"
    [row] = exported(WRITERS[writer]([export_row()], domain))
    assert row["Domain"] == "'" + domain


@pytest.mark.parametrize("writer", WRITERS)
def test_ordinary_rows_are_written_as_they_are(writer: str) -> None:
    [row] = exported(WRITERS[writer]([export_row()], "a-b.example"))
    assert list(row.values()) == [
        "2023-12-15T14:30:22.123456",
        "photo.jpg",
        "a-b.example",
        "Yes",
        "Ann",
        "90.0",
        "Ann",
        "90.0",
        "Bob",
        "40.0",
        "Cy",
        "30.0",
        "1",
        "245",
    ]


def test_the_csv_columns_are_the_specs_columns_word_for_word() -> None:
    assert list(CSV_COLUMNS) == spec_csv_header()
