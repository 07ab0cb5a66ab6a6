"""Faults of the machine told from bugs (``faults.py``): a full disk, a quota, an I/O error or
exhausted memory is a fault (the daemon pauses), anything else a bug."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from certdesk.faults import FULL_DISK, MACHINE_FAULT, machine_fault
from conftest import sqlite_full


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), FULL_DISK),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), FULL_DISK),
        (OSError(errno.EIO, "Input/output error"), MACHINE_FAULT),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), MACHINE_FAULT),
        (OSError(errno.EMFILE, "Too many open files"), MACHINE_FAULT),
        (OSError(errno.EROFS, "Read-only file system"), MACHINE_FAULT),
        (MemoryError(), MACHINE_FAULT),
        (sqlite_full(), FULL_DISK),
        (OSError(errno.EACCES, "Permission denied"), None),
        (OSError(errno.ENOENT, "No such file or directory"), None),
        (RuntimeError("a bug"), None),
        (ValueError("a bug"), None),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), None),
    ],
)
def test_machine_faults_are_told_from_bugs(exc: BaseException, code: str | None) -> None:
    fault = machine_fault(exc)
    assert (fault.code if fault else None) == code


def test_a_fault_behind_another_exception_is_found() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("while writing the CRL") from inner
    except RuntimeError as outer:
        fault = machine_fault(outer)
    assert fault is not None and fault.code == FULL_DISK
