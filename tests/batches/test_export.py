"""CSV cells are safe to open in a spreadsheet."""

from __future__ import annotations

import pytest

from service.batches.export import CSV_COLUMNS, safe_text


@pytest.mark.parametrize("value", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_formula_like_text_is_prefixed_with_a_quote(value: str) -> None:
    assert safe_text(value) == "'" + value


@pytest.mark.parametrize("value", ["photo.jpg", "John Doe", "a=b.jpg", ""])
def test_ordinary_text_is_unchanged(value: str) -> None:
    assert safe_text(value) == value


def test_the_csv_has_the_spec_14_columns_in_order() -> None:
    assert len(CSV_COLUMNS) == 14
    assert CSV_COLUMNS[0] == "Timestamp"
    assert CSV_COLUMNS[-1] == "Processing Time (ms)"
