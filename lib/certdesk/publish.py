"""The outbox: a projection of the state store, every file appearing atomically.

Costs stay independent of the store's size on the hot path: certificates and receipts
are single files, new ledger rows and journal rows are appended. Only a change to an
existing row (annullamento, expiry) rewrites ``ledger.csv``, streamed from the store.

``publish_batch`` publishes a whole batch of requests with one durability barrier:
certificates, ledger rows and journal rows are on disk before any receipt is renamed in.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .fsutil import (
    append_durably,
    append_unsynced,
    atomic_write,
    fsync_dir,
    remove_asides,
    rename_into_place,
    sync_data,
    write_aside,
)
from .home import Home
from .names import recorded_receipt_name
from .records import (
    JOURNAL_COLUMNS,
    LEDGER_COLUMNS,
    RequestRecord,
    csv_line,
    ledger_line,
)
from .store import Store

__all__ = ["Publisher"]

_LEDGER_HEADER = csv_line(LEDGER_COLUMNS)
_JOURNAL_HEADER = csv_line(JOURNAL_COLUMNS)


def _journal_last_seq(path: Path) -> int:
    """The Seq of the journal's last complete row; a torn final append is cut off."""
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        start = max(0, size - 8192)
        fh.seek(start)
        tail = fh.read()
        if not tail.endswith(b"\n"):
            # A kill during an append leaves part of a row: the store still has the
            # event, so drop the fragment and append it again whole.
            cut = start + tail.rfind(b"\n") + 1
            fh.truncate(cut)
            os.fsync(fh.fileno())
            tail = tail[: cut - start]
        lines = tail.rstrip(b"\n").split(b"\n")
        last = lines[-1].decode("utf-8") if lines and lines[-1] else ""
    if not last or last == _JOURNAL_HEADER.rstrip("\n"):
        return 0
    row = next(csv.reader([last]))
    return int(row[0])


class Publisher:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.outbox = home.outbox
        self.certs = self.outbox / "certs"
        self.receipts = self.outbox / "receipts"
        self.ca = self.outbox / "ca"
        self.ocsp = self.outbox / "ocsp"
        self.ledger = self.outbox / "ledger.csv"
        self.journal = self.outbox / "journal.csv"
        self._journal_seq: int | None = None

    @property
    def _old_ledger(self) -> Path:
        return self.ledger.with_name(".ledger.csv.replaced.tmp")

    def ensure_layout(self) -> None:
        for folder in (self.outbox, self.certs, self.receipts, self.ca, self.ocsp):
            folder.mkdir(parents=True, exist_ok=True)

    def remove_stale_asides(self) -> int:
        """Delete the ``.*.tmp`` files a killed writer left beside their targets.

        Only safe while no other process publishes (the daemon holds its lock)."""
        removed = 0
        for folder in (self.outbox, self.certs, self.receipts, self.ca, self.ocsp):
            try:
                entries = os.scandir(folder)
            except FileNotFoundError:
                continue
            # Streamed: certs/ may hold a million names, never listed whole in memory.
            with entries:
                for entry in entries:
                    if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                            removed += 1
        return removed

    # -- single files ----------------------------------------------------------------
    def certificate_path(self, id_operazione: str) -> Path:
        return self.certs / f"{id_operazione}.pem"

    def write_certificate(self, id_operazione: str, pem: bytes, *, sync: bool = True) -> None:
        atomic_write(self.certificate_path(id_operazione), pem, sync_dir=sync)

    def write_certificates(self, certificates: Sequence[tuple[str, bytes]]) -> None:
        """Many certificates, durable when this returns, with one barrier for all."""
        folder = os.fspath(self.certs)
        pairs = []
        try:
            for id_op, pem in certificates:
                final = f"{folder}/{id_op}.pem"
                pairs.append((write_aside(final, pem), final))
            sync_data(aside for aside, _ in pairs)
            rename_into_place(pairs)
        except BaseException:
            remove_asides(pairs)
            raise

    def receipt_path(self, input_name: str) -> Path:
        return self.receipts / recorded_receipt_name(input_name)

    def write_receipt(self, input_name: str, receipt: dict[str, Any], *, sync: bool = True) -> None:
        atomic_write(self.receipt_path(input_name), _receipt_bytes(receipt), sync_dir=sync)

    def write_ca(self, root_pem: bytes, issuing_pem: bytes) -> None:
        atomic_write(self.ca / "root.pem", root_pem)
        atomic_write(self.ca / "issuing.pem", issuing_pem)
        atomic_write(self.ca / "chain.pem", issuing_pem + root_pem)

    def sync_folders(self) -> None:
        for folder in (self.certs, self.receipts, self.outbox):
            fsync_dir(folder)

    # -- ledger ----------------------------------------------------------------------
    def _ledger_text(self, records: Iterable[RequestRecord]) -> str:
        text = "".join(ledger_line(r) for r in records)
        if text and (not self.ledger.exists() or self.ledger.stat().st_size == 0):
            text = _LEDGER_HEADER + text
        return text

    def append_ledger(self, records: Iterable[RequestRecord]) -> None:
        text = self._ledger_text(records)
        if text:
            append_durably(self.ledger, text.encode("utf-8"))

    def rebuild_ledger(self, store: Store) -> None:
        """Rewrite ledger.csv from the store: streamed, then renamed into place.

        The rows come straight from SQLite as the text the ledger holds (times are stored
        in the ledger's own format), so no record objects are built: a million rows take
        seconds, in constant memory."""
        aside = self.ledger.with_name(".ledger.csv.rebuild.tmp")
        with open(aside, "w", encoding="utf-8", newline="") as fh:
            fh.write(_LEDGER_HEADER)
            writer = csv.writer(fh, lineterminator="\n")
            for rows in store.iter_ledger_rows():
                writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        self._replace_ledger(aside)

    def catch_up_ledger(self, store: Store) -> bool:
        """After a crash, append the rows the store has beyond ledger.csv's last one, in
        constant time instead of a rebuild's (seconds at a million rows).

        A batch appends its rows after its commit, in IdOperazione order, so a crash can
        only leave out the last rows. That holds when the file ends with a whole row equal,
        byte for byte, to the store's row of the same IdOperazione; False otherwise (a
        torn last row, a row the store has otherwise, no header): the caller rebuilds."""
        last_id = self._last_row_id(store)
        if last_id is None:
            return False
        with open(self.ledger, "a", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            for rows in store.iter_ledger_rows(after=last_id):
                writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _last_row_id(self, store: Store) -> str | None:
        """The IdOperazione of ledger.csv's last row ("" for a header alone), when that row
        is whole and equal to the store's; None when that cannot be shown."""
        try:
            with open(self.ledger, "rb") as fh:
                if fh.readline() != _LEDGER_HEADER.encode("utf-8"):
                    return None
                size = os.fstat(fh.fileno()).st_size
                fh.seek(max(0, size - _TAIL_BYTES))
                tail = fh.read()
        except FileNotFoundError:
            return None
        if not tail.endswith(b"\n"):
            return None  # empty, or a torn last row
        before, _, last = tail[:-1].rpartition(b"\n")
        if not before and size > len(tail):
            return None  # no whole line in the tail: not a row this code writes
        line = last.decode("utf-8", "replace") + "\n"
        if line == _LEDGER_HEADER:
            return ""
        id_op = line.split(",", 1)[0]
        row = store.ledger_row(id_op) if _ID_OPERAZIONE.fullmatch(id_op) else None
        if row is None or _csv_text([row]) != line:
            return None
        return id_op

    def update_ledger(self, store: Store, id_operazioni: Iterable[str]) -> None:
        """Rewrite the rows of ``id_operazioni`` (an annullamento, an expiry), in constant
        time per row instead of per ledger row; a row not in the file (a batch that failed
        before its append) is inserted where it belongs.

        ledger.csv is a CSV with one row per request, so a row that changes length moves
        every row after it: the file is still written anew, but the unchanged byte ranges
        are copied by the kernel (``copy_file_range``) and only the changed rows are
        formatted. The rows are found by binary search on IdOperazione, which orders the
        file. Anything unexpected (a torn row, too many rows) rebuilds from the store.
        """
        wanted = sorted(set(id_operazioni))
        if not wanted:
            return
        spans: list[tuple[int, int]] | None = None
        try:
            if len(wanted) <= _PATCH_MAX_ROWS:
                spans = self._locate_rows(wanted)
        except (OSError, ValueError):
            spans = None
        if spans is None:
            self.rebuild_ledger(store)
            return
        lines = []
        for id_op in wanted:
            record = store.get(id_op)
            if record is None:
                self.rebuild_ledger(store)
                return
            lines.append(ledger_line(record).encode("utf-8"))
        aside = self.ledger.with_name(".ledger.csv.patch.tmp")
        try:
            # Unbuffered target: the kernel copies and our writes share one file offset.
            with open(self.ledger, "rb") as source, open(aside, "wb", buffering=0) as target:
                position = 0
                for (start, end), line in zip(spans, lines, strict=True):
                    _copy_range(source, target, position, start - position)
                    _write_all(target.fileno(), line)
                    position = end
                size = os.fstat(source.fileno()).st_size
                _copy_range(source, target, position, size - position)
                os.fsync(target.fileno())
        except (OSError, ValueError):
            aside.unlink(missing_ok=True)
            self.rebuild_ledger(store)
            return
        self._replace_ledger(aside)

    def _replace_ledger(self, aside: Path) -> None:
        """Rename ``aside`` over ledger.csv. The replaced file keeps a name until
        ``release_old_ledger``: freeing a 250 MB file's blocks takes ~50 ms, which the
        daemon pays after the receipts instead of before them."""
        old = self._old_ledger
        with contextlib.suppress(FileNotFoundError):
            old.unlink()  # one left by a run that stopped before releasing it
        with contextlib.suppress(FileNotFoundError):
            os.link(self.ledger, old)
        os.replace(aside, self.ledger)
        fsync_dir(self.outbox)

    def release_old_ledger(self) -> None:
        """Free the ledger.csv replaced last (a start-up removes one left by a crash)."""
        with contextlib.suppress(FileNotFoundError):
            self._old_ledger.unlink()

    def _locate_rows(self, wanted: Sequence[str]) -> list[tuple[int, int]]:
        """(start, end) byte offsets of each wanted row; for a row not in the file, the
        empty span where it belongs. Every row is one line (names are made printable)."""
        spans = []
        with open(self.ledger, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if fh.readline() != _LEDGER_HEADER.encode("utf-8"):
                raise ValueError("ledger.csv does not start with its header")
            first = fh.tell()
            for id_op in wanted:
                key = id_op.encode("ascii")
                lo, hi = first, size
                while lo < hi:  # the first position whose next row has an id >= key
                    mid = (lo + hi) // 2
                    row = _row_from(fh, mid, first, size)
                    if row is None or row[2] >= key:
                        hi = mid
                    else:
                        lo = row[1]
                row = _row_from(fh, lo, first, size)
                if row is not None and row[2] == key:
                    spans.append((row[0], row[1]))
                else:  # before the first row with a greater id, or at the end
                    at = size if row is None else row[0]
                    spans.append((at, at))
        return spans

    # -- journal ---------------------------------------------------------------------
    def _journal_text(self, store: Store) -> tuple[str, int]:
        if self._journal_seq is None:
            self._journal_seq = _journal_last_seq(self.journal)
        if store.last_event_seq() <= self._journal_seq:
            return "", 0
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        count = 0
        for rows in store.iter_journal_rows(self._journal_seq):
            writer.writerows(rows)
            count += len(rows)
        text = buffer.getvalue()
        if not self.journal.exists() or self.journal.stat().st_size == 0:
            text = _JOURNAL_HEADER + text
        return text, count

    def catch_up_journal(self, store: Store) -> int:
        """Append every store event the journal does not have yet; returns how many."""
        text, count = self._journal_text(store)
        if count:
            append_durably(self.journal, text.encode("utf-8"))
            assert self._journal_seq is not None
            self._journal_seq += count
        return count

    # -- a batch of requests ---------------------------------------------------------
    def publish_batch(
        self,
        store: Store,
        *,
        certificates: Sequence[tuple[str, bytes]],
        ledger: Sequence[RequestRecord],
        receipts: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        """Publish a batch in the contract's order with one durability barrier.

        1. certificates and receipts are written aside, ledger and journal rows appended;
        2. all of it is made durable at once (``sync_data``);
        3. the certificates are renamed into place and their folder synced;
        4. only then the receipts are renamed in, and their folder synced.
        A receipt therefore never appears before what it reports is on disk."""
        cert_folder, receipt_folder = os.fspath(self.certs), os.fspath(self.receipts)
        certs: list[tuple[str, str]] = []
        notes: list[tuple[str, str]] = []
        try:
            for id_op, pem in certificates:
                final = f"{cert_folder}/{id_op}.pem"
                certs.append((write_aside(final, pem), final))
            for name, receipt in receipts:
                final = f"{receipt_folder}/{recorded_receipt_name(name)}"
                notes.append((write_aside(final, _receipt_bytes(receipt)), final))
        except BaseException:
            remove_asides(certs + notes)
            raise
        touched: list[str | Path] = [aside for aside, _ in certs + notes]
        created: list[Path] = []
        ledger_text = self._ledger_text(ledger)
        if ledger_text:
            if append_unsynced(self.ledger, ledger_text.encode("utf-8")):
                created.append(self.outbox)
            touched.append(self.ledger)
        journal_text, count = self._journal_text(store)
        if count:
            if append_unsynced(self.journal, journal_text.encode("utf-8")):
                created.append(self.outbox)
            touched.append(self.journal)
        try:
            sync_data(touched)
            rename_into_place(certs, also_sync=created)
        except BaseException:
            remove_asides(certs + notes)
            self._journal_seq = None  # re-read from the file: the append may not be durable
            raise
        if count:
            assert self._journal_seq is not None
            self._journal_seq += count
        rename_into_place(notes)

    def rebuild_journal(self, store: Store) -> None:
        aside = self.journal.with_name(".journal.csv.rebuild.tmp")
        with open(aside, "w", encoding="utf-8", newline="") as fh:
            fh.write(_JOURNAL_HEADER)
            writer = csv.writer(fh, lineterminator="\n")
            for rows in store.iter_journal_rows():
                writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(aside, self.journal)
        fsync_dir(self.outbox)
        self._journal_seq = None


def _receipt_bytes(receipt: dict[str, Any]) -> bytes:
    return (json.dumps(receipt, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# Above this many changed rows at once (a mass expiry), a rebuild is as cheap.
_PATCH_MAX_ROWS = 10_000
# ledger.csv's last row is looked for in this much of its end (a row is ~250 bytes).
_TAIL_BYTES = 64 * 1024
_ID_OPERAZIONE = re.compile(r"\d{8}-\d{9}")


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _row_from(fh: Any, position: int, first: int, size: int) -> tuple[int, int, bytes] | None:
    """The first row starting at or after ``position``: (start, end, IdOperazione)."""
    start = position
    if position > first:
        fh.seek(position - 1)
        while True:  # the row containing position - 1 ends at the next newline
            block = fh.read(4096)
            if not block:
                return None
            cut = block.find(b"\n")
            if cut >= 0:
                start = fh.tell() - len(block) + cut + 1
                break
    if start >= size:
        return None
    fh.seek(start)
    line = fh.readline()
    if not line.endswith(b"\n"):
        raise ValueError("ledger.csv ends with a partial row")
    return start, start + len(line), line.split(b",", 1)[0]


def _copy_range(source: Any, target: Any, offset: int, count: int) -> None:
    """Copy ``count`` bytes at ``offset`` of ``source`` to the end of ``target`` (an
    unbuffered file), in the kernel where it can: no trip through Python for hundreds of
    megabytes."""
    src, dst = source.fileno(), target.fileno()
    while count > 0:
        try:
            done = os.copy_file_range(src, dst, count, offset)
        except (AttributeError, OSError):  # not Linux, or a file system that refuses
            source.seek(offset)
            while count > 0:
                block = source.read(min(count, 1 << 20))
                if not block:
                    raise ValueError("ledger.csv shrank while it was copied") from None
                _write_all(dst, block)
                count -= len(block)
            return
        if done == 0:
            raise ValueError("ledger.csv shrank while it was copied")
        offset += done
        count -= done


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
