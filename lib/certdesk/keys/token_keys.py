"""Private keys that sign inside a token: cryptography's key types, so that its builders
(certificate, CRL, OCSP response, CSR) sign with them as with a key in memory.

Each ``sign`` is one PKCS#11 signature through the process's own session
(``token_link.TokenLink``); nothing of the private key is ever here: ``private_bytes``
and ``private_numbers`` refuse. RSA signs with CKM_SHA<n>_RSA_PKCS (PKCS#1 v1.5, as the
file provider's certificates); ECDSA hashes here and signs with CKM_ECDSA, which every
token has (SoftHSM2 has no CKM_ECDSA_SHA256), then encodes r‖s as the DER X.509 wants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn, Self

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
from cryptography.utils import Buffer
from pkcs11 import Mechanism

if TYPE_CHECKING:
    from .token_link import TokenLink

__all__ = ["TokenEcKey", "TokenRsaKey"]

_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
# ``sign``'s parameter is called ``padding``, as in cryptography's own signature.
_PKCS1v15 = padding.PKCS1v15


def _never_leaves(label: str) -> NoReturn:
    raise UnsupportedAlgorithm(f"the key {label!r} is in a token and never leaves it")


class _InToken:
    """What both kinds of token key say of their private half: it never leaves the token;
    and a copy is the key itself (the token holds one)."""

    _label: str

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _never_leaves(self._label)

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class TokenRsaKey(_InToken, rsa.RSAPrivateKey):
    def __init__(self, link: TokenLink, label: str, public: rsa.RSAPublicKey) -> None:
        self._link = link
        self._label = label
        self._public = public

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        mechanism = _RSA_MECHANISMS.get(getattr(algorithm, "name", ""))
        if not isinstance(padding, _PKCS1v15) or mechanism is None:
            raise UnsupportedAlgorithm(f"a token key signs PKCS#1 v1.5 with SHA-2, not {algorithm}")
        return self._link.sign(self._label, bytes(data), mechanism)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        raise UnsupportedAlgorithm("a CA key signs; it never decrypts")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _never_leaves(self._label)


class TokenEcKey(_InToken, ec.EllipticCurvePrivateKey):
    def __init__(self, link: TokenLink, label: str, public: ec.EllipticCurvePublicKey) -> None:
        self._link = link
        self._label = label
        self._public = public

    def sign(
        self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        algorithm = signature_algorithm.algorithm
        if not isinstance(signature_algorithm, ec.ECDSA) or isinstance(algorithm, utils.Prehashed):
            raise UnsupportedAlgorithm(f"a token key signs ECDSA, not {signature_algorithm}")
        digest = hashes.Hash(algorithm)
        digest.update(bytes(data))
        raw = self._link.sign(self._label, digest.finalize(), Mechanism.ECDSA)
        half = len(raw) // 2
        return utils.encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise UnsupportedAlgorithm("a CA key signs; it never agrees keys")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _never_leaves(self._label)
