"""Receipts ("esiti"): the outcome of one input file, in the contract's shape."""

from __future__ import annotations

from typing import Any

from .clock import format_utc
from .errors import CertdeskError
from .records import RequestRecord

__all__ = ["cancellation_receipt", "refusal_receipt", "request_receipt"]


def _base(file: str, tipo: str) -> dict[str, Any]:
    return {
        "file": file,
        "tipo": tipo,
        "esito": "OK",
        "id_operazione": None,
        "stato": None,
        "certificato": None,
        "data_richiesta": None,
        "data_scadenza": None,
        "errori": [],
    }


def request_receipt(file: str, record: RequestRecord, *, repeated: bool = False) -> dict[str, Any]:
    receipt = _base(file, "richiesta")
    receipt.update(
        esito="OK" if record.esito == "OK" else "KO",
        id_operazione=record.id_operazione,
        stato=record.stato.value,
        certificato=record.certificato or None,
        data_richiesta=format_utc(record.data_richiesta),
        data_scadenza=format_utc(record.data_scadenza) if record.data_scadenza else None,
    )
    if repeated:
        # A byte-identical request dropped again: no second certificate, same answer.
        receipt["ripetizione"] = True
    return receipt


def refusal_receipt(
    file: str, tipo: str, error: CertdeskError, record: RequestRecord | None = None
) -> dict[str, Any]:
    receipt = request_receipt(file, record) if record is not None else _base(file, tipo)
    receipt["esito"] = "KO"
    receipt["errori"] = [{"codice": error.code, "messaggio": error.message}]
    return receipt


def cancellation_receipt(file: str, cancelled: list[RequestRecord]) -> dict[str, Any]:
    receipt = _base(file, "annullamento")
    receipt.update(
        id_operazione=[r.id_operazione for r in cancelled],
        stato="ANNULLATO",
        annullati=[
            {
                "id_operazione": r.id_operazione,
                "seriale": r.seriale,
                "motivazione": r.motivazione,
                "data_annullamento": format_utc(r.data_annullamento)
                if r.data_annullamento
                else None,
            }
            for r in cancelled
        ],
    )
    return receipt
