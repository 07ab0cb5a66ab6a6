"""Homes for the measurements: one CA made once and copied per case, inputs dropped into
``inbox/``, receipts waited for and checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .settings import Sizes

__all__ = [
    "CERTDESK",
    "ENV",
    "PASSPHRASE",
    "REPO",
    "check_receipts",
    "fill_inbox",
    "make_template",
    "new_home",
    "receipt_path",
    "wait_for",
]

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "benchmark-passphrase-not-secret"
ENV = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
# The CLI as a user runs it, through the interpreter of this run.
CERTDESK = [sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())"]


def make_template(work: Path, sizes: Sizes) -> Path:
    """A home with its CA, made once: every case starts from a copy (key generation is slow)."""
    home = work / "template"
    home.mkdir()
    (home / "certdesk.toml").write_text(
        f'[ca]\nroot_key = "{sizes.root_key}"\nissuing_key = "{sizes.issuing_key}"\n',
        encoding="utf-8",
    )
    subprocess.run(
        [*CERTDESK, "--home", str(home), "init"], env=ENV, check=True, capture_output=True
    )
    return home


def new_home(template: Path, work: Path, name: str) -> Path:
    home = work / name
    shutil.copytree(template, home, symlinks=True)
    return home


def fill_inbox(home: Path, csrs: Sequence[bytes], prefix: str) -> list[str]:
    """The CSRs as ``inbox/<prefix>-NNNNN.csr``, already complete when a daemon looks."""
    names = []
    past = time.time() - 60  # dropped a minute ago: complete, nothing to wait for
    for i, pem in enumerate(csrs):
        name = f"{prefix}-{i:05d}.csr"
        path = home / "inbox" / name
        path.write_bytes(pem)
        os.utime(path, (past, past))
        names.append(name)
    os.sync()  # our own writes must not be flushed on the daemon's time
    return names


def receipt_path(home: Path, name: str) -> Path:
    return home / "outbox" / "receipts" / f"{name}.json"


def check_receipts(home: Path, names: Sequence[str]) -> list[float]:
    """mtimes of the receipts; fails unless every one says OK."""
    times = []
    for name in names:
        path = receipt_path(home, name)
        receipt = json.loads(path.read_text(encoding="utf-8"))
        if receipt.get("esito") != "OK":
            raise RuntimeError(f"{name}: {receipt.get('errori')}")
        times.append(path.stat().st_mtime)
    return times


def wait_for(paths: Sequence[Path], timeout: float, poll: float = 0.0005) -> None:
    deadline = time.monotonic() + timeout
    for path in paths:
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no receipt {path.name} after {timeout:.0f} s")
            time.sleep(poll)
