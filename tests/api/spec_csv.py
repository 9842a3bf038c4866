"""The spec document's "CSV Format" table, read from the document itself (not from the code's constant)."""

from __future__ import annotations

from tests.api.spec_client import SPEC


def spec_csv_header() -> list[str]:
    """The column names of the spec's "CSV Format" table, in the spec's order."""
    section = SPEC.read_text(encoding="utf-8").split("**CSV Format:**", 1)[1]
    header_line = next(line for line in section.splitlines() if line.startswith("|"))
    return [cell.strip() for cell in header_line.strip().strip("|").split("|")]
