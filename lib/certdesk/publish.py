"""The outbox: a projection of the state store, every file appearing atomically.

Costs stay independent of the store's size on the hot path: certificates and receipts
are single files, new ledger rows and journal rows are appended. Only a change to an
existing row (annullamento, expiry) rewrites ``ledger.csv``, streamed from the store.

``publish_batch`` publishes a whole batch of requests with one durability barrier:
certificates, ledger rows and journal rows are on disk before any receipt is renamed in.

Every path comes from :class:`certdesk.outbox.Outbox`; ``ledger.csv`` is kept by
:mod:`certdesk.outbox_ledger` (which also says when it is current), ``journal.csv`` by
:mod:`certdesk.outbox_journal`. The ``Publisher`` is their one front for the operations.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .channels import ADMIN_CHANNEL, DEFAULT_CHANNEL
from .fsutil import (
    append_unsynced,
    atomic_write,
    fsync_dir,
    make_public_dir,
    remove_asides,
    rename_into_place,
    sync_data,
    write_aside,
)
from .home import Home
from .intake import Claim
from .outbox import Outbox
from .outbox_channels import ChannelOutboxes
from .outbox_columnar import ColumnarLedger
from .outbox_journal import JournalFile
from .outbox_ledger import LedgerFile
from .publication import FIRST_ISSUER
from .records import RequestRecord
from .store import Store

__all__ = ["Publisher"]


class Publisher:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.outbox = Outbox.of(home)
        self.ledger_file = LedgerFile(self.outbox)
        self.journal_file = JournalFile(self.outbox)
        self.columnar = ColumnarLedger(self.outbox)
        self.channels = ChannelOutboxes(home, self.outbox)
        self.ledger = self.outbox.ledger
        self.journal = self.outbox.journal

    def ensure_layout(self) -> None:
        """The outbox's folders; the published ones (``ca/``, ``ocsp/``) open to everyone,
        the rest as the daemon's umask makes them."""
        for folder in self.outbox.folders:
            if folder in (self.outbox.ca, self.outbox.ocsp):
                make_public_dir(folder, parents=True)
            else:
                folder.mkdir(parents=True, exist_ok=True)

    def remove_stale_asides(self) -> int:
        """Delete the ``.*.tmp`` files a killed writer left beside their targets.

        Only safe while no other process publishes (the daemon holds its lock)."""
        removed = 0
        for folder in (*self.outbox.folders, *self.channels.existing_folders()):
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
        return self.outbox.certificate(id_operazione)

    def write_certificate(
        self, id_operazione: str, pem: bytes, *, sync: bool = True, canale: str = ""
    ) -> None:
        """A certificate in ``outbox/certs/``, and in its named channel's ``certs/``."""
        atomic_write(self.certificate_path(id_operazione), pem, sync_dir=sync)
        if canale != DEFAULT_CHANNEL:
            copy = self.channels.outbox(canale).certificate(id_operazione)
            atomic_write(copy, pem, sync_dir=sync)

    def write_certificates(self, certificates: Sequence[tuple[str, bytes, str]]) -> None:
        """Many (IdOperazione, PEM, canale), durable when this returns, with one barrier."""
        pairs: list[tuple[str, str]] = []
        try:
            for final, pem in self._certificate_files(certificates):
                pairs.append((write_aside(final, pem), final))
            sync_data(aside for aside, _ in pairs)
            rename_into_place(pairs)
        except BaseException:
            remove_asides(pairs)
            raise

    def _certificate_files(
        self, certificates: Sequence[tuple[str, bytes, str]]
    ) -> list[tuple[str, bytes]]:
        """Where each certificate goes: ``outbox/certs/``, and a named channel's copy."""
        files = []
        for id_op, pem, canale in certificates:
            files.append((self.outbox.certificate_fspath(id_op), pem))
            if canale != DEFAULT_CHANNEL:
                files.append((self.channels.outbox(canale).certificate_fspath(id_op), pem))
        return files

    def receipt_path(self, item: Claim) -> Path:
        """The receipt of a claimed input, in its channel's ``receipts/``."""
        return self.channels.outbox(item.canale).receipt(item.name)

    def write_receipt(self, item: Claim, receipt: dict[str, Any], *, sync: bool = True) -> None:
        atomic_write(self.receipt_path(item), _receipt_bytes(receipt), sync_dir=sync)

    def write_ca(self, root_pem: bytes, issuing_pem: bytes, issuer: str = FIRST_ISSUER) -> None:
        """The root and an issuing CA's certificate and chain: the first issuer's in
        ``outbox/ca/``, a later one's in ``outbox/ca/<name>/`` (``Outbox.issuer``)."""
        files = self.outbox.issuer(issuer)
        if issuer != FIRST_ISSUER:  # outbox/ca/ is made by ensure_layout, never here
            make_public_dir(files.folder)
        atomic_write(self.outbox.root_certificate, root_pem, public=True)
        atomic_write(files.certificate, issuing_pem, public=True)
        atomic_write(files.chain, issuing_pem + root_pem, public=True)

    def sync_folders(self, canali: Iterable[str] | None = None) -> None:
        """The new names in ``outbox/``'s folders durable, and in the outboxes of
        ``canali`` (None: every channel this process wrote to, as a republish does)."""
        for folder in (self.outbox.certs, self.outbox.receipts, self.outbox.root):
            fsync_dir(folder)
        named = self.channels.used() if canali is None else set(canali) - {DEFAULT_CHANNEL}
        for canale in sorted(named):
            for folder in self.channels.folders_of(canale):
                fsync_dir(folder)

    # -- ledger (certdesk.outbox_ledger) ---------------------------------------------
    def append_ledger(self, records: Iterable[RequestRecord]) -> None:
        self.ledger_file.append(records)

    def rebuild_ledger(self, store: Store) -> None:
        """``outbox/ledger.csv`` and every named channel's, from the store."""
        self.ledger_file.rebuild(store)
        for canale in self.channels.named(store):
            self.channels.ledger(canale).rebuild(self.channels.rows(store, canale))

    def catch_up_ledger(self, store: Store) -> bool:
        """After a crash, append the rows the crash left out; False: rebuild instead. A
        channel's ledger that cannot be caught up is rebuilt here (it is small)."""
        if not self.ledger_file.catch_up(store):
            return False
        for canale in self.channels.named(store):
            rows, ledger = self.channels.rows(store, canale), self.channels.ledger(canale)
            if not ledger.catch_up(rows):
                ledger.rebuild(rows)
        return True

    def update_ledger(self, store: Store, id_operazioni: Iterable[str]) -> None:
        """Rewrite the rows of ``id_operazioni`` in place, or the whole file when that
        cannot be done (``LedgerFile.patch``); in their channels' ledgers too."""
        wanted = list(id_operazioni)
        if not self.ledger_file.patch(store, wanted):
            self.rebuild_ledger(store)
            return
        by_channel: dict[str, list[str]] = {}
        for id_op, canale in store.channel_of(wanted).items():
            if canale != DEFAULT_CHANNEL:
                by_channel.setdefault(canale, []).append(id_op)
        for canale, ids in sorted(by_channel.items()):
            rows, ledger = self.channels.rows(store, canale), self.channels.ledger(canale)
            if not ledger.patch(rows, ids):
                ledger.rebuild(rows)

    def release_old_ledger(self) -> None:
        """Free the ledger.csv replaced last (after the receipts of its change)."""
        self.ledger_file.release_old()
        for canale in self.channels.used():
            if canale != ADMIN_CHANNEL:  # the administrators' channel has no ledger
                self.channels.ledger(canale).release_old()

    # -- journal (certdesk.outbox_journal) -------------------------------------------
    def catch_up_journal(self, store: Store) -> int:
        """Append every store event the journal does not have yet; returns how many."""
        return self.journal_file.catch_up(store)

    def rebuild_journal(self, store: Store) -> None:
        self.journal_file.rebuild(store)

    # -- a batch of requests ---------------------------------------------------------
    def publish_batch(
        self,
        store: Store,
        *,
        certificates: Sequence[tuple[str, bytes, str]],
        ledger: Sequence[RequestRecord],
        receipts: Sequence[tuple[Claim, dict[str, Any]]],
        also_durable: Sequence[str] = (),
        new_names_in: Sequence[str] = (),
    ) -> None:
        """Publish a batch in the contract's order with one durability barrier.

        1. certificates and receipts are written aside (a named channel's in its own
           outbox too), ledger and journal rows appended (a channel's rows to its
           ``ledger.csv`` too);
        2. all of it is made durable at once (``sync_data``), with the files of
           ``also_durable`` (the archive's packs, appended by the caller) and the new
           names in the folders ``new_names_in``;
        3. the certificates are renamed into place and their folder synced;
        4. only then the receipts are renamed in, and their folder synced.
        A receipt therefore never appears before what it reports is on disk."""
        certs, notes = self._write_asides(certificates, receipts)
        touched: list[str | Path] = [aside for aside, _ in certs + notes]
        created: list[Path] = []
        for ledger_file, records in self._ledgers_of(ledger):
            text = ledger_file.text_of(records)
            if text:
                if append_unsynced(ledger_file.path, text.encode("utf-8")):
                    created.append(ledger_file.outbox.root)
                touched.append(ledger_file.path)
        journal_text, count = self.journal_file.pending(store)
        if count:
            if append_unsynced(self.journal, journal_text.encode("utf-8")):
                created.append(self.outbox.root)
            touched.append(self.journal)
        touched.extend(also_durable)
        created.extend(Path(folder) for folder in new_names_in)
        try:
            sync_data(touched)
            rename_into_place(certs, also_sync=created)
        except BaseException:
            remove_asides(certs + notes)
            self.journal_file.forget()  # the append may not be durable
            raise
        if count:
            self.journal_file.advance(count)
        rename_into_place(notes)

    def _ledgers_of(
        self, records: Sequence[RequestRecord]
    ) -> list[tuple[LedgerFile, list[RequestRecord]]]:
        """``outbox/ledger.csv`` with every record, then each named channel's with its own."""
        by_channel: dict[str, list[RequestRecord]] = {}
        for record in records:
            if record.canale != DEFAULT_CHANNEL:
                by_channel.setdefault(record.canale, []).append(record)
        return [(self.ledger_file, list(records))] + [
            (self.channels.ledger(canale), rows) for canale, rows in sorted(by_channel.items())
        ]

    def _write_asides(
        self,
        certificates: Sequence[tuple[str, bytes, str]],
        receipts: Sequence[tuple[Claim, dict[str, Any]]],
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The batch's certificates and receipts written aside, not yet synced: their
        (aside, final) pairs; none left behind if one fails."""
        certs: list[tuple[str, str]] = []
        notes: list[tuple[str, str]] = []
        try:
            for final, pem in self._certificate_files(certificates):
                certs.append((write_aside(final, pem), final))
            for item, receipt in receipts:
                final = self.channels.outbox(item.canale).receipt_fspath(item.name)
                notes.append((write_aside(final, _receipt_bytes(receipt)), final))
        except BaseException:
            remove_asides(certs + notes)
            raise
        return certs, notes


def _receipt_bytes(receipt: dict[str, Any]) -> bytes:
    return (json.dumps(receipt, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
