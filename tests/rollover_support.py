"""Helpers for the rollover tests: the issuers the store lists, ``certdesk rollover`` run
in a subprocess that a test can stop, and a write lock on the store that holds a
rollover between its files and its commit (a real kill then lands there every time)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from daemon_support import CLI

from conftest import PASSPHRASE


def listed_issuers(home: Path) -> dict[str, str]:
    """``{name: active_from}`` of the issuers the store lists (gen1 is never listed)."""
    uri = f"file:{home / 'state' / 'certdesk.sqlite3'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT nome, attivo_dal FROM emittenti").fetchall())
    finally:
        conn.close()


def start_rollover(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``certdesk rollover`` in its own session (so a kill reaches nothing else)."""
    full = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE, **(env or {})}
    return subprocess.Popen(
        [*CLI, "--home", str(home), "rollover", *args], env=full, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def kill_9(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


@contextlib.contextmanager
def store_locked(home: Path) -> Iterator[None]:
    """A write transaction held on the store: a writer (the rollover's commit) waits."""
    conn = sqlite3.connect(home / "state" / "certdesk.sqlite3", timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def issuer_of(cert: Path) -> str:
    return x509.load_pem_x509_certificate(cert.read_bytes()).issuer.rfc4514_string()
