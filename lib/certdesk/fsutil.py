"""Atomic, durable file writes: write aside, fsync, rename, fsync the folder; one at a time,
or in batches that share one durability barrier."""

from __future__ import annotations

import contextlib
import csv
import ctypes
import itertools
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeAlias, cast

StrPath: TypeAlias = str | os.PathLike[str]

__all__ = [
    "append_durably",
    "append_unsynced",
    "atomic_write",
    "first_line",
    "fsync_dir",
    "make_public_dir",
    "remove_asides",
    "rename_into_place",
    "sync_data",
    "write_aside",
    "write_csv_durably",
]


def first_line(path: StrPath) -> bytes:
    """The first line of a file, with its newline; b"" for a missing or empty one."""
    try:
        with open(path, "rb") as fh:
            return fh.readline()
    except FileNotFoundError:
        return b""


def make_public_dir(folder: Path, *, parents: bool = False) -> None:
    """``folder`` made if missing, then open to everyone (0755) whatever the umask: a folder
    of published files (``outbox/ca/``, ``outbox/ocsp/``). An existing one keeps its mode."""
    try:
        folder.mkdir(parents=parents)
    except FileExistsError:
        return
    os.chmod(folder, PUBLIC_DIR_MODE)


def fsync_dir(folder: StrPath) -> None:
    """Make a rename or a new name in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


PUBLIC_FILE_MODE = 0o644
PUBLIC_DIR_MODE = 0o755


def atomic_write(
    path: Path, data: bytes, *, mode: int = 0o644, sync_dir: bool = True, public: bool = False
) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never part.

    With ``sync_dir=False`` the caller fsyncs the folder once after a batch of writes.
    ``public``: readable by everyone whatever the umask (what is published anyway: the CA's
    certificates, CRLs, OCSP responses); every other file takes the daemon's umask.
    """
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    if public:
        os.fchmod(fd, PUBLIC_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def _append_whole(fd: int, data: bytes) -> None:
    """Append all of ``data`` or nothing: a write that fails half-way (a full disk) is cut
    off again, so the file never ends in part of a row that a later append would extend."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def write_csv_durably(
    path: StrPath, header: str, batches: Iterable[Sequence[Sequence[str]]]
) -> None:
    """Write a CSV file, ``header`` then rows streamed batch by batch (constant memory),
    and fsync it; the caller renames it into place."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(header)
        writer = csv.writer(fh, lineterminator="\n")
        for rows in batches:
            writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def append_durably(path: Path, data: bytes) -> None:
    """Append ``data`` whole and fsync it (the journal is never rewritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _append_whole(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# -- batches: many files, one durability barrier ------------------------------------------
#
# Writing N files durably one by one costs N fsyncs (each a journal commit, ~1 ms here).
# A batch writes every file aside without syncing, makes all of them durable at once, then
# renames them into place and syncs each folder once: the same guarantees (a reader sees
# the old file or the whole new one; nothing is renamed in before its data is on disk)
# for a few syncs per batch instead of several per file.


def _load_syncfs() -> Callable[[int], int] | None:
    """``syncfs(2)`` from the C library (Linux): one call flushes a whole file system."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast("Callable[[int], int]", function)


_syncfs = _load_syncfs()
# syncfs flushes every dirty page of the file system, also other programs' (a large copy
# in progress): above this much dirty data in the machine, one fsync per file is cheaper.
_SYNCFS_DIRTY_LIMIT = 64 * 2**20


def _dirty_bytes() -> int | None:
    """Dirty page cache waiting for writeback, from /proc/meminfo (None if unknown)."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"Dirty:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_aside_numbers = itertools.count()


def write_aside(path: StrPath, data: bytes, *, mode: int = 0o644, public: bool = False) -> str:
    """Write ``data`` beside ``path`` under a hidden temporary name, not yet synced.

    ``sync_data`` then ``rename_into_place`` finish the job. Plain strings, not pathlib,
    and the pid with a counter, not random bytes, for the name: this runs for every file
    of a batch (the pid is asked each time: a forked worker names its own files)."""
    head, tail = os.path.split(os.fspath(path))
    pid = os.getpid()
    while True:
        aside = f"{head}/.{tail}.{pid}-{next(_aside_numbers)}.tmp"
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:  # left by a killed process that had our pid
            continue
        break
    try:
        if public:  # as atomic_write's
            os.fchmod(fd, PUBLIC_FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
        raise
    os.close(fd)
    return aside


def append_unsynced(path: StrPath, data: bytes) -> bool:
    """Append ``data`` whole, without syncing; True when ``path`` was created."""
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _append_whole(fd, data)
    finally:
        os.close(fd)
    return created


def remove_asides(pairs: Sequence[tuple[str, str]]) -> None:
    """Clean up after a failed batch: unlink the ``(aside, final)`` pairs' asides."""
    for aside, _ in pairs:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)


def sync_data(paths: Iterable[StrPath]) -> None:
    """Make the contents of ``paths`` durable: one ``syncfs`` per file system where the C
    library has it and little else is waiting to be written, otherwise one ``fsync`` per
    file."""
    paths = list(paths)
    if not paths:
        return
    dirty = _dirty_bytes() if _syncfs is not None else None
    if _syncfs is not None and dirty is not None and dirty < _SYNCFS_DIRTY_LIMIT:
        # One stat per folder, not per file: a batch's files live in two or three folders.
        devices: dict[int, StrPath] = {}
        for folder in dict.fromkeys(os.path.dirname(os.fspath(path)) or "." for path in paths):
            devices.setdefault(os.stat(folder).st_dev, folder)
        for path in devices.values():
            fd = os.open(path, os.O_RDONLY)
            try:
                if _syncfs(fd) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, os.strerror(error), os.fspath(path))
            finally:
                os.close(fd)
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def rename_into_place(
    pairs: Sequence[tuple[StrPath, StrPath]], *, also_sync: Iterable[StrPath] = ()
) -> None:
    """Rename each ``(aside, final)`` pair, then fsync every folder involved once (and the
    folders in ``also_sync``): when this returns, the new names are durable."""
    folders: dict[str, None] = dict.fromkeys(os.fspath(f) for f in also_sync)
    for aside, final in pairs:
        os.replace(aside, final)
        folders[os.path.dirname(os.fspath(final))] = None
    for folder in folders:
        fsync_dir(folder)
