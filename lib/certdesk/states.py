"""The states of a certificate request and the only transitions between them.

    (new) ──► IN_GENERAZIONE ──► ATTIVATO ──► SCADUTO
      │             │                 └─────► ANNULLATO
      └─────────────┴──► RIFIUTATO

``IN_GENERAZIONE → RIFIUTATO`` is taken only when signing itself fails (e.g. the CA
expired while the request waited); every refusal by rule happens before acceptance.
"""

from __future__ import annotations

import enum

from .codes import refusal

__all__ = ["Stato", "check_transition"]


class Stato(enum.Enum):
    IN_GENERAZIONE = "IN_GENERAZIONE"
    ATTIVATO = "ATTIVATO"
    SCADUTO = "SCADUTO"
    ANNULLATO = "ANNULLATO"
    RIFIUTATO = "RIFIUTATO"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Stato.IN_GENERAZIONE: "In generazione",
    Stato.ATTIVATO: "Attivato",
    Stato.SCADUTO: "Scaduto",
    Stato.ANNULLATO: "Annullato",
    Stato.RIFIUTATO: "Rifiutato",
}

_ALLOWED: dict[Stato | None, frozenset[Stato]] = {
    None: frozenset({Stato.IN_GENERAZIONE, Stato.RIFIUTATO}),
    Stato.IN_GENERAZIONE: frozenset({Stato.ATTIVATO, Stato.RIFIUTATO}),
    Stato.ATTIVATO: frozenset({Stato.SCADUTO, Stato.ANNULLATO}),
    Stato.SCADUTO: frozenset(),
    Stato.ANNULLATO: frozenset(),
    Stato.RIFIUTATO: frozenset(),
}


def check_transition(current: Stato | None, target: Stato, id_operazione: str = "") -> None:
    """Raise InvalidTransition unless ``current → target`` is in the contract's diagram."""
    if target not in _ALLOWED[current]:
        raise refusal(
            "TRANSIZIONE_NON_VALIDA",
            richiesta=id_operazione or "richiesta",
            da=current.value if current else "(nuova)",
            a=target.value,
        )
