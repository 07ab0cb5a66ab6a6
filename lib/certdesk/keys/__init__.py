"""Where the CA's private keys live: a key provider, chosen by ``[keys] provider``.

- ``file`` (the default, ``files.FileKeys``): PKCS#8 files in ``state/ca/``, encrypted
  with the passphrase;
- ``pkcs11`` (``token.TokenKeys``): keys generated in, or adopted from, a token; only
  their public halves and a handle ever leave it.

A provider hands ``authority`` (its one caller, with ``hierarchy``) the key of a role as
one of cryptography's private key types, which its builders sign with whatever holds the
key; nothing above the authority knows which provider is in use. The secret that opens
the keys (``resolve_secret``: the passphrase, or the token's PIN) travels as bytes, as
the passphrase always did, to the signing processes that load the key themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ..config import Config
from ..home import Home
from ..publication import FIRST_ISSUER
from .files import PASSPHRASE_ENV, FileKeys, issuer_folder, resolve_passphrase
from .kinds import Role, generate_key, signature_hash
from .pin import PIN_ENV, resolve_pin

__all__ = [
    "SECRET_VARIABLES",
    "KeyProvider",
    "Role",
    "generate_key",
    "issuer_folder",
    "provider_for",
    "resolve_secret",
    "signature_hash",
]

#: the environment variables that may carry the keys' secret (a child that signs nothing,
#: such as ``certdesk serve`` started by ``certdesk run``, is not given them)
SECRET_VARIABLES = (PASSPHRASE_ENV, PIN_ENV)


class KeyProvider(Protocol):
    #: whether a forked process may sign with a key this provider loaded
    inheritable: bool

    def present(self, role: Role) -> bool:
        """Whether a key for ``role`` exists already (init never overwrites one)."""
        ...

    def create(self, role: Role, kind: str) -> CertificateIssuerPrivateKeyTypes:
        """A new key of ``kind`` (``[ca] root_key``...) for ``role``, kept by the provider."""
        ...

    def adopt(self, role: Role) -> CertificateIssuerPrivateKeyTypes:
        """The key for ``role`` made outside certdesk (``init --use-existing-keys``)."""
        ...

    def load(self, role: Role) -> CertificateIssuerPrivateKeyTypes: ...


def resolve_secret(
    home: Home, config: Config, secret_file: Path | None = None, *, generate: bool = False
) -> tuple[bytes, str]:
    """The secret that opens the keys, and where it came from: ``--passphrase-file`` (the
    passphrase, or with pkcs11 the PIN), else the provider's variable, else its file.
    ``generate`` (init, file provider only) makes a passphrase when there is none."""
    if config.keys.provider == "pkcs11":
        return resolve_pin(home, config.keys, secret_file)
    return resolve_passphrase(home, secret_file, generate=generate)


def provider_for(
    home: Home, config: Config, secret: bytes, source: str = "", *, writable: bool = False,
    issuer: str = FIRST_ISSUER,
) -> KeyProvider:  # fmt: skip
    """The provider ``config`` names, opened with ``secret`` (``source``: where it came
    from, for messages); ``writable`` to generate keys (init, rollover). Its ``issuing``
    key is the one of the issuing CA ``issuer`` (``publication.issuer_name``)."""
    if config.keys.provider == "pkcs11":
        # Imported here: python-pkcs11 is needed only by a home whose keys are in a token.
        from .token import TokenKeys

        return TokenKeys(home, config.keys, secret, source, writable=writable, issuer=issuer)
    return FileKeys(home, secret, issuer_folder(home, issuer))
