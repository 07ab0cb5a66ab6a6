"""Signers: where certificates get their CA signature, in this process or in workers.

A signature with the CA key costs milliseconds and holds the GIL, so throughput on
several cores needs processes. Each worker loads (and decrypts) the CA key once, in its
initializer; jobs carry only the codice fiscale and the public key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .authority import CertificateAuthority, IssuedCertificate
from .config import load_config
from .home import Home

__all__ = ["InProcessSigner", "PoolSigner", "SignJob", "Signer", "make_signer"]


@dataclass(frozen=True)
class SignJob:
    codice_fiscale: str
    spki_der: bytes
    now: datetime


class Signer(Protocol):
    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]: ...

    def close(self) -> None: ...


class InProcessSigner:
    def __init__(self, ca: CertificateAuthority) -> None:
        self._ca = ca

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        return [self._ca.issue(j.codice_fiscale, j.spki_der, j.now) for j in jobs]

    def close(self) -> None:
        pass


_worker_ca: CertificateAuthority | None = None


def _init_worker(root: str, passphrase: bytes) -> None:
    global _worker_ca
    home = Home.at(root)
    _worker_ca = CertificateAuthority.load(home, load_config(home.root), passphrase)


def _sign_chunk(jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
    assert _worker_ca is not None, "worker initializer did not run"
    return [_worker_ca.issue(j.codice_fiscale, j.spki_der, j.now) for j in jobs]


class PoolSigner:
    def __init__(self, home: Home, passphrase: bytes, workers: int) -> None:
        self._workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(str(home.root), passphrase)
        )

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        if not jobs:
            return []
        size = max(1, -(-len(jobs) // self._workers))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        signed: list[IssuedCertificate] = []
        for part in self._pool.map(_sign_chunk, chunks):
            signed.extend(part)
        return signed

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_signer(
    home: Home, ca: CertificateAuthority, passphrase: bytes, workers: int | None
) -> Signer:
    """In-process for one worker (no IPC); a process pool for more."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1:
        return InProcessSigner(ca)
    return PoolSigner(home, passphrase, count)
