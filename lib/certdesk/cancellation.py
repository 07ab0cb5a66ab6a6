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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import CancellationRejected, RequestRejected
from .identity import parse_codice_fiscale
from .policy import MAX_INPUT_BYTES
from .reasons import Motivazione
from .records import RequestRecord
from .states import Stato

__all__ = [
    "CancellationRequest",
    "decide_cancellation",
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
    """Left by the JSON hooks where a value cannot be used; reported with its place."""

    why: str


def _reject(code: str, message: str) -> CancellationRejected:
    # Messages go into receipts and the store as UTF-8: escape a lone surrogate echoed
    # from the input, or the refusal itself would fail the whole run.
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return CancellationRejected(safe, code=code)


def _encodable(text: str) -> bool:
    """False for a lone surrogate (a JSON "\\ud800" escape): json accepts it, but it
    cannot be written as UTF-8, so it would fail later in the store or in a receipt."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: object) -> str:
    """A value's JSON type, for messages: never its repr (huge, deep, or unprintable)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _text(document: Mapping[str, object], field: str, code: str, limit: int) -> str:
    """An optional text field: absent means empty; any other type is refused."""
    value = document.get(field, "")
    if not isinstance(value, str):
        raise _reject(code, f"'{field}' must be text (a JSON string), not {_kind(value)}")
    if len(value) > limit:
        raise _reject(code, f"'{field}' is limited to {limit} characters (it has {len(value)})")
    if not _encodable(value):
        raise _reject(code, f"'{field}' holds an unpaired surrogate escape, which is not text")
    return value.strip()


def _codice_fiscale(raw: object) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip(" ")):
        raise _reject("CODICE_FISCALE_MANCANTE", "'codice_fiscale' is missing")
    if not isinstance(raw, str):
        raise _reject(
            "CODICE_FISCALE_NON_VALIDO",
            f"'codice_fiscale' must be text (a JSON string), not {_kind(raw)}",
        )
    try:
        return parse_codice_fiscale(raw, field="'codice_fiscale'").value
    except RequestRejected as exc:
        raise _reject(exc.code, exc.message) from None


def _id_operazione(raw: object) -> tuple[str, ...]:
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list):
        raise _reject(
            "ID_OPERAZIONE_NON_VALIDO",
            f"'id_operazione' must be a list of IdOperazione strings, not {_kind(raw)}",
        )
    if len(ids) > MAX_IDS:
        raise _reject(
            "ID_OPERAZIONE_NON_VALIDO",
            f"'id_operazione' names {len(ids)} certificates: at most {MAX_IDS} (the first "
            "annullamento of a codice fiscale cancels all of them without naming them)",
        )
    for item in ids:
        if not isinstance(item, str) or not _ID_SHAPE.fullmatch(item):
            shown = f"{item[:40]!a}" if isinstance(item, str) else _kind(item)
            raise _reject(
                "ID_OPERAZIONE_NON_VALIDO",
                f"'id_operazione' holds {shown}, which is not an IdOperazione (YYYYMMDD-NNNNNNNNN)",
            )
    return tuple(dict.fromkeys(ids))  # a repeated id counts once


def _motivazione(raw: object) -> Motivazione:
    if isinstance(raw, str):
        try:
            return Motivazione(raw)
        except ValueError:
            pass
    shown = f"{raw[:40]!a}" if isinstance(raw, str) else _kind(raw)
    allowed = ", ".join(m.value for m in Motivazione)
    raise _reject("MOTIVAZIONE_NON_VALIDA", f"'motivazione' is {shown}, not one of: {allowed}")


def parse_cancellation(document: Mapping[str, object]) -> CancellationRequest:
    """Validate the JSON document of an annullamento (already known to have that ``tipo``).

    Raises CancellationRejected and nothing else, whatever the values: the service decides
    a run of annullamenti in one transaction, and any other exception would fail the run.
    """
    codice_fiscale = _codice_fiscale(document.get("codice_fiscale"))
    id_operazione = _id_operazione(document.get("id_operazione", []))
    motivazione = _motivazione(document.get("motivazione"))
    nota = _text(document, "nota", "NOTA_NON_VALIDA", MAX_NOTE)
    operatore = _text(document, "operatore", "OPERATORE_NON_VALIDO", MAX_OPERATORE)
    if motivazione.requires_note and not nota:
        raise _reject(
            "NOTA_OBBLIGATORIA", "the reason 'Altro' requires a note ('nota') explaining it"
        )
    return CancellationRequest(
        codice_fiscale=codice_fiscale,
        id_operazione=id_operazione,
        motivazione=motivazione,
        nota=nota,
        operatore=operatore,
    )


def _number(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_NUMBER_DIGITS else _Refused(f"is a number of {digits} digits")


def _constant(name: str) -> _Refused:
    return _Refused(f"is {name}, which JSON does not allow")


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            # Which one counts would be the parser's choice, not the writer's: refuse.
            raise _reject("JSON_NON_VALIDO", f"the key {key[:40]!a} appears twice in an object")
        document[key] = value
    return document


def _child(where: str, part: str) -> str:
    """The place of a nested value, for messages: cut short past a few levels."""
    if where.endswith("..."):
        return where
    return f"{where}..." if len(where) > 60 else f"{where}{part}"


def _first_flaw(document: dict[str, object]) -> str | None:
    """Where the parsed document holds a value that cannot be used, and why. Iterative:
    json bounded the depth, and this walk must not meet RecursionError either."""
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _Refused):
            return f"{where} {value.why}"
        if isinstance(value, str) and not _encodable(value):
            return f"{where} holds an unpaired surrogate escape, which is not text"
        children: list[tuple[str, object]]
        if isinstance(value, dict):
            bad = next((key for key in value if not _encodable(key)), None)
            if bad is not None:
                return f"the key {bad[:40]!a} holds an unpaired surrogate escape"
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
        raise _reject(
            "FILE_TROPPO_GRANDE",
            f"the file exceeds {MAX_INPUT_BYTES // 1024} KiB: an annullamento is a few lines",
        )
    if data.startswith(codecs.BOM_UTF8):
        raise _reject(
            "JSON_NON_VALIDO",
            "the file starts with a byte order mark (BOM): save it as UTF-8 without BOM",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _reject("JSON_NON_VALIDO", f"the file is not UTF-8 text: {exc}") from None
    try:
        document = json.loads(
            text, parse_int=_number, parse_constant=_constant, object_pairs_hook=_object
        )
    except ValueError as exc:  # JSONDecodeError: the message gives line and column
        raise _reject("JSON_NON_VALIDO", f"the file is not valid JSON: {exc}") from None
    except RecursionError:
        raise _reject("JSON_NON_VALIDO", "the JSON is nested too deeply to be a request") from None
    if not isinstance(document, dict):
        raise _reject("JSON_NON_VALIDO", "the file must hold one JSON object")
    flaw = _first_flaw(document)
    if flaw is not None:
        raise _reject("JSON_NON_VALIDO", f"the file is not a usable JSON object: {flaw}")
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
