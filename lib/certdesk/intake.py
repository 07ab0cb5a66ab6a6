"""Taking files out of ``inbox/`` safely: claiming, and reading without being fooled.

A claim is one ``rename`` of the inbox entry into ``state/work/<claim>/<name>``: atomic,
so two daemons (or a daemon and a restart) can never both take the same file, and the
original name survives a crash exactly. Reading never follows a symlink, never opens a
FIFO or device for a blocking read, and never reads more than the size limit.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import stat
import time
from dataclasses import dataclass

from .channels import channel_of_claim, claim_suffix
from .codes import refusal, refusal_as
from .errors import InputRejected
from .faults import machine_fault
from .home import Home
from .names import recordable_name
from .policy import MAX_INPUT_BYTES

__all__ = [
    "Claim",
    "InputFile",
    "claim",
    "list_claims",
    "read_claimed",
    "read_input",
    "recordable_name",
    "settle_claim",
]


@dataclass(frozen=True)
class Claim:
    claim: str  # folder under state/work/, time-ordered, ending with its channel's suffix
    name: str  # the name the file had in its inbox

    def path(self, home: Home) -> str:
        return f"{home.work}/{self.claim}/{self.name}"

    @property
    def canale(self) -> str:
        """The channel the input came through (``channels``)."""
        return channel_of_claim(self.claim)


@dataclass(frozen=True)
class InputFile:
    data: bytes
    sha256: str




_second_text: tuple[int, str] = (-1, "")


def _new_claim_id(canale: str = "") -> str:
    """``20261127T231500123456-1f2e3d4c``: time-ordered to the microsecond, then 32 random
    bits (uniqueness, not secrecy), then the channel's suffix (``.acme``; none for the
    top-level inbox/). Called per file, so the date text is made once a second."""
    global _second_text
    now = time.time_ns()
    second, micro = divmod(now // 1000, 1_000_000)
    if _second_text[0] != second:
        _second_text = (second, time.strftime("%Y%m%dT%H%M%S", time.gmtime(second)))
    return f"{_second_text[1]}{micro:06d}-{random.getrandbits(32):08x}{claim_suffix(canale)}"


def claim(
    home: Home, name: str, *, inbox_fd: int | None = None, canale: str = ""
) -> Claim | None:
    """Move ``name`` out of the inbox of ``canale`` (``inbox/`` by default) under
    ``state/work/``; None if another taker got it first.

    The entry is renamed, never opened: a symlink moves as a link, a FIFO is not read.
    A name that is not plain UTF-8 (undecodable bytes, a backslash, a C1 control) is claimed
    under its ``recordable_name``, the injective text it is recorded as. With ``inbox_fd``
    (the daemon's), the name is taken from that folder whatever ``inbox/`` now names.
    """
    claim_id = _new_claim_id(canale)
    folder = f"{home.work}/{claim_id}"
    os.mkdir(folder, 0o700)
    kept = recordable_name(name)
    try:
        if inbox_fd is None:
            os.rename(f"{home.channel_inbox(canale)}/{name}", f"{folder}/{kept}")
        else:
            os.rename(name, f"{folder}/{kept}", src_dir_fd=inbox_fd)
    except FileNotFoundError:
        os.rmdir(folder)
        return None  # another taker got it, or the writer took it back
    except OSError:
        os.rmdir(folder)
        raise  # EXDEV, EACCES, ...: the caller logs it and leaves the entry alone
    return Claim(claim_id, kept)


def list_claims(home: Home) -> list[Claim]:
    """Claims left in ``state/work/`` (by a crash), oldest first; empty folders removed."""
    found: list[Claim] = []
    if not home.work.exists():
        return found
    for folder in sorted(home.work.iterdir()):
        entries = os.listdir(folder) if folder.is_dir() else []
        if not entries:
            if folder.is_dir():
                folder.rmdir()
            continue
        found.append(Claim(folder.name, entries[0]))
    return found


def read_claimed(home: Home, item: Claim) -> InputFile:
    """The bytes of a claimed input, or InputRejected for anything but a small regular file."""
    path = item.path(home)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise refusal("INPUT_LINK_SIMBOLICO")
    if stat.S_ISDIR(info.st_mode):
        raise refusal("INPUT_CARTELLA")
    if not stat.S_ISREG(info.st_mode):
        raise refusal("INPUT_NON_REGOLARE")
    if info.st_nlink > 1:
        raise _hard_link_refusal()
    if info.st_size > MAX_INPUT_BYTES:
        raise refusal(
            "FILE_TROPPO_GRANDE",
            "dimensione",
            byte=info.st_size,
            limite_kib=MAX_INPUT_BYTES // 1024,
        )
    # O_NOFOLLOW|O_NONBLOCK: the entry could be swapped between lstat and open.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise refusal("INPUT_NON_REGOLARE")
        if opened.st_nlink > 1:
            raise _hard_link_refusal()
        chunks = []
        budget = MAX_INPUT_BYTES + 1
        while budget > 0 and (chunk := os.read(fd, budget)):
            chunks.append(chunk)
            budget -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > MAX_INPUT_BYTES:
        raise refusal("FILE_TROPPO_GRANDE", limite_kib=MAX_INPUT_BYTES // 1024)
    return InputFile(data, hashlib.sha256(data).hexdigest())


def read_input(home: Home, item: Claim) -> InputFile | InputRejected:
    """The bytes of a claimed input, or the refusal of a file that cannot be one. A fault
    of the disk is raised: it says nothing about the file (a pause)."""
    try:
        return read_claimed(home, item)
    except InputRejected as exc:
        return exc
    except OSError as exc:
        if machine_fault(exc):
            raise
        why = exc.strerror or type(exc).__name__
        return refusal_as(InputRejected, "INPUT_NON_LEGGIBILE", errore=why)


def _hard_link_refusal() -> InputRejected:
    return refusal_as(InputRejected, "INPUT_COLLEGAMENTO_FISICO")


def settle_claim(home: Home, item: Claim, *, quarantined: bool) -> None:
    """Move a processed claim's folder to ``state/archive/`` or ``state/quarantine/``: for
    an input ``archive`` cannot pack (a link, a FIFO, a folder, a file with other names,
    an oversized one), kept as it came.

    The file is kept as it came, its mode included: it may have other names (a hard link
    to someone else's file), so it is made private by the folders it is kept in (0700),
    never by a chmod that would change the file for every name it has."""
    source = f"{home.work}/{item.claim}"
    target = f"{home.quarantine if quarantined else home.archive}/{item.claim}"
    try:
        os.rename(source, target)
    except FileNotFoundError:
        if os.path.lexists(source):
            raise  # the target folder is missing: not ours to hide
        return  # settled already (a restart finishing a batch)
    except OSError:
        shutil.move(source, target)
