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

from .codes import refusal, refusal_as
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
        raise refusal("FILE_VUOTO")
    if len(data) > MAX_INPUT_BYTES:
        raise refusal_as(
            RequestRejected, "FILE_TROPPO_GRANDE", "csr", limite_kib=MAX_INPUT_BYTES // 1024
        )
    labels = [m.group(1).decode("ascii") for m in _PEM_LABEL.finditer(data)]
    if any("PRIVATE KEY" in label for label in labels):
        # Never echo the content anywhere: the file is quarantined with mode 0600.
        raise refusal_as(RequestRejected, "CHIAVE_PRIVATA_RICEVUTA")
    if labels:
        if labels[0] not in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"):
            raise refusal("NON_E_UNA_CSR", "pem", etichetta=labels[0])
        try:
            return x509.load_pem_x509_csr(data)
        except ValueError:
            raise refusal("CSR_NON_LEGGIBILE", "pem_danneggiata") from None
    try:
        return x509.load_der_x509_csr(data)
    except ValueError:
        pass
    if _is_der_private_key(data):
        raise refusal_as(RequestRejected, "CHIAVE_PRIVATA_RICEVUTA")
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        raise refusal("CSR_NON_LEGGIBILE") from None
    raise refusal("NON_E_UNA_CSR")


def _check_signature(csr: x509.CertificateSigningRequest) -> None:
    try:
        algorithm = csr.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm: e.g. RSA-PSS params or an unknown OID
        algorithm = None
    if algorithm is None:
        raise refusal("CSR_HASH_DEBOLE")
    if not isinstance(algorithm, _STRONG_HASHES):
        raise refusal("CSR_HASH_DEBOLE", "algoritmo", algoritmo=algorithm.name.upper())
    try:
        valid = csr.is_signature_valid
    except Exception:
        valid = False
    if not valid:
        raise refusal("CSR_FIRMA_NON_VALIDA")


def _check_key(public_key: CertificatePublicKeyTypes, *, allow_ec: bool) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        if not RSA_MIN_BITS <= public_key.key_size <= RSA_MAX_BITS:
            raise refusal(
                "CHIAVE_DIMENSIONE_NON_AMMESSA",
                bit=public_key.key_size,
                minimo=RSA_MIN_BITS,
                massimo=RSA_MAX_BITS,
            )
        if numbers.e != RSA_EXPONENT:
            raise refusal("CHIAVE_ESPONENTE_NON_AMMESSO", esponente=numbers.e)
        why = weakness(numbers.n)
        if why is not None:
            raise refusal("CHIAVE_DEBOLE", why)
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not allow_ec:
            raise refusal("CHIAVE_TIPO_NON_AMMESSO", "ecdsa")
        if not isinstance(public_key.curve, _ALLOWED_CURVES):
            raise refusal("CHIAVE_TIPO_NON_AMMESSO", "curva", curva=public_key.curve.name)
        return f"ECDSA {public_key.curve.name}"
    raise refusal(
        "CHIAVE_TIPO_NON_AMMESSO", "tipo", tipo=type(public_key).__name__.removeprefix("_")
    )


def _common_name(csr: x509.CertificateSigningRequest) -> CodiceFiscale:
    try:
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        raise refusal("CSR_NON_LEGGIBILE", "soggetto") from None
    if not names:
        raise refusal("CN_MANCANTE")
    if len(names) > 1:
        raise refusal("CN_MULTIPLO")
    value = names[0].value
    text = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return parse_codice_fiscale(text, field="Il Common Name (CN)")


def inspect_request(data: bytes, *, allow_ec: bool = False) -> InspectedRequest:
    """Check every store-independent rule on the bytes of a request file."""
    csr = _load(data)
    try:
        public_key = csr.public_key()
    except Exception:  # UnsupportedAlgorithm for key types cryptography cannot load
        raise refusal("CHIAVE_TIPO_NON_AMMESSO") from None
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
