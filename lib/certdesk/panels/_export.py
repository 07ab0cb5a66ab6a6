"""Exports of the Stato panel: the filtered table streamed to a file the browser downloads.

The rows come from the query engine in record batches and go straight to the file, so
an export of a million rows holds one batch in memory, never the table, and never
travels inside the page. Where the file goes:

- under ``certdesk admin`` (Voila), the private folder the server made and named in
  ``CERTDESK_EXPORTS``, which it serves, to the token's holder only, at
  ``certdesk/esportazioni/<name>`` (:mod:`certdesk.webapp`);
- in Jupyter, ``esportazioni/`` beside the notebook, which Jupyter serves itself.

Cells a spreadsheet would run as a formula are made inert (:func:`spreadsheet_text`).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..frame import DATE_COLUMNS, ROME

__all__ = [
    "EXCEL_MAX_ROWS",
    "FORMULA_TRIGGERS",
    "ExportFile",
    "excel_available",
    "export_target",
    "spreadsheet_text",
    "write_csv",
    "write_xlsx",
]

#: A spreadsheet takes a cell that starts with one of these for a formula (OWASP, "CSV
#: Injection"): ``=``, ``+``, ``-`` and ``@`` start one, a tab or carriage return can hide one.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = r"^[=+\-@\t\r]"

#: Rows of data an Excel sheet holds (1,048,576 rows, one of them the header).
EXCEL_MAX_ROWS = 1_048_575

#: Called after each batch with the rows written so far.
Progress = Callable[[int], None]


def spreadsheet_text(text: str) -> str:
    """``text`` as a spreadsheet cell shows it and never runs it: a cell that starts like
    a formula gets a leading single quote, as OWASP recommends."""
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def excel_available() -> bool:
    return importlib.util.find_spec("openpyxl") is not None


@dataclass(frozen=True)
class ExportFile:
    """Where an export is written, and the link that downloads it."""

    path: Path
    href: str


def export_target(stamp: datetime, suffix: str) -> ExportFile:
    """A new file name, never guessed by another page: ``certificati-<time>-<random>``."""
    name = f"certificati-{stamp.astimezone(ROME):%Y%m%d-%H%M}-{secrets.token_hex(6)}{suffix}"
    served = os.environ.get("CERTDESK_EXPORTS", "").strip()
    if served:
        return ExportFile(Path(served) / name, f"certdesk/esportazioni/{name}?download=1")
    folder = Path.cwd() / "esportazioni"
    folder.mkdir(mode=0o700, exist_ok=True)
    return ExportFile(folder / name, f"esportazioni/{name}")


def _inert(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Text cells made inert, dates as ISO 8601 UTC (ledger.csv's own format)."""
    arrays = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if field.name in DATE_COLUMNS:
            # to the second, as certdesk writes times (%S of microseconds has a fraction)
            seconds = pc.cast(column, pa.timestamp("s", tz="UTC"), safe=False)
            arrays.append(pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ"))
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            starts = pc.match_substring_regex(column, _FORMULA_START)
            quoted = pc.binary_join_element_wise("'", column, "")
            arrays.append(pc.if_else(starts, quoted, column))
        else:
            arrays.append(column)
    names = batch.schema.names
    return pa.RecordBatch.from_arrays(arrays, names=names)


def write_csv(batches: Iterable[pa.RecordBatch], path: Path, progress: Progress,
              header: Sequence[str]) -> int:
    """The batches as CSV with every cell quoted (neither ``;`` nor a bare carriage return
    can open a cell), written aside then renamed; the rows written."""
    aside = path.with_name(f".{path.name}.tmp")
    written = 0
    writer: pacsv.CSVWriter | None = None
    try:
        with open(aside, "wb") as sink:
            for batch in batches:
                inert = _inert(batch)
                if writer is None:
                    writer = pacsv.CSVWriter(
                        sink, inert.schema,
                        write_options=pacsv.WriteOptions(quoting_style="all_valid"))
                writer.write_batch(inert)
                written += batch.num_rows
                progress(written)
            if writer is not None:
                writer.close()
            else:  # no rows: the header alone
                sink.write((",".join(f'"{h}"' for h in header) + "\n").encode("utf-8"))
        os.chmod(aside, 0o600)
        os.replace(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    return written


def write_xlsx(batches: Iterable[pa.RecordBatch], path: Path, progress: Progress,
               header: Sequence[str]) -> int:
    """The batches as an Excel workbook (openpyxl's streaming writer): text made inert,
    dates in Italian wall-clock time (Excel knows no time zones); the rows written."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Certificati")
    sheet.append(list(header))
    written = 0
    for batch in batches:
        columns = [_excel_values(batch.schema.field(i).name, batch.column(i))
                   for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            sheet.append(row)
        written += batch.num_rows
        progress(written)
        if written > EXCEL_MAX_ROWS:
            raise ValueError("more rows than an Excel sheet holds")
    aside = path.with_name(f".{path.name}.tmp")
    try:
        book.save(aside)
        os.chmod(aside, 0o600)
        os.replace(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    return written


def _excel_values(name: str, column: pa.Array) -> list[object]:
    values = column.to_pylist()
    if name in DATE_COLUMNS:
        return [v.astimezone(ROME).replace(tzinfo=None) if v is not None else None
                for v in values]
    return [spreadsheet_text(v) if isinstance(v, str) else v for v in values]
