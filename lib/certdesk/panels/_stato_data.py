"""What the Stato panel shows, asked of the query engine: the same counts and series as
:mod:`certdesk.panels._charts` computes from a whole frame (tests hold the two equal),
from a few aggregate queries instead."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from ..frame import STATI
from ..ledger_query import LedgerFilter, LedgerQuery
from ..reasons import Motivazione
from ._charts import EXPIRING_DAYS, ISSUED_STATES

__all__ = [
    "cancellations_by_reason",
    "counts_by_state",
    "expires_soon_count",
    "expiries_ahead",
    "issued_per_month",
]


def counts_by_state(query: LedgerQuery, which: LedgerFilter) -> pd.Series:
    """Rows per Stato, every state of the contract present (zeros included)."""
    found = query.counts_by_state(which)
    order = list(STATI) + sorted(s for s in found if s not in STATI and s != "None")
    return pd.Series({s: int(found.get(s, 0)) for s in order}, dtype=int)


def expires_soon_count(query: LedgerQuery, which: LedgerFilter, now: datetime) -> int:
    return query.expiring_count(which, now, EXPIRING_DAYS)


def issued_per_month(query: LedgerQuery, which: LedgerFilter) -> pd.Series:
    """Certificates issued per month of their request (Europe/Rome), gaps as zeros."""
    placeholders = ", ".join("?" for _ in ISSUED_STATES)
    found = query.per_month(which, "DataRichiesta", f"Stato IN ({placeholders})", ISSUED_STATES)
    if not found:
        return pd.Series([], dtype=int, index=pd.PeriodIndex([], freq="M"))
    counts = pd.Series({pd.Period(m, freq="M"): n for m, n in found}, dtype=int)
    full = pd.period_range(counts.index.min(), counts.index.max(), freq="M")
    return counts.reindex(full, fill_value=0).astype(int)


def expiries_ahead(
    query: LedgerQuery, which: LedgerFilter, now: datetime, months: int = 12
) -> pd.Series:
    """ATTIVATO certificates expiring in each of the next ``months`` months."""
    start = pd.Timestamp(now).tz_convert("Europe/Rome").tz_localize(None).to_period("M")
    window = pd.period_range(start, periods=months, freq="M")
    found = query.per_month(which, "DataScadenza", "Stato = 'ATTIVATO' AND DataScadenza >= ?",
                            [now])
    counts = pd.Series({pd.Period(m, freq="M"): n for m, n in found}, dtype=int)
    return counts.reindex(window, fill_value=0).astype(int)


def cancellations_by_reason(query: LedgerQuery, which: LedgerFilter) -> pd.Series:
    """ANNULLATO certificates per reason, by the reason's label (all six shown)."""
    counts = query.by_reason(which)
    out = {m.label: int(counts.get(m.value, 0)) for m in Motivazione}
    for code, n in counts.items():  # a reason from a newer certdesk: keep it visible
        if code not in {m.value for m in Motivazione}:
            out[code] = n
    return pd.Series(out, dtype=int)
