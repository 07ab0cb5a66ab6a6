"""Retention of the archive: whole packs (and claim folders) older than ``[archive]
retention_days`` deleted, the store told first.

The default, 0, keeps everything. With N days, a pack of day D goes once D is more than N
days before today (UTC): a pack is never cut, only deleted whole, and today's pack (the
one being appended to) never goes. Folders of inputs kept as they came, and those of
older versions, go by their claim's date, at most ``_FOLDERS_PER_PASS`` a pass (a home
archived in folders for years has millions).

The order: one transaction marks the originals ``pruned`` (``Transaction.mark_pruned``,
``record_pruned_folders``), then the files go. A kill in between leaves files the store
already calls pruned, deleted by the next pass; never an original the store names and
the disk lacks. ``certdesk archivio`` then answers ``ORIGINALE_ELIMINATO`` with the date.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

from .archive import ARCHIVE_FOLDERS
from .home import Home
from .store import Store

__all__ = ["Pruned", "prune"]

log = logging.getLogger("certdesk")

_PACK = re.compile(r"(\d{8})\.pack")
_CLAIM = re.compile(r"(\d{8})T\d{12}-[0-9a-f]{8}(?:\.@?[a-z0-9-]+)?")  # then its channel
_FOLDERS_PER_PASS = 2000


@dataclass(frozen=True)
class Pruned:
    packs: int = 0
    folders: int = 0
    originals: int = 0  # originals the store now calls pruned
    more: bool = False  # folders left for the next pass


def prune(home: Home, store: Store, *, retention_days: int, now: datetime) -> Pruned:
    """Delete what retention no longer keeps; nothing when ``retention_days`` is 0."""
    if retention_days <= 0:
        return Pruned()
    cutoff = f"{now - timedelta(days=retention_days):%Y%m%d}"
    packs, folders, more = _expired(home, cutoff)
    if not packs and not folders:
        return Pruned()
    originals = 0
    with store.transaction() as txn:
        for pack in packs:
            originals += txn.mark_pruned(pack, now)
        kept = [(claim, record.sha256 if (record := store.input(claim)) else "")
                for _folder, claim in folders]  # fmt: skip
        txn.record_pruned_folders(kept, now)
    for pack in packs:
        os.unlink(home.state / pack)
    for folder, claim in folders:
        # Never follows a link inside; a file with other names loses only this one.
        shutil.rmtree(home.state / folder / claim)
    log.info(
        "archive retention (%d days): %d packs, %d folders deleted (%d originals)",
        retention_days, len(packs), len(folders), originals + len(folders),
    )  # fmt: skip
    return Pruned(len(packs), len(folders), originals + len(folders), more)


def _expired(home: Home, cutoff: str) -> tuple[list[str], list[tuple[str, str]], bool]:
    """Packs (``archive/D.pack``) and claim folders (folder, claim) dated before
    ``cutoff``; whether more folders wait than one pass takes."""
    packs: list[str] = []
    folders: list[tuple[str, str]] = []
    for folder in ARCHIVE_FOLDERS:
        try:
            entries = os.scandir(home.state / folder)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                if (match := _PACK.fullmatch(entry.name)) and match[1] < cutoff:
                    if entry.is_file(follow_symlinks=False):
                        packs.append(f"{folder}/{entry.name}")
                elif (match := _CLAIM.fullmatch(entry.name)) and match[1] < cutoff:
                    if len(folders) >= _FOLDERS_PER_PASS:
                        return packs, folders, True
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((folder, entry.name))
    return packs, folders, False
