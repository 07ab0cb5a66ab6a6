"""The baseline: what a sysadmin writes, one ``openssl x509 -req`` per CSR in a bash loop."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .homes import ENV

__all__ = ["openssl_loop"]

# The extensions of certdesk's leaf profile, so that both sign the same certificate.
_EXTFILE = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://certdesk.example/ca/issuing.crl
"""
_SCRIPT = (
    'for f in "$@"; do openssl x509 -req -in "$f" -CA "$CA/issuing.pem" '
    '-CAkey "$CA/issuing.key.pem" -passin env:CERTDESK_CA_PASSPHRASE '
    '-CAcreateserial -CAserial "$DIR/serial.srl" -days 1095 -sha256 '
    '-extfile "$DIR/ext.cnf" -out "$f.pem" 2>/dev/null || exit 1; done'
)


def _write_requests(folder: Path, csrs: Sequence[bytes]) -> list[str]:
    files = []
    for i, pem in enumerate(csrs):
        path = folder / f"req-{i:05d}.csr"
        path.write_bytes(pem)
        files.append(str(path))
    (folder / "ext.cnf").write_text(_EXTFILE)
    return files


def openssl_loop(template: Path, work: Path, csrs: Sequence[bytes]) -> float:
    """Certificates per second of one ``openssl x509 -req`` per CSR, with the same CA key."""
    folder = work / "openssl"
    folder.mkdir()
    files = _write_requests(folder, csrs)
    ca = template / "state" / "ca"
    started = time.perf_counter()
    subprocess.run(
        ["bash", "-c", _SCRIPT, "openssl-loop", *files],
        env={**ENV, "CA": str(ca), "DIR": str(folder)},
        check=True,
    )
    seconds = time.perf_counter() - started
    if not all(Path(f + ".pem").exists() for f in files):
        raise RuntimeError("the openssl loop did not write every certificate")
    return len(files) / seconds
