"""A backup's ``manifest.json``: what the backup holds and how to tell it is whole.

The manifest names the home it was taken from, when, the journal's head (sequence and
hash) and the store's counts at the snapshot, which keys it carries (files, or only a
token's labels), and the size and SHA-256 of every other file of the backup. It carries a
digest of its own content, so a byte changed in the manifest itself is found as surely
as one changed in a file it lists.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .codes import refusal

__all__ = [
    "FORMAT",
    "MANIFEST",
    "FileEntry",
    "Manifest",
    "copy_hashed",
    "hash_file",
    "read_manifest",
    "write_manifest",
]

#: the manifest's format; a reader refuses another (a newer certdesk's backup)
FORMAT = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    """One file of the backup: its path inside the backup, size and SHA-256; a symbolic
    link (a link dropped into inbox/, quarantined unfollowed) is ``kind`` "link", its
    size and hash those of the path it names."""

    path: str
    size: int
    sha256: str
    kind: str = "file"


@dataclass(frozen=True)
class Manifest:
    home: str
    created: str
    certdesk: str
    head_seq: int
    head_hash: str
    next_id: int
    counts: dict[str, int]
    keys: dict[str, str]
    passphrase_included: bool
    files: list[FileEntry] = field(default_factory=list)
    format: int = FORMAT

    def body(self) -> dict[str, Any]:
        return asdict(self)

    def entry(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """``folder/manifest.json`` (0600, synced), with the digest of its content."""
    body = manifest.body()
    # ASCII: a name that is not UTF-8 (the archive keeps names as dropped) is kept as
    # its \udcNN escapes, which read back to the same bytes (os.fsencode).
    text = json.dumps({**body, "digest": _digest(body)}, indent=2, ensure_ascii=True)
    fd = os.open(folder / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the backup at ``folder``; BACKUP_NON_VALIDO if it is missing, not
    JSON, of another format or changed since it was written."""
    try:
        loaded = json.loads((folder / MANIFEST).read_bytes())
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        if loaded.get("format") != FORMAT:
            raise refusal(
                "BACKUP_NON_VALIDO", "versione", cartella=folder,
                versione=loaded.get("format"), attesa=FORMAT,
            )  # fmt: skip
        digest = loaded.pop("digest", None)
        if digest != _digest(loaded):
            raise ValueError("its digest does not match its content")
        files = [FileEntry(**f) for f in loaded.pop("files")]
        return Manifest(**loaded, files=files)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        errore = exc.strerror if isinstance(exc, OSError) else exc
        raise refusal("BACKUP_NON_VALIDO", "manifesto", cartella=folder, errore=errore) from None


def hash_file(path: Path) -> FileEntry:
    """The size and SHA-256 of ``path`` as it is (its entry's ``path`` is its name)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(path.name, size, digest.hexdigest())


def _chunks(source: Path) -> Iterator[bytes]:
    # Read to the end as it is now: a pack file appended to meanwhile is copied up to
    # where it was, and the entry records exactly what was copied.
    with open(source, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def copy_hashed(source: Path, target: Path, name: str) -> FileEntry:
    """Copy ``source`` to ``target`` (0600, synced), hashing the bytes copied: one read."""
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in _chunks(source):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return FileEntry(name, size, digest.hexdigest())
