"""Annullamento rules: pure functions over a request and the records it names.

- only ``ATTIVATO`` certificates can be cancelled; a request naming any other is
  refused whole;
- nobody cancels another person's certificate;
- the first accepted cancellation of a codice fiscale is cumulative: it cancels every
  ``ATTIVATO`` certificate of that codice fiscale; every later one names exactly one;
- ``ALTRO`` requires a note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import CancellationRejected, RequestRejected
from .identity import parse_codice_fiscale
from .reasons import Motivazione
from .records import RequestRecord
from .states import Stato

__all__ = ["CancellationRequest", "decide_cancellation", "parse_cancellation"]

MAX_NOTE = 2000


@dataclass(frozen=True)
class CancellationRequest:
    codice_fiscale: str
    id_operazione: tuple[str, ...]
    motivazione: Motivazione
    nota: str
    operatore: str


def _reject(code: str, message: str) -> CancellationRejected:
    return CancellationRejected(message, code=code)


def parse_cancellation(document: Mapping[str, object]) -> CancellationRequest:
    """Validate the JSON document of an annullamento (already known to have that ``tipo``)."""
    raw_cf = document.get("codice_fiscale")
    if not isinstance(raw_cf, str) or not raw_cf.strip():
        raise _reject("CODICE_FISCALE_MANCANTE", "'codice_fiscale' is missing")
    try:
        codice_fiscale = parse_codice_fiscale(raw_cf).value
    except RequestRejected as exc:
        raise _reject(exc.code, exc.message) from None
    ids = document.get("id_operazione", [])
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise _reject(
            "ID_OPERAZIONE_NON_VALIDO", "'id_operazione' must be a list of IdOperazione strings"
        )
    code = document.get("motivazione")
    try:
        motivazione = Motivazione(code)
    except ValueError:
        allowed = ", ".join(m.value for m in Motivazione)
        raise _reject(
            "MOTIVAZIONE_NON_VALIDA", f"'motivazione' {code!r} is not one of: {allowed}"
        ) from None
    nota = document.get("nota") or ""
    operatore = document.get("operatore") or ""
    if not isinstance(nota, str) or not isinstance(operatore, str):
        raise _reject("CAMPO_NON_VALIDO", "'nota' and 'operatore' must be text")
    if len(nota) > MAX_NOTE or len(operatore) > 200:
        raise _reject("CAMPO_NON_VALIDO", f"'nota' is limited to {MAX_NOTE} characters")
    if motivazione.requires_note and not nota.strip():
        raise _reject(
            "NOTA_OBBLIGATORIA", "the reason 'Altro' requires a note ('nota') explaining it"
        )
    return CancellationRequest(
        codice_fiscale=codice_fiscale,
        id_operazione=tuple(dict.fromkeys(ids)),  # a repeated id counts once
        motivazione=motivazione,
        nota=nota.strip(),
        operatore=operatore.strip(),
    )


def load_cancellation_document(data: bytes) -> dict[str, object]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _reject("JSON_NON_VALIDO", f"the file is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise _reject("JSON_NON_VALIDO", "the JSON is nested too deeply to be a request") from None
    if not isinstance(document, dict):
        raise _reject("JSON_NON_VALIDO", "the file must hold one JSON object")
    return document


def decide_cancellation(
    request: CancellationRequest,
    named: Mapping[str, RequestRecord | None],
    active_of_person: Sequence[RequestRecord],
    *,
    first: bool,
) -> list[RequestRecord]:
    """The certificates this request cancels, or CancellationRejected (refused whole)."""
    for id_op in request.id_operazione:
        record = named.get(id_op)
        if record is None or record.codice_fiscale != request.codice_fiscale:
            # One answer for "unknown" and "someone else's": existence is not disclosed.
            raise _reject(
                "ID_OPERAZIONE_NON_TROVATO",
                f"no certificate {id_op} belongs to codice fiscale {request.codice_fiscale}",
            )
        if record.stato is not Stato.ATTIVATO:
            raise _reject(
                "STATO_NON_ANNULLABILE",
                f"certificate {id_op} is {record.stato.value}: only ATTIVATO certificates "
                "can be cancelled",
            )
    if first:
        if not active_of_person:
            raise _reject(
                "NESSUN_CERTIFICATO_ATTIVO",
                f"codice fiscale {request.codice_fiscale} has no ATTIVATO certificate",
            )
        return list(active_of_person)
    if len(request.id_operazione) != 1:
        raise _reject(
            "UN_SOLO_ID_OPERAZIONE",
            "only the first annullamento is cumulative: name exactly one IdOperazione "
            f"(this request names {len(request.id_operazione)})",
        )
    record = named[request.id_operazione[0]]
    assert record is not None
    return [record]
