"""The raw rate: certificates per second in this process, on one core, no daemon."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from certdesk.authority import CertificateAuthority
from certdesk.config import load_config
from certdesk.home import Home
from certdesk.policy import inspect_request

from .homes import PASSPHRASE

__all__ = ["inspect_seconds", "raw_rate"]


def raw_rate(
    template: Path, csrs: Sequence[bytes], reps: int, secret: bytes = PASSPHRASE.encode()
) -> float:
    """Certificates per second on one core: verify the CSR, build, sign, serialise; the
    best of ``reps`` passes (on a shared machine, the least disturbed). ``secret`` opens
    the home's key: its passphrase, or its token's PIN (``pkcs11_case``)."""
    home = Home.at(template)
    ca = CertificateAuthority.load(home, load_config(home.root), secret)
    best = 0.0
    for _ in range(reps):
        now = datetime.now(UTC)
        started = time.perf_counter()
        for pem in csrs:
            inspected = inspect_request(pem)
            ca.issue(inspected.codice_fiscale.value, inspected.spki_der, now)
        best = max(best, len(csrs) / (time.perf_counter() - started))
    return best


def inspect_seconds(csrs: Sequence[bytes]) -> float:
    """CPU seconds of ``inspect_request`` per CSR (the part of raw that is not signing)."""
    started = time.process_time()
    for pem in csrs:
        inspect_request(pem)
    return (time.process_time() - started) / len(csrs)
