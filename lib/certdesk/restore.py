"""``certdesk restore SRC --home NEW``: a backup made a home again, the same CA.

In this order, nothing in ``NEW`` until the end:

1. ``NEW`` must be absent or an empty folder (HOME_NON_VUOTA): a restore never writes
   over a CA; a witness, when given, is read whole and its chain checked.
2. Into ``.NEW.restoring`` beside it: every file the manifest lists, each hashed as it
   is copied and compared with the manifest (one read of the backup), then the store's
   copy checked (``PRAGMA integrity_check``, the journal's chain up to the manifest's
   head): a damaged backup is BACKUP_NON_VALIDO and leaves nothing.
3. The IdOperazione counter moved past every number the witness names (a request
   accepted after the backup, lost with the disk, keeps its IdOperazione to itself).
   The CRL counter moved up to the restore's time in milliseconds
   (``crl_number_floor``): past every CRL number the lost machine published.
   The serials reserved for requests the snapshot caught IN_GENERAZIONE are dropped:
   the lost machine may have signed with them, so the restored daemon reserves new ones
   (recovery does so for any request without one). Every other serial is new anyway: it
   holds the time in milliseconds and 112 random bits.
4. The CA loaded from the restored files (a probe signature: for a token, the token
   must hold the keys the certificates name), the requests caught IN_GENERAZIONE signed
   (``Engine.recover``, with their new serials), then ``outbox/`` republished from the
   store (``Engine.republish``: certificates, receipts, ledger, journal, CRL, OCSP).
   Republishing loads every live issuer the store lists (``Issuers.live``: each one's
   key proved by a probe signature before its chain and CRL are written), so a token
   that lacks the key of any of them (``<issuing_key_label>-genN`` after a rollover)
   refuses the restore, TOKEN_NON_DISPONIBILE, and leaves nothing.
5. ``.NEW.restoring`` renamed to ``NEW`` (rename replaces an empty folder).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .backup_check import check_entry, check_entry_copy, check_listed, check_store
from .backup_manifest import Manifest, copy_hashed, read_manifest
from .channel_admin import remake_folders
from .clock import now_utc
from .codes import refusal
from .fsutil import fsync_dir
from .home import Home
from .runtime import open_engine, open_store
from .store import Store
from .witness import witness_next_id

log = logging.getLogger("certdesk")

__all__ = ["RestoreResult", "crl_number_floor", "restore_backup"]


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    next_id: int
    republished: dict[str, int]


def _check_empty(root: Path) -> None:
    if os.path.lexists(root) and (not root.is_dir() or root.is_symlink() or any(root.iterdir())):
        raise refusal("HOME_NON_VUOTA", cartella=root)


def restore_backup(
    source: Path, home: Home, *, passphrase_file: Path | None = None,
    witness: Path | None = None, republish: bool = True,
) -> RestoreResult:  # fmt: skip
    """Restore the backup at ``source`` as ``home`` (which must be absent or empty)."""
    source = source.absolute()
    _check_empty(home.root)
    manifest = read_manifest(source)
    witnessed = witness_next_id(witness) if witness is not None else 0
    check_listed(source, manifest)
    work = home.root.with_name(f".{home.root.name}.restoring")
    if os.path.lexists(work):  # left by a restore killed half-way
        shutil.rmtree(work)
    work.parent.mkdir(parents=True, exist_ok=True)
    work.mkdir(mode=0o755)
    try:
        _copy_out(source, manifest, work)
        check_store(work, manifest, named=source)
        staged = Home.at(work)
        staged.ensure()
        next_id = _renumber(staged, manifest.next_id, witnessed)
        _remake_channels(staged)
        counts = _republish(staged, passphrase_file) if republish else {}
        os.rename(work, home.root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    fsync_dir(home.root.parent)
    return RestoreResult(manifest, next_id, counts)


def _copy_out(source: Path, manifest: Manifest, work: Path) -> None:
    for entry in manifest.files:
        target = work / entry.path
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if entry.kind == "link":
            check_entry(source, entry)
            os.symlink(os.readlink(source / entry.path), target)
            continue
        if (source / entry.path).is_symlink() or not (source / entry.path).is_file():
            check_entry_copy(source, entry, None)
        copied = copy_hashed(source / entry.path, target, entry.path)
        check_entry_copy(source, entry, copied)
    for folder, _dirs, _files in os.walk(work, topdown=False):
        fsync_dir(folder)


def crl_number_floor(now: datetime) -> int:
    """Where a restored home's CRL numbers start again: ``now`` in milliseconds since
    1970 (RFC 5280 §5.2.3 wants each issuer's CRL numbers increasing; 41 bits of the
    20 octets allowed).

    The lost machine may have published CRLs after the backup, with numbers the backup
    never saw. Every home's counter stays below its clock in milliseconds: it starts at
    1, grows by one per CRL (each costs a signature and a synced write, well over a
    millisecond), and a restore sets it to this floor, itself below the clock. So every
    number the lost machine published is below the time it was lost, and below this
    floor, provided the restoring machine's clock is not behind the lost one's by more
    than the time between the loss and the restore (keep clocks on NTP)."""
    return int(now.timestamp() * 1000)


def _renumber(home: Home, next_id: int, witnessed: int) -> int:
    """The IdOperazione counter past the witness's greatest number (never moved back),
    no serial reserved before the backup signed again, the CRL counter past every number
    the lost machine can have published."""
    store = Store(home.database)
    try:
        with store.transaction() as txn:
            if witnessed > next_id:
                txn.set_meta("next_id", str(witnessed))
            txn.forget_reservations()
            txn.raise_crl_number(crl_number_floor(now_utc()))
    finally:
        store.close()
    return max(next_id, witnessed)


def _remake_channels(home: Home) -> None:
    """The channels' folders, with their groups and modes (``channel_admin``)."""
    store = open_store(home)
    try:
        for gruppo in remake_folders(home, store):
            log.warning("group %s is not on this machine: its channel's folders are the "
                        "daemon's user's until it is created and 'canale add' run again",
                        gruppo)  # fmt: skip
    finally:
        store.close()


def _republish(home: Home, passphrase_file: Path | None) -> dict[str, int]:
    """The CA proved with its restored keys (``open_engine`` loads it with a probe
    signature), what the snapshot caught half-way finished, then every file of
    ``outbox/`` made from the store."""
    engine = open_engine(home, passphrase_file=passphrase_file, workers=1)
    try:
        # the requests the snapshot caught IN_GENERAZIONE are signed now (new serials, as
        # a daemon's start would): the ledger lists settled requests only
        engine.recover()
        # the OCSP responses of cancelled certificates now; the valid ones are the
        # restored daemon's idle work (hundreds of thousands at a million requests)
        return engine.republish(ocsp_ahead=False)
    finally:
        engine.close()
