"""The kinds of CA key certdesk makes (``[ca] root_key`` / ``issuing_key``), the roles a key
plays, and the hash each key signs with: the same whichever provider holds the key."""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

__all__ = ["Role", "generate_key", "signature_hash"]

#: the root signs the issuing CA's certificate; the issuing CA everything else
Role = Literal["root", "issuing"]


def generate_key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    """A new key of ``kind`` in this process's memory (the file provider's keys)."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key type {kind!r}")


def signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for a P-384 key (its strength), SHA-256 otherwise: RSA keys sign with
    PKCS#1 v1.5, so a token needs CKM_SHA256_RSA_PKCS, or CKM_ECDSA on our own digest."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()
