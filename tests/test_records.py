"""The CSV text of ledger and journal rows."""

from __future__ import annotations

import csv
import io
import random

from certdesk.records import csv_line


def _reference(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def test_csv_line_is_exactly_what_the_csv_module_writes() -> None:
    """The fast path (no quoting needed) and the slow one agree with csv.writer on rows
    made of plain text, empty fields, quotes, commas, newlines and non-ASCII letters."""
    rng = random.Random(7)
    alphabet = ['a', 'Z', '0', ' ', '-', ',', '"', '\n', '\r', 'è', "'", ';', '\t', '']
    rows = [[""], ["x"], ["", ""], ["a,b"], ['"'], ["a", ""], ["", "a"]]
    for _ in range(3000):
        width = rng.randint(1, 13)
        rows.append(
            ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(width)]
        )
    for row in rows:
        assert csv_line(row) == _reference(row), row
