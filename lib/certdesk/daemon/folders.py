"""The home's folders as the daemon found them at start, ``inbox/`` held open.

Whoever may write beside ``inbox/`` can rename it away and put a symlink to any other
folder in its place. A daemon that went on by path would then take that folder's files
into ``state/`` (or publish into another ``outbox/``). The daemon instead lists and claims
through a descriptor of the ``inbox/`` it opened, so it never takes a file from anywhere
else, and at every scan it checks that ``inbox/``, ``outbox/`` and ``state/`` are still
the folders it started on: if one is not, it stops with ``CARTELLA_SOSTITUITA``.
"""

from __future__ import annotations

import os

from certdesk.codes import refusal
from certdesk.errors import FolderReplaced
from certdesk.home import Home
from certdesk.names import is_ignored_name

__all__ = ["FolderReplaced", "HomeFolders"]


def _identity(path: os.PathLike[str] | str) -> tuple[int, int]:
    info = os.stat(path)  # a symlinked inbox/ set up before the start is followed, as then
    return info.st_dev, info.st_ino


class HomeFolders:
    def __init__(self, home: Home) -> None:
        self._paths = {"inbox/": home.inbox, "outbox/": home.outbox, "state/": home.state}
        self._identities = {label: _identity(path) for label, path in self._paths.items()}
        self.inbox_fd = os.open(home.inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        opened = os.fstat(self.inbox_fd)
        if (opened.st_dev, opened.st_ino) != self._identities["inbox/"]:
            os.close(self.inbox_fd)
            raise refusal("CARTELLA_SOSTITUITA", "apertura", cartella=home.inbox)

    def close(self) -> None:
        if self.inbox_fd >= 0:
            os.close(self.inbox_fd)
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
        """The names in the opened inbox/ that may be requests, sorted (writers' names
        such as ``.x.tmp`` left out)."""
        return sorted(n for n in os.listdir(self.inbox_fd) if not is_ignored_name(n))

    def lstat(self, name: str) -> os.stat_result:
        return os.lstat(name, dir_fd=self.inbox_fd)
