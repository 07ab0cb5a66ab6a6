"""Which serials this CA issued, from ``outbox/ledger.csv``, for the responder's misses.

A request whose response file does not exist is either for a certificate issued moments
ago, whose first response the daemon has not signed yet (``tryLater``), or for one this
CA never issued (``unauthorized``). The ledger tells them apart with what the responder
may read (``outbox/`` only): a batch's ledger rows are durable before its receipts, so a
certificate its owner holds is in the ledger. Its end of validity comes along, so that
an expired certificate whose last response went stale is answered ``unauthorized``, as
other CAs stop answering for expired certificates, instead of ``tryLater`` for ever.

The ledger can hold a million rows (~250 MB), so it is never read per request:

- the index is refreshed only on a miss, and only when ``ledger.csv`` changed (a stat);
- new rows are appended to the file: only the bytes past those already read are read;
- an annullamento or an expiry replaces the file (a new inode): it is read again whole,
  in a thread, while the responder goes on serving files (a serial is never removed,
  so what was known stays true meanwhile).

Each serial is kept as its low 64 bits (random bits in certdesk's serials) in a sorted
``array`` beside its end of validity: 16 bytes a certificate. Two serials that share
their low 64 bits can only make a foreign serial look issued: ``tryLater`` instead of
``unauthorized``, never a status.
"""

from __future__ import annotations

import csv
import os
import threading
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

__all__ = ["SerialIndex"]

_LOW64 = (1 << 64) - 1
_END_BITS = 40  # seconds since 1970 until the year 36812
_END_MASK = (1 << _END_BITS) - 1
# Columns of ledger.csv (records.LEDGER_COLUMNS): DataScadenza, Seriale.
_SCADENZA, _SERIALE = 6, 8
# New serials are kept in a dict until this many, then merged into the sorted arrays.
_MERGE_AT = 100_000
_CHUNK = 4 << 20


@dataclass(frozen=True)
class _Known:
    """One consistent view: the sorted arrays and the serials added since."""

    keys: array[int] = field(default_factory=lambda: array("Q"))
    ends: array[int] = field(default_factory=lambda: array("q"))
    recent: dict[int, int] = field(default_factory=dict)

    def end_of(self, key: int) -> int | None:
        end = self.recent.get(key)
        if end is not None:
            return end
        at = bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            return int(self.ends[at])
        return None


class SerialIndex:
    """The serials of ``ledger.csv``; ``refresh`` runs in a worker thread, ``end_of`` and
    ``changed`` in the event loop (the view they read is replaced whole)."""

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self._known = _Known()
        self._file: tuple[int, int] | None = None  # (device, inode) read so far
        self._offset = 0  # bytes of whole rows read from it
        self._lock = threading.Lock()

    def end_of(self, serial: int) -> int | None:
        """The end of validity (seconds since 1970) of the certificate with this serial,
        None when the ledger did not list it when last read."""
        return self._known.end_of(serial & _LOW64)

    def __len__(self) -> int:
        known = self._known
        return len(known.keys) + len(known.recent)

    def changed(self) -> bool:
        """Whether ledger.csv is not the file, or not the length, read last (one stat)."""
        try:
            st = os.stat(self.ledger)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) != self._file or st.st_size != self._offset

    def refresh(self) -> None:
        """Read what is new in ledger.csv (blocking: call it in a thread)."""
        with self._lock:
            try:
                with open(self.ledger, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    identity = (st.st_dev, st.st_ino)
                    if identity == self._file and st.st_size >= self._offset:
                        self._append(fh)
                    else:  # replaced (or, never by certdesk, cut short)
                        self._reread(fh, identity)
            except FileNotFoundError:
                return

    def _append(self, fh: BinaryIO) -> None:
        fh.seek(self._offset)
        rows, used = _rows(fh.read())
        if not rows:
            return
        known = self._known
        recent = dict(known.recent)
        recent.update(rows)
        self._known = (
            _Known(known.keys, known.ends, recent)
            if len(recent) < _MERGE_AT
            else _merged(known, recent)
        )
        self._offset += used

    def _reread(self, fh: BinaryIO, identity: tuple[int, int]) -> None:
        packed: list[int] = []
        offset, pending = 0, b""
        while chunk := fh.read(_CHUNK):
            data = pending + chunk
            rows, used = _rows(data)
            packed.extend(key << _END_BITS | end for key, end in rows)
            pending = data[used:]
            offset += used
        self._known = _packed(packed)
        self._file, self._offset = identity, offset


def _merged(known: _Known, recent: dict[int, int]) -> _Known:
    packed = [k << _END_BITS | e for k, e in zip(known.keys, known.ends, strict=True)]
    packed.extend(k << _END_BITS | e for k, e in recent.items())
    return _packed(packed)


def _packed(packed: list[int]) -> _Known:
    packed.sort()
    return _Known(
        array("Q", (p >> _END_BITS for p in packed)),
        array("q", (p & _END_MASK for p in packed)),
    )


def _rows(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """(low 64 bits of the serial, end of validity) of each whole line of ``data`` that
    has a serial, and how many bytes those lines take."""
    used = data.rfind(b"\n") + 1
    rows = []
    for line in data[:used].decode("utf-8", "replace").splitlines():
        fields = line.split(",", _SERIALE + 1)
        if len(fields) <= _SERIALE or '"' in line[: len(line) - len(fields[-1])]:
            fields = next(csv.reader([line]), [])  # a quoted field before Seriale
        if len(fields) <= _SERIALE or not fields[_SERIALE] or fields[0] == "IdOperazione":
            continue
        try:
            key = int(fields[_SERIALE], 16) & _LOW64
        except ValueError:
            continue  # not a row certdesk writes: it names no certificate of ours
        try:
            end = int(datetime.fromisoformat(fields[_SCADENZA]).timestamp()) & _END_MASK
        except ValueError:
            end = _END_MASK  # no end written: never taken for expired
        rows.append((key, end))
    return rows, used
