"""The channels' own outboxes: ``outbox/<canale>/`` (receipts, certificates, ledger.csv)
and the administrators' ``state/admin/receipts/``.

A channel's outbox is a projection of the store like ``outbox/`` itself, kept by the same
code: its ``ledger.csv`` is an ``outbox_ledger.LedgerFile`` over the channel's rows alone
(``store_channels.ChannelRows``), appended, patched, caught up and rebuilt exactly when
``outbox/ledger.csv`` is, under the same mark of currency; its certificates are written
beside the top-level ones, under the same durability barrier. ``outbox/`` keeps every
request's certificate and row: it is the administrators' view.

Folders: ``certdesk canale add`` makes ``outbox/<canale>/`` owned by the channel's group,
setgid, 2750; the folders made in it here inherit the group from the setgid bit and take
its mode, so a member of the group reads them and nobody else can enter.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from .channels import ADMIN_CHANNEL, DEFAULT_CHANNEL, is_channel_name
from .home import PRIVATE_DIR_MODE, Home
from .outbox import Outbox
from .outbox_ledger import LedgerFile
from .store import Store
from .store_channels import ChannelRows

__all__ = ["ChannelOutboxes"]


class ChannelOutboxes:
    """Every channel's outbox of one home, the default channel's being ``outbox/``."""

    def __init__(self, home: Home, main: Outbox) -> None:
        self.home = home
        self._outboxes: dict[str, Outbox] = {DEFAULT_CHANNEL: main}
        self._ledgers: dict[str, LedgerFile] = {}
        self._ready: set[str] = {DEFAULT_CHANNEL}

    def outbox(self, canale: str) -> Outbox:
        """The outbox of ``canale``, its folders made on first use."""
        found = self._outboxes.get(canale)
        if found is None:
            found = self._outboxes[canale] = Outbox.of_channel(self.home, canale)
        if canale not in self._ready:
            self._make_folders(canale, found)
            self._ready.add(canale)
        return found

    def ledger(self, canale: str) -> LedgerFile:
        """A named channel's ``ledger.csv``."""
        found = self._ledgers.get(canale)
        if found is None:
            found = self._ledgers[canale] = LedgerFile(self.outbox(canale))
        return found

    @staticmethod
    def rows(store: Store, canale: str) -> ChannelRows:
        return ChannelRows(store, canale)

    @staticmethod
    def named(store: Store) -> list[str]:
        """The named channels whose outbox the store implies: made by ``certdesk canale``,
        or with requests (a channel whose record a restore predates)."""
        return sorted({c.nome for c in store.channels()} | set(store.channels_with_requests()))

    def existing_folders(self) -> Iterator[Path]:
        """The channels' folders on disk (for the asides a killed writer left)."""
        admin = Outbox.of_channel(self.home, ADMIN_CHANNEL)
        yield admin.receipts
        with contextlib.suppress(FileNotFoundError), os.scandir(self.home.outbox) as entries:
            for entry in entries:
                if is_channel_name(entry.name) and entry.is_dir(follow_symlinks=False):
                    yield from Outbox(Path(entry.path)).channel_folders

    def folders_of(self, canale: str) -> tuple[Path, ...]:
        """The folders a channel's outbox has: the administrators' receipts alone."""
        outbox = self.outbox(canale)
        if canale == ADMIN_CHANNEL:
            return (outbox.receipts,)
        return outbox.channel_folders

    def used(self) -> list[str]:
        """The channels other than the default whose outbox this process has written."""
        return sorted(self._ready - {DEFAULT_CHANNEL})

    def forget(self, canali: Iterable[str]) -> None:
        """Check these channels' folders again at their next use (a republish)."""
        for canale in canali:
            self._ready.discard(canale)

    def _make_folders(self, canale: str, outbox: Outbox) -> None:
        if canale == ADMIN_CHANNEL:
            outbox.receipts.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            return
        # A channel's own folder is made by certdesk canale add; one missing (a restore
        # into a new home) is made private to the daemon's user until an administrator
        # gives it its group again.
        outbox.root.mkdir(mode=0o750, exist_ok=True)
        mode = stat.S_IMODE(outbox.root.stat().st_mode)
        for folder in (outbox.certs, outbox.receipts):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            os.chmod(folder, mode)  # the channel's own mode, not the umask's
