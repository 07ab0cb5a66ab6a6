"""The token's user PIN: where it comes from, and the memory of a PIN the token refused.

The PIN is read from ``--passphrase-file``, else ``CERTDESK_PKCS11_PIN``, else the file
``[keys] pin_file`` (mode 0600, checked like the passphrase file); never from
certdesk.toml itself, never logged.

A token counts wrong PINs and locks itself after a few (step-ca's users lost YubiKeys to
silent retries, smallstep/crypto #1074). So a PIN the token refused is never offered
again: ``state/pkcs11-pin-refused`` keeps a salted, slow hash of it; every process (the
daemon, its signing processes, the next start after systemd's restart) checks it before
a login and refuses at once with ``PIN_ERRATO`` when the PIN is the same. A corrected PIN
is tried (once); a login that succeeds removes the file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ..codes import refusal
from ..config import KeySettings
from ..home import Home
from .files import check_private_mode, write_private

__all__ = ["PIN_ENV", "RefusedPin", "resolve_pin"]

PIN_ENV = "CERTDESK_PKCS11_PIN"
_ITERATIONS = 200_000  # ~0.1 s: a few guesses a second at a 6-digit PIN's hash, not millions


def _read_pin_file(path: Path) -> bytes:
    try:
        check_private_mode(path)
        value = path.read_bytes().strip()
    except OSError as exc:
        why = exc.strerror or exc
        raise refusal("PIN_MANCANTE", "illeggibile", file=path, errore=why) from None
    if not value:
        raise refusal("PIN_MANCANTE", "vuoto", file=path)
    return value


def resolve_pin(home: Home, settings: KeySettings, pin_file: Path | None) -> tuple[bytes, str]:
    """The PIN and where it came from (for messages: never the PIN itself)."""
    if pin_file is not None:
        return _read_pin_file(pin_file), str(pin_file)
    env = os.environ.get(PIN_ENV, "")
    if env:
        return env.encode("utf-8"), PIN_ENV
    if settings.pin_file:
        path = home.root / settings.pin_file  # an absolute pin_file stays as it is
        return _read_pin_file(path), str(path)
    raise refusal("PIN_MANCANTE", variabile=PIN_ENV)


class RefusedPin:
    """``state/pkcs11-pin-refused``: salt and PBKDF2 of the last PIN the token refused."""

    def __init__(self, home: Home) -> None:
        self.path = home.state / "pkcs11-pin-refused"

    def _digest(self, pin: bytes, salt: bytes) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", pin, salt, _ITERATIONS)

    def refused_before(self, pin: bytes) -> bool:
        try:
            salt_hex, digest_hex = self.path.read_text(encoding="ascii").split()
            salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        except FileNotFoundError:
            return False
        except ValueError:
            return False  # damaged: replaced at the next refusal, removed at the next login
        return hmac.compare_digest(self._digest(pin, salt), digest)

    def remember(self, pin: bytes) -> None:
        salt = secrets.token_bytes(16)
        text = f"{salt.hex()} {self._digest(pin, salt).hex()}\n".encode("ascii")
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        partial.unlink(missing_ok=True)
        write_private(partial, text)
        os.replace(partial, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
