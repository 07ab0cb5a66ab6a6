"""``certdesk canale add | list | retire``: an integrator's channel made, listed, retired.

A channel is two folders and a row of the store (``canali``). ``add`` records the channel
first (so a running daemon never takes the new folder for an input), then makes the
folders, owned by the channel's Unix group when one is given; the daemon opens the new
inbox at its next look. A crash between the two leaves the record, and the same command
run again makes what is missing; empty folders already there are adopted.

Modes (docs/operations.md, "Channels"):

- ``inbox/<canale>/`` 2770: the group's members drop files (and see what waits), nobody
  else enters; setgid, so what they drop belongs to the group whoever they are;
- ``outbox/<canale>/`` and its ``certs/``, ``receipts/`` 2750: the members read, only the
  daemon's user writes, nobody else enters.

The daemon's user must be a member of the group (``chown`` to a group needs it, as does
nothing else). ``retire`` takes the group's write permission from the inbox: nothing new
arrives, and whatever still does is refused with ``CANALE_RITIRATO``; the outbox stays
readable, its receipts and certificates kept.
"""

from __future__ import annotations

import contextlib
import grp
import os
from dataclasses import dataclass
from pathlib import Path

from .channels import RESERVED_NAMES, is_channel_name
from .clock import now_utc
from .codes import refusal
from .errors import CertdeskError
from .home import Home
from .outbox import Outbox
from .outbox_ledger import LEDGER_HEADER
from .store import ChannelEntry, Store

__all__ = ["ChannelFolders", "add_channel", "remake_folders", "retire_channel"]

INBOX_MODE = 0o2770
OUTBOX_MODE = 0o2750
RETIRED_INBOX_MODE = 0o2750


@dataclass(frozen=True)
class ChannelFolders:
    inbox: Path
    outbox: Path
    gruppo: str


def add_channel(home: Home, store: Store, nome: str, gruppo: str = "") -> ChannelFolders:
    """Record channel ``nome``, then make its folders (owned by ``gruppo`` if given).

    The record comes first: a running daemon then never takes the new ``inbox/<nome>/``
    for a folder dropped as an input. Run again after a crash between the two, it makes
    what is missing of a channel recorded with the same group."""
    if not is_channel_name(nome):
        raise refusal(
            "CANALE_NON_VALIDO", nome=nome[:40], riservati=", ".join(sorted(RESERVED_NAMES))
        )
    gid = _group_id(gruppo)
    inbox, outbox = home.channel_inbox(nome), Outbox(home.channel_outbox(nome))
    recorded = store.channel(nome)
    complete = all(p.is_dir() for p in (inbox, outbox.certs, outbox.receipts))
    if recorded is not None and (recorded.gruppo != gruppo or complete):
        raise refusal("CANALE_ESISTENTE", nome=nome, cartella=inbox)
    if recorded is None:
        for folder in (inbox, outbox.root):
            _check_free(folder, nome)
        with store.transaction() as txn:
            txn.add_channel(nome, gruppo, now_utc())
    _make(inbox, INBOX_MODE, gid, nome)
    for folder in (outbox.root, outbox.certs, outbox.receipts):
        _make(folder, OUTBOX_MODE, gid, nome)
    if not outbox.ledger.exists():  # an integrator finds its ledger from the start
        aside = Outbox.aside(outbox.ledger, "new")
        aside.write_text(LEDGER_HEADER, encoding="utf-8")
        os.replace(aside, outbox.ledger)
    return ChannelFolders(inbox, outbox.root, gruppo)


def retire_channel(home: Home, store: Store, nome: str) -> ChannelEntry:
    """Stop channel ``nome`` taking inputs; its outbox stays as it is."""
    if store.channel(nome) is None:
        raise refusal("CANALE_SCONOSCIUTO", nome=nome[:40])
    with contextlib.suppress(FileNotFoundError):
        os.chmod(home.channel_inbox(nome), RETIRED_INBOX_MODE)
    with store.transaction() as txn:
        txn.retire_channel(nome, now_utc())
    entry = store.channel(nome)
    assert entry is not None
    return entry


def remake_folders(home: Home, store: Store) -> list[str]:
    """Every recorded channel's folders, with its group and modes: a restored home's,
    whose backup holds the store but no folder of ``inbox/`` or ``outbox/``. Returns the
    groups this machine does not have (their folders stay the daemon's user's until an
    administrator creates the group and runs ``canale add`` again)."""
    unknown = []
    for entry in store.channels():
        try:
            gid = _group_id(entry.gruppo)
        except CertdeskError:
            gid = -1
            unknown.append(entry.gruppo)
        inbox_mode = RETIRED_INBOX_MODE if entry.ritirato else INBOX_MODE
        _make(home.channel_inbox(entry.nome), inbox_mode, gid, entry.nome)
        outbox = Outbox(home.channel_outbox(entry.nome))
        for folder in (outbox.root, outbox.certs, outbox.receipts):
            _make(folder, OUTBOX_MODE, gid, entry.nome)
    return unknown


def _group_id(gruppo: str) -> int:
    """The gid of ``gruppo`` (-1 to leave the group as made: no group given)."""
    if not gruppo:
        return -1
    try:
        return grp.getgrnam(gruppo).gr_gid
    except KeyError:
        raise refusal("GRUPPO_SCONOSCIUTO", gruppo=gruppo[:40]) from None


def _check_free(folder: Path, nome: str) -> None:
    """Refuse a name whose folder holds something: only empty folders are adopted."""
    if folder.is_symlink() or (folder.exists() and (not folder.is_dir() or _has_files(folder))):
        raise refusal("CANALE_ESISTENTE", nome=nome, cartella=folder)


def _make(folder: Path, mode: int, gid: int, nome: str) -> None:
    """``folder`` with ``mode`` and group ``gid`` (an existing empty one adopted)."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        if folder.is_symlink() or not folder.is_dir():
            raise refusal("CANALE_ESISTENTE", nome=nome, cartella=folder) from None
    os.chown(folder, -1, gid)
    os.chmod(folder, mode)  # after chown, which may clear the setgid bit


def _has_files(folder: Path) -> bool:
    """Anything but the empty folders and header-only ledger an interrupted add leaves."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir()):
            continue
        if entry.name == "ledger.csv" and entry.read_text(encoding="utf-8") == LEDGER_HEADER:
            continue
        return True
    return False
