"""Revocation artefacts: the CRL and pre-signed OCSP responses (RFC 5280, RFC 6960, RFC 5019).

A pure module: it turns revocation facts into signed DER bytes and never touches the file
system or the state store, so the daemon decides where and when the bytes are published
(``outbox/ca/issuing.crl``, ``outbox/ocsp/<serial-hex>.der``, see the contract, section 5).

All ASN.1 is written by ``cryptography``; this module only chooses the profile:

* CRL: v2, SHA-256 signature, AuthorityKeyIdentifier taken from the issuer's
  SubjectKeyIdentifier (so relying parties pick the right CA key even across a re-key),
  a CRLNumber, and a reasonCode per entry only when there is a reason
  (``Motivazione.ALTRO`` has none: RFC 5280 5.3.1 prefers omitting it to ``unspecified``).
* OCSP: one SingleResponse per response, CertID hashed with SHA-1 (RFC 5019 2.1.1: caches
  and CDNs key on the SHA-1 CertID, other hashes make the pre-signed file unusable),
  responderID by key hash (RFC 5019 2.2.3), signature with SHA-256, no nonce (a pre-signed
  response cannot echo one).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from .codes import refusal

__all__ = [
    "OcspJob",
    "OcspStatus",
    "RevokedEntry",
    "build_crl",
    "build_ocsp_response",
    "crl_to_pem",
    "ocsp_file_name",
    "revoked_certificate",
    "sign_crl",
    "sign_ocsp_job",
]

# RFC 5280 5.2.3: a CRLNumber is a non-negative integer of at most 20 octets; DER integers are
# signed, so 20 octets hold at most 159 value bits.
_MAX_CRL_NUMBER = (1 << 159) - 1

# One extension object per reason, built once: a CRL of a million entries would otherwise
# allocate a million identical CRLReason objects.
_CRL_REASON_EXTENSIONS: dict[x509.ReasonFlags, x509.CRLReason] = {
    flag: x509.CRLReason(flag) for flag in x509.ReasonFlags
}

# Reasons that must not appear on a full CRL: ``unspecified`` is what an absent reasonCode
# already means (RFC 5280 5.3.1 says to omit it), ``removeFromCRL`` only belongs in delta
# CRLs, which certdesk does not publish.
_FORBIDDEN_CRL_REASONS = frozenset({x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl})


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    """One revoked certificate as written in the CRL.

    ``slots`` because the daemon may hold a million of these at once while building a CRL.
    """

    serial: int
    revoked_at: datetime  # tz-aware; stored in the CRL as UTC
    reason: x509.ReasonFlags | None  # None => the reasonCode extension is omitted

    def __post_init__(self) -> None:
        # Fail where the entry is made, not deep inside a million-entry build.
        if isinstance(self.serial, bool) or not isinstance(self.serial, int):
            raise TypeError(f"serial must be an int, not {type(self.serial).__name__}")
        if self.serial <= 0 or self.serial.bit_length() > 159:
            raise ValueError(f"serial out of range (1 .. 2**159-1): {self.serial:#x}")
        _require_aware("revoked_at", self.revoked_at)
        if self.reason is not None and not isinstance(self.reason, x509.ReasonFlags):
            raise TypeError(f"reason must be an x509.ReasonFlags or None, not {self.reason!r}")
        if self.reason in _FORBIDDEN_CRL_REASONS:
            raise ValueError(
                f"reason {self.reason} is not allowed in a full CRL: use None to omit the reason"
            )


class OcspStatus(enum.Enum):
    """The two answers certdesk pre-signs; ``unknown`` is for serials it never issued."""

    GOOD = "good"
    REVOKED = "revoked"


def build_crl(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKeyTypes,
    entries: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """Build and sign a full CRL; return its DER.

    Entries are written in the order given (callers pass a deterministic order so that a
    republish without changes yields the same list). A serial may appear only once.
    Raises ``ValueError``/``TypeError`` on bad arguments and ``CaError`` when the issuer
    certificate and key do not belong together or the certificate has no key identifier.
    """
    return sign_crl(
        issuer_cert=issuer_cert,
        issuer_key=issuer_key,
        revoked=_revoked_certificates(entries),
        crl_number=crl_number,
        this_update=this_update,
        next_update=next_update,
    )


def sign_crl(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKeyTypes,
    revoked: list[x509.RevokedCertificate],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """``build_crl`` for entries already built (``revoked_certificate``), each serial once:
    a publisher that keeps them builds only the entries that are new."""
    signing_key = _signing_key(issuer_key)
    _require_key_matches(issuer_cert, signing_key, "issuer")
    if isinstance(crl_number, bool) or not isinstance(crl_number, int):
        raise TypeError("crl_number must be an int")
    if not 0 <= crl_number <= _MAX_CRL_NUMBER:
        raise ValueError(f"crl_number out of range (0 .. 2**159-1): {crl_number}")
    _require_window(this_update, next_update)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer_cert))

    # The whole list goes to the constructor: add_revoked_certificate() copies the list on
    # every call, which makes a large CRL quadratic. The chained setters below pass the list
    # on by reference, so it is never copied.
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=revoked)
        .issuer_name(issuer_cert.subject)
        .last_update(this_update.astimezone(UTC))
        .next_update(next_update.astimezone(UTC))
        .add_extension(aki, critical=False)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
    )
    crl = builder.sign(signing_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def crl_to_pem(der: bytes) -> bytes:
    """The PEM form of a DER CRL (``-----BEGIN X509 CRL-----``), for tools that want text.

    The DER is parsed first so that garbage never gets a PEM armour.
    """
    x509.load_der_x509_crl(der)  # raises ValueError on anything that is not a CRL
    body = base64.b64encode(der)
    # RFC 7468: base64 lines of exactly 64 characters.
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN X509 CRL-----\n" + b"\n".join(lines) + b"\n-----END X509 CRL-----\n"


def build_ocsp_response(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKeyTypes,
    cert: x509.Certificate,
    status: OcspStatus,
    revoked_at: datetime | None,
    reason: x509.ReasonFlags | None,
    this_update: datetime,
    next_update: datetime,
    responder_cert: x509.Certificate | None = None,
    responder_key: PrivateKeyTypes | None = None,
) -> bytes:
    """Build a signed, successful OCSP response for ``cert``; return its DER (OCSPResponse).

    Signed by the issuing CA, or by a delegated responder when ``responder_cert`` and
    ``responder_key`` are given: that certificate must be issued by ``issuer_cert`` and carry
    the OCSPSigning extended key usage (RFC 6960 4.2.2.2), and it is embedded in the
    response so that clients can check it. ``issuer_key`` is not used to sign then, but it
    must still match ``issuer_cert``: a mismatch means the CA files are inconsistent.
    """
    issuer_signing_key = _signing_key(issuer_key)
    _require_key_matches(issuer_cert, issuer_signing_key, "issuer")
    if cert.issuer != issuer_cert.subject:
        raise ValueError(
            f"certificate {cert.serial_number:x} was not issued by"
            f" {issuer_cert.subject.rfc4514_string()}"
        )
    _require_window(this_update, next_update)
    cert_status, revocation_time = _cert_status(status, revoked_at, reason)
    signer_cert, signer_key = _ocsp_signer(
        issuer_cert, issuer_signing_key, responder_cert, responder_key
    )
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer_cert,
            algorithm=hashes.SHA1(),  # RFC 5019: SHA-1 CertIDs, see above
            cert_status=cert_status,
            this_update=this_update.astimezone(UTC),
            next_update=next_update.astimezone(UTC),
            revocation_time=revocation_time,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    )
    if signer_cert is not issuer_cert:
        # A client trusts the issuing CA only; it needs the delegated certificate to verify.
        builder = builder.certificates([signer_cert])
    response = builder.sign(signer_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def ocsp_file_name(serial: int) -> str:
    """The file name of a pre-signed response: the serial in lower-case hex, then ``.der``."""
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise TypeError("serial must be an int")
    if serial <= 0:
        raise ValueError(f"serial must be positive: {serial}")
    return f"{serial:x}.der"


# --- private helpers -------------------------------------------------------------------


def revoked_certificate(entry: RevokedEntry) -> x509.RevokedCertificate:
    """One CRL entry as cryptography builds it (the reason omitted when it is None)."""
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(entry.revoked_at)
    )
    if entry.reason is not None:
        builder = builder.add_extension(_CRL_REASON_EXTENSIONS[entry.reason], critical=False)
    return builder.build()


def _revoked_certificates(entries: Iterable[RevokedEntry]) -> list[x509.RevokedCertificate]:
    """Turn entries into cryptography's RevokedCertificate objects, in one linear pass."""
    revoked: list[x509.RevokedCertificate] = []
    seen: set[int] = set()
    for entry in entries:
        if not isinstance(entry, RevokedEntry):
            raise TypeError(f"entries must be RevokedEntry objects, not {type(entry).__name__}")
        serial = entry.serial
        # Two entries with one serial make the CRL ambiguous (which date, which reason?).
        if serial in seen:
            raise ValueError(f"serial {serial:x} appears twice in the CRL entries")
        seen.add(serial)
        revoked.append(revoked_certificate(entry))
    return revoked


def _signing_key(
    key: PrivateKeyTypes,
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    # certdesk's CAs are RSA or ECDSA; other key types would need other signature choices.
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise TypeError(f"the signing key must be RSA or EC, not {type(key).__name__}")


def _public_der(key: object) -> bytes:
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise refusal("CA_NON_DISPONIBILE", "chiave_pubblica", tipo=type(key).__name__)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


_WHOSE = {"issuer": "della CA emittente", "responder": "del responder OCSP"}


def _require_key_matches(
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    what: Literal["issuer", "responder"],
) -> None:
    # A signature by the wrong key is well-formed but every relying party rejects it:
    # catch the mix-up here rather than after publishing.
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise refusal("CA_NON_DISPONIBILE", "coppia", di_chi=_WHOSE[what])


def _ski(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise refusal("CA_NON_DISPONIBILE", "ski") from None


def _cert_status(
    status: OcspStatus, revoked_at: datetime | None, reason: x509.ReasonFlags | None
) -> tuple[ocsp.OCSPCertStatus, datetime | None]:
    """The response's certStatus and revocationTime, once ``status`` agrees with the rest."""
    if not isinstance(status, OcspStatus):
        raise TypeError(f"status must be an OcspStatus, not {status!r}")
    if status is OcspStatus.REVOKED:
        if revoked_at is None:
            raise ValueError("a revoked status needs revoked_at")
        _require_aware("revoked_at", revoked_at)
        if reason in _FORBIDDEN_CRL_REASONS:
            raise ValueError(f"reason {reason} is not allowed: use None to omit the reason")
        return ocsp.OCSPCertStatus.REVOKED, revoked_at.astimezone(UTC)
    if revoked_at is not None or reason is not None:
        raise ValueError("a good status takes neither revoked_at nor reason")
    return ocsp.OCSPCertStatus.GOOD, None


def _ocsp_signer(
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    responder_cert: x509.Certificate | None,
    responder_key: PrivateKeyTypes | None,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]:
    """Who signs the response: the issuing CA, or the delegated responder when given."""
    if (responder_cert is None) != (responder_key is None):
        raise ValueError("responder_cert and responder_key go together")
    if responder_cert is None or responder_key is None:
        return issuer_cert, issuer_key
    signer_key = _signing_key(responder_key)
    _require_key_matches(responder_cert, signer_key, "responder")
    _require_delegated_responder(responder_cert, issuer_cert)
    return responder_cert, signer_key


def _require_delegated_responder(responder: x509.Certificate, issuer: x509.Certificate) -> None:
    # RFC 6960 4.2.2.2: clients accept a delegated signer only if the CA that issued the
    # certificate in question issued it directly, with id-kp-OCSPSigning.
    try:
        responder.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise refusal("CA_NON_DISPONIBILE", "responder_non_emesso") from exc
    try:
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        raise refusal("CA_NON_DISPONIBILE", "responder_senza_eku")


def _require_aware(name: str, value: datetime) -> None:
    # A naive datetime would be taken as UTC by cryptography: silently wrong for local times.
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


def _require_window(this_update: datetime, next_update: datetime) -> None:
    _require_aware("this_update", this_update)
    _require_aware("next_update", next_update)
    if next_update <= this_update:
        raise ValueError("next_update must be after this_update")


@dataclass(frozen=True)
class OcspJob:
    """One response to pre-sign, as plain data: it crosses to a signing process."""

    cert_der: bytes
    revoked_at: datetime | None  # None: the certificate is good
    reason: x509.ReasonFlags | None
    this_update: datetime
    next_update: datetime
    issuer: str = "gen1"  # the issuing CA that signed the certificate signs its response


def sign_ocsp_job(
    job: OcspJob, *, issuer_cert: x509.Certificate, issuer_key: PrivateKeyTypes
) -> bytes:
    """``build_ocsp_response`` for a job, signed by the issuing CA."""
    return build_ocsp_response(
        issuer_cert=issuer_cert,
        issuer_key=issuer_key,
        cert=x509.load_der_x509_certificate(job.cert_der),
        status=OcspStatus.GOOD if job.revoked_at is None else OcspStatus.REVOKED,
        revoked_at=job.revoked_at,
        reason=job.reason,
        this_update=job.this_update,
        next_update=job.next_update,
    )
