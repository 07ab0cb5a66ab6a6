"""Whom the Annullamento panel can offer: codici fiscali with an ``ATTIVATO`` certificate.

The browser never receives the whole population (over half a million codici fiscali at a
million requests: Chromium cannot even build such a list). The kernel keeps them sorted
once per ledger load and answers each keystroke with a bounded prefix lookup, so a
keystroke costs a bisection plus at most :data:`MAX_MATCHES` strings, whatever the size
of the history. The panel asks :class:`PeoplePicker`, which puts the same two questions
to the query engine over the columnar ledger (nothing held in the kernel); :class:`PeopleIndex`
answers them from a frame in memory (an analyst's, and the tests' oracle).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import pandas as pd

from ..ledger_query import LedgerQuery

__all__ = ["MAX_MATCHES", "PeopleIndex", "PeoplePicker", "normalise_cf", "people_with_active"]

#: How many codici fiscali the field offers at once: enough to pick from, small enough to
#: cost nothing to send and render.
MAX_MATCHES = 20


def normalise_cf(text: str) -> str:
    """A codice fiscale as the panel compares it: typed carelessly, upper-cased."""
    return text.strip().upper()


class PeopleIndex:
    """Sorted, unique, normalised codici fiscali, searched by prefix."""

    __slots__ = ("_sorted",)

    def __init__(self, codici: Iterable[str]) -> None:
        self._sorted: list[str] = sorted({normalise_cf(cf) for cf in codici} - {""})

    def __len__(self) -> int:
        return len(self._sorted)

    def __contains__(self, codice_fiscale: object) -> bool:
        if not isinstance(codice_fiscale, str):
            return False
        cf = normalise_cf(codice_fiscale)
        at = bisect.bisect_left(self._sorted, cf)
        return at < len(self._sorted) and self._sorted[at] == cf

    def starting_with(self, prefix: str, limit: int = MAX_MATCHES) -> list[str]:
        """At most ``limit`` codici fiscali starting with ``prefix`` (normalised), in order.

        Every match is contiguous in the sorted list, so this reads only what it returns.
        """
        start = normalise_cf(prefix)
        at = bisect.bisect_left(self._sorted, start)
        out: list[str] = []
        for cf in self._sorted[at:at + max(limit, 0)]:
            if not cf.startswith(start):
                break
            out.append(cf)
        return out


class PeoplePicker:
    """:class:`PeopleIndex`'s questions, asked of the ledger's files at each keystroke."""

    __slots__ = ("_query",)

    def __init__(self, query: LedgerQuery) -> None:
        self._query = query

    def __contains__(self, codice_fiscale: object) -> bool:
        if not isinstance(codice_fiscale, str) or not normalise_cf(codice_fiscale):
            return False
        return self._query.has_active(normalise_cf(codice_fiscale))

    def starting_with(self, prefix: str, limit: int = MAX_MATCHES) -> list[str]:
        return self._query.people_with_active(normalise_cf(prefix), max(limit, 0))


def people_with_active(ledger: pd.DataFrame) -> PeopleIndex:
    """The codici fiscali that have at least one ``ATTIVATO`` certificate in ``ledger``."""
    active = ledger["Stato"].astype("string") == "ATTIVATO"
    # unique before normalising: a person with many requests costs one string, not many
    codici = ledger.loc[active.fillna(False), "CodiceFiscale"].dropna().astype(str).unique()
    return PeopleIndex(codici)
