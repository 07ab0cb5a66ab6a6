"""The columnar copy of the ledger (``outbox/ledger.parquet/``) seen from outside: its rows
read back by pyarrow and turned into ``ledger.csv``'s text form, independently of the
code that wrote them (``certdesk.outbox_columnar``), and compared with ``ledger.csv``."""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: ledger.csv's columns, as the contract names them (not imported: a test must fail if
#: the code's list changes behind the CSV's back).
COLUMNS = (
    "IdOperazione", "CodiceFiscale", "Profilo", "Certificato", "Stato", "DataRichiesta",
    "DataScadenza", "Esito", "Seriale", "ImprontaSHA256", "Motivazione", "DataAnnullamento",
    "FileOrigine",
    "Emittente",
    "Canale",
)  # fmt: skip
TIMES = ("DataRichiesta", "DataScadenza", "DataAnnullamento")
DICTIONARIES = ("Stato", "Motivazione")
MANIFEST = "_certdesk.json"


def columnar_folder(home: Path) -> Path:
    return home / "outbox" / "ledger.parquet"


def csv_rows(home: Path) -> list[tuple[str, ...]]:
    """ledger.csv's data rows as text, its header checked."""
    with open(home / "outbox" / "ledger.csv", newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        assert tuple(header) == COLUMNS, header
        return [tuple(row) for row in reader]


def part_paths(home: Path) -> dict[str, Path]:
    """The parts a reader sees (``*.parquet`` not starting with ``.`` or ``_``), by name."""
    folder = columnar_folder(home)
    return {
        p.name[: -len(".parquet")]: p
        for p in sorted(folder.iterdir())
        if p.name.endswith(".parquet") and not p.name.startswith((".", "_"))
    }


def _text(name: str, value: Any) -> str:
    """One Parquet value in ledger.csv's text form; nulls are empty cells."""
    if value is None:
        return ""
    if name in TIMES:
        offset = value.utcoffset()
        assert offset == timedelta(0), (name, value)
        assert value.microsecond == 0, (name, value)
        return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert isinstance(value, str), (name, value)
    assert value != "", f"{name}: an empty string where ledger.csv has an empty cell (a null)"
    return value


def check_schema(schema: pa.Schema) -> None:
    assert tuple(schema.names) == COLUMNS, schema.names
    for field in schema:
        if field.name in TIMES:
            assert pa.types.is_timestamp(field.type), field
            assert field.type.tz in ("UTC", "+00:00"), field
        elif field.name in DICTIONARIES:
            assert pa.types.is_dictionary(field.type), field
            assert pa.types.is_string(field.type.value_type), field
        else:
            assert pa.types.is_string(field.type), field


def table_rows(table: pa.Table) -> list[tuple[str, ...]]:
    check_schema(table.schema)
    columns = [[_text(name, v) for v in table.column(name).to_pylist()] for name in COLUMNS]
    return list(zip(*columns, strict=True)) if columns else []


def parquet_rows(home: Path) -> list[tuple[str, ...]]:
    """Every row of the copy as text, read as an analyst would (``pq.read_table`` of the
    folder); [] when the copy has no part (an empty ledger)."""
    folder = columnar_folder(home)
    assert folder.is_dir(), f"{folder} is missing"
    if not part_paths(home):
        return []
    return table_rows(pq.read_table(folder))


def part_ids(path: Path) -> list[str]:
    ids: list[str] = pq.read_table(path, columns=["IdOperazione"]).column(0).to_pylist()
    return ids


def columnar_matches_csv(home: Path) -> bool:
    """For polling (a daemon catches up when idle); the reason is in the assertion."""
    try:
        assert_columnar_equals_csv(home)
    except (AssertionError, OSError, pa.ArrowException):
        return False
    return True


def assert_columnar_equals_csv(home: Path) -> None:
    """The copy has exactly ledger.csv's rows (no row missing, doubled or different), in
    IdOperazione order, each part's rows in order and above the previous part's, each
    part readable alone with the same schema."""
    expected = csv_rows(home)
    listed = [row[0] for row in expected]
    doubled = sorted({i for i in listed if listed.count(i) > 1})
    assert not doubled, f"ledger.csv itself lists rows twice: {doubled[:10]}"
    got = parquet_rows(home)
    ids = [row[0] for row in got]
    assert len(ids) == len(set(ids)), f"rows doubled in the copy: {len(ids) - len(set(ids))}"
    if sorted(got) != sorted(expected):
        want = {row[0]: row for row in expected}
        have = {row[0]: row for row in got}
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        differ = {
            id_op: [
                (COLUMNS[i], want[id_op][i], have[id_op][i])
                for i in range(len(COLUMNS))
                if want[id_op][i] != have[id_op][i]
            ]
            for id_op in sorted(set(want) & set(have))
            if want[id_op] != have[id_op]
        }
        raise AssertionError(
            f"ledger.parquet differs from ledger.csv: missing {missing[:10]} "
            f"({len(missing)}), extra {extra[:10]} ({len(extra)}), "
            f"different {dict(list(differ.items())[:5])} ({len(differ)})"
        )
    # the parts, in name order, hold the rows in IdOperazione order
    previous = ""
    for name, path in part_paths(home).items():
        table = pq.read_table(path)
        check_schema(table.schema)
        part = table.column("IdOperazione").to_pylist()
        assert part, f"empty part {name}"
        assert part == sorted(part), f"part {name} out of order"
        assert part[0] > previous, f"part {name} overlaps the one before it"
        previous = part[-1]


def manifest(home: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((columnar_folder(home) / MANIFEST).read_text())
    return loaded


def stamps(home: Path) -> dict[str, tuple[int, int]]:
    """Each part's (inode, mtime_ns): a rewritten part (written aside, renamed) changes."""
    return {name: (p.stat().st_ino, p.stat().st_mtime_ns) for name, p in part_paths(home).items()}


def assert_tidy(home: Path) -> None:
    """No aside left, only parts and the record, all 0644 (the folder not writable by
    others), nothing private."""
    folder = columnar_folder(home)
    mode = stat.S_IMODE(folder.stat().st_mode)
    assert mode & 0o022 == 0, oct(mode)
    names = os.listdir(folder)
    assert not [n for n in names if n.endswith(".tmp")], names
    for name in names:
        path = folder / name
        assert path.is_file() and not path.is_symlink(), name
        assert name == MANIFEST or (name.endswith(".parquet") and name[0] not in "._"), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, (name, oct(path.stat().st_mode))
        data = path.read_bytes()
        assert b"PRIVATE KEY" not in data, name
