"""Receipts ("esiti"): the outcome of one input file, in the contract's shape.

A ``Receipt`` is a value: where its input goes (archive or quarantine) and what the log
says of it (``Outcome``) derive from its fields. The store keeps it as the JSON document
``to_document`` gives, the one written to ``outbox/receipts/``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .clock import format_utc
from .errors import CertdeskError
from .records import RequestRecord

__all__ = [
    "Annullato",
    "Errore",
    "Outcome",
    "Receipt",
    "Tipo",
    "cancellation_receipt",
    "refusal_receipt",
    "request_receipt",
]


class Tipo(enum.Enum):
    """What an input is, from its name: ``*.csr``, ``*.json`` or ``*.p7m``, anything else."""

    RICHIESTA = "richiesta"
    ANNULLAMENTO = "annullamento"
    SCONOSCIUTO = "sconosciuto"

    @classmethod
    def of(cls, name: str) -> Tipo:
        lower = name.lower()
        if lower.endswith(".csr"):
            return cls.RICHIESTA
        if lower.endswith((".json", ".p7m")):  # a .p7m: an annullamento signed (CMS)
            return cls.ANNULLAMENTO
        return cls.SCONOSCIUTO


@dataclass(frozen=True)
class Errore:
    codice: str
    messaggio: str


@dataclass(frozen=True)
class Annullato:
    """One certificate an annullamento cancelled."""

    id_operazione: str
    seriale: str
    motivazione: str
    data_annullamento: str | None


@dataclass(frozen=True)
class Outcome:
    """What happened to one input: for the log line and the daemon's counters."""

    file: str
    tipo: str
    esito: str
    id_operazione: str = ""
    codice: str = ""


@dataclass(frozen=True)
class Receipt:
    file: str
    tipo: str
    esito: str  # "OK" | "KO"
    id_operazione: str | tuple[str, ...] | None = None  # a tuple for an annullamento
    stato: str | None = None
    certificato: str | None = None
    data_richiesta: str | None = None
    data_scadenza: str | None = None
    errori: tuple[Errore, ...] = ()
    ripetizione: bool = False  # a byte-identical request dropped again
    annullati: tuple[Annullato, ...] | None = None  # an accepted annullamento

    @property
    def accepted(self) -> bool:
        return self.esito == "OK"

    @property
    def quarantined(self) -> bool:
        """A refused input's original goes to state/quarantine/, as the contract says."""
        return not self.accepted

    @property
    def cancelled(self) -> tuple[str, ...]:
        """The IdOperazione an accepted annullamento cancelled (none for anything else)."""
        if self.tipo != Tipo.ANNULLAMENTO.value or not self.accepted:
            return ()
        ids = self.id_operazione
        return ids if isinstance(ids, tuple) else ()

    @property
    def outcome(self) -> Outcome:
        ids = self.id_operazione
        return Outcome(
            file=self.file,
            tipo=self.tipo,
            esito=self.esito,
            id_operazione=",".join(ids) if isinstance(ids, tuple) else (ids or ""),
            codice=self.errori[0].codice if self.errori else "",
        )

    def to_document(self) -> dict[str, Any]:
        """The JSON document of the contract, keys in its order."""
        ids = self.id_operazione
        document: dict[str, Any] = {
            "file": self.file,
            "tipo": self.tipo,
            "esito": self.esito,
            "id_operazione": list(ids) if isinstance(ids, tuple) else ids,
            "stato": self.stato,
            "certificato": self.certificato,
            "data_richiesta": self.data_richiesta,
            "data_scadenza": self.data_scadenza,
            "errori": [{"codice": e.codice, "messaggio": e.messaggio} for e in self.errori],
        }
        if self.ripetizione:
            document["ripetizione"] = True
        if self.annullati is not None:
            document["annullati"] = [
                {
                    "id_operazione": a.id_operazione,
                    "seriale": a.seriale,
                    "motivazione": a.motivazione,
                    "data_annullamento": a.data_annullamento,
                }
                for a in self.annullati
            ]
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Receipt:
        """A receipt the store kept (``to_document``'s output, or an older version's)."""
        ids = document.get("id_operazione")
        annullati = document.get("annullati")
        return cls(
            file=str(document.get("file", "")),
            tipo=str(document.get("tipo", "")),
            esito=str(document.get("esito", "")),
            id_operazione=tuple(ids) if isinstance(ids, list) else ids,
            stato=document.get("stato"),
            certificato=document.get("certificato"),
            data_richiesta=document.get("data_richiesta"),
            data_scadenza=document.get("data_scadenza"),
            errori=tuple(Errore(e["codice"], e["messaggio"]) for e in document.get("errori") or []),
            ripetizione=bool(document.get("ripetizione", False)),
            annullati=None if annullati is None else tuple(Annullato(**a) for a in annullati),
        )


def request_receipt(file: str, record: RequestRecord, *, repeated: bool = False) -> Receipt:
    return Receipt(
        file=file,
        tipo=Tipo.RICHIESTA.value,
        esito="OK" if record.esito == "OK" else "KO",
        id_operazione=record.id_operazione,
        stato=record.stato.value,
        certificato=record.certificato or None,
        data_richiesta=format_utc(record.data_richiesta),
        data_scadenza=format_utc(record.data_scadenza) if record.data_scadenza else None,
        ripetizione=repeated,
    )


def refusal_receipt(
    file: str, tipo: Tipo, error: CertdeskError, record: RequestRecord | None = None
) -> Receipt:
    """KO, with the error; for a refused request also its IdOperazione and dates."""
    errori = (Errore(error.code, error.message),)
    if record is None:
        return Receipt(file=file, tipo=tipo.value, esito="KO", errori=errori)
    base = request_receipt(file, record)
    return Receipt(
        file=file,
        tipo=base.tipo,
        esito="KO",
        id_operazione=base.id_operazione,
        stato=base.stato,
        certificato=base.certificato,
        data_richiesta=base.data_richiesta,
        data_scadenza=base.data_scadenza,
        errori=errori,
    )


def cancellation_receipt(file: str, cancelled: Iterable[RequestRecord]) -> Receipt:
    records = list(cancelled)
    return Receipt(
        file=file,
        tipo=Tipo.ANNULLAMENTO.value,
        esito="OK",
        id_operazione=tuple(r.id_operazione for r in records),
        stato="ANNULLATO",
        annullati=tuple(
            Annullato(
                id_operazione=r.id_operazione,
                seriale=r.seriale,
                motivazione=r.motivazione,
                data_annullamento=format_utc(r.data_annullamento) if r.data_annullamento else None,
            )
            for r in records
        ),
    )
