"""The home's folders as the daemon found them, every inbox held open.

Whoever may write beside ``inbox/`` can rename it away and put a symlink to any other
folder in its place. A daemon that went on by path would then take that folder's files
into ``state/`` (or publish into another ``outbox/``). The daemon instead lists and claims
through a descriptor of each inbox it opened: ``inbox/``, the administrators'
``state/admin/inbox/`` and each channel's ``inbox/<canale>/`` (opened when the channel
is first seen, ``refresh``), so it never takes a file from anywhere else, and at every
scan it checks that those, ``outbox/`` and ``state/`` are still the folders it opened: if
one is not, it stops with ``CARTELLA_SOSTITUITA``.

An entry is named by its *key*: its name in ``inbox/``, or ``<canale>/<name>`` in a
channel's inbox (a name never holds a ``/``), so the readiness of files and the events
that hint at it work on one flat set of keys.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from certdesk.channels import ADMIN_CHANNEL, DEFAULT_CHANNEL, is_channel_name
from certdesk.codes import refusal
from certdesk.errors import FolderReplaced
from certdesk.home import Home
from certdesk.names import is_ignored_name

__all__ = ["FolderReplaced", "HomeFolders", "key_of", "split_key"]


def key_of(canale: str, name: str) -> str:
    return f"{canale}/{name}" if canale else name


def split_key(key: str) -> tuple[str, str]:
    """(canale, name) of an entry's key."""
    canale, slash, name = key.partition("/")
    return (canale, name) if slash else (DEFAULT_CHANNEL, key)


def _identity(path: os.PathLike[str] | str) -> tuple[int, int]:
    info = os.stat(path)  # a symlinked inbox/ set up before the start is followed, as then
    return info.st_dev, info.st_ino


class HomeFolders:
    def __init__(self, home: Home, is_recorded: Callable[[str], bool] = lambda _: False) -> None:
        self.home = home
        self._is_recorded = is_recorded  # a channel the store knows, by name
        self._paths = {"inbox/": home.inbox, "outbox/": home.outbox, "state/": home.state}
        self._identities = {label: _identity(path) for label, path in self._paths.items()}
        self._fds: dict[str, int] = {}
        self._channels: set[str] = set()  # recorded in the store, opened or not yet
        self.inbox_fd = self._open(DEFAULT_CHANNEL, "inbox/")
        self._open(ADMIN_CHANNEL, "state/admin/inbox/")

    @property
    def channels(self) -> tuple[str, ...]:
        """The named channels whose inbox is open."""
        return tuple(c for c in self._fds if c not in (DEFAULT_CHANNEL, ADMIN_CHANNEL))

    def _open(self, canale: str, label: str) -> int:
        path = self.home.channel_inbox(canale)
        if label not in self._identities:
            self._paths[label] = path
            self._identities[label] = _identity(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != self._identities[label]:
            os.close(fd)
            raise refusal("CARTELLA_SOSTITUITA", "apertura", cartella=path)
        self._fds[canale] = fd
        return fd

    def refresh(self, canali: list[str]) -> list[str]:
        """Open the inboxes of channels made since (``certdesk canale add``); the ones
        opened now. A channel whose folder is missing or not a folder is left for later."""
        opened = []
        self._channels.update(canali)
        for canale in canali:
            if canale in self._fds:
                continue
            try:
                self._open(canale, f"inbox/{canale}/")
            except OSError:  # missing, not a folder, not ours to read
                self._paths.pop(f"inbox/{canale}/", None)
                self._identities.pop(f"inbox/{canale}/", None)
                continue
            opened.append(canale)
        return opened

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self.inbox_fd = -1

    def check(self) -> None:
        """FolderReplaced when a folder is no longer the one the daemon started on."""
        for label, path in self._paths.items():
            try:
                now = _identity(path)
            except OSError as exc:
                raise refusal(
                    "CARTELLA_SOSTITUITA", "scomparsa", etichetta=label, cartella=path,
                    errore=exc.strerror,
                ) from None  # fmt: skip
            if now != self._identities[label]:
                raise refusal("CARTELLA_SOSTITUITA", etichetta=label, cartella=path)

    def candidates(self) -> list[str]:
        """The keys of the entries in the opened inboxes that may be inputs, sorted
        (writers' names such as ``.x.tmp`` left out; a channel's folder in ``inbox/`` is
        the channel, not an input, from the moment the store records the channel, which
        ``certdesk canale add`` does before it makes the folder)."""
        keys: list[str] = []
        for canale, fd in self._fds.items():
            for name in os.listdir(fd):
                if is_ignored_name(name):
                    continue
                if canale == DEFAULT_CHANNEL and self._is_channel_folder(name):
                    continue
                keys.append(key_of(canale, name))
        return sorted(keys)

    def _is_channel_folder(self, name: str) -> bool:
        """A folder of ``inbox/`` that is a channel's, known or just made: ``canale add``
        records the channel before it makes the folder, so a folder seen here whose name
        the store has is never taken for an input."""
        if not is_channel_name(name):
            return False
        try:
            if not stat.S_ISDIR(os.lstat(name, dir_fd=self.inbox_fd).st_mode):
                return False
        except OSError:
            return False
        return name in self._channels or self._is_recorded(name)

    def fd_of(self, canale: str) -> int:
        return self._fds[canale]

    def lstat(self, key: str) -> os.stat_result:
        canale, name = split_key(key)
        return os.lstat(name, dir_fd=self._fds[canale])
