"""Reading an original back (``certdesk archivio``): by IdOperazione, claim or name.

An original is where the store says (``originals``: a pack, a start, a size, checked
against its SHA-256), or, for an input kept as it came (a link, a FIFO, a folder, a file
with other names) and for every input archived before packs existed, in its claim's
folder: ``state/archive/<claim>/``, ``state/quarantine/<claim>/``, or still
``state/work/<claim>/`` while it is being processed. Reading changes nothing, so it is
safe while the daemon runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from .archive import ARCHIVE_FOLDERS
from .codes import refusal
from .home import Home
from .store import OriginalRecord, Store

__all__ = ["Original", "find_original", "resolve_claim", "write_original"]


@dataclass(frozen=True)
class Original:
    """One original, found: its bytes, or the path of the file kept as it came."""

    claim: str
    data: bytes | None = None
    path: str | None = None


def resolve_claim(
    store: Store, *, id_operazione: str | None, claim: str | None, file: str | None
) -> tuple[str, int]:
    """The claim of the input asked for, and how many inputs had that name (``file``:
    the latest is chosen; 1 otherwise). NON_TROVATO when there is none."""
    if id_operazione:
        found = store.claim_of(id_operazione)
        if not found:
            raise refusal("ORIGINALE_NON_TROVATO", id_operazione=id_operazione)
        return found, 1
    if claim:
        if store.input(claim) is None:
            raise refusal("ORIGINALE_NON_TROVATO", "claim", claim=claim)
        return claim, 1
    claims = store.claims_named(file or "")
    if not claims:
        raise refusal("ORIGINALE_NON_TROVATO", "file", file=file)
    return claims[-1], len(claims)


def find_original(home: Home, store: Store, claim: str) -> Original:
    """The original of ``claim``: from its pack (checked), or from its folder."""
    record = store.original(claim)
    if record is not None and record.pruned:
        raise refusal("ORIGINALE_ELIMINATO", claim=claim, data=record.pruned)
    if record is not None and record.pack:
        return Original(claim, data=_read_packed(home, record))
    for folder in ("work", *ARCHIVE_FOLDERS):
        path = _kept_file(home.state / folder / claim)
        if path is not None:
            return Original(claim, path=path)
    raise refusal("ORIGINALE_NON_TROVATO", "assente", claim=claim)


def _read_packed(home: Home, record: OriginalRecord) -> bytes:
    path = home.state / record.pack
    try:
        with open(path, "rb") as pack:
            pack.seek(record.start)
            data = pack.read(record.size)
    except FileNotFoundError:
        data = b""
    if len(data) != record.size or hashlib.sha256(data).hexdigest() != record.sha256:
        raise refusal(
            "ORIGINALE_DANNEGGIATO", claim=record.claim, pack=f"state/{record.pack}",
            inizio=record.start,
        )  # fmt: skip
    return data


def _kept_file(folder: Path) -> str | None:
    """The one entry of a claim's folder, if the folder exists; NON_REGOLARE when it is
    not a regular file (a link is never followed, a FIFO never opened)."""
    try:
        entries = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not entries:
        return None
    path = os.path.join(folder, entries[0])
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise refusal("ORIGINALE_NON_REGOLARE", percorso=path)
    return path


def write_original(original: Original, out: Path | None) -> int:
    """Write the original to ``out`` (0600: it may hold a private key; written aside,
    then renamed) or to standard output; returns the bytes written."""
    if out is None:
        return _copy_to(original, sys.stdout.buffer.fileno())
    aside = out.with_name(f".{out.name}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        written = _copy_to(original, fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(aside)
        raise
    os.close(fd)
    os.replace(aside, out)
    return written


def _copy_to(original: Original, fd: int) -> int:
    if original.data is not None:
        view = memoryview(original.data)
        while view:
            view = view[os.write(fd, view) :]
        return len(original.data)
    assert original.path is not None
    source = os.open(original.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        with os.fdopen(source, "rb", closefd=False) as reader, os.fdopen(
            fd, "wb", closefd=False
        ) as writer:
            shutil.copyfileobj(reader, writer)
        return os.fstat(source).st_size
    finally:
        os.close(source)
