"""The ledger at scale, in this process: its two copies written, ``load_ledger`` timed, and
the panels' questions asked of pyarrow's dataset API and of DuckDB (``LedgerQuery``).

Each engine answers the same four questions from the same Parquet parts, and the answers
are compared: a faster engine that answers something else would prove nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from certdesk.frame import load_ledger
from certdesk.ledger_query import LedgerFilter, LedgerQuery
from certdesk.outbox import Outbox
from certdesk.outbox_columnar import ColumnarLedger
from certdesk.store import Store

from .scale_case import export_ledger

__all__ = [
    "ENGINE_QUESTIONS",
    "EngineQuestion",
    "LedgerCopies",
    "LedgerFigures",
    "Runs",
    "ledger_figures",
    "write_copies",
]

#: The panels' own issued states (``panels._charts.ISSUED_STATES``), for the month chart.
ISSUED = ("ATTIVATO", "SCADUTO", "ANNULLATO")
PAGE = 50
#: Questions of the engine comparison, in the order of the table.
ENGINE_QUESTIONS = ("person", "states", "page", "months")


@dataclass(frozen=True)
class Runs:
    """Seconds of several runs of one measurement."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def worst(self) -> float:
        return max(self.seconds)


@dataclass(frozen=True)
class LedgerCopies:
    csv_s: float  # Publisher.rebuild_ledger
    csv_mib: float
    parquet_s: float  # ColumnarLedger.rebuild
    parquet_mib: float
    parts: int


@dataclass(frozen=True)
class EngineQuestion:
    name: str  # one of ENGINE_QUESTIONS
    pyarrow: Runs
    duckdb: Runs


@dataclass(frozen=True)
class LedgerFigures:
    load_whole: Runs  # load_ledger(home)
    load_person: Runs  # load_ledger(home, codice_fiscale=...), one run per person
    engines: tuple[EngineQuestion, ...]  # in the order of ENGINE_QUESTIONS


def _folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20


def write_copies(home: Path) -> LedgerCopies:
    """``outbox/ledger.csv`` exported and ``outbox/ledger.parquet/`` rebuilt, each timed."""
    store = Store(home / "state" / "certdesk.sqlite3")
    try:
        csv_s = export_ledger(home, store)
        columnar = ColumnarLedger(Outbox.of(home))
        started = time.perf_counter()
        columnar.rebuild(store)
        parquet_s = time.perf_counter() - started
    finally:
        store.close()
    folder = Outbox.of(home).columnar_ledger
    csv_mib = Outbox.of(home).ledger.stat().st_size / 2**20
    return LedgerCopies(csv_s, csv_mib, parquet_s, _folder_mib(folder),
                        len(columnar.part_names()))


def _timed(call: Callable[[], Any], repeat: int) -> tuple[Runs, Any]:
    """``call`` run ``repeat`` times; its runs and its last answer."""
    seconds, answer = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call()
        seconds.append(time.perf_counter() - started)
    return Runs(tuple(seconds)), answer


def _load_figures(home: Path, people: Sequence[str], expected: int, repeat: int
                  ) -> tuple[Runs, Runs]:
    whole, frame = _timed(lambda: load_ledger(home), repeat)
    if len(frame) != expected:
        raise RuntimeError(f"load_ledger gave {len(frame)} rows, not {expected}")
    del frame
    per_person = []
    for cf in people:
        started = time.perf_counter()
        mine = load_ledger(home, codice_fiscale=cf)
        per_person.append(time.perf_counter() - started)
        if mine.empty or not (mine["CodiceFiscale"].str.upper() == cf).all():
            raise RuntimeError(f"load_ledger(codice_fiscale={cf}) gave the wrong rows")
    return whole, Runs(tuple(per_person))


# -- the same questions, two engines ---------------------------------------------------------
# pyarrow: the dataset is opened for every question (as read_parquet's glob is by DuckDB),
# and the page is found in two steps as LedgerQuery.page does: ids first, then their rows.


def _arrow_person(folder: Path, cf: str) -> int:
    table = ds.dataset(folder, format="parquet").to_table(
        filter=pc.field("CodiceFiscale") == cf)
    return int(table.num_rows)


def _arrow_states(folder: Path) -> dict[str, int]:
    table = ds.dataset(folder, format="parquet").to_table(columns=["Stato"])
    counts = pc.value_counts(table.column("Stato").combine_chunks())
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def _arrow_page(folder: Path, stato: str) -> list[str]:
    dataset = ds.dataset(folder, format="parquet")
    keys = dataset.to_table(columns=["IdOperazione", "DataRichiesta"],
                            filter=pc.field("Stato") == stato)
    order = [("DataRichiesta", "descending"), ("IdOperazione", "descending")]
    top = keys.take(pc.select_k_unstable(keys, k=PAGE, sort_keys=order))
    rows = dataset.to_table(filter=pc.field("IdOperazione").isin(top.column("IdOperazione")))
    return [str(i) for i in rows.sort_by(order).column("IdOperazione").to_pylist()]


def _arrow_months(folder: Path) -> dict[str, int]:
    table = ds.dataset(folder, format="parquet").to_table(
        columns=["DataRichiesta"], filter=pc.field("Stato").isin(ISSUED))
    local = table.column("DataRichiesta").cast(pa.timestamp("us", tz="Europe/Rome"))
    months = pc.floor_temporal(local, unit="month")
    grouped = pa.table({"m": months}).group_by("m").aggregate([("m", "count")])
    return {f"{m:%Y-%m}": int(n) for m, n in zip(grouped.column("m").to_pylist(),
                                                 grouped.column("m_count").to_pylist(),
                                                 strict=True)}


def _duck_page(query: LedgerQuery, stato: str) -> list[str]:
    page = query.page(LedgerFilter(stati=(stato,)), offset=0, limit=PAGE)
    return [str(i) for i in page.column("IdOperazione").to_pylist()]


def _duck_months(query: LedgerQuery) -> dict[str, int]:
    placeholders = ", ".join("?" for _ in ISSUED)
    found = query.per_month(LedgerFilter(), "DataRichiesta", f"Stato IN ({placeholders})",
                            ISSUED)
    return {f"{m:%Y-%m}": n for m, n in found}


def _compare(name: str, arrow: Callable[[], Any], duck: Callable[[], Any], repeat: int
             ) -> EngineQuestion:
    arrow_runs, arrow_answer = _timed(arrow, repeat)
    duck_runs, duck_answer = _timed(duck, repeat)
    if arrow_answer != duck_answer:
        raise RuntimeError(f"pyarrow and DuckDB disagree on {name}: "
                           f"{str(arrow_answer)[:200]} vs {str(duck_answer)[:200]}")
    return EngineQuestion(name, arrow_runs, duck_runs)


def _engines(home: Path, cf: str, repeat: int) -> tuple[EngineQuestion, ...]:
    folder = Outbox.of(home).columnar_ledger
    query = LedgerQuery(home)
    try:
        if query.source != "parquet":
            raise RuntimeError(f"LedgerQuery reads {query.source}, not the Parquet copy")
        person = LedgerFilter(codice_fiscale=cf)
        return (
            _compare("person", lambda: _arrow_person(folder, cf),
                     lambda: query.select(person).num_rows, repeat),
            _compare("states", lambda: _arrow_states(folder),
                     lambda: query.counts_by_state(LedgerFilter()), repeat),
            _compare("page", lambda: _arrow_page(folder, "ANNULLATO"),
                     lambda: _duck_page(query, "ANNULLATO"), repeat),
            _compare("months", lambda: _arrow_months(folder), lambda: _duck_months(query),
                     repeat),
        )
    finally:
        query.close()


def ledger_figures(home: Path, people: Sequence[str], expected: int, repeat: int
                   ) -> LedgerFigures:
    """``load_ledger`` whole (``repeat`` runs) and of each of ``people``; the engines."""
    whole, person = _load_figures(home, people, expected, repeat)
    return LedgerFigures(whole, person, _engines(home, people[0], repeat))
