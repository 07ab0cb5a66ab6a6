"""Counts and charts over the typed ledger (pure pandas, then matplotlib to PNG bytes).

Charts are drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, no global state),
so they render the same in a kernel, in a thread and in a test without a display.
"""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..frame import ROME, STATI
from ..reasons import Motivazione

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
    size: tuple[float, float] = (5.2, 3.0),
) -> bytes:
    """A small bar chart as PNG bytes; labels are the index, values the bar lengths."""
    labels = [_label(i) for i in counts.index]
    values = [int(v) for v in counts.to_numpy()]
    fig = Figure(figsize=size, dpi=96, layout="constrained")
    ax = fig.add_subplot()
    if not values or max(values, default=0) == 0:
        ax.text(0.5, 0.5, "nessun dato", ha="center", va="center", transform=ax.transAxes,
                color="#666666")
    top = max(1, *values) if values else 1  # all zeros: an axis 0..1, not 0..0.05
    if horizontal:
        ax.barh(labels, values, color=colour)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.bar(labels, values, color=colour)
        ax.set_ylim(0, top * 1.05)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if len(labels) > 4:
            ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


_MESI = ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic")


def _label(value: object) -> str:
    if isinstance(value, pd.Period):
        return f"{_MESI[value.month - 1]} {value.year % 100:02d}"
    return str(value).replace("_", " ")
