"""The ledger's rows as an Arrow table, and one Parquet part written from them.

Kept apart from :mod:`certdesk.outbox_columnar` so that the daemon imports pyarrow only
when it first writes a part. The table is parsed from the rows' CSV text, as ledger.csv
holds them, by pyarrow's CSV reader: building arrays from Python lists (``pa.array``)
makes pyarrow import pandas, 50 MB more in the daemon for nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .records import LEDGER_COLUMNS, csv_line

# pyarrow turns SIGINT and SIGTERM into a cancellation of the read in progress (and an
# error) instead of letting them reach the process: the daemon's own handlers decide
# what a signal means (finish the requests in hand, then stop).
pa.enable_signal_handlers(False)

__all__ = ["LEDGER_SCHEMA", "ledger_table", "release_memory", "write_part"]

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_DICTIONARY = pa.dictionary(pa.int8(), pa.string())
_TYPES = {
    "Stato": _DICTIONARY,
    "Motivazione": _DICTIONARY,
    "DataRichiesta": _TIMESTAMP,
    "DataScadenza": _TIMESTAMP,
    "DataAnnullamento": _TIMESTAMP,
}
#: The copy's columns: ledger.csv's, in its order, typed.
LEDGER_SCHEMA = pa.schema([(name, _TYPES.get(name, pa.string())) for name in LEDGER_COLUMNS])

# Read as text or UTC times (ISO 8601 with a Z, as every certdesk file writes them); the
# dictionary columns are encoded after. An empty cell is a null, as in load_ledger.
_CONVERT = pacsv.ConvertOptions(
    column_types={f.name: (_TIMESTAMP if f.type == _TIMESTAMP else pa.string())
                  for f in LEDGER_SCHEMA},
    strings_can_be_null=True,
)
_READ = pacsv.ReadOptions(column_names=list(LEDGER_COLUMNS), use_threads=False)


def ledger_table(rows: Sequence[Sequence[str]]) -> pa.Table:
    """ledger.csv's rows (its fields as text) as a table of :data:`LEDGER_SCHEMA`."""
    if not rows:
        return pa.Table.from_batches([], schema=LEDGER_SCHEMA)
    text = "".join(csv_line(row) for row in rows).encode("utf-8")
    table = pacsv.read_csv(io.BytesIO(text), read_options=_READ, convert_options=_CONVERT)
    for index, field in enumerate(LEDGER_SCHEMA):
        if field.type == _DICTIONARY:
            encoded = pc.dictionary_encode(table.column(index)).cast(_DICTIONARY)
            table = table.set_column(index, field, encoded)
    return table


def write_part(rows: Sequence[Sequence[str]], path: Path) -> None:
    """``rows`` as one Parquet file at ``path`` (an aside: the caller renames it), synced."""
    pq.write_table(ledger_table(rows), path, compression="zstd", compression_level=1)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def release_memory() -> None:
    """Give back to the system what Arrow's allocator keeps after a rebuild (a million
    rows: tens of megabytes the daemon would otherwise hold for ever)."""
    pa.default_memory_pool().release_unused()
