"""``certdesk backup DEST``: a consistent copy of a home, taken while the daemon runs.

What a backup holds (docs/operations.md says why):

- ``state/certdesk.sqlite3``: the store, through SQLite's online backup API, never a
  copy of the live file (a copy taken between a write to the WAL and a checkpoint is
  torn). One step: the store is in WAL mode, where a reader blocks no writer, so the
  daemon goes on committing while the snapshot is read; a backup in several steps would
  start again after every commit of another connection (SQLite's backup documentation),
  which under a busy daemon means never finishing. The snapshot is one read transaction:
  it is the store at one instant.
- ``state/ca/``: the CA's files as they are stored (the keys encrypted PKCS#8 for the
  file provider; for a token, only certificates: the manifest names the token and its
  key labels, and no key material exists to copy);
- ``certdesk.toml``;
- ``state/archive/`` and ``state/quarantine/``, copied after the snapshot: originals are
  only ever added there, so the copy holds every original the snapshot names (and perhaps
  a few more, which a restore keeps);
- ``state/passphrase`` only with ``include_passphrase``: the passphrase opens the keys,
  and a backup that carries both is the CA for whoever reads it.

Not copied: ``state/work/`` (inputs in hand, which the store records or the daemon takes
again), the daemon's lock, ``outbox/`` (``certdesk restore`` republishes it), ``inbox/``.

The backup is written as ``.DEST.partial`` beside ``DEST`` and renamed when whole and
synced: a backup killed half-way leaves no ``DEST``, only the temporary folder, which the
next backup to the same ``DEST`` removes. Folders 0700, files 0600.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .authority import ca_exists
from .backup_manifest import FileEntry, Manifest, copy_hashed, hash_file, write_manifest
from .clock import format_utc, now_utc
from .codes import refusal
from .config import Config, load_config
from .fsutil import fsync_dir
from .home import Home
from .store import Store

__all__ = ["BackupResult", "check_destination", "partial_path", "snapshot_facts", "take_backup"]

_PRIVATE_DIR = 0o700
DATABASE = "state/certdesk.sqlite3"


@dataclass(frozen=True)
class BackupResult:
    manifest: Manifest
    snapshot_seconds: float
    total_bytes: int


def partial_path(dest: Path) -> Path:
    """Where the backup to ``dest`` is written before its rename."""
    return dest.with_name(f".{dest.name}.partial")


def check_destination(home: Home, dest: Path) -> Path:
    """``dest`` made absolute; DESTINAZIONE_NON_VALIDA if it exists or lies in the home's
    inbox/, outbox/ or state/ (the daemon would take it, publish it, or back it up)."""
    dest = dest.absolute()
    real = dest.parent.resolve() / dest.name
    for folder in (home.inbox, home.outbox, home.state):
        if real.is_relative_to(folder.resolve()):
            raise refusal(
                "DESTINAZIONE_NON_VALIDA", "dentro_home", cartella=dest, dentro=f"{folder.name}/"
            )
    if os.path.lexists(dest):
        raise refusal("DESTINAZIONE_NON_VALIDA", "esiste", cartella=dest)
    return dest


def take_backup(home: Home, dest: Path, *, include_passphrase: bool = False) -> BackupResult:
    """Back up ``home`` into the new folder ``dest``; returns its manifest."""
    dest = check_destination(home, dest)
    if not ca_exists(home):
        raise refusal("CA_NON_INIZIALIZZATA", cartella=home.root)
    if not home.database.exists():  # a CA that has processed nothing yet: an empty store
        Store(home.database).close()
    config = load_config(home.root)
    work = partial_path(dest)
    if os.path.lexists(work):  # left by a backup killed half-way
        shutil.rmtree(work)
    work.mkdir(mode=_PRIVATE_DIR)
    (work / "state").mkdir(mode=_PRIVATE_DIR)
    started = time.monotonic()
    facts = _snapshot(home.database, work / DATABASE)
    snapshot_seconds = time.monotonic() - started
    copied = _copy_files(home, work)
    _mark_packs_pruned_meanwhile(work)
    files = [_entry(work, DATABASE), *copied]
    carried = include_passphrase and home.passphrase_file.is_file()
    if carried:
        files.append(_copy(home.passphrase_file, work, "state/passphrase"))
    keys = _keys(config, work)
    manifest = Manifest(
        home=str(home.root), created=format_utc(now_utc()), certdesk=__version__,
        keys=keys, passphrase_included=carried, files=files, **facts,
    )  # fmt: skip
    write_manifest(work, manifest)
    _sync_folders(work)
    os.rename(work, dest)
    fsync_dir(dest.parent)
    return BackupResult(manifest, snapshot_seconds, sum(f.size for f in files))


def _snapshot(database: Path, target: Path) -> dict[str, Any]:
    """Copy the store at one instant into ``target``; the journal's head and the counts of
    that instant, read from the copy."""
    source = sqlite3.connect(database, timeout=10.0)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # one step: see the module's docstring
            return snapshot_facts(copy)
        finally:
            copy.close()
    finally:
        source.close()


def _mark_packs_pruned_meanwhile(work: Path) -> None:
    """A pack the snapshot names but retention deleted before it was copied (retention
    marks the store, then deletes: both can fall between the snapshot and the copy) is
    marked pruned in the snapshot's copy, as the live store now says: a restore then
    answers ORIGINALE_ELIMINATO for its originals, never a missing file."""
    copy = sqlite3.connect(work / DATABASE)
    try:
        if copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'originals'").fetchone() is None:
            return  # a store older than the packs (not migrated yet): its originals are folders
        packs = [row[0] for row in copy.execute(
            "SELECT DISTINCT pack FROM originals WHERE pruned IS NULL AND pack != ''")]
        gone = [pack for pack in packs if not (work / "state" / pack).is_file()]
        with copy:
            copy.executemany("UPDATE originals SET pruned = ? WHERE pack = ? AND pruned IS NULL",
                             [(format_utc(now_utc()), pack) for pack in gone])
    finally:
        copy.close()


def snapshot_facts(conn: sqlite3.Connection) -> dict[str, Any]:
    """What the manifest records of a store: the journal's head, the next IdOperazione
    number, requests by state, inputs and journal rows."""
    head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    next_id = conn.execute("SELECT value FROM meta WHERE key = 'next_id'").fetchone()
    counts = dict(conn.execute("SELECT stato, COUNT(*) FROM requests GROUP BY stato").fetchall())
    counts["inputs"] = conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
    counts["events"] = head[0] if head else 0
    return {
        "head_seq": head[0] if head else 0,
        "head_hash": head[1] if head else "",
        "next_id": int(next_id[0]) if next_id else 1,
        "counts": counts,
    }


def _copy(source: Path, work: Path, name: str) -> FileEntry:
    return copy_hashed(source, work / name, name)


def _copy_files(home: Home, work: Path) -> list[FileEntry]:
    """The configuration, the CA's files and the originals, after the snapshot."""
    files = []
    if (home.root / "certdesk.toml").is_file():
        files.append(_copy(home.root / "certdesk.toml", work, "certdesk.toml"))
    for folder in (home.ca_dir, home.archive, home.quarantine):
        files += _copy_tree(folder, work, f"state/{folder.name}")
    return files


def _keys(config: Config, work: Path) -> dict[str, str]:
    """Where the keys are: files (copied, encrypted) or a token (its labels only: the
    first issuer's, and ``issuing_key_label_genN`` for each issuer a rollover added, as
    the snapshot lists them)."""
    keys = {"provider": config.keys.provider}
    if config.keys.provider == "pkcs11":
        _refuse_key_material(work / "state/ca")
        label = config.keys.issuing_key_label
        keys |= {
            "token_label": config.keys.token_label, "module": config.keys.module,
            "root_key_label": config.keys.root_key_label, "issuing_key_label": label,
        }  # fmt: skip
        keys |= {f"issuing_key_label_{name}": f"{label}-{name}" for name in _rolled(work)}
    return keys


def _rolled(work: Path) -> list[str]:
    """The issuers a rollover added, in the snapshot's copy of the store."""
    copy = sqlite3.connect(work / DATABASE)
    try:
        table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'emittenti'"
        if copy.execute(table).fetchone() is None:  # a store older than rollovers
            return []
        rows = copy.execute("SELECT nome FROM emittenti ORDER BY generazione").fetchall()
        return [row[0] for row in rows]
    finally:
        copy.close()


def _entry(work: Path, name: str) -> FileEntry:
    entry = hash_file(work / name)
    return FileEntry(name, entry.size, entry.sha256)


def _copy_tree(source: Path, work: Path, name: str) -> list[FileEntry]:
    """Copy the folder ``source`` to ``work/name``: regular files hashed as copied,
    symbolic links as links (never followed); a FIFO, socket or device (a refused input
    kept in quarantine) has no content to keep and is left out."""
    entries: list[FileEntry] = []
    (work / name).mkdir(mode=_PRIVATE_DIR, exist_ok=True)
    if not source.is_dir():
        return entries
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        relative = f"{name}/{entry.name}"
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            entries += _copy_tree(Path(entry.path), work, relative)
        elif stat.S_ISREG(info.st_mode):
            entries.append(copy_hashed(Path(entry.path), work / relative, relative))
        elif stat.S_ISLNK(info.st_mode):
            target = os.readlink(entry.path)
            os.symlink(target, work / relative)
            entries.append(_link_entry(relative, target))
    return entries


def _link_entry(relative: str, target: str) -> FileEntry:
    data = os.fsencode(target)
    return FileEntry(relative, len(data), hashlib.sha256(data).hexdigest(), kind="link")


def _refuse_key_material(ca_copy: Path) -> None:
    """A token's home keeps no private key in files: if one is found, the backup stops
    rather than carry it (it would be a key that was meant never to leave the token)."""
    for path in ca_copy.rglob("*"):
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes():
            raise refusal("BACKUP_NON_VALIDO", "file", cartella=ca_copy.parent.parent,
                          file=path.name, errore="contiene una chiave privata, ma le chiavi "
                          "di questa home sono in un token")  # fmt: skip


def _sync_folders(work: Path) -> None:
    """Every folder's new names durable before the rename that makes the backup whole."""
    for folder, _dirs, _files in os.walk(work, topdown=False):
        fsync_dir(folder)
