"""The CA's own certificates: the self-signed root, and the issuing CA the root signs.

``create_ca`` makes both in one home (``certdesk init``). The offline-root ceremony
(docs/hsm.md) makes them in two homes, the root's key never on the daemon's machine:

1. issuing home: ``request_issuing`` makes the issuing key and a CSR
   (``state/ca/issuing.csr.pem``), carried to the root by hand;
2. root home (``create_root``, once): ``sign_issuing`` signs it with the CA profile and
   returns the issuing certificate followed by the root's, carried back;
3. issuing home: ``import_issuing`` checks them against its key and installs them.

The profile is the same either way: the root's subject and validity come from the
root's home, the issuing CA's subject from its CSR (its home's ``[ca]`` settings).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

from .authority import BACKDATE
from .clock import now_utc
from .codes import refusal
from .config import CaSettings, Config
from .home import Home
from .keys import KeyProvider, Role, signature_hash

__all__ = [
    "check_rolled",
    "create_ca",
    "create_root",
    "import_issuing",
    "issuing_subject",
    "request_issuing",
    "roll_issuing",
    "rolled_request",
    "sign_issuing",
]

_PEM = serialization.Encoding.PEM


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


def _key(
    provider: KeyProvider, role: Role, kind: str, adopt: bool
) -> CertificateIssuerPrivateKeyTypes:
    return provider.adopt(role) if adopt else provider.create(role, kind)


def _refuse_existing(home: Home) -> None:
    if any((home.ca_dir / n).exists() for n in ("root.pem", "issuing.pem", "issuing.csr.pem")):
        raise refusal("CA_ESISTENTE", cartella=home.ca_dir)


def _root_certificate(
    settings: CaSettings, key: CertificateIssuerPrivateKeyTypes, now: datetime
) -> x509.Certificate:
    name = _name(settings.root_common_name, settings.organization)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=settings.root_validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, signature_hash(key))
    )


def _issuing_certificate(
    settings: CaSettings,
    root: x509.Certificate,
    root_key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
) -> x509.Certificate:
    now = now_utc()
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    not_after = min(now + timedelta(days=settings.issuing_validity_days), root.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        # path length 0: the issuing CA signs end-entity certificates only.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, signature_hash(root_key))
    )


def _write(home: Home, name: str, cert: x509.Certificate) -> None:
    (home.ca_dir / name).write_bytes(cert.public_bytes(_PEM))


def create_ca(home: Home, config: Config, provider: KeyProvider, *, adopt: bool = False) -> None:
    """The root and the issuing CA in ``state/ca/`` (keys with ``provider``: made, or with
    ``adopt`` the token's own); refuses when a CA (or half of one) exists."""
    home.ensure()
    _refuse_existing(home)
    settings = config.ca
    root_key = _key(provider, "root", settings.root_key, adopt)
    root = _root_certificate(settings, root_key, now_utc())
    issuing_key = _key(provider, "issuing", settings.issuing_key, adopt)
    subject = _name(settings.issuing_common_name, settings.organization)
    issuing = _issuing_certificate(settings, root, root_key, subject, issuing_key.public_key())
    _write(home, "root.pem", root)
    _write(home, "issuing.pem", issuing)  # last: its presence says the CA is whole


def create_root(
    home: Home, config: Config, provider: KeyProvider, *, adopt: bool = False
) -> x509.Certificate:
    """The root alone (``init --root-only``): its key and ``state/ca/root.pem``."""
    home.ensure()
    _refuse_existing(home)
    key = _key(provider, "root", config.ca.root_key, adopt)
    root = _root_certificate(config.ca, key, now_utc())
    _write(home, "root.pem", root)
    return root


def request_issuing(
    home: Home, config: Config, provider: KeyProvider, *, adopt: bool = False
) -> bytes:
    """The issuing key and its CSR (``init --issuing-only``), written to
    ``state/ca/issuing.csr.pem``; returns the CSR (PEM)."""
    home.ensure()
    _refuse_existing(home)
    settings = config.ca
    key = _key(provider, "issuing", settings.issuing_key, adopt)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(settings.issuing_common_name, settings.organization))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, signature_hash(key))
    )
    pem = csr.public_bytes(_PEM)
    (home.ca_dir / "issuing.csr.pem").write_bytes(pem)
    return pem


def _load_csr(data: bytes, file: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(data)
        valid = csr.is_signature_valid
        public_key = csr.public_key()
    except ValueError as exc:
        raise refusal("CERIMONIA_NON_VALIDA", "csr", file=file, motivo=exc) from None
    if not valid:
        raise refusal("CERIMONIA_NON_VALIDA", "csr", file=file, motivo="la firma non è valida")
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        reason = f"chiave di tipo {type(public_key).__name__}, non RSA o EC"
        raise refusal("CERIMONIA_NON_VALIDA", "csr", file=file, motivo=reason)
    if not csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise refusal("CERIMONIA_NON_VALIDA", "csr", file=file, motivo="manca il Common Name")
    return csr


def sign_issuing(
    home: Home, config: Config, provider: KeyProvider, data: bytes, file: str
) -> bytes:
    """At the root (``certdesk sign-issuing``): the issuing CA's certificate for the CSR
    ``data`` (read from ``file``), then the root's, as one PEM file to carry back. Only the
    CSR's subject and public key are taken; the extensions are the CA profile's."""
    root_path = home.ca_dir / "root.pem"
    if not root_path.exists():
        raise refusal("CERIMONIA_NON_VALIDA", "non_radice", cartella=home.root)
    csr = _load_csr(data, file)
    root = x509.load_pem_x509_certificate(root_path.read_bytes())
    root_key = provider.load("root")
    public_key = csr.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    issuing = _issuing_certificate(config.ca, root, root_key, csr.subject, public_key)
    return issuing.public_bytes(_PEM) + root.public_bytes(_PEM)


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_chain(issuing: x509.Certificate, root: x509.Certificate, file: str) -> None:
    try:
        root.verify_directly_issued_by(root)
        issuing.verify_directly_issued_by(root)
        basic = [c.extensions.get_extension_for_class(x509.BasicConstraints).value
                 for c in (issuing, root)]  # fmt: skip
    except (ValueError, TypeError, x509.ExtensionNotFound) as exc:
        why = f"la catena non si verifica ({exc or type(exc).__name__})"
        raise refusal("CERIMONIA_NON_VALIDA", "certificato", file=file, motivo=why) from None
    if not all(b.ca for b in basic):
        why = "uno dei due certificati non è di una CA"
        raise refusal("CERIMONIA_NON_VALIDA", "certificato", file=file, motivo=why)


def _signed_pair(data: bytes, file: str) -> tuple[x509.Certificate, x509.Certificate]:
    """What ``sign-issuing`` writes: the issuing certificate, then the root that signed
    it (PEM), checked as a chain; CERIMONIA_NON_VALIDA otherwise."""
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise refusal("CERIMONIA_NON_VALIDA", "certificato", file=file, motivo=exc) from None
    if len(certificates) != 2:
        why = f"{len(certificates)} certificati invece di 2"
        raise refusal("CERIMONIA_NON_VALIDA", "certificato", file=file, motivo=why)
    issuing, root = certificates
    _check_chain(issuing, root, file)
    return issuing, root


def import_issuing(home: Home, provider: KeyProvider, data: bytes, file: str) -> None:
    """In the issuing home (``init --import-issuing FILE``): install the certificates
    ``sign-issuing`` made, once they prove to be for this home's key, under a root."""
    if (home.ca_dir / "issuing.pem").exists():
        raise refusal("CA_ESISTENTE", cartella=home.ca_dir)
    if not (home.ca_dir / "issuing.csr.pem").exists():
        raise refusal("CERIMONIA_NON_VALIDA", "nessuna_attesa", cartella=home.root)
    issuing, root = _signed_pair(data, file)
    if _spki(issuing.public_key()) != _spki(provider.load("issuing").public_key()):
        raise refusal("CERIMONIA_NON_VALIDA", "non_corrisponde", file=file)
    _write(home, "root.pem", root)
    _write(home, "issuing.pem", issuing)


# -- issuing CA rollover (certdesk rollover): a new issuing CA under the same root -------
def issuing_subject(settings: CaSettings, generation: int) -> x509.Name:
    """The issuing CA's subject: ``[ca]``'s name for the first; a later one's adds its
    generation ("... G2"), so two issuers under one root never share a name (a CRL and an
    OCSP request name their issuer by it)."""
    common_name = settings.issuing_common_name
    if generation > 1:
        common_name = f"{common_name} G{generation}"
    return _name(common_name, settings.organization)


def roll_issuing(
    home: Home, config: Config, root_provider: KeyProvider,
    key: CertificateIssuerPrivateKeyTypes, generation: int,
) -> x509.Certificate:  # fmt: skip
    """With the root's key in this home: the certificate of a new issuing CA for ``key``,
    never past the root's end."""
    root = x509.load_pem_x509_certificate((home.ca_dir / "root.pem").read_bytes())
    issuing = _issuing_certificate(
        config.ca, root, root_provider.load("root"), issuing_subject(config.ca, generation),
        key.public_key(),
    )  # fmt: skip
    return issuing


def rolled_request(config: Config, key: CertificateIssuerPrivateKeyTypes, generation: int) -> bytes:
    """The CSR of a new issuing CA, for a root kept offline (``rollover --request``)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(issuing_subject(config.ca, generation))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, signature_hash(key))
    )
    return csr.public_bytes(_PEM)


def check_rolled(
    home: Home, key: CertificateIssuerPrivateKeyTypes, data: bytes, file: str
) -> x509.Certificate:
    """What ``sign-issuing`` made for a rollover's request: the new issuing certificate,
    for ``key``, signed by this home's own root (the same root: older certificates'
    chains stay valid)."""
    issuing, root = _signed_pair(data, file)
    ours = x509.load_pem_x509_certificate((home.ca_dir / "root.pem").read_bytes())
    if root != ours:
        digest = ours.fingerprint(hashes.SHA256()).hex()
        raise refusal("ROLLOVER_NON_VALIDO", "radice_diversa", file=file, impronta=digest)
    if _spki(issuing.public_key()) != _spki(key.public_key()):
        raise refusal("CERIMONIA_NON_VALIDA", "non_corrisponde", file=file)
    return issuing
