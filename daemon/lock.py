"""One daemon per home: an exclusive ``flock`` on ``state/daemon.lock``.

The kernel drops the lock when the process dies, even by ``kill -9``, so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from certdesk.errors import CertdeskError

__all__ = ["DaemonLock"]


class DaemonLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise CertdeskError(
                f"another certdesk daemon (pid {holder}) is already running on this home; "
                "stop it first (only one daemon may sign and change state)",
                code="DAEMON_GIA_ATTIVO",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
