"""The engine's own cost: CPU per request in the daemon's main process, signing aside."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from certdesk.authority import CertificateAuthority, IssuedCertificate
from certdesk.home import Home
from certdesk.intake import claim
from certdesk.runtime import open_engine
from certdesk.signing import InProcessSigner, SignJob

from .homes import PASSPHRASE, check_receipts, fill_inbox, new_home
from .raw import inspect_seconds

__all__ = ["InstantSigner", "engine_overhead"]

# A leaf's sizes (about 1.1 KB of DER, 1.6 KB of PEM): the files written cost what real ones do.
_DER = b"\x30" * 1100
_PEM = b"-----BEGIN CERTIFICATE-----\n" + b"A" * 1500 + b"\n"
_VALIDITY = timedelta(days=1095)


class InstantSigner(InProcessSigner):
    """Fixed certificate bytes, no signature: what is left of a run is the engine's work."""

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        return [
            IssuedCertificate(
                der=_DER,
                pem=_PEM,
                serial=j.serial or int.from_bytes(os.urandom(16), "big") | 1,
                not_before=j.now,
                not_after=j.now + _VALIDITY,
                sha256="00" * 32,
            )
            for j in jobs
        ]


def _instant_signer(home: Home, ca: CertificateAuthority, passphrase: bytes) -> InstantSigner:
    return InstantSigner(ca)


def engine_overhead(template: Path, work: Path, csrs: Sequence[bytes]) -> float:
    """CPU seconds per request that the daemon's main process spends besides checking the
    CSR: claim, store commits, certificate, ledger, journal and receipt files, archive.

    The engine runs in this process with an instant signer, in batches of the daemon's
    size, so what is left is the main process' own work."""
    home = new_home(template, work, "overhead")
    names = fill_inbox(home, csrs, "overhead")
    os.environ["CERTDESK_CA_PASSPHRASE"] = PASSPHRASE  # open_engine reads it from there
    engine = open_engine(Home.at(home), workers=1, signer_factory=_instant_signer)
    try:
        engine.recover()
        started = time.process_time()
        # As the daemon does: one pipeline, each file claimed when the next chunk is due.
        engine.process(c for n in names if (c := claim(engine.home, n)) is not None)
        spent = time.process_time() - started
    finally:
        engine.close()
    check_receipts(home, names)
    return spent / len(names) - inspect_seconds(csrs)
