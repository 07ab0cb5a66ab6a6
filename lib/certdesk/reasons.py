"""The six reasons ("motivazioni") of an annullamento, as the portal shows them.

Each reason maps to the RFC 5280 CRLReason written in the CRL and in OCSP responses.
``ALTRO`` has no reason code: the CRL entry omits the reasonCode extension (RFC 5280
5.3.1 advises omitting it rather than writing ``unspecified``).
"""

from __future__ import annotations

import enum

from cryptography import x509

__all__ = ["Motivazione"]


class Motivazione(enum.Enum):
    """A cancellation reason: its value is the stable code used in files and the ledger."""

    CHIAVE_SMARRITA = "CHIAVE_SMARRITA"
    ATTIVITA_CESSATA = "ATTIVITA_CESSATA"
    FURTO_CERTIFICATO = "FURTO_CERTIFICATO"
    RINNOVO_SCADENZA = "RINNOVO_SCADENZA"
    MALFUNZIONAMENTO = "MALFUNZIONAMENTO"
    ALTRO = "ALTRO"

    @property
    def label(self) -> str:
        """The label shown to people, with the portal's wording."""
        return _LABELS[self]

    @property
    def crl_reason(self) -> x509.ReasonFlags | None:
        """The RFC 5280 reason code, or None when the extension must be omitted."""
        return _CRL_REASONS[self]

    @property
    def requires_note(self) -> bool:
        return self is Motivazione.ALTRO

    @property
    def blocks_key(self) -> bool:
        """A key lost or stolen must never be certified again."""
        return self in (Motivazione.CHIAVE_SMARRITA, Motivazione.FURTO_CERTIFICATO)


_LABELS: dict[Motivazione, str] = {
    Motivazione.CHIAVE_SMARRITA: "Chiave primaria smarrita",
    Motivazione.ATTIVITA_CESSATA: "Attività cessata",
    Motivazione.FURTO_CERTIFICATO: "Furto certificato",
    Motivazione.RINNOVO_SCADENZA: "Rinnovo scadenza",
    Motivazione.MALFUNZIONAMENTO: "Malfunzionamento",
    Motivazione.ALTRO: "Altro",
}

_CRL_REASONS: dict[Motivazione, x509.ReasonFlags | None] = {
    Motivazione.CHIAVE_SMARRITA: x509.ReasonFlags.key_compromise,
    Motivazione.ATTIVITA_CESSATA: x509.ReasonFlags.cessation_of_operation,
    Motivazione.FURTO_CERTIFICATO: x509.ReasonFlags.key_compromise,
    Motivazione.RINNOVO_SCADENZA: x509.ReasonFlags.superseded,
    Motivazione.MALFUNZIONAMENTO: x509.ReasonFlags.superseded,
    Motivazione.ALTRO: None,
}
