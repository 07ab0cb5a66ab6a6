"""OCSP on the wire for a responder that never signs (RFC 6960, RFC 5019).

A pure module: bytes in, facts out. It reads the one CertID of a request, tells whether
its issuer is the issuing CA (whatever hash the client chose, among those cryptography
reads), decodes an RFC 5019 GET path, and holds the four unsigned answers a responder
gives without a key (an OCSPResponse with a status and no responseBytes, RFC 6960 4.2.1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

__all__ = [
    "GET_MAX_BASE64",
    "INTERNAL_ERROR",
    "MALFORMED_REQUEST",
    "TRY_LATER",
    "UNAUTHORIZED",
    "CertId",
    "IssuerKeys",
    "decode_get_path",
    "read_request",
]

# OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } (no responseBytes): DER written
# out, as cryptography's OCSPResponseBuilder.build_unsuccessful would (the tests compare).
MALFORMED_REQUEST = b"\x30\x03\x0a\x01\x01"
INTERNAL_ERROR = b"\x30\x03\x0a\x01\x02"
TRY_LATER = b"\x30\x03\x0a\x01\x03"
UNAUTHORIZED = b"\x30\x03\x0a\x01\x06"

# RFC 5019 2.1.1: a client uses GET when the base64 of its request is under 255 bytes; a
# longer one is POSTed. Nothing longer is read from a path.
GET_MAX_BASE64 = 255


@dataclass(frozen=True, slots=True)
class CertId:
    """The certificate a request asks about: its issuer's hashes and its serial.
    ``hash_name`` is hashlib's name of the CertID's hash, "" for one cryptography does
    not know (no issuer matches it)."""

    hash_name: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


def read_request(der: bytes) -> CertId | None:
    """The CertID of a DER OCSPRequest; None for a malformed one, and for one asking
    about several certificates (RFC 5019 2.1.1: one Request per OCSPRequest). A nonce or
    any other extension is ignored, as RFC 5019 permits a responder of pre-signed
    answers."""
    try:
        request = ocsp.load_der_ocsp_request(der)
        serial = request.serial_number
        name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
    except (ValueError, NotImplementedError):  # NotImplementedError: several requests
        return None
    try:
        hash_name = request.hash_algorithm.name
    except UnsupportedAlgorithm:
        hash_name = ""
    return CertId(hash_name, name_hash, key_hash, serial)


def decode_get_path(tail: str) -> bytes | None:
    """The DER request of an RFC 5019 GET: the URL-encoded base64 after the responder's
    path. None when it is not base64 (or longer than ``GET_MAX_BASE64``; callers refuse
    longer paths before); missing padding is forgiven, as some clients drop it."""
    text = unquote(tail)
    if len(text) > GET_MAX_BASE64:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


class IssuerKeys:
    """The issuing CA as CertIDs name it: the hash of its subject and of its public key
    (the subjectPublicKey BIT STRING's bits), per hash algorithm, computed once each."""

    def __init__(self, issuer: x509.Certificate) -> None:
        self._name = issuer.subject.public_bytes()
        self._key = _public_key_bits(issuer.public_key())
        self._hashes: dict[str, tuple[bytes, bytes]] = {}

    def issued(self, cert_id: CertId) -> bool:
        """Whether ``cert_id`` names this issuer."""
        hashes = self._of(cert_id.hash_name)
        return hashes is not None and hashes == (cert_id.issuer_name_hash, cert_id.issuer_key_hash)

    def key_hash(self, hash_name: str = "sha1") -> bytes:
        """The issuer's key hash, as a pre-signed response's (SHA-1) CertID has it."""
        hashes = self._of(hash_name)
        assert hashes is not None, hash_name
        return hashes[1]

    def _of(self, hash_name: str) -> tuple[bytes, bytes] | None:
        hashes = self._hashes.get(hash_name)
        if hashes is None:
            if hash_name not in hashlib.algorithms_available:
                return None
            hashes = (
                hashlib.new(hash_name, self._name).digest(),
                hashlib.new(hash_name, self._key).digest(),
            )
            self._hashes[hash_name] = hashes
        return hashes


def _public_key_bits(key: object) -> bytes:
    """The bits of the subjectPublicKey BIT STRING (what issuerKeyHash hashes)."""
    encoding = serialization.Encoding
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(encoding.X962, serialization.PublicFormat.UncompressedPoint)
    # certdesk's CA keys are RSA or ECDSA (config.KEY_TYPES)
    raise TypeError(f"an issuer key of type {type(key).__name__}")
