"""The certificate authority: a self-signed root, an issuing CA, and the leaf profile.

The root and issuing keys live in ``state/ca/`` as PKCS#8 PEM encrypted with the
passphrase, mode 0600; certdesk refuses to load a key file that group or others can
read. Only this module touches private keys; callers get certificates and bytes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .clock import now_utc
from .codes import refusal
from .config import Config, public_urls
from .home import Home

__all__ = [
    "CertificateAuthority",
    "IssuedCertificate",
    "create_ca",
    "generate_key",
    "leaf_serial",
    "resolve_passphrase",
]

PASSPHRASE_ENV = "CERTDESK_CA_PASSPHRASE"

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


KEY_FILE_MODE = 0o600
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


def generate_key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key type {kind!r}")


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the first byte (never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def resolve_passphrase(
    home: Home, passphrase_file: Path | None = None, *, generate: bool = False
) -> tuple[bytes, str]:
    """The CA passphrase and where it came from.

    Order: ``--passphrase-file``, then ``CERTDESK_CA_PASSPHRASE``, then ``state/passphrase``.
    With ``generate`` (``init`` only) and none of them, a random passphrase is written to
    ``state/passphrase`` with mode 0600.
    """
    if passphrase_file is not None:
        try:
            value = passphrase_file.read_bytes().strip()
        except OSError as exc:
            raise refusal(
                "CA_NON_DISPONIBILE",
                "passphrase_illeggibile",
                file=passphrase_file,
                errore=exc.strerror or exc,
            ) from None
        if not value:
            raise refusal("CA_NON_DISPONIBILE", "passphrase_vuota", file=passphrase_file)
        return value, str(passphrase_file)
    env = os.environ.get(PASSPHRASE_ENV, "")
    if env:
        return env.encode("utf-8"), PASSPHRASE_ENV
    stored = home.passphrase_file
    if stored.exists():
        _check_private_mode(stored)
        return stored.read_bytes().strip(), str(stored)
    if generate:
        value = secrets.token_urlsafe(32).encode("ascii")
        _write_private(stored, value + b"\n")
        return value, str(stored)
    raise refusal("PASSPHRASE_MANCANTE", variabile=PASSPHRASE_ENV, file=stored)


def _check_private_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise refusal("PERMESSI_CHIAVE_NON_SICURI", file=path, permessi=mode)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,  # lets the issuing CA sign OCSP responses itself
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,  # signs certificates
        crl_sign=True,  # signs CRLs
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(home: Home, config: Config, passphrase: bytes) -> None:
    """Create the root and issuing CA in ``state/ca/``; refuse when a CA already exists."""
    home.ensure()
    paths = [home.ca_dir / n for n in ("root.key.pem", "issuing.key.pem", "issuing.pem")]
    if any(p.exists() for p in paths):
        raise refusal("CA_ESISTENTE", cartella=home.ca_dir)
    settings = config.ca
    now = now_utc()
    root_key = generate_key(settings.root_key)
    root_name = _name(settings.root_common_name, settings.organization)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=settings.root_validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, _hash_for(root_key))
    )
    issuing_key = generate_key(settings.issuing_key)
    issuing_not_after = min(
        now + timedelta(days=settings.issuing_validity_days), root.not_valid_after_utc
    )
    issuing = (
        x509.CertificateBuilder()
        .subject_name(_name(settings.issuing_common_name, settings.organization))
        .issuer_name(root_name)
        .public_key(issuing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(issuing_not_after)
        # path length 0: the issuing CA signs end-entity certificates only.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(issuing_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, _hash_for(root_key))
    )
    encryption = serialization.BestAvailableEncryption(passphrase)
    for file_name, key in (("root.key.pem", root_key), ("issuing.key.pem", issuing_key)):
        _write_private(
            home.ca_dir / file_name,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            ),
        )
    for file_name, cert in (("root.pem", root), ("issuing.pem", issuing)):
        (home.ca_dir / file_name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ca_exists(home: Home) -> bool:
    return (home.ca_dir / "issuing.key.pem").exists()


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
    """The loaded issuing CA: signs leaves, CRLs and OCSP responses."""

    root_cert: x509.Certificate
    issuing_cert: x509.Certificate
    issuing_key: CertificateIssuerPrivateKeyTypes
    config: Config

    @classmethod
    def load(cls, home: Home, config: Config, passphrase: bytes) -> CertificateAuthority:
        if not ca_exists(home):
            raise refusal("CA_NON_INIZIALIZZATA", cartella=home.ca_dir)
        key_path = home.ca_dir / "issuing.key.pem"
        _check_private_mode(key_path)
        try:
            # OpenSSL's full RSA key check (primality of p and q) costs ~0.15 s of CPU on
            # the path to the first certificate. This key is the CA's own, written by
            # ``init`` into a 0600 file; ``_check_key_pair`` below proves with one probe
            # signature that it is intact and belongs to the issuing certificate.
            key = serialization.load_pem_private_key(
                key_path.read_bytes(), password=passphrase, unsafe_skip_rsa_key_validation=True
            )
        except (ValueError, TypeError):
            raise refusal("PASSPHRASE_ERRATA", variabile=PASSPHRASE_ENV) from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise refusal("CA_NON_DISPONIBILE", "tipo_chiave", tipo=type(key).__name__)
        root = x509.load_pem_x509_certificate((home.ca_dir / "root.pem").read_bytes())
        issuing = x509.load_pem_x509_certificate((home.ca_dir / "issuing.pem").read_bytes())
        _check_key_pair(key, issuing)
        return cls(root_cert=root, issuing_cert=issuing, issuing_key=key, config=config)

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
        return _issued(builder.sign(self.issuing_key, _hash_for(self.issuing_key)))

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
        uri = x509.UniformResourceIdentifier(public_urls(self.config).crl)
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
                aia.CA_ISSUERS, x509.UniformResourceIdentifier(urls.ca_issuers)
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
