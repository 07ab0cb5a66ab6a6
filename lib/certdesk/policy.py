"""The rules a certificate request must meet: pure functions, no file system, no store.

``inspect_request`` turns the bytes of a dropped file into an ``InspectedRequest`` or
raises ``RequestRejected`` with a stable code. Rules that need the store (a key already
certified for someone else, a blocked key) live in ``service``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from .errors import RequestRejected
from .identity import CodiceFiscale, parse_codice_fiscale
from .weakkeys import weakness

__all__ = ["MAX_INPUT_BYTES", "InspectedRequest", "inspect_request"]

MAX_INPUT_BYTES = 64 * 1024
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096
RSA_EXPONENT = 65537
_STRONG_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1)
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


@dataclass(frozen=True)
class InspectedRequest:
    """A request that passed every rule that does not need the store."""

    codice_fiscale: CodiceFiscale
    csr_der: bytes
    spki_der: bytes
    spki_sha256: str
    key_description: str


def _reject(code: str, message: str) -> RequestRejected:
    return RequestRejected(message, code=code)


def _is_der_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, password=None)
    except TypeError:
        return True  # an encrypted PKCS#8 key: it wants a password
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _load(data: bytes) -> x509.CertificateSigningRequest:
    if not data.strip():
        raise _reject("FILE_VUOTO", "the file is empty: drop a PKCS#10 request (PEM or DER)")
    if len(data) > MAX_INPUT_BYTES:
        raise _reject(
            "FILE_TROPPO_GRANDE",
            f"the file exceeds {MAX_INPUT_BYTES // 1024} KiB: a PKCS#10 request is a few KiB",
        )
    labels = [m.group(1).decode("ascii") for m in _PEM_LABEL.finditer(data)]
    if any("PRIVATE KEY" in label for label in labels):
        # Never echo the content anywhere: the file is quarantined with mode 0600.
        raise _reject(
            "CHIAVE_PRIVATA_RICEVUTA",
            "the file holds a PRIVATE KEY, which must never leave its owner: it was not "
            "processed; create a new key pair and send only the certificate request (CSR)",
        )
    if labels:
        if labels[0] not in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"):
            raise _reject(
                "NON_E_UNA_CSR",
                f"the file is a PEM '{labels[0]}', not a certificate request: drop the "
                "PKCS#10 request (-----BEGIN CERTIFICATE REQUEST-----)",
            )
        try:
            return x509.load_pem_x509_csr(data)
        except ValueError:
            raise _reject(
                "CSR_NON_LEGGIBILE",
                "the PEM certificate request is damaged: regenerate it and drop it again",
            ) from None
    try:
        return x509.load_der_x509_csr(data)
    except ValueError:
        pass
    if _is_der_private_key(data):
        raise _reject(
            "CHIAVE_PRIVATA_RICEVUTA",
            "the file holds a PRIVATE KEY (DER), which must never leave its owner: it was not "
            "processed; create a new key pair and send only the certificate request (CSR)",
        )
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        raise _reject(
            "CSR_NON_LEGGIBILE",
            "the file is neither a PEM nor a DER PKCS#10 certificate request",
        ) from None
    raise _reject(
        "NON_E_UNA_CSR",
        "the file is a certificate, not a certificate request: drop the PKCS#10 request",
    )


def _check_signature(csr: x509.CertificateSigningRequest) -> None:
    try:
        algorithm = csr.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm: e.g. RSA-PSS params or an unknown OID
        algorithm = None
    if algorithm is None or not isinstance(algorithm, _STRONG_HASHES):
        name = algorithm.name.upper() if algorithm is not None else "an unsupported algorithm"
        raise _reject(
            "CSR_HASH_DEBOLE",
            f"the request is signed with {name}: sign it with SHA-256 or stronger "
            "(openssl req -sha256)",
        )
    try:
        valid = csr.is_signature_valid
    except Exception:
        valid = False
    if not valid:
        raise _reject(
            "CSR_FIRMA_NON_VALIDA",
            "the request's signature does not verify with its own public key (proof of "
            "possession failed): the file was altered or built wrongly; regenerate it",
        )


def _check_key(public_key: CertificatePublicKeyTypes, *, allow_ec: bool) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        if not RSA_MIN_BITS <= public_key.key_size <= RSA_MAX_BITS:
            raise _reject(
                "CHIAVE_DIMENSIONE_NON_AMMESSA",
                f"the RSA key has {public_key.key_size} bits: use {RSA_MIN_BITS} to "
                f"{RSA_MAX_BITS} bits (the agency asks for 2048)",
            )
        if numbers.e != RSA_EXPONENT:
            raise _reject(
                "CHIAVE_ESPONENTE_NON_AMMESSO",
                f"the RSA public exponent is {numbers.e}: it must be 65537",
            )
        why = weakness(numbers.n)
        if why is not None:
            raise _reject("CHIAVE_DEBOLE", f"the key is weak: {why}; generate a new key pair")
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not allow_ec:
            raise _reject(
                "CHIAVE_TIPO_NON_AMMESSO",
                "ECDSA keys are not accepted by this CA: generate an RSA 2048-bit key",
            )
        if not isinstance(public_key.curve, _ALLOWED_CURVES):
            raise _reject(
                "CHIAVE_TIPO_NON_AMMESSO",
                f"the curve {public_key.curve.name} is not accepted: use P-256 or P-384",
            )
        return f"ECDSA {public_key.curve.name}"
    raise _reject(
        "CHIAVE_TIPO_NON_AMMESSO",
        f"{type(public_key).__name__.removeprefix('_')} keys are not accepted: "
        "generate an RSA 2048-bit key",
    )


def _common_name(csr: x509.CertificateSigningRequest) -> CodiceFiscale:
    try:
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        raise _reject("CSR_NON_LEGGIBILE", "the request's subject cannot be decoded") from None
    if not names:
        raise _reject(
            "CN_MANCANTE",
            "the request has no Common Name: put the codice fiscale in CN (/CN=RSSMRA80A01H501U)",
        )
    if len(names) > 1:
        raise _reject(
            "CN_MULTIPLO",
            "the request has more than one Common Name: put exactly one codice fiscale",
        )
    value = names[0].value
    text = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return parse_codice_fiscale(text, field="the Common Name")


def inspect_request(data: bytes, *, allow_ec: bool = False) -> InspectedRequest:
    """Check every store-independent rule on the bytes of a request file."""
    csr = _load(data)
    try:
        public_key = csr.public_key()
    except Exception:  # UnsupportedAlgorithm for key types cryptography cannot load
        raise _reject(
            "CHIAVE_TIPO_NON_AMMESSO",
            "the request's key type is not supported: generate an RSA 2048-bit key",
        ) from None
    key_description = _check_key(public_key, allow_ec=allow_ec)
    _check_signature(csr)
    codice_fiscale = _common_name(csr)
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return InspectedRequest(
        codice_fiscale=codice_fiscale,
        csr_der=csr.public_bytes(serialization.Encoding.DER),
        spki_der=spki,
        spki_sha256=hashlib.sha256(spki).hexdigest(),
        key_description=key_description,
    )
