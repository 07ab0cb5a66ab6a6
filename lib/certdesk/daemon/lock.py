"""One daemon per home: an exclusive ``flock`` on ``state/daemon.lock``.

The kernel drops the lock when the process dies, even by ``kill -9``, so a crash never
leaves a stale lock behind. Two details keep that true:

- a forked child (a signing worker) inherits the open file, and with it the lock: were
  it to outlive a killed daemon, the restart would be refused. Every child closes its
  copy right after the fork: the first ``acquire`` registers that with
  ``os.register_at_fork`` (importing this module does nothing); the descriptor is also
  close-on-exec, as Python opens every file.
- the lock is re-entrant inside one process: the command line may take it before it
  opens the engine (so a second daemon says so before doing anything), and the daemon
  takes it again; the file is unlocked when the last holder releases it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from certdesk.codes import refusal

__all__ = ["DaemonLock", "holding_lock"]

_guard = threading.Lock()
_held: dict[str, tuple[int, int]] = {}  # resolved path -> (fd, holders)
_forgotten_in_children = False  # the fork hook is registered (once per process)


def _forget_in_child() -> None:
    """After a fork, in the child: the lock belongs to the parent, not to us."""
    for fd, _holders in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


def _forget_in_children() -> None:
    global _forgotten_in_children
    if not _forgotten_in_children:
        os.register_at_fork(after_in_child=_forget_in_child)
        _forgotten_in_children = True


class DaemonLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = str(path.resolve())
        self._acquired = False

    def acquire(self) -> None:
        with _guard:
            if self._acquired:
                return
            _forget_in_children()
            if self._key in _held:
                fd, holders = _held[self._key]
                _held[self._key] = (fd, holders + 1)
                self._acquired = True
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise refusal("DAEMON_GIA_ATTIVO", pid=holder) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            _held[self._key] = (fd, 1)
            self._acquired = True

    def release(self) -> None:
        with _guard:
            if not self._acquired:
                return
            self._acquired = False
            fd, holders = _held[self._key]
            if holders > 1:
                _held[self._key] = (fd, holders - 1)
                return
            del _held[self._key]
            os.close(fd)  # closing the only descriptor drops the flock


@contextlib.contextmanager
def holding_lock(path: Path) -> Iterator[DaemonLock]:
    """``with holding_lock(home.lock_file):`` the daemon's lock, or DAEMON_GIA_ATTIVO."""
    lock = DaemonLock(path)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
