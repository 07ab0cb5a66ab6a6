"""The archive of originals: every input's bytes, as dropped, appended to a day's pack.

A pack is ``state/archive/YYYYMMDD.pack`` (accepted inputs) or
``state/quarantine/YYYYMMDD.pack`` (refused ones), by the UTC day the input was settled,
0600 in the 0700 folders. A record is a header line (JSON: the claim, the recorded name,
the size and the SHA-256 of the original), the original's bytes, then ``\\n``: a pack read
without the store still says what each original was. The store (``originals``) says where
each original's bytes start, so one is found by one lookup, never by a scan. A folder per
input cost 8 KiB of disk (a block for the file, one for the folder) for a 900-byte CSR.

The crash-safe order (``kill -9`` anywhere loses no original and records none twice):

1. ``append``: each original is read again from ``state/work/<claim>/`` (as intake reads
   it: no link followed, nothing but a small regular file of its own) and its record is
   written at its pack's end, not synced;
2. the caller makes the packs durable with its own barrier: ``Appended.paths`` join the
   certificates' and receipts' ``sync_data`` in ``publish_batch`` (one per chunk), or
   ``sync``;
3. one transaction records where each original is (``Transaction.record_originals``),
   with the inputs' "done";
4. ``release``: the claims' folders in ``state/work/`` are removed.

A pack's end is the store's: bytes past the last original recorded there are an append
torn by a crash or one whose transaction never committed. Before this process first
appends to a pack, and after an append it did not see committed (``release`` confirms
it), the pack is cut back to that end; the originals concerned are still in
``state/work/`` and are appended again (recovery). Bytes the store names are never
rewritten: a backup that copies the packs after a snapshot of the store has every
original the snapshot names.

An input that is not a small regular file of its own (a link, a FIFO, a folder, a file
with other names, an oversized or unreadable one: refused unread by
``intake.read_claimed``) is kept as it came, its claim's folder moved to
``state/quarantine/<claim>/`` as every input was before packs (``intake.settle_claim``);
``archive_read`` finds those, and the folders of older versions, where they are.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InputRejected
from .faults import machine_fault
from .fsutil import fsync_dir, sync_data
from .home import Home
from .intake import Claim, InputFile, read_claimed, settle_claim
from .store import OriginalRecord, Store

__all__ = ["ARCHIVE_FOLDERS", "Appended", "Archive", "pack_name", "record_header"]

log = logging.getLogger("certdesk")

# The folders under state/ that hold packs: accepted inputs, refused ones.
ARCHIVE_FOLDERS = ("archive", "quarantine")
_PACK_MODE = 0o600


def pack_name(quarantined: bool, day: str) -> str:
    """The pack of a day's originals, as the store names it (relative to ``state/``)."""
    return f"{ARCHIVE_FOLDERS[1] if quarantined else ARCHIVE_FOLDERS[0]}/{day}.pack"


def record_header(item: Claim, kept: InputFile) -> bytes:
    """The line before an original's bytes: what it is, for a reader of the pack alone.
    JSON, so that any recorded name (a newline included) stays on one line."""
    header = {"claim": item.claim, "file": item.name, "size": len(kept.data), "sha256": kept.sha256}
    return (json.dumps(header, ensure_ascii=True) + "\n").encode("ascii")


@dataclass(frozen=True)
class Appended:
    """Originals written at their packs' ends, not yet durable nor recorded."""

    originals: tuple[OriginalRecord, ...] = ()
    packed: tuple[Claim, ...] = ()  # their claims, whose folders go once recorded
    paths: tuple[str, ...] = ()  # the packs written: to make durable
    new_names: tuple[str, ...] = ()  # folders where a pack was created: to sync
    claims: tuple[str, ...] = ()  # every claim settled (packed, kept as folders, or gone)


@dataclass
class Archive:
    """The packs of one home, written by one process (the daemon holds its lock)."""

    home: Home
    store: Store
    clock: Callable[[], datetime]
    pruned_day: str = ""  # the UTC day retention last finished (operations/upkeep)
    _ends: dict[str, int] = field(default_factory=dict)  # where the next record goes
    _unconfirmed: set[str] = field(default_factory=set)  # appended, commit not seen yet

    def forget(self) -> None:
        """Read every pack's end from the store again (after a crash or a pause)."""
        self._ends.clear()
        self._unconfirmed.clear()

    def append(self, items: Sequence[tuple[Claim, bool]]) -> Appended:
        """Append the originals of (claim, quarantined) to today's packs, unsynced. A
        claim whose folder is gone was settled already (a restart finishing a batch)."""
        day = f"{self.clock():%Y%m%d}"
        by_pack: dict[str, list[tuple[Claim, InputFile]]] = {}
        for item, quarantined in items:
            kept = self._read(item, quarantined)
            if kept is not None:
                by_pack.setdefault(pack_name(quarantined, day), []).append((item, kept))
        originals: list[OriginalRecord] = []
        paths: list[str] = []
        new_names: list[str] = []
        for pack, entries in by_pack.items():
            path = os.fspath(self.home.state / pack)
            if not os.path.exists(path):
                new_names.append(os.path.dirname(path))
            originals.extend(self._write(pack, path, entries))
            paths.append(path)
        packed = tuple(item for entries in by_pack.values() for item, _ in entries)
        return Appended(
            tuple(originals), packed, tuple(paths), tuple(new_names),
            tuple(item.claim for item, _ in items),
        )  # fmt: skip

    def sync(self, appended: Appended) -> None:
        """Make the appended records durable (for a caller without a barrier of its own)."""
        sync_data(appended.paths)
        for folder in appended.new_names:
            fsync_dir(folder)

    def release(self, appended: Appended) -> None:
        """After the transaction that recorded ``appended``: its packs' ends are the
        store's again, and the claims' folders in ``state/work/`` go."""
        self._unconfirmed.difference_update(o.pack for o in appended.originals)
        self.release_claims(appended.packed)

    def release_claims(self, packed: Sequence[Claim]) -> None:
        """Remove the folders in ``state/work/`` of claims whose originals are recorded."""
        for item in packed:
            try:
                os.unlink(item.path(self.home))
                os.rmdir(f"{self.home.work}/{item.claim}")
            except FileNotFoundError:
                pass  # removed already (recovery after a kill between the two)

    def keep(self, items: Sequence[tuple[Claim, bool]]) -> None:
        """The whole order for a few inputs at once (annullamenti, recovery, one input a
        bug failed on): append, sync, record with "done", release."""
        appended = self.append(items)
        self.sync(appended)
        with self.store.transaction() as txn:
            txn.record_originals(appended.originals)
            txn.mark_done(list(appended.claims))
        self.release(appended)

    # -- reading and writing ---------------------------------------------------------
    def _read(self, item: Claim, quarantined: bool) -> InputFile | None:
        """The original's bytes; None when it is kept as a folder instead, or settled."""
        try:
            return read_claimed(self.home, item)
        except FileNotFoundError:
            return None  # settled already: packed and released, or moved as a folder
        except InputRejected:
            pass  # a link, a FIFO, a folder, a hard link, too big: kept as it came
        except OSError as exc:
            if machine_fault(exc):
                raise  # a pause; nothing was decided about the file
        settle_claim(self.home, item, quarantined=quarantined)
        return None

    def _write(
        self, pack: str, path: str, entries: list[tuple[Claim, InputFile]]
    ) -> list[OriginalRecord]:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, _PACK_MODE)
        try:
            position = self._end(pack, fd)
            chunks: list[bytes] = []
            originals: list[OriginalRecord] = []
            for item, kept in entries:
                header = record_header(item, kept)
                start = position + len(header)
                size = len(kept.data)
                originals.append(OriginalRecord(item.claim, pack, start, size, kept.sha256))
                chunks += (header, kept.data, b"\n")
                position = start + size + 1
            self._unconfirmed.add(pack)
            _pwrite_whole(fd, b"".join(chunks), self._ends[pack])
            self._ends[pack] = position
        except BaseException:
            self._ends.pop(pack, None)  # cut back to the store's end before the next append
            raise
        finally:
            os.close(fd)
        return originals

    def _end(self, pack: str, fd: int) -> int:
        """Where the next record of ``pack`` goes. Known, unless this process has not
        appended to it yet or did not see its last append committed: then the store's
        end, and the file is cut back to it (a torn or uncommitted tail)."""
        if pack in self._ends and pack not in self._unconfirmed:
            return self._ends[pack]
        recorded = self.store.pack_end(pack)
        end = recorded + 1 if recorded else 0  # the last record's closing newline
        size = os.fstat(fd).st_size
        if size > end:
            log.warning("state/%s: %d bytes past its last recorded original cut", pack, size - end)
            os.ftruncate(fd, end)
        elif size < end:
            # Bytes the store names are gone (the disk, or a person): archivio says which
            # originals are damaged; new records still go after every recorded one.
            log.error("state/%s is %d bytes shorter than the store records", pack, end - size)
        self._ends[pack] = end
        self._unconfirmed.discard(pack)
        return end


def _pwrite_whole(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
