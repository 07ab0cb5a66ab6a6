"""Requests for an engine opened in the test process (the signing, pipeline, ledger and
recovery tests): the n-th codice fiscale, the i-th key (made once per session), and a CSR
of a codice fiscale with a key, made with cryptography."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from stdnum.it import codicefiscale


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
