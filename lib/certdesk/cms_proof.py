"""Open and verify a signed annullamento: a CMS (RFC 5652) SignedData, content attached (.p7m).

Made by ``openssl cms -sign -nodetach -binary -outform DER`` or an Italian signing tool.
``open_signed`` reads the bytes and checks everything that needs no certificate (one
signer, attached id-data content, accepted algorithms, the messageDigest attribute);
``verify_with`` checks the signature with the certificate the caller found in its own
store from ``SignedMessage.signer``; the content is not to be trusted before that.

Why these libraries: ``cryptography`` has no API to verify PKCS#7/CMS, so the structure is
read with ``asn1crypto`` (the parser pyHanko and certvalidator build on), not by hand.

Choices:
- BER is accepted as asn1crypto reads it: indefinite lengths, nested at most 10 deep,
  and OCTET STRINGs in chunks within them (as ``openssl cms -stream`` and streaming
  signers write; chunks under a definite length are "non_der"). ``-outform DER`` without
  ``-stream`` is plain DER. What is signed does not depend on that encoding: the content
  octets, or the signed attributes, verified as received (their content octets under a
  SET tag, RFC 5652 §5.4), as OpenSSL does.
- No signed attributes (``-noattr``) is accepted: the signature is then over the content
  itself, so a changed content is refused by ``verify_with`` ("firma"), not "impronta".
- RSA-PSS takes its parameters from the SignerInfo; their hash must be the digest
  algorithm, MGF1 with SHA-2, trailer field 1.
- A "certs-only" SignedData (no signer, no content: ``openssl crl2pkcs7``) is
  "non_firmato"; a signer without content is "staccato".
- DER/BER bytes, or their base64, bare or PEM (``cms_text``); more than ``MAX_CMS_BYTES``
  of DER is "non_der": asn1crypto's parser takes time quadratic in the length of a single
  tag number or OID arc (about 0.8 s at 64 KiB, 3 s at 128 KiB).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from asn1crypto import cms, core  # type: ignore[import-untyped]  # no stubs, no py.typed
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .cms_text import unarmored

__all__ = ["MAX_CMS_BYTES", "CmsRefused", "SignedMessage", "SignerId", "looks_like_cms",
           "open_signed"]  # fmt: skip

MAX_CMS_BYTES = 64 * 1024

SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_DATA = "1.2.840.113549.1.7.1"
CONTENT_TYPE_ATTR = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST_ATTR = "1.2.840.113549.1.9.4"
RSA_PSS = "1.2.840.113549.1.1.10"
MGF1 = "1.2.840.113549.1.1.8"
_SIGNED_DATA_OID_DER = bytes.fromhex("06092a864886f70d010702")  # the DER of SIGNED_DATA

DigestName = Literal["sha256", "sha384", "sha512"]
_DIGESTS: dict[str, DigestName] = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_HASHES: dict[DigestName, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}  # fmt: skip
# signatureAlgorithm -> the digest it is bound to (None: the SignerInfo's digestAlgorithm)
_PKCS1: dict[str, DigestName | None] = {
    "1.2.840.113549.1.1.1": None,  # rsaEncryption
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
_ECDSA: dict[str, DigestName] = {
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}
# AlgorithmIdentifier parameters of SHA-2, PKCS#1 v1.5 and ECDSA: absent or NULL.
_NO_PARAMETERS = (b"", b"\x05\x00")
_MAX_SALT = 1024  # a PSS salt is shorter than the key; a larger one is a broken file


class CmsRefused(Exception):
    """The .p7m is refused; ``case`` is a stable short key, ``facts`` fill the message."""

    def __init__(self, case: str, **facts: object) -> None:
        super().__init__(f"{case}: {facts}" if facts else case)
        self.case = case
        self.facts: dict[str, object] = facts


@dataclass(frozen=True)
class SignerId:
    """How the SignerInfo names its certificate: issuer and serial, or a key identifier."""

    issuer_der: bytes | None
    serial: int | None
    key_identifier: bytes | None

    def matches(self, certificate: x509.Certificate) -> bool:
        if self.key_identifier is not None:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                return False
            return ski.value.digest == self.key_identifier
        if self.issuer_der is None or self.serial != certificate.serial_number:
            return False
        return _same_name(self.issuer_der, certificate.issuer.public_bytes())


def _same_name(signed: bytes, issuer: bytes) -> bool:
    """Equal bytes, else RFC 5280 §7.1 name matching (asn1crypto's, as OpenSSL compares
    canonical forms): a tool may re-encode the issuer's strings."""
    if signed == issuer:
        return True
    try:
        return bool(asn1_x509.Name.load(signed) == asn1_x509.Name.load(issuer))
    except (ValueError, TypeError):  # a Name that asn1crypto cannot normalise
        return False


@dataclass(frozen=True)
class _Verification:
    """What ``verify_with`` needs, settled by ``open_signed``."""

    family: Literal["pkcs1", "pss", "ecdsa"]
    digest: DigestName
    signed_bytes: bytes  # the DER of the signed attributes (SET tag), else the content
    signature: bytes
    mgf_digest: DigestName | None = None
    salt_length: int = 0


@dataclass(frozen=True)
class SignedMessage:
    """An opened .p7m: ``content`` is not to be trusted before ``verify_with`` returns."""

    content: bytes
    signer: SignerId
    certificates: tuple[x509.Certificate, ...]
    _verification: _Verification = field(repr=False)

    def verify_with(self, certificate: x509.Certificate) -> None:
        """Raise CmsRefused ("firmatario", "firma") unless ``certificate`` is the one the
        SignerInfo names and its public key verifies the signature. Validity, key usage
        and revocation of the certificate are the caller's."""
        if not self.signer.matches(certificate):
            raise CmsRefused("firmatario", seriale=certificate.serial_number)
        _verify(self._verification, certificate)


def _verify(check: _Verification, certificate: x509.Certificate) -> None:
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CmsRefused("firma", motivo="chiave_illeggibile") from None
    digest = _HASHES[check.digest]()
    try:
        if check.family == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(check.signature, check.signed_bytes, ec.ECDSA(digest))
        elif check.family != "ecdsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(check.signature, check.signed_bytes, _rsa_padding(check), digest)
        else:
            raise CmsRefused("firma", motivo="tipo_chiave", algoritmo=check.family)
    except (InvalidSignature, ValueError):  # ValueError: e.g. a salt too long for the key
        raise CmsRefused("firma", motivo="non_verificata") from None


def _rsa_padding(check: _Verification) -> padding.AsymmetricPadding:
    if check.family == "pkcs1":
        return padding.PKCS1v15()
    mgf = _HASHES[check.mgf_digest or check.digest]()
    return padding.PSS(mgf=padding.MGF1(mgf), salt_length=check.salt_length)


def looks_like_cms(data: bytes) -> bool:
    """A cheap sniff, to tell a .p7m from a JSON: a SEQUENCE (any length form) whose first
    element is the OID of signedData. ``open_signed`` decides the rest."""
    data = unarmored(data)
    if len(data) < 2 or data[0] != 0x30:
        return False
    length = data[1]
    header = 2 + (length & 0x7F if length > 0x80 else 0)
    return data[header : header + len(_SIGNED_DATA_OID_DER)] == _SIGNED_DATA_OID_DER


# -- reading (asn1crypto objects -> plain values), then the rules over the plain values --


@dataclass(frozen=True)
class _Attributes:
    der: bytes  # what the signature covers: the attributes under a SET tag
    content_types: tuple[tuple[str, ...], ...]  # the values of each content-type attribute
    digests: tuple[tuple[bytes, ...], ...]  # the values of each messageDigest attribute


@dataclass(frozen=True)
class _Pss:
    digest: str
    digest_parameters: bytes
    mgf: str
    mgf_digest: str | None
    salt_length: int
    trailer_field: int


@dataclass(frozen=True)
class _Signer:
    sid: SignerId
    digest: str
    digest_parameters: bytes
    algorithm: str
    algorithm_parameters: bytes
    pss: _Pss | None
    attributes: _Attributes | None
    signature: bytes


@dataclass(frozen=True)
class _Envelope:
    signers: int
    content_type: str
    content: bytes | None
    certificates: tuple[x509.Certificate, ...]
    signer: _Signer | None  # read when there is exactly one


@contextmanager
def _reading() -> Iterator[None]:
    """asn1crypto parses lazily: a broken file fails at whichever access meets it, with
    ValueError, TypeError, KeyError, IndexError... (cryptography on a broken certificate
    with ValueError). Any of them is "non_der", never another error."""
    try:
        yield
    except CmsRefused:
        raise
    except Exception as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise CmsRefused("non_der", motivo=type(exc).__name__, dettaglio=detail) from None


def _read(data: bytes) -> _Envelope:
    info = cms.ContentInfo.load(data, strict=True)  # strict: no trailing bytes
    if info["content_type"].dotted != SIGNED_DATA:
        raise CmsRefused("non_firmato", tipo=info["content_type"].dotted)
    signed_data = info["content"]
    encapsulated = signed_data["encap_content_info"]
    econtent = encapsulated["content"]
    signer_infos = signed_data["signer_infos"]
    return _Envelope(
        signers=len(signer_infos),
        content_type=encapsulated["content_type"].dotted,
        content=None if isinstance(econtent, core.Void) else bytes(econtent),
        certificates=_read_certificates(signed_data["certificates"]),
        signer=_read_signer(signer_infos[0]) if len(signer_infos) == 1 else None,
    )


def _read_certificates(certificates: core.Asn1Value) -> tuple[x509.Certificate, ...]:
    if isinstance(certificates, core.Void):
        return ()
    # Attribute and "other" certificates (CertificateChoices) say nothing about the signer.
    return tuple(
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in certificates
        if choice.name == "certificate"
    )


def _read_signer(signer_info: cms.SignerInfo) -> _Signer:
    sid = signer_info["sid"].chosen
    if signer_info["sid"].name == "subject_key_identifier":
        signer_id = SignerId(None, None, bytes(sid.native))
    else:  # issuer_and_serial_number
        signer_id = SignerId(sid["issuer"].dump(), int(sid["serial_number"]), None)
    algorithm = signer_info["signature_algorithm"]
    oid = algorithm["algorithm"].dotted
    return _Signer(
        sid=signer_id,
        digest=signer_info["digest_algorithm"]["algorithm"].dotted,
        digest_parameters=signer_info["digest_algorithm"]["parameters"].dump(),
        algorithm=oid,
        algorithm_parameters=algorithm["parameters"].dump(),
        pss=_read_pss(algorithm["parameters"]) if oid == RSA_PSS else None,
        attributes=_read_attributes(signer_info["signed_attrs"]),
        signature=bytes(signer_info["signature"].native),
    )


def _read_pss(parameters: core.Asn1Value) -> _Pss | None:
    if isinstance(parameters, core.Void):  # RFC 4056: the parameters must be present
        return None
    mask = parameters["mask_gen_algorithm"]
    mgf = mask["algorithm"].dotted
    return _Pss(
        digest=parameters["hash_algorithm"]["algorithm"].dotted,
        digest_parameters=parameters["hash_algorithm"]["parameters"].dump(),
        mgf=mgf,
        mgf_digest=mask["parameters"]["algorithm"].dotted if mgf == MGF1 else None,
        salt_length=int(parameters["salt_length"]),
        trailer_field=int(parameters["trailer_field"]),
    )


def _read_attributes(signed_attrs: core.Asn1Value) -> _Attributes | None:
    if isinstance(signed_attrs, core.Void):
        return None
    content_types: list[tuple[str, ...]] = []
    digests: list[tuple[bytes, ...]] = []
    for attribute in signed_attrs:
        kind = attribute["type"].dotted
        if kind == CONTENT_TYPE_ATTR:
            content_types.append(tuple(value.dotted for value in attribute["values"]))
        elif kind == MESSAGE_DIGEST_ATTR:
            digests.append(tuple(bytes(value.native) for value in attribute["values"]))
    # untag(): the same content octets under the universal SET OF tag (0x31), not [0]
    # IMPLICIT, and not re-sorted (asn1crypto re-encodes only what was changed).
    return _Attributes(signed_attrs.untag().dump(), tuple(content_types), tuple(digests))


def open_signed(data: bytes) -> SignedMessage:
    """Open a .p7m. Raises CmsRefused and nothing else, whatever the bytes."""
    data = unarmored(data)
    if len(data) > MAX_CMS_BYTES:
        raise CmsRefused("non_der", motivo="dimensione", byte=len(data), limite=MAX_CMS_BYTES)
    with _reading():
        envelope = _read(data)
    if envelope.signers == 0 and envelope.content is None:  # degenerate: certificates only
        raise CmsRefused("non_firmato", motivo="solo_certificati")
    if envelope.signer is None:
        raise CmsRefused("firmatari", firmatari=envelope.signers)
    if envelope.content is None:
        raise CmsRefused("staccato")
    if envelope.content_type != ID_DATA:
        raise CmsRefused("contenuto", tipo=envelope.content_type)
    signer = envelope.signer
    family, digest = _algorithm(signer)
    pss = _pss_settings(signer, digest) if family == "pss" else (None, 0)
    signed_bytes = _signed_bytes(signer.attributes, envelope.content, digest)
    check = _Verification(family, digest, signed_bytes, signer.signature, *pss)
    return SignedMessage(envelope.content, signer.sid, envelope.certificates, check)


def _algorithm(signer: _Signer) -> tuple[Literal["pkcs1", "pss", "ecdsa"], DigestName]:
    """The signature family and the digest; MD5, SHA-1 and anything else are refused."""
    digest = _DIGESTS.get(signer.digest)
    if digest is None or signer.digest_parameters not in _NO_PARAMETERS:
        raise CmsRefused("algoritmo", digest=signer.digest)
    if signer.algorithm == RSA_PSS:
        return "pss", digest
    family: Literal["pkcs1", "ecdsa"]
    if signer.algorithm in _PKCS1:
        family, bound = "pkcs1", _PKCS1[signer.algorithm]
    elif signer.algorithm in _ECDSA:
        family, bound = "ecdsa", _ECDSA[signer.algorithm]
    else:
        raise CmsRefused("algoritmo", firma=signer.algorithm)
    # sha384WithRSAEncryption over a SHA-256 digest says two things: refused
    if bound not in (None, digest) or signer.algorithm_parameters not in _NO_PARAMETERS:
        raise CmsRefused("algoritmo", firma=signer.algorithm, digest=signer.digest)
    return family, digest


def _pss_settings(signer: _Signer, digest: DigestName) -> tuple[DigestName, int]:
    """MGF1's digest and the salt length from the RSASSA-PSS-params (RFC 4056): their hash
    is the SignerInfo's digest (the default, SHA-1, is refused), MGF1 with SHA-2."""
    pss = signer.pss
    if pss is None:
        raise CmsRefused("algoritmo", firma=RSA_PSS, motivo="parametri_assenti")
    mgf_digest = _DIGESTS.get(pss.mgf_digest or "")
    if (
        _DIGESTS.get(pss.digest) != digest
        or pss.digest_parameters not in _NO_PARAMETERS
        or pss.mgf != MGF1
        or mgf_digest is None
        or pss.trailer_field != 1
        or not 0 <= pss.salt_length <= _MAX_SALT
    ):
        raise CmsRefused("algoritmo", firma=RSA_PSS, hash=pss.digest, mgf=pss.mgf)
    return mgf_digest, pss.salt_length


def _signed_bytes(attributes: _Attributes | None, content: bytes, digest: DigestName) -> bytes:
    """What the signature covers (RFC 5652 §5.4), once the signed attributes bind the
    content: one content-type of id-data and one messageDigest equal to its digest."""
    if attributes is None:
        return content
    if attributes.content_types != ((ID_DATA,),):
        raise CmsRefused("contenuto", attributo=[list(v) for v in attributes.content_types])
    if len(attributes.digests) != 1 or len(attributes.digests[0]) != 1:
        raise CmsRefused("impronta", attributi=len(attributes.digests))
    expected = hashlib.new(digest, content).digest()
    if not hmac.compare_digest(attributes.digests[0][0], expected):
        raise CmsRefused("impronta", algoritmo=digest)
    return attributes.der
