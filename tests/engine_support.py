"""Requests for an engine opened in the test process (the signing, pipeline, ledger and
recovery tests): the n-th codice fiscale, the i-th key (made once per session), and a CSR
of a codice fiscale with a key, made with cryptography."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from stdnum.it import codicefiscale

from certdesk.records import RequestRecord


def cf_n(n: int) -> str:
    prefix = f"RSSMRA80A{1 + n % 28:02d}H{500 + n // 28:03d}"
    return prefix + codicefiscale.calc_check_digit(prefix)


_KEYS: dict[int, rsa.RSAPrivateKey] = {}


def key_n(i: int) -> rsa.RSAPrivateKey:
    """The i-th key (2048 bits, e = 65537), made on first use."""
    if i not in _KEYS:
        _KEYS[i] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[i]


def csr_for(cf: str, key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cf)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def spki_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def leave_in_generazione(home: Path, requests: dict[str, bytes]) -> list[RequestRecord]:
    """Drop ``requests`` (name -> CSR) and let an engine accept them and reserve their
    serials, but never sign them (its signer fails as a fault of the machine does): what
    a ``kill -9`` between a batch's two commits leaves. Returns the pending requests.
    The CA's passphrase comes from the environment, as for the CLI."""
    from certdesk.home import Home
    from certdesk.intake import claim
    from certdesk.runtime import open_engine
    from certdesk.signing import InProcessSigner

    engine = open_engine(Home.at(home), workers=1)
    try:
        engine.signer.close()

        class _Dies(InProcessSigner):
            def submit(self, jobs):  # type: ignore[no-untyped-def]
                raise MemoryError  # a fault of the machine: the requests stay IN_GENERAZIONE

        engine.signer = _Dies(engine.ca)
        for name, data in requests.items():
            aside = home / "inbox" / f".{name}.tmp"
            aside.write_bytes(data)
            aside.rename(home / "inbox" / name)
        claims = [c for name in requests if (c := claim(engine.home, name)) is not None]
        try:
            engine.process(claims)
        except MemoryError:
            pass
        else:
            raise AssertionError("the failing signer signed")
        return engine.store.pending_generation()
    finally:
        engine.close()
