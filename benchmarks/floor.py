"""What any implementation of the contract pays on this machine, measured in this run.

Two costs no daemon of the contract's shape can skip, timed without certdesk's own code:

- the **files** of a request: the input claimed by a rename, read, its certificate and its
  receipt each written aside and renamed into ``outbox/``, the original moved to the
  archive. No fsync, no store, no ledger or journal, no checks: a lower bound;
- the **start-up**: the interpreter and the modules ``certdesk watch`` loads, which a
  backlog's rate includes.

The end-to-end targets are read against them: what is left per request, once the CSR
checks, the signature and these are paid, is all the store, the ledger, the journal, the
fsyncs and the daemon's logic may cost.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["files_seconds", "startup_seconds"]

# A certificate and a receipt of the daemon's sizes (about 1.6 KB of PEM, 0.5 KB of JSON).
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----\n" + b"A" * 1500 + b"\n-----END CERTIFICATE-----\n"
_RECEIPT = b'{"esito": "OK", "dettaglio": "' + b"x" * 440 + b'"}\n'
# The modules `certdesk watch` imports before it claims its first file.
_WATCH_IMPORTS = "import certdesk.cli, certdesk.runtime, certdesk.daemon.watcher"


def _write_aside_and_rename(folder: str, name: str, data: bytes) -> None:
    aside = f"{folder}/.{name}.tmp"
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(aside, f"{folder}/{name}")


def _files_pass(work: Path, csrs: Sequence[bytes]) -> float:
    root = Path(tempfile.mkdtemp(prefix="floor-", dir=work))
    try:
        folders = {d: root / d for d in ("inbox", "work", "certs", "receipts", "archive")}
        for folder in folders.values():
            folder.mkdir()
        for i, csr in enumerate(csrs):
            (folders["inbox"] / f"r{i:05d}.csr").write_bytes(csr)
        inbox, claimed, certs, receipts, archive = (str(f) for f in folders.values())
        started = time.process_time()
        for name in os.listdir(inbox):
            os.rename(f"{inbox}/{name}", f"{claimed}/{name}")
            with open(f"{claimed}/{name}", "rb") as source:
                source.read()
            _write_aside_and_rename(certs, f"{name}.pem", _CERTIFICATE)
            _write_aside_and_rename(receipts, f"{name}.json", _RECEIPT)
            os.rename(f"{claimed}/{name}", f"{archive}/{name}")
        return time.process_time() - started
    finally:
        shutil.rmtree(root)


def files_seconds(work: Path, csrs: Sequence[bytes], passes: int = 3) -> float:
    """CPU seconds (user + system) per request for the contract's files alone; best pass."""
    return min(_files_pass(work, csrs) for _ in range(passes)) / len(csrs)


def _child_cpu(args: Sequence[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup_seconds(passes: int = 3) -> float:
    """CPU seconds of a fresh interpreter importing what ``certdesk watch`` loads; best pass."""
    return min(_child_cpu([sys.executable, "-c", _WATCH_IMPORTS]) for _ in range(passes))
