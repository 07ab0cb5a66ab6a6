"""Counts and charts over the typed ledger (pure pandas, then :mod:`._bars` to SVG bytes).

The charts are plain SVG text: they render the same in a kernel, in a thread and in a
test without a display.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from ..frame import ROME, STATI
from ..reasons import Motivazione
from ._bars import bar_chart_svg

__all__ = [
    "EXPIRING_DAYS",
    "ISSUED_STATES",
    "cancellations_by_reason",
    "counts_by_state",
    "expires_soon",
    "expiries_ahead",
    "issued_per_month",
    "render_bar_chart",
]

#: "in scadenza": an ATTIVATO certificate whose DataScadenza falls within this many days.
EXPIRING_DAYS = 30

#: States of a request whose certificate was issued.
ISSUED_STATES = ("ATTIVATO", "SCADUTO", "ANNULLATO")


def counts_by_state(ledger: pd.DataFrame) -> pd.Series:
    """Rows per Stato, every state of the contract present (zeros included)."""
    counts = ledger["Stato"].astype("string").value_counts()
    order = list(STATI) + [s for s in counts.index if s not in STATI]
    return counts.reindex(order, fill_value=0).astype(int)


def expires_soon(ledger: pd.DataFrame, now: datetime, days: int = EXPIRING_DAYS) -> pd.Series:
    """A boolean mask: ATTIVATO and DataScadenza within ``days`` from ``now``."""
    until = pd.Timestamp(now) + pd.Timedelta(days=days)
    scadenza = ledger["DataScadenza"]
    mask = (
        (ledger["Stato"].astype("string") == "ATTIVATO")
        & scadenza.notna()
        & (scadenza >= pd.Timestamp(now))
        & (scadenza <= until)
    )
    result: pd.Series = mask.fillna(False).astype(bool)
    return result


def _month(series: pd.Series) -> pd.Series:
    """Each aware datetime as the first day of its month in Italian time (naive)."""
    rome = series.dt.tz_convert(ROME).dt.tz_localize(None)
    months: pd.Series = rome.dt.to_period("M")
    return months


def issued_per_month(ledger: pd.DataFrame) -> pd.Series:
    """Certificates issued per month of their request (Europe/Rome), gaps as zeros."""
    issued = ledger[ledger["Stato"].astype("string").isin(ISSUED_STATES)]
    dates = issued["DataRichiesta"].dropna()
    if dates.empty:
        return pd.Series([], dtype=int, index=pd.PeriodIndex([], freq="M"))
    months = _month(dates)
    counts = months.value_counts()
    full = pd.period_range(months.min(), months.max(), freq="M")
    return counts.reindex(full, fill_value=0).astype(int)


def expiries_ahead(ledger: pd.DataFrame, now: datetime, months: int = 12) -> pd.Series:
    """ATTIVATO certificates expiring in each of the next ``months`` months (this one first)."""
    start = pd.Timestamp(now).tz_convert(ROME).tz_localize(None).to_period("M")
    window = pd.period_range(start, periods=months, freq="M")
    active = ledger[ledger["Stato"].astype("string") == "ATTIVATO"]
    scadenza = active["DataScadenza"].dropna()
    scadenza = scadenza[scadenza >= pd.Timestamp(now)]
    counts = _month(scadenza).value_counts() if not scadenza.empty else pd.Series([], dtype=int)
    return counts.reindex(window, fill_value=0).astype(int)


def cancellations_by_reason(ledger: pd.DataFrame) -> pd.Series:
    """ANNULLATO certificates per reason, indexed by the reason's label (all six shown)."""
    cancelled = ledger[ledger["Stato"].astype("string") == "ANNULLATO"]
    counts = cancelled["Motivazione"].astype("string").value_counts()
    out = {m.label: int(counts.get(m.value, 0)) for m in Motivazione}
    for code, n in counts.items():  # a reason from a newer certdesk: keep it visible
        if code not in {m.value for m in Motivazione}:
            out[str(code)] = int(n)
    return pd.Series(out, dtype=int)


def render_bar_chart(
    counts: pd.Series,
    *,
    title: str,
    horizontal: bool = False,
    colour: str = "#1f5a96",
) -> bytes:
    """A small bar chart as SVG bytes; labels are the index, values the bar lengths."""
    labels = [_label(i) for i in counts.index]
    values = [int(v) for v in counts.to_numpy()]
    return bar_chart_svg(labels, values, title=title, horizontal=horizontal, colour=colour)


_MESI = ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic")


def _label(value: object) -> str:
    if isinstance(value, pd.Period):
        return f"{_MESI[value.month - 1]} {value.year % 100:02d}"
    return str(value).replace("_", " ")
