"""A surviving ``outbox/journal.csv``: the witness of what a restored store lost.

The published journal is appended after every commit, on whatever disk holds
``outbox/`` (often another machine's, served to relying parties). When ``state/`` is
lost and restored from a backup, the witness still lists the requests accepted after the
backup: ``certdesk restore --witness`` moves the IdOperazione counter past every one it
names, so none is ever handed out twice, and ``certdesk verify-ledger --witness`` names
those the store no longer knows.

The witness is checked as ``verify_journal`` checks ``journal.csv``: its header, and its
hash chain from the first row (``records.chain_hash``), so a file edited by hand or of
another CA is refused (TESTIMONE_NON_VALIDO) rather than believed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .codes import refusal
from .errors import CertdeskError
from .records import GENESIS_HASH, JOURNAL_COLUMNS, chain_hash, journal_hashed
from .store import Store

__all__ = ["LostRequest", "lost_requests", "witness_next_id"]

Row = tuple[str, ...]


@dataclass(frozen=True)
class LostRequest:
    """A request the witness shows and the store lost: its last state in the witness."""

    id_operazione: str
    stato: str
    data: str
    file_origine: str
    # the store's state of this IdOperazione, "" if unknown: a change lost (an annullamento
    # after the backup), or the IdOperazione given to another request by a restore
    # without --witness
    in_store: str


def _refused(path: Path, errore: str) -> CertdeskError:
    return refusal("TESTIMONE_NON_VALIDO", file=path, errore=errore)


def _rows(path: Path) -> Iterator[Row]:
    """The witness's rows, each checked against the chain before it is yielded, always
    with their ``Canale`` (empty in a journal written before channels)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = tuple(next(reader, ()))
            if header not in (JOURNAL_COLUMNS, JOURNAL_COLUMNS[:-1]):
                raise _refused(path, "la prima riga non è l'intestazione di journal.csv")
            previous = GENESIS_HASH
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise _refused(path, f"la catena degli hash si rompe alla riga {line}")
                fields, digest, canale = row[:7], row[7], row[8] if len(row) > 8 else ""
                if chain_hash(previous, journal_hashed(fields, canale)) != digest:
                    raise _refused(path, f"la catena degli hash si rompe alla riga {line}")
                previous = digest
                yield (*fields, digest, canale)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _refused(path, str(getattr(exc, "strerror", None) or exc)) from None


def _counter(id_op: str) -> int:
    _day, _, number = id_op.partition("-")
    return int(number) if number.isdigit() else 0


def witness_next_id(path: Path) -> int:
    """One past the greatest IdOperazione number the witness names."""
    return max((_counter(row[2]) for row in _rows(path)), default=0) + 1


def lost_requests(store: Store, path: Path) -> list[LostRequest]:
    """The requests whose journal rows the witness has and the store has not, in order.

    The witness and the store agree row for row up to the backup's head; after it, the
    witness holds what the lost disk had (and the store what was done after the restore,
    under the same sequence numbers): a witness row after that point is lost unless the
    store has the same change (same time, IdOperazione, states, reason, file)."""
    mine = (row for chunk in store.iter_journal_rows() for row in chunk)
    after: list[Row] = []
    kept: set[Row] = set()
    for row in _rows(path):
        if not after:
            ours = next(mine, None)
            if ours is not None and tuple(ours) == row:
                continue
            if row[0] == "1":
                raise _refused(path, "la sua prima riga non è quella di questa CA")
            if ours is not None:
                kept.add(tuple(ours[1:7]))
        after.append(row)
    if not after:
        return []
    kept |= {tuple(r[1:7]) for r in mine}
    lost: dict[str, LostRequest] = {}
    for row in after:
        if tuple(row[1:7]) not in kept:
            _seq, data, id_op, _da, a, _mot, origine, _hash, _canale = row
            record = store.get(id_op)
            lost[id_op] = LostRequest(id_op, a, data, origine, record.stato.value if record else "")
    return list(lost.values())
