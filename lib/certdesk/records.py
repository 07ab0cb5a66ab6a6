"""The rows certdesk publishes: ledger rows, hash-chained journal rows, and their CSV text.

Every text field is made printable first (control characters become ``\\xNN``), so
one record is exactly one line and the journal's last line is its last row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .clock import format_utc
from .states import Stato

__all__ = [
    "GENESIS_HASH",
    "JOURNAL_COLUMNS",
    "LEDGER_COLUMNS",
    "REQUEST_TEXT_FIELDS",
    "JournalEvent",
    "RequestRecord",
    "RequestText",
    "certificate_name",
    "chain_hash",
    "csv_line",
    "issuer_shown",
    "journal_hashed",
    "journal_line",
    "ledger_fields",
    "ledger_line",
    "printable",
]

LEDGER_COLUMNS = (
    "IdOperazione",
    "CodiceFiscale",
    "Profilo",
    "Certificato",
    "Stato",
    "DataRichiesta",
    "DataScadenza",
    "Esito",
    "Seriale",
    "ImprontaSHA256",
    "Motivazione",
    "DataAnnullamento",
    "FileOrigine",
    # Appended last (issue 17), so programs that read columns by position keep working:
    # the issuing CA that signed the certificate (gen1, gen2...; empty without one).
    "Emittente",
    # Appended last (issue 18): the channel the request came through (``channels``; empty
    # for the top-level inbox/).
    "Canale",
)
JOURNAL_COLUMNS = (
    "Seq",
    "Data",
    "IdOperazione",
    "DaStato",
    "AStato",
    "Motivazione",
    "FileOrigine",
    "Hash",
    # After the hash (issue 18), so rows written before channels keep their text: the
    # channel of the request; the hash covers it when it is not empty (``journal_hashed``).
    "Canale",
)
GENESIS_HASH = "0" * 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters (and lone surrogates) escaped as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# What makes the csv module quote a field (QUOTE_MINIMAL, "\n" as line terminator).
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def csv_line(fields: Sequence[str]) -> str:
    """One CSV row, exactly as ``csv.writer`` writes it. Almost every row needs no quotes
    (ids, dates, hex): those are joined directly, thousands of times per second."""
    if len(fields) > 1 and not _NEEDS_QUOTES.search("".join(fields)):
        return ",".join(fields) + "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


@dataclass(frozen=True)
class RequestRecord:
    """One certificate request as the store holds it."""

    id_operazione: str
    codice_fiscale: str
    profilo: str
    stato: Stato
    data_richiesta: datetime
    esito: str
    file_origine: str
    data_scadenza: datetime | None = None
    seriale: str = ""
    impronta_sha256: str = ""
    spki_sha256: str = ""
    motivazione: str = ""
    data_annullamento: datetime | None = None
    nota: str = ""
    operatore: str = ""
    emittente: str = ""  # the issuing CA chosen with the serial (``issuers``)
    canale: str = ""  # the channel it came through (``channels``)

    @property
    def certificato(self) -> str:
        """The certificate's file once it is signed (the serial is reserved before)."""
        return certificate_name(self.id_operazione, self.stato.value)


_SIGNED = frozenset({Stato.ATTIVATO.value, Stato.ANNULLATO.value, Stato.SCADUTO.value})

# A request's facts as text, in this order (times as the ledger writes them, no value as
# ""): what the store gives for a projection of many requests (``Store.iter_request_texts``)
# without building records.
REQUEST_TEXT_FIELDS = (
    "id_operazione",
    "codice_fiscale",
    "profilo",
    "stato",
    "data_richiesta",
    "data_scadenza",
    "esito",
    "seriale",
    "impronta_sha256",
    "motivazione",
    "data_annullamento",
    "file_origine",
    "emittente",
    "canale",
)
RequestText = tuple[str, ...]


def certificate_name(id_operazione: str, stato: str) -> str:
    """The ledger's ``Certificato``: the certificate's file once it is signed."""
    return f"{id_operazione}.pem" if stato in _SIGNED else ""


def issuer_shown(stato: str, emittente: str) -> str:
    """The ledger's ``Emittente``: only a request with a certificate has one (a refused
    one's stored issuer is the column's default, not a fact)."""
    return emittente if stato in _SIGNED else ""


def ledger_fields(text: RequestText) -> tuple[str, ...]:
    """A request's ``ledger.csv`` fields from its text: ``ledger_line`` without a record."""
    id_op, cf, profilo, stato, *middle, file_origine, emittente, canale = text
    return (id_op, cf, profilo, certificate_name(id_op, stato), stato, *middle,
            printable(file_origine), issuer_shown(stato, emittente), canale)  # fmt: skip


def _time(moment: datetime | None) -> str:
    return format_utc(moment) if moment is not None else ""


def ledger_line(record: RequestRecord) -> str:
    return csv_line(
        [
            record.id_operazione,
            record.codice_fiscale,
            record.profilo,
            record.certificato,
            record.stato.value,
            _time(record.data_richiesta),
            _time(record.data_scadenza),
            record.esito,
            record.seriale,
            record.impronta_sha256,
            record.motivazione,
            _time(record.data_annullamento),
            printable(record.file_origine),
            issuer_shown(record.stato.value, record.emittente),
            record.canale,
        ]
    )


@dataclass(frozen=True)
class JournalEvent:
    """One state change; ``hash`` chains it to every row before it."""

    seq: int
    data: datetime
    id_operazione: str
    da_stato: str
    a_stato: str
    motivazione: str
    file_origine: str
    hash: str
    canale: str = ""

    def fields(self) -> list[str]:
        return [
            str(self.seq),
            format_utc(self.data),
            self.id_operazione,
            self.da_stato,
            self.a_stato,
            self.motivazione,
            printable(self.file_origine),
        ]


def journal_hashed(fields: Sequence[str], canale: str) -> tuple[str, ...]:
    """What a journal row's hash covers: its fields before the hash, then its channel when
    it has one; a row of the default channel is hashed as every row before channels was."""
    return (*fields, canale) if canale else tuple(fields)


def chain_hash(previous_hash: str, fields: Sequence[str]) -> str:
    """SHA-256 over the previous row's hash and this row's CSV text (without its hash)."""
    return hashlib.sha256((previous_hash + "\n" + csv_line(fields)).encode("utf-8")).hexdigest()


def journal_line(event: JournalEvent) -> str:
    return csv_line([*event.fields(), event.hash, event.canale])
