"""The ledger as a typed pandas DataFrame, for the Stato panel and analysts' own notebooks.

``outbox/ledger.csv`` (contract, section 5) holds one row per request with its current
state; :func:`load_ledger` reads it with the types an analyst expects:

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
    >>> for_display(df.head())                           # 27/11/2026, "Furto certificato"

The notebooks only ever read this file: the daemon is the only writer.
"""

from __future__ import annotations

import math
import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from .codes import refusal
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


def load_ledger(home_or_path: str | os.PathLike[str]) -> pd.DataFrame:
    """The ledger of a certdesk home (or of a ``ledger.csv``) as a typed DataFrame.

    A home whose daemon has not written a ledger yet gives an empty frame with the same
    columns and types. A value the contract does not know (a state or reason from a newer
    certdesk) is kept, as an extra category after the known ones, never turned into NaN.
    """
    path = ledger_path(home_or_path)
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
            known = list(_CATEGORIES[name])
            extra = sorted(set(values.dropna()) - set(known))
            columns[name] = pd.Series(
                pd.Categorical(values, categories=known + extra), index=raw.index, name=name
            )
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
