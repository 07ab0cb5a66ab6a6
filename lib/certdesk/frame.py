"""The ledger as a typed pandas DataFrame, for the Stato panel and analysts' own notebooks.

``outbox/ledger.csv`` (contract, section 5) holds one row per request with its current
state, and ``outbox/ledger.parquet/`` the same rows as Parquet. :func:`load_ledger` reads
the Parquet copy where the daemon keeps one (else the CSV), with DuckDB
(:mod:`certdesk.ledger_query`): filters by codice fiscale, states, dates and channels, and
a choice of columns, are pushed down to the files, so one person's rows cost milliseconds at a
million requests. The types are the ones an analyst expects:

- ``Stato`` and ``Motivazione`` are categoricals whose categories are every state and
  every reason code of the contract (so counts show zeros, and charts keep their order);
- ``DataRichiesta``, ``DataScadenza`` and ``DataAnnullamento`` are timezone-aware UTC
  datetimes (``NaT`` when empty);
- every other column is a pandas ``string`` column (``<NA>`` when empty).

People see dates as gg/mm/aaaa in Italian time: :func:`to_rome` converts the datetime
columns to Europe/Rome, :func:`format_date` formats one value, and :func:`for_display`
turns a whole frame into the strings a person reads.

    >>> from certdesk.frame import load_ledger, for_display
    >>> df = load_ledger("/srv/certdesk")               # a home, or the ledger.csv itself
    >>> df[df.Stato == "ATTIVATO"].groupby("CodiceFiscale").size()
    >>> load_ledger(home, codice_fiscale="RSSMRA80A01H501U")      # one person's rows
    >>> load_ledger(home, stati=["ANNULLATO"], dal=date(2026, 1, 1), columns=["Motivazione"])
    >>> load_ledger(home, canali=["acme"])      # what came through inbox/acme/ ("": inbox/)
    >>> for_display(df.head())                           # 27/11/2026, "Furto certificato"

The notebooks only ever read these files: the daemon is the only writer. The Parquet copy
may be a few seconds behind ledger.csv during a backlog (never after a receipt of an
annullamento: see :mod:`certdesk.outbox_columnar`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .codes import refusal
from .ledger_query import LedgerFilter, LedgerQuery, columnar_copy_exists, day_bounds
from .outbox import Outbox
from .reasons import Motivazione
from .records import LEDGER_COLUMNS
from .states import Stato

__all__ = [
    "DATE_COLUMNS",
    "LEDGER_COLUMNS",
    "ROME",
    "STATI",
    "empty_ledger",
    "for_display",
    "format_date",
    "ledger_path",
    "load_ledger",
    "to_rome",
    "typed_from_arrow",
]

#: The columns of ``outbox/ledger.csv``, in the contract's order (one definition: records).

#: Every state of the contract (section 6), in lifecycle order.
STATI: tuple[str, ...] = tuple(s.value for s in Stato)

#: The datetime columns, stored in the CSV as ISO 8601 UTC.
DATE_COLUMNS: tuple[str, ...] = ("DataRichiesta", "DataScadenza", "DataAnnullamento")

#: Italian time: what people see.
ROME = ZoneInfo("Europe/Rome")

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Stato": STATI,
    "Motivazione": tuple(m.value for m in Motivazione),
}


def ledger_path(home_or_path: str | os.PathLike[str]) -> Path:
    """``home/outbox/ledger.csv`` for a home folder; the path itself for a file."""
    path = Path(home_or_path)
    if path.is_dir():
        return Outbox.of(path).ledger
    return path


def load_ledger(
    home_or_path: str | os.PathLike[str],
    *,
    codice_fiscale: str | None = None,
    stati: Iterable[str] | None = None,
    dal: date | None = None,
    al: date | None = None,
    columns: Sequence[str] | None = None,
    canali: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The ledger of a certdesk home (or of a ``ledger.csv``) as a typed DataFrame.

    Only the rows of ``codice_fiscale`` (typed in any case), in one of ``stati``, requested
    from day ``dal`` to day ``al`` (Italian time, both included), through one of
    ``canali`` (``""`` the default channel, ``@admin`` the administrators'), when given;
    only ``columns`` (in the ledger's order) when given. Rows are in IdOperazione order.

    A home whose daemon has not written a ledger yet gives an empty frame with the same
    columns and types. A value the contract does not know (a state or reason from a newer
    certdesk) is kept, as an extra category after the known ones, never turned into NaN.
    """
    which = LedgerFilter(codice_fiscale=codice_fiscale or "", stati=tuple(stati or ()),
                         dal=dal, al=al, canali=tuple(canali or ()))
    wanted = _columns(columns)
    if Path(home_or_path).is_dir() and columnar_copy_exists(home_or_path):
        if which == LedgerFilter():  # everything: pyarrow reads the parts straight
            folder = Outbox.of(home_or_path).columnar_ledger
            return typed_from_arrow(pq.read_table(folder, columns=list(wanted)))
        return typed_from_arrow(_query_of(Path(home_or_path)).select(which, wanted))
    frame = _filtered(_load_csv(ledger_path(home_or_path)), which)
    return frame if columns is None else frame[list(wanted)]


_queries: dict[Path, LedgerQuery] = {}
_queries_lock = threading.Lock()


def _query_of(home: Path) -> LedgerQuery:
    """One DuckDB connection per home, kept: an analyst's loop over people pays the
    connection once, not per call (a third of one person's lookup at a million rows)."""
    key = home.resolve()
    with _queries_lock:
        query = _queries.get(key)
        if query is None:
            query = _queries[key] = LedgerQuery(key)
        else:
            query.refresh()  # parts the daemon added since
    return query


def _columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return LEDGER_COLUMNS
    unknown = [c for c in columns if c not in LEDGER_COLUMNS]
    if unknown:
        raise ValueError(f"not columns of the ledger: {', '.join(map(str, unknown))}")
    return tuple(c for c in LEDGER_COLUMNS if c in columns)


def _filtered(frame: pd.DataFrame, which: LedgerFilter) -> pd.DataFrame:
    """``which`` applied in pandas: the CSV's way, with the Parquet copy's answers."""
    mask = pd.Series(True, index=frame.index)
    if which.codice_fiscale:
        mask &= frame["CodiceFiscale"] == which.codice_fiscale.strip().upper()
    if which.stati:
        mask &= frame["Stato"].astype("string").isin(which.stati)
    start, end = day_bounds(which.dal, which.al)
    if start is not None:
        mask &= frame["DataRichiesta"] >= pd.Timestamp(start)
    if end is not None:
        mask &= frame["DataRichiesta"] < pd.Timestamp(end)
    if which.canali:
        mask &= frame["Canale"].fillna("").isin(which.canali)
    return frame[mask.fillna(False).astype(bool)].reset_index(drop=True)


def typed_from_arrow(table: pa.Table) -> pd.DataFrame:
    """A table of ledger columns (the Parquet copy's types, or DuckDB's answer) with the
    types of :func:`load_ledger`."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=_pandas_type)
    for name in frame.columns:
        if name in DATE_COLUMNS:
            frame[name] = frame[name].dt.tz_convert("UTC").dt.as_unit("us")
        elif name in _CATEGORIES and isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = _recategorised(frame[name], name)
        elif name in _CATEGORIES:
            frame[name] = _categorical(frame[name].astype("string"), name)
        else:
            frame[name] = frame[name].astype("string")
    return frame


def _pandas_type(arrow_type: pa.DataType) -> object:
    return pd.StringDtype() if pa.types.is_string(arrow_type) else None


def _categorical(values: pd.Series, name: str) -> pd.Series:
    """The contract's categories first (counts show zeros), anything newer after."""
    known = list(_CATEGORIES[name])
    extra = sorted(set(values.dropna()) - set(known))
    return pd.Series(pd.Categorical(values, categories=known + extra), index=values.index,
                     name=name)


def _recategorised(values: pd.Series, name: str) -> pd.Series:
    """A categorical column (Parquet's dictionary) with :func:`_categorical`'s categories,
    without going through its strings."""
    known = list(_CATEGORIES[name])
    extra = sorted(set(values.cat.categories) - set(known))
    result: pd.Series = values.cat.set_categories(known + extra)
    return result


def _load_csv(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
        )
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return empty_ledger()
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise refusal("REGISTRO_NON_LEGGIBILE", file=path, errore=exc) from exc
    missing = [name for name in LEDGER_COLUMNS if name not in raw.columns]
    if missing:
        raise refusal("REGISTRO_NON_LEGGIBILE", "colonne", file=path, colonne=", ".join(missing))
    return _typed(raw, path)


def empty_ledger() -> pd.DataFrame:
    """A ledger with no rows, with the columns and types of :func:`load_ledger`."""
    raw = pd.DataFrame({name: pd.Series([], dtype=str) for name in LEDGER_COLUMNS})
    return _typed(raw, Path("ledger.csv"))


def _typed(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    for name in raw.columns:
        values = raw[name]
        if name in DATE_COLUMNS:
            try:
                stamps = pd.to_datetime(values, utc=True, format="ISO8601")
                # one resolution whatever the file holds (an empty column would be "s")
                columns[name] = stamps.dt.as_unit("us")
            except (ValueError, TypeError) as exc:
                raise refusal(
                    "REGISTRO_NON_LEGGIBILE", "data", file=path, colonna=name, errore=exc
                ) from exc
        elif name in _CATEGORIES:
            columns[name] = _categorical(values, name)
        else:
            columns[name] = values.astype("string")
    frame = pd.DataFrame(columns, index=raw.index)
    # the contract's columns first, in its order; anything newer after them
    order = list(LEDGER_COLUMNS) + [c for c in frame.columns if c not in LEDGER_COLUMNS]
    return frame[order].reset_index(drop=True)


def to_rome(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every timezone-aware datetime column in Europe/Rome."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.tz_convert(ROME)
    return out


def format_date(value: object) -> str:
    """``value`` (a tz-aware datetime, ISO 8601 string, date or missing) as gg/mm/aaaa.

    Aware datetimes are converted to Europe/Rome first: 2026-11-27T23:30:00Z is
    28/11/2026 in Italy. Missing values (None, NaT, "") give "".
    """
    if value is None or value is pd.NaT or value is pd.NA:
        return ""
    if isinstance(value, str) and not value.strip():
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, datetime | str):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: certdesk times are UTC-aware")
        return stamp.tz_convert(ROME).strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    raise TypeError(f"not a date: {value!r}")


def for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as people read it: dates gg/mm/aaaa (Europe/Rome), reasons by label."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].map(format_date).astype("string")
    if "Motivazione" in out.columns:
        out["Motivazione"] = (
            out["Motivazione"].astype("string").map(_reason_label, na_action="ignore")
        ).astype("string")
    return out


def _reason_label(code: str) -> str:
    try:
        return Motivazione(code).label
    except ValueError:
        return code
