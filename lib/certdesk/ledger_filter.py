"""Which rows of the ledger a question is about: :class:`LedgerFilter`, and the SQL
condition it makes (every value a bound parameter, never SQL text)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .channels import DEFAULT_CHANNEL

__all__ = ["LedgerFilter", "day_bounds"]

_ROME = ZoneInfo("Europe/Rome")


@dataclass(frozen=True)
class LedgerFilter:
    """Which rows: every condition given must hold (an empty filter: every row).

    ``codice_fiscale`` matches exactly, ``contains`` anywhere in it (what a person types in
    a panel), both upper-cased first: the daemon writes codici fiscali in capitals
    (``identity``), so the column is compared as it is, never converted row by row.
    ``dal``/``al`` are days of DataRichiesta in Italian time, both included;
    ``expiring_at`` keeps the ATTIVATO certificates expiring within ``expiring_days`` of
    that moment. ``canali`` keeps the requests that came through one of these channels
    (``channels``: ``""`` the default channel, whose ``Canale`` is empty, ``@admin`` the
    administrators')."""

    codice_fiscale: str = ""
    contains: str = ""
    stati: tuple[str, ...] = ()
    dal: date | None = None
    al: date | None = None
    expiring_at: datetime | None = None
    expiring_days: int = 30
    canali: tuple[str, ...] = ()

    def where(self) -> tuple[str, list[object]]:
        """The SQL condition and its parameters."""
        terms: list[str] = []
        params: list[object] = []
        if self.codice_fiscale.strip():
            terms.append("CodiceFiscale = ?")
            params.append(self.codice_fiscale.strip().upper())
        if self.contains.strip():
            terms.append("contains(CodiceFiscale, ?)")
            params.append(self.contains.strip().upper())
        if self.stati:
            terms.append(f"Stato IN ({', '.join('?' for _ in self.stati)})")
            params.extend(self.stati)
        start, end = day_bounds(self.dal, self.al)
        if start is not None:
            terms.append("DataRichiesta >= ?")
            params.append(start)
        if end is not None:
            terms.append("DataRichiesta < ?")
            params.append(end)
        if self.expiring_at is not None:
            terms.append("Stato = 'ATTIVATO' AND DataScadenza >= ? AND DataScadenza <= ?")
            params.extend([self.expiring_at,
                           self.expiring_at + timedelta(days=self.expiring_days)])
        if self.canali:
            term, named = _channel_term(self.canali)
            terms.append(term)
            params.extend(named)
        return (" AND ".join(terms) or "TRUE"), params


def _channel_term(canali: tuple[str, ...]) -> tuple[str, list[str]]:
    """``Canale`` in ``canali``, and its parameters: the default channel's is an empty
    cell, which both the CSV and the Parquet copy read as NULL."""
    named = sorted({c for c in canali if c != DEFAULT_CHANNEL})
    either = ["Canale IS NULL OR Canale = ''"] if DEFAULT_CHANNEL in canali else []
    if named:
        either.append(f"Canale IN ({', '.join('?' for _ in named)})")
    return f"({' OR '.join(either)})", named


def day_bounds(dal: date | None, al: date | None) -> tuple[datetime | None, datetime | None]:
    """The UTC-aware instants that start ``dal`` and end ``al`` in Italian time."""
    start = datetime.combine(dal, time(), _ROME) if dal is not None else None
    end = datetime.combine(al + timedelta(days=1), time(), _ROME) if al is not None else None
    return start, end
