"""What the daemon published in ``outbox/``, read as it is at each request.

The daemon writes every file aside and renames it in, so a file opened here is always
whole: the old one or the new one. Nothing is kept that could outlive a new file:

- an OCSP response is opened and read at each request (a few microseconds: it is ~1 KiB),
  and parsed for its times (~3 µs);
- the CRL and the CA certificates are opened at each request too; what was read from
  them is reused only while the file opened is the same one: same device, inode, size
  and modification time, and the same last 64 bytes, which hold its signature (two
  different signed files never end alike). A CRL of a million entries (~40 MB) is then
  read once per publication, not once per request.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from ..outbox import Outbox
from .ocsp_wire import IssuerKeys

__all__ = [
    "CaCertificate",
    "Chain",
    "CrlFile",
    "PublishedFile",
    "Response",
    "read_response",
    "response_of",
]

T = TypeVar("T")

# A pre-signed response is ~1-3 KiB; anything past this is not one of ours.
_RESPONSE_MAX_BYTES = 64 * 1024
_TAIL_BYTES = 64


def etag_of(data: bytes) -> str:
    """A strong entity tag: a hash of the bytes served."""
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class Response:
    """A pre-signed OCSP response and what the HTTP headers say of it."""

    der: bytes
    serial: int
    status: str  # "good", "revoked" (or "unknown")
    this_update: datetime
    next_update: datetime
    revocation_reason: str  # "" unless revoked with a reason
    issuer_key_hash: bytes = b""  # the CertID's (SHA-1): which of our issuers signed it


def read_response(outbox: Outbox, serial: int) -> bytes | None:
    """The bytes of ``outbox/ocsp/<serial-hex>.der`` as they are now; None when there is
    none (not signed yet, or not ours). Another fault (a folder in its place, an I/O
    error) is raised."""
    if serial <= 0:
        return None  # never a file name (revocation.ocsp_file_name)
    try:
        fd = os.open(outbox.ocsp_response_fspath(serial), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _read_all(fd, _RESPONSE_MAX_BYTES)
    finally:
        os.close(fd)


def response_of(der: bytes) -> Response | None:
    """The facts of a pre-signed response; None when it is not a successful response for
    one certificate with a nextUpdate (then the file is not one the daemon wrote)."""
    try:
        parsed = ocsp.load_der_ocsp_response(der)
        if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        next_update = parsed.next_update_utc
        status = parsed.certificate_status
        reason = parsed.revocation_reason if status is ocsp.OCSPCertStatus.REVOKED else None
        if next_update is None:
            return None
        return Response(
            der=der,
            serial=parsed.serial_number,
            status=status.name.lower(),
            this_update=parsed.this_update_utc,
            next_update=next_update,
            revocation_reason=reason.name if reason is not None else "",
            issuer_key_hash=parsed.issuer_key_hash,
        )
    except (ValueError, NotImplementedError):  # damaged, or several responses in one
        return None


class PublishedFile(Generic[T]):
    """One file of ``outbox/ca/``, and what ``derive`` made of its bytes, made again
    whenever the file opened is another one (see the module's doc)."""

    def __init__(self, path: Path, derive: Callable[[bytes], T]) -> None:
        self.path = path
        self._derive = derive
        self._seen: tuple[tuple[object, ...], T] | None = None

    def read(self) -> T | None:
        """What the file holds now; None when it does not exist. A damaged file raises
        ``ValueError`` (from ``derive``), a fault of the disk ``OSError``."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            tail = os.pread(fd, _TAIL_BYTES, max(0, st.st_size - _TAIL_BYTES))
            identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, tail)
            seen = self._seen
            if seen is not None and seen[0] == identity:
                return seen[1]
            value = self._derive(_read_all(fd, st.st_size + 1))
        finally:
            os.close(fd)
        self._seen = (identity, value)
        return value


@dataclass(frozen=True, slots=True)
class CrlFile:
    der: bytes
    this_update: datetime
    next_update: datetime | None
    etag: str

    @classmethod
    def of(cls, der: bytes) -> CrlFile:
        crl = x509.load_der_x509_crl(der)
        return cls(der, crl.last_update_utc, crl.next_update_utc, etag_of(der))


@dataclass(frozen=True, slots=True)
class CaCertificate:
    """A CA certificate published as PEM, served as DER (what caIssuers asks for), and
    the hashes an OCSP request names it by."""

    der: bytes
    etag: str
    keys: IssuerKeys
    not_after: datetime

    @classmethod
    def of(cls, pem: bytes) -> CaCertificate:
        cert = x509.load_pem_x509_certificate(pem)
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(der, etag_of(der), IssuerKeys(cert), cert.not_valid_after_utc)


@dataclass(frozen=True, slots=True)
class Chain:
    """``chain.pem`` as it is (the issuing CA, then the root)."""

    pem: bytes
    etag: str

    @classmethod
    def of(cls, pem: bytes) -> Chain:
        return cls(pem, etag_of(pem))


def _read_all(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``fd`` from where it stands, to its end."""
    chunks = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
