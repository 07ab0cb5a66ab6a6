"""The file provider (``[keys] provider = "file"``, the default): the CA's keys as PKCS#8
PEM files in ``state/ca/``, encrypted with the passphrase, mode 0600 from their first
byte; certdesk refuses to load a key file that group or others can read."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ..codes import refusal
from ..home import Home
from ..publication import FIRST_ISSUER
from .kinds import Role, generate_key

__all__ = [
    "KEY_FILE_MODE",
    "PASSPHRASE_ENV",
    "FileKeys",
    "check_private_mode",
    "issuer_folder",
    "resolve_passphrase",
    "write_private",
]

PASSPHRASE_ENV = "CERTDESK_CA_PASSPHRASE"
KEY_FILE_MODE = 0o600


def issuer_folder(home: Home, issuer: str) -> Path:
    """Where an issuing CA's files are in ``state/ca/``: the first one's (``init``) in
    ``state/ca/`` itself, as before any rollover; a later one's in ``state/ca/<name>/``."""
    return home.ca_dir if issuer == FIRST_ISSUER else home.ca_dir / issuer


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the first byte (never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def check_private_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise refusal("PERMESSI_CHIAVE_NON_SICURI", file=path, permessi=mode)


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
        check_private_mode(stored)
        return stored.read_bytes().strip(), str(stored)
    if generate:
        value = secrets.token_urlsafe(32).encode("ascii")
        write_private(stored, value + b"\n")
        return value, str(stored)
    raise refusal("PASSPHRASE_MANCANTE", variabile=PASSPHRASE_ENV, file=stored)


class FileKeys:
    """``state/ca/<role>.key.pem``, encrypted with ``passphrase``; a later issuing CA's
    key (``certdesk rollover``) is ``issuing.key.pem`` in its own ``folder``."""

    # A forked signing process may use the loaded key as it is (it is plain memory).
    inheritable = True

    def __init__(self, home: Home, passphrase: bytes, folder: Path | None = None) -> None:
        self._home = home
        self._passphrase = passphrase
        self._folder = folder or home.ca_dir

    def _path(self, role: Role) -> Path:
        # The root's key is the home's one, whichever issuer this provider is for.
        folder = self._home.ca_dir if role == "root" else self._folder
        return folder / f"{role}.key.pem"

    def present(self, role: Role) -> bool:
        return self._path(role).exists()

    def create(self, role: Role, kind: str) -> CertificateIssuerPrivateKeyTypes:
        if self.present(role):
            raise refusal("CA_ESISTENTE", cartella=self._path(role).parent)
        key = generate_key(kind)
        encryption = serialization.BestAvailableEncryption(self._passphrase)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        write_private(self._path(role), pem)
        return key

    def adopt(self, role: Role) -> CertificateIssuerPrivateKeyTypes:
        raise refusal("OPZIONE_NON_VALIDA", "solo_pkcs11")

    def load(self, role: Role) -> CertificateIssuerPrivateKeyTypes:
        path = self._path(role)
        check_private_mode(path)
        try:
            # OpenSSL's full RSA key check (primality of p and q) costs ~0.15 s of CPU on
            # the path to the first certificate. This key is the CA's own, written by
            # ``init`` into a 0600 file; ``authority`` proves with one probe signature
            # that it is intact and belongs to its certificate.
            key = serialization.load_pem_private_key(
                path.read_bytes(), password=self._passphrase, unsafe_skip_rsa_key_validation=True
            )
        except (ValueError, TypeError):
            raise refusal("PASSPHRASE_ERRATA", variabile=PASSPHRASE_ENV) from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise refusal("CA_NON_DISPONIBILE", "tipo_chiave", tipo=type(key).__name__)
        return key
