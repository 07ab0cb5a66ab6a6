"""The certificate authority: the issuing CA loaded, and the leaf profile it signs.

Its key comes from the key provider ``[keys]`` names (``certdesk.keys``: encrypted files
in ``state/ca/``, or a token); the root's and issuing CA's own certificates are made by
``hierarchy``. Only this module and those two hold private keys; callers get
certificates and bytes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .codes import refusal
from .config import Config, public_urls
from .home import Home
from .keys import generate_key, issuer_folder, provider_for, signature_hash
from .keys.files import PASSPHRASE_ENV, resolve_passphrase
from .publication import FIRST_ISSUER

__all__ = [
    "PASSPHRASE_ENV",
    "CertificateAuthority",
    "IssuedCertificate",
    "ca_exists",
    "generate_key",
    "leaf_serial",
    "resolve_passphrase",
]

# A leaf's serial: 159 bits (positive, 20 octets in DER), a leading 1 (so every serial has
# 40 hex digits and their text sorts as their numbers), 46 bits of the time in milliseconds
# (until the year 4200), then 112 random bits (the CA/Browser Forum asks for 64 from a
# CSPRNG). The time in front makes new serials neighbours in the store's UNIQUE index, so a
# new certificate writes no random index page there: at a million certificates that is
# one page write less per request.
_SERIAL_RANDOM_BITS = 112
_SERIAL_TIME_BITS = 46


def leaf_serial(at: datetime | None = None) -> int:
    """A new serial for a leaf certificate: unpredictable, unique, ordered by time (now,
    or ``at``)."""
    nanos = time.time_ns() if at is None else int(at.timestamp() * 1e9)
    millis = nanos // 1_000_000 & ((1 << _SERIAL_TIME_BITS) - 1)
    return (
        1 << (_SERIAL_TIME_BITS + _SERIAL_RANDOM_BITS)
        | millis << _SERIAL_RANDOM_BITS
        | secrets.randbits(_SERIAL_RANDOM_BITS)
    )


# Leaves start a few minutes in the past so that a relying party whose clock lags a
# little does not see a "not yet valid" certificate.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCertificate:
    der: bytes
    pem: bytes
    serial: int
    not_before: datetime
    not_after: datetime
    sha256: str

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


def ca_exists(home: Home) -> bool:
    """Whether ``home`` holds a whole issuing CA (``issuing.pem`` is written last)."""
    return (home.ca_dir / "issuing.pem").exists()


def _refuse_missing(home: Home) -> None:
    if (home.ca_dir / "issuing.csr.pem").exists():
        raise refusal(
            "CA_NON_INIZIALIZZATA", "in_attesa", cartella=home.root,
            csr=home.ca_dir / "issuing.csr.pem",
        )  # fmt: skip
    if (home.ca_dir / "root.pem").exists():
        raise refusal("CA_NON_INIZIALIZZATA", "radice", cartella=home.root)
    raise refusal("CA_NON_INIZIALIZZATA", cartella=home.ca_dir)


def _check_key_pair(key: CertificateIssuerPrivateKeyTypes, issuing: x509.Certificate) -> None:
    """Sign a probe and verify it with the issuing certificate's public key: a damaged key
    (or one swapped for another) fails here, at start-up, not in a certificate."""
    probe = b"certdesk key probe " + secrets.token_bytes(16)
    public = issuing.public_key()
    try:
        if isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey):
            signature = key.sign(probe, padding.PKCS1v15(), hashes.SHA256())
            public.verify(signature, probe, padding.PKCS1v15(), hashes.SHA256())
            return
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
            public, ec.EllipticCurvePublicKey
        ):
            signature = key.sign(probe, ec.ECDSA(hashes.SHA256()))
            public.verify(signature, probe, ec.ECDSA(hashes.SHA256()))
            return
    except InvalidSignature:
        pass
    raise refusal("CHIAVE_CA_NON_VALIDA")


@dataclass(frozen=True)
class CertificateAuthority:
    """One loaded issuing CA: signs leaves, CRLs and OCSP responses. ``name`` says which
    (``gen1``, ``init``'s, then one per ``certdesk rollover``: ``issuers``)."""

    root_cert: x509.Certificate
    issuing_cert: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    config: Config
    # Whether a forked process may sign with ``issuing_key`` (a key in memory), or must
    # load its own (a key in a token: its session is this process's).
    inheritable: bool = True
    name: str = FIRST_ISSUER

    @classmethod
    def load(
        cls, home: Home, config: Config, secret: bytes, *, probe: bool = True, source: str = "",
        issuer: str = FIRST_ISSUER,
    ) -> CertificateAuthority:  # fmt: skip
        """The issuing CA ``issuer`` of ``home``, its key from the provider ``[keys]``
        names, opened with ``secret`` (the passphrase, or the token's PIN; ``source`` says
        where it came from, for messages). ``probe`` (one signature, checked) is skipped
        only by a signing process whose daemon probed already."""
        if not ca_exists(home):
            _refuse_missing(home)
        provider = provider_for(home, config, secret, source, issuer=issuer)
        key = provider.load("issuing")
        root = x509.load_pem_x509_certificate((home.ca_dir / "root.pem").read_bytes())
        path = issuer_folder(home, issuer) / "issuing.pem"
        issuing = x509.load_pem_x509_certificate(path.read_bytes())
        if probe:
            _check_key_pair(key, issuing)
        return cls(
            root_cert=root, issuing_cert=issuing, issuing_key=key, config=config,
            inheritable=provider.inheritable, name=issuer,
        )  # fmt: skip

    @property
    def not_after(self) -> datetime:
        return self.issuing_cert.not_valid_after_utc

    def chain_pem(self) -> bytes:
        return self.issuing_pem() + self.root_pem()

    def root_pem(self) -> bytes:
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    def issuing_pem(self) -> bytes:
        return self.issuing_cert.public_bytes(serialization.Encoding.PEM)

    def leaf_not_after(self, now: datetime) -> datetime:
        """The end of validity of a leaf issued at ``now`` (never past the issuing CA's)."""
        return min(
            now + timedelta(days=self.config.certificates.validity_days),
            self.issuing_cert.not_valid_after_utc,
        )

    def issue(
        self, codice_fiscale: str, spki_der: bytes, now: datetime, serial: int | None = None
    ) -> IssuedCertificate:
        """Sign a leaf for ``codice_fiscale``. Only the public key comes from the request:
        the subject and every extension are the CA's profile. ``serial`` is the one the
        store reserved for it before signing (a fresh random one when not given)."""
        public_key: CertificatePublicKeyTypes = serialization.load_der_public_key(spki_der)  # type: ignore[assignment]
        builder = self._leaf_builder(codice_fiscale, public_key, now, serial)
        return _issued(builder.sign(self.issuing_key, signature_hash(self.issuing_key)))

    def _leaf_builder(
        self,
        codice_fiscale: str,
        public_key: CertificatePublicKeyTypes,
        now: datetime,
        serial: int | None,
    ) -> x509.CertificateBuilder:
        """The leaf profile, extensions in the order they are written: a TLS client
        certificate whose status is in the issuing CA's CRL and OCSP responder, at the
        URLs of ``[publish] public_url`` (``config.public_urls``)."""
        issuer_ski = self.issuing_cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
        return (
            x509.CertificateBuilder()
            .subject_name(_leaf_name(codice_fiscale))
            .issuer_name(self.issuing_cert.subject)
            .public_key(public_key)
            .serial_number(serial if serial is not None else leaf_serial())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(self.leaf_not_after(now))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(aki, critical=False)
            .add_extension(self._crl_points, critical=False)
            .add_extension(self._authority_access, critical=False)
        )

    @cached_property
    def _crl_points(self) -> x509.CRLDistributionPoints:
        # Each issuer's own CRL (per-issuer paths: a rollover never moves the first's).
        uri = x509.UniformResourceIdentifier(public_urls(self.config).issuer(self.name).crl)
        return x509.CRLDistributionPoints([x509.DistributionPoint([uri], None, None, None)])

    @cached_property
    def _authority_access(self) -> x509.AuthorityInformationAccess:
        """AIA: where to ask OCSP, and where to fetch the issuing CA's certificate (a
        validator that holds only the root builds the path from it)."""
        urls = public_urls(self.config)
        aia = x509.oid.AuthorityInformationAccessOID
        return x509.AuthorityInformationAccess([
            x509.AccessDescription(aia.OCSP, x509.UniformResourceIdentifier(urls.ocsp)),
            x509.AccessDescription(
                aia.CA_ISSUERS, x509.UniformResourceIdentifier(urls.issuer(self.name).ca_issuers)
            ),
        ])  # fmt: skip


def _leaf_name(codice_fiscale: str) -> x509.Name:
    country = x509.NameAttribute(NameOID.COUNTRY_NAME, "IT")
    return x509.Name([country, x509.NameAttribute(NameOID.COMMON_NAME, codice_fiscale)])


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,  # TLS client authentication signs a handshake
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _issued(cert: x509.Certificate) -> IssuedCertificate:
    der = cert.public_bytes(serialization.Encoding.DER)
    return IssuedCertificate(
        der=der,
        pem=cert.public_bytes(serialization.Encoding.PEM),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
    )
