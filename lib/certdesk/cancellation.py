"""Annullamento rules: pure functions over a request and the records it names.

- only ``ATTIVATO`` certificates can be cancelled; a request naming any other is
  refused whole;
- nobody cancels another person's certificate;
- the first accepted cancellation of a codice fiscale is cumulative: it cancels every
  ``ATTIVATO`` certificate of that codice fiscale; every later one names exactly one;
- ``ALTRO`` requires a note.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .codes import refusal, refusal_as
from .errors import CancellationRejected, RequestRejected
from .identity import parse_codice_fiscale
from .policy import MAX_INPUT_BYTES
from .reasons import Motivazione
from .records import RequestRecord
from .states import Stato

__all__ = [
    "CancellationRequest",
    "decide_cancellation",
    "is_first_cancellation",
    "load_cancellation_document",
    "parse_cancellation",
]

MAX_NOTE = 2000
MAX_OPERATORE = 200
MAX_IDS = 100  # a first annullamento is cumulative anyway; later ones name exactly one
# An annullamento holds no numbers; int() of a long one is slow, and past 4300 digits a
# ValueError (CPython's int max-str-digits limit).
MAX_NUMBER_DIGITS = 40
# IdOperazione is YYYYMMDD-NNNNNNNNN; this wider shape keeps "not found" messages and the
# store's queries to plain ASCII tokens.
_ID_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class CancellationRequest:
    codice_fiscale: str
    id_operazione: tuple[str, ...]
    motivazione: Motivazione
    nota: str
    operatore: str


@dataclass(frozen=True)
class _Refused:
    """Left by the JSON hooks where a value cannot be used; reported with its place, as
    the JSON_NON_VALIDO ``case`` of ``certdesk.codes`` with its ``facts``."""

    case: str
    facts: tuple[tuple[str, object], ...] = ()


def _encodable(text: str) -> bool:
    """False for a lone surrogate (a JSON "\\ud800" escape): json accepts it, but it
    cannot be written as UTF-8, so it would fail later in the store or in a receipt."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: object) -> str:
    """A value's JSON type, in Italian, for messages: never its repr (huge, deep, or
    unprintable)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "un numero"
    if isinstance(value, str):
        return "un testo"
    if isinstance(value, list):
        return "una lista"
    if isinstance(value, dict):
        return "un oggetto"
    return type(value).__name__


def _text(document: Mapping[str, object], field: str, *, code: str, limit: int) -> str:
    """An optional text field: absent means empty; any other type is refused."""
    value = document.get(field, "")
    if not isinstance(value, str):
        raise refusal(code, "tipo", tipo=_kind(value))
    if len(value) > limit:
        raise refusal(code, "lunghezza", limite=limit, lunghezza=len(value))
    if not _encodable(value):
        raise refusal(code, "surrogato")
    return value.strip()


def _codice_fiscale(raw: object) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip(" ")):
        raise refusal("CODICE_FISCALE_MANCANTE")
    if not isinstance(raw, str):
        raise refusal_as(CancellationRejected, "CODICE_FISCALE_NON_VALIDO", "tipo", tipo=_kind(raw))
    try:
        return parse_codice_fiscale(raw, field="Il campo 'codice_fiscale'").value
    except RequestRejected as exc:  # the same code and sentence, as an annullamento's
        raise CancellationRejected(exc.message, code=exc.code) from None


def _id_operazione(raw: object) -> tuple[str, ...]:
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list):
        raise refusal("ID_OPERAZIONE_NON_VALIDO", "tipo", tipo=_kind(raw))
    if len(ids) > MAX_IDS:
        raise refusal("ID_OPERAZIONE_NON_VALIDO", "troppi", numero=len(ids), massimo=MAX_IDS)
    for item in ids:
        if not isinstance(item, str):
            raise refusal("ID_OPERAZIONE_NON_VALIDO", "elemento", tipo=_kind(item))
        if not _ID_SHAPE.fullmatch(item):
            raise refusal("ID_OPERAZIONE_NON_VALIDO", valore=item[:40])
    return tuple(dict.fromkeys(ids))  # a repeated id counts once


def _motivazione(raw: object) -> Motivazione:
    if isinstance(raw, str):
        try:
            return Motivazione(raw)
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in Motivazione)
    if isinstance(raw, str):
        raise refusal("MOTIVAZIONE_NON_VALIDA", valore=raw[:40], ammesse=allowed)
    raise refusal("MOTIVAZIONE_NON_VALIDA", "tipo", tipo=_kind(raw), ammesse=allowed)


def parse_cancellation(document: Mapping[str, object]) -> CancellationRequest:
    """Validate the JSON document of an annullamento (already known to have that ``tipo``).

    Raises CancellationRejected and nothing else, whatever the values: the service decides
    a run of annullamenti in one transaction, and any other exception would fail the run.
    """
    codice_fiscale = _codice_fiscale(document.get("codice_fiscale"))
    id_operazione = _id_operazione(document.get("id_operazione", []))
    motivazione = _motivazione(document.get("motivazione"))
    nota = _text(document, "nota", code="NOTA_NON_VALIDA", limit=MAX_NOTE)
    operatore = _text(document, "operatore", code="OPERATORE_NON_VALIDO", limit=MAX_OPERATORE)
    if motivazione.requires_note and not nota:
        raise refusal("NOTA_OBBLIGATORIA", motivazione=motivazione.value)
    return CancellationRequest(
        codice_fiscale=codice_fiscale,
        id_operazione=id_operazione,
        motivazione=motivazione,
        nota=nota,
        operatore=operatore,
    )


def _number(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_NUMBER_DIGITS else _Refused("numero", (("cifre", digits),))


def _constant(name: str) -> _Refused:
    return _Refused("costante", (("costante", name),))


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            # Which one counts would be the parser's choice, not the writer's: refuse.
            raise refusal("JSON_NON_VALIDO", "chiave_ripetuta", chiave=key[:40])
        document[key] = value
    return document


def _child(where: str, part: str) -> str:
    """The place of a nested value, for messages: cut short past a few levels."""
    if where.endswith("..."):
        return where
    return f"{where}..." if len(where) > 60 else f"{where}{part}"


def _first_flaw(document: dict[str, object]) -> _Refused | None:
    """Where the parsed document holds a value that cannot be used, and why. Iterative:
    json bounded the depth, and this walk must not meet RecursionError either."""
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _Refused):
            return _Refused(value.case, (("posizione", where), *value.facts))
        if isinstance(value, str) and not _encodable(value):
            return _Refused("surrogato", (("posizione", where),))
        children: list[tuple[str, object]]
        if isinstance(value, dict):
            bad = next((key for key in value if not _encodable(key)), None)
            if bad is not None:
                return _Refused("chiave_surrogato", (("chiave", bad[:40]),))
            children = [
                (_child(where, f"[{key[:40]!a}]" if where else f"{key[:40]!a}"), item)
                for key, item in value.items()
            ]
        elif isinstance(value, list):
            children = [(_child(where, f"[{index}]"), item) for index, item in enumerate(value)]
        else:
            continue
        stack.extend(reversed(children))  # in document order
    return None


def load_cancellation_document(data: bytes) -> dict[str, object]:
    """The JSON object of an annullamento file. Raises CancellationRejected and nothing
    else, whatever the bytes (see ``parse_cancellation``)."""
    if len(data) > MAX_INPUT_BYTES:
        raise refusal_as(
            CancellationRejected,
            "FILE_TROPPO_GRANDE",
            "annullamento",
            limite_kib=MAX_INPUT_BYTES // 1024,
        )
    if data.startswith(codecs.BOM_UTF8):
        raise refusal("JSON_NON_VALIDO", "bom")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refusal("JSON_NON_VALIDO", "utf8", posizione=exc.start) from None
    try:
        document = json.loads(
            text, parse_int=_number, parse_constant=_constant, object_pairs_hook=_object
        )
    except json.JSONDecodeError as exc:
        raise refusal("JSON_NON_VALIDO", "sintassi", riga=exc.lineno, colonna=exc.colno) from None
    except ValueError:
        raise refusal("JSON_NON_VALIDO") from None
    except RecursionError:
        raise refusal("JSON_NON_VALIDO", "annidato") from None
    if not isinstance(document, dict):
        raise refusal("JSON_NON_VALIDO", "non_oggetto")
    flaw = _first_flaw(document)
    if flaw is not None:
        raise refusal("JSON_NON_VALIDO", flaw.case, **dict(flaw.facts))
    return document


def is_first_cancellation(states_of_person: Iterable[Stato | str]) -> bool:
    """A person's first accepted annullamento is the cumulative one: first means none of
    the person's requests was ever cancelled (``ANNULLATO`` is final, so one cancelled
    row is enough). The engine asks it of the store's rows, the panel of the ledger's."""
    return not any(Stato(state) is Stato.ANNULLATO for state in states_of_person)


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
            raise refusal(
                "ID_OPERAZIONE_NON_TROVATO",
                id_operazione=id_op,
                codice_fiscale=request.codice_fiscale,
            )
        if record.stato is not Stato.ATTIVATO:
            raise refusal("STATO_NON_ANNULLABILE", id_operazione=id_op, stato=record.stato.value)
    if first:
        if not active_of_person:
            raise refusal("NESSUN_CERTIFICATO_ATTIVO", codice_fiscale=request.codice_fiscale)
        return list(active_of_person)
    if len(request.id_operazione) != 1:
        raise refusal("UN_SOLO_ID_OPERAZIONE", numero=len(request.id_operazione))
    record = named[request.id_operazione[0]]
    assert record is not None
    return [record]
