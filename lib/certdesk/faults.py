"""Faults of the machine, not of an input: a pause, never a decision.

A full disk, a quota, an I/O error, memory or file descriptors exhausted, a store that
cannot write, signing processes that keep dying, a token (PKCS#11) that disappeared or
refuses the PIN: none of them says anything about the
request in hand. An operation that meets one stops where it is: the input stays claimed
in ``state/work/`` with its decision either uncommitted (it is decided again) or committed
and not yet published (it is published), and the daemon pauses until the fault is gone.
The request then gets the answer it would have had, exactly once.

Everything else an operation raises is a bug, or a refusal (``InputRejected``).
"""

from __future__ import annotations

import errno
import sqlite3
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

__all__ = ["FULL_DISK", "MACHINE_FAULT", "MachineFault", "TokenFault", "machine_fault"]

#: Codes in the daemon's heartbeat and log; the panels show them.
FULL_DISK = "SPAZIO_INSUFFICIENTE"
MACHINE_FAULT = "GUASTO_MACCHINA"

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_MACHINE_ERRNOS = frozenset({errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EROFS})

# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_FULL = 13
_SQLITE_MACHINE = frozenset(
    {
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY: the file system went read-only under the store
        10,  # SQLITE_IOERR
        14,  # SQLITE_CANTOPEN: its -wal or -shm file could not be created
    }
)


@dataclass(frozen=True)
class MachineFault:
    """What the administrator must fix before the daemon goes on."""

    code: str  # FULL_DISK, MACHINE_FAULT, or a TokenFault's code
    message: str


class TokenFault(Exception):
    """The token holding the CA key (``certdesk.keys``) is gone or refuses, met while
    signing: ``TOKEN_NON_DISPONIBILE`` (removed, switched off, session closed) or
    ``PIN_ERRATO``; ``message`` is the registry's sentence. Raised in a signing process,
    it reaches the daemon through the pool (its arguments are all it pickles)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


def _classify(exc: BaseException) -> MachineFault | None:
    if isinstance(exc, TokenFault):
        return MachineFault(exc.code, exc.message)
    if isinstance(exc, MemoryError):
        return MachineFault(MACHINE_FAULT, "out of memory")
    if isinstance(exc, BrokenProcessPool):
        # The pool was restarted once already (signing.PoolSigner): workers that die again
        # at once are killed by the machine (out of memory), not by a request.
        return MachineFault(MACHINE_FAULT, "the signing processes keep dying")
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None:
            return None
        if code & 0xFF == _SQLITE_FULL:
            return MachineFault(FULL_DISK, f"the state store cannot grow: {exc}")
        if code & 0xFF in _SQLITE_MACHINE:
            return MachineFault(MACHINE_FAULT, f"the state store cannot write: {exc}")
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" ({exc.filename})" if exc.filename else ""
        text = f"{exc.strerror or errno.errorcode.get(exc.errno, exc.errno)}{where}"
        if exc.errno in _FULL_ERRNOS:
            return MachineFault(FULL_DISK, text)
        if exc.errno in _MACHINE_ERRNOS:
            return MachineFault(MACHINE_FAULT, text)
    return None


def machine_fault(exc: BaseException) -> MachineFault | None:
    """The machine fault behind ``exc`` (itself, or what it was raised from or during),
    or None when ``exc`` is not one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (fault := _classify(current)) is not None:
            return fault
        current = current.__cause__ or current.__context__
    return None
