"""``certdesk backup --verify DEST``: whether a backup is whole, without restoring it.

A backup is whole when its manifest is unchanged (its digest), every file it lists is
there with its size and SHA-256 and nothing else is, the store's copy passes SQLite's
``PRAGMA integrity_check``, and the copy's journal chains from the first row to the head
the manifest recorded, with the counts it recorded. ``certdesk restore`` runs the same
checks before it writes anything. The backup is only read: its store is opened
``immutable`` (no lock, no -wal or -shm file made beside it).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from urllib.request import pathname2url

from .backup import DATABASE, snapshot_facts
from .backup_manifest import MANIFEST, FileEntry, Manifest, hash_file, read_manifest
from .codes import refusal
from .errors import CertdeskError
from .records import GENESIS_HASH, chain_hash, journal_hashed, printable
from .store_rows import EVENT_COLUMNS

__all__ = [
    "check_entry",
    "check_entry_copy",
    "check_listed",
    "check_store",
    "open_snapshot",
    "verify_backup",
]


def verify_backup(folder: Path) -> Manifest:
    """The manifest of the whole backup at ``folder``; BACKUP_NON_VALIDO naming the first
    thing found wrong otherwise."""
    folder = folder.absolute()
    manifest = read_manifest(folder)
    check_listed(folder, manifest)
    for entry in manifest.files:
        check_entry(folder, entry)
    check_store(folder, manifest)
    return manifest


def check_listed(folder: Path, manifest: Manifest) -> None:
    """The backup holds the store, and no file its manifest does not list."""
    listed = {entry.path for entry in manifest.files} | {MANIFEST}
    for extra in sorted(_present(folder) - listed):
        raise _damaged(folder, extra, "non è nel manifest (aggiunto dopo il backup)")
    if manifest.entry(DATABASE) is None:
        raise _damaged(folder, DATABASE, "manca dal manifest")


def check_entry_copy(folder: Path, entry: FileEntry, copied: FileEntry | None) -> None:
    """A file copied out of the backup (``copied``: what was read, None if it is not
    there) is the one listed."""
    if copied is None:
        raise _damaged(folder, entry.path, "manca")
    if copied.size != entry.size:
        raise _damaged(folder, entry.path, f"ha {copied.size} byte invece di {entry.size}")
    if copied.sha256 != entry.sha256:
        raise _damaged(folder, entry.path, "ha un contenuto diverso (SHA-256)")


def _damaged(folder: Path, name: str, errore: str) -> CertdeskError:
    return refusal("BACKUP_NON_VALIDO", "file", cartella=folder, file=name, errore=errore)


def check_entry(folder: Path, entry: FileEntry) -> None:
    """The file or link ``entry`` names in the backup at ``folder`` is as listed."""
    path = folder / entry.path
    if entry.kind == "link":
        if not path.is_symlink():
            raise _damaged(folder, entry.path, "manca")
        data = os.fsencode(os.readlink(path))
        actual = (len(data), hashlib.sha256(data).hexdigest())
    else:
        if path.is_symlink() or not path.is_file():
            raise _damaged(folder, entry.path, "manca")
        found = hash_file(path)
        actual = (found.size, found.sha256)
    check_entry_copy(folder, entry, FileEntry(entry.path, *actual, kind=entry.kind))


def _present(folder: Path) -> set[str]:
    """Every file and link under ``folder``, as paths relative to it."""
    found = set()
    for where, dirs, files in os.walk(folder):
        relative = Path(where).relative_to(folder)
        links = [d for d in dirs if (Path(where) / d).is_symlink()]
        for name in [*files, *links]:
            found.add(str(relative / name) if str(relative) != "." else name)
    return found


def open_snapshot(path: Path) -> sqlite3.Connection:
    """The store's copy at ``path``, read-only and ``immutable``: nothing written near it."""
    return sqlite3.connect(f"file:{pathname2url(str(path))}?immutable=1", uri=True)


def check_store(folder: Path, manifest: Manifest, *, named: Path | None = None) -> None:
    """The store's copy in ``folder`` is sound and is the manifest's snapshot (``named``:
    the backup to name in a refusal, when ``folder`` is a copy of it)."""
    where = named or folder
    conn = open_snapshot(folder / DATABASE)
    try:
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
            if result != [("ok",)]:
                raise _store_damaged(where, "; ".join(str(r[0]) for r in result[:3]))
            head_seq, head = _check_chain(where, conn)
            facts = snapshot_facts(conn)
        except sqlite3.DatabaseError as exc:
            raise _store_damaged(where, str(exc)) from None
    finally:
        conn.close()
    if (head_seq, head) != (manifest.head_seq, manifest.head_hash):
        raise _store_damaged(where, f"il journal finisce alla riga {head_seq}, il manifest "
                             f"dice {manifest.head_seq}")  # fmt: skip
    if facts["counts"] != manifest.counts or facts["next_id"] != manifest.next_id:
        raise _store_damaged(where, "i conteggi non sono quelli del manifest")


def _store_damaged(folder: Path, errore: str) -> CertdeskError:
    return refusal("BACKUP_NON_VALIDO", "archivio", cartella=folder, errore=errore)


def _check_chain(folder: Path, conn: sqlite3.Connection) -> tuple[int, str]:
    """The journal of the copy, chained from its first row as ``verify_journal`` chains
    ``journal.csv`` (the same fields, ``records.chain_hash``); its last seq and hash."""
    cursor = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq")
    previous, expected_seq = GENESIS_HASH, 1
    while rows := cursor.fetchmany(10_000):
        for seq, *fields, origine, digest, canale in rows:
            hashed = journal_hashed((str(seq), *fields, printable(origine)), canale)
            if seq != expected_seq or chain_hash(previous, hashed) != digest:
                raise _store_damaged(folder, f"la catena del journal si rompe alla riga {seq}")
            previous, expected_seq = digest, seq + 1
    return expected_seq - 1, previous if expected_seq > 1 else ""
