"""The store's rows and certdesk's values: which index finds a person's or a key's rows,
how a row of ``requests``, ``events`` or ``inputs`` becomes a record, and the values a
``Transaction`` takes in.

Part of the store (``store.py``): only the store's modules import it; the others take these
names from ``certdesk.store``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import parse_utc
from .records import JournalEvent, RequestRecord
from .states import Stato

__all__ = [
    "BY_CF",
    "BY_KEY",
    "EVENT_COLUMNS",
    "INPUT_COLUMNS",
    "REQUEST_COLUMNS",
    "REQUEST_TEXT",
    "Activation",
    "InputRecord",
    "JournalChange",
    "NewRequest",
    "OcspRow",
    "input_record",
    "journal_event",
    "request_record",
]

# Without statistics SQLite prefers (stato, data_scadenza) for "codice_fiscale = ? AND
# stato = ?" and reads every row in that state, for a lookup that concerns a handful. A
# person's rows are found by codice fiscale, always.
BY_CF = " INDEXED BY requests_codice_fiscale"

# A key's rows through requests_spki_prefix: the prefix (the index's expression, as
# written there) finds them, the whole hash decides; "spki_sha256 != ''" is the partial
# index's condition, without which SQLite would scan the whole table. The "+" keeps
# SQLite from propagating the constant into the prefix expression, which would no longer
# match the index's (it then reads the whole index).
BY_KEY = "substr(spki_sha256, 1, 16) = ? AND +spki_sha256 = ? AND spki_sha256 != ''"

# The columns ``request_record`` reads, in its order.
REQUEST_COLUMNS = (
    "id_operazione, codice_fiscale, profilo, stato, data_richiesta, esito, file_origine, "
    "data_scadenza, seriale, impronta_sha256, spki_sha256, motivazione, data_annullamento, "
    "nota, operatore, emittente, canale"
)

# A request's facts as text, in ``records.REQUEST_TEXT_FIELDS`` order (times are stored
# in the ledger's own format).
REQUEST_TEXT = (
    "SELECT id_operazione, codice_fiscale, profilo, stato, data_richiesta,"
    " COALESCE(data_scadenza, ''), esito, COALESCE(seriale, ''), impronta_sha256,"
    " motivazione, COALESCE(data_annullamento, ''), file_origine, emittente, canale"
    " FROM requests"
)

# The columns ``journal_event`` reads, in its order.
EVENT_COLUMNS = (
    "seq, data, id_operazione, da_stato, a_stato, motivazione, file_origine, hash, canale"
)

# The columns ``input_record`` reads, in its order.
INPUT_COLUMNS = "claim, file, tipo, sha256, receipt, quarantined, done"

#: (id, cert_der, stato, data_annullamento, motivazione, seriale, emittente): a response to sign
OcspRow = tuple[str, bytes, str, str, str, str, str]

# A journal row before it is chained: (data, id, from, to, motivazione, file, canale),
# times and states as the journal writes them.
JournalChange = tuple[str, str, str, str, str, str, str]


def request_record(row: sqlite3.Row | tuple[Any, ...]) -> RequestRecord:
    (
        id_op,
        cf,
        profilo,
        stato,
        richiesta,
        esito,
        origine,
        scadenza,
        seriale,
        impronta,
        spki,
        motivazione,
        annullamento,
        nota,
        operatore,
        emittente,
        canale,
    ) = tuple(row)
    return RequestRecord(
        id_operazione=id_op,
        codice_fiscale=cf,
        profilo=profilo,
        stato=Stato(stato),
        data_richiesta=parse_utc(richiesta),
        esito=esito,
        file_origine=origine,
        data_scadenza=parse_utc(scadenza) if scadenza else None,
        seriale=seriale or "",
        impronta_sha256=impronta,
        spki_sha256=spki,
        motivazione=motivazione,
        data_annullamento=parse_utc(annullamento) if annullamento else None,
        nota=nota,
        operatore=operatore,
        emittente=emittente,
        canale=canale,
    )


def journal_event(row: tuple[Any, ...]) -> JournalEvent:
    seq, data, id_op, da, a, motivazione, origine, digest, canale = row
    return JournalEvent(seq, parse_utc(data), id_op, da, a, motivazione, origine, digest, canale)


@dataclass(frozen=True)
class InputRecord:
    claim: str
    file: str
    tipo: str
    sha256: str
    receipt: dict[str, Any] | None
    quarantined: bool
    done: bool


def input_record(row: tuple[Any, ...]) -> InputRecord:
    return InputRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]) if row[4] else None,
        bool(row[5]),
        bool(row[6]),
    )


@dataclass(frozen=True)
class NewRequest:
    """A request's first row (``Transaction.record_requests``)."""

    id_operazione: str
    stato: Stato
    codice_fiscale: str
    profilo: str
    esito: str
    file_origine: str
    claim: str
    input_sha256: str
    spki_sha256: str = ""
    csr_der: bytes | None = None
    # Reserved before signing: the certificate will carry exactly these.
    seriale: str = ""
    data_scadenza: datetime | None = None
    emittente: str = ""  # the issuer that will sign it (accepted requests)
    canale: str = ""  # the channel it came through (``channels.channel_of_claim``)


@dataclass(frozen=True)
class Activation:
    """A signed certificate for a request IN_GENERAZIONE (``Transaction.activate_many``)."""

    id_op: str
    file_origine: str
    seriale: str  # must be the serial reserved for the request
    impronta_sha256: str
    cert_der: bytes
    canale: str = ""  # the request's channel, for its journal row
