"""One process's link to the token: the library, one session, the login, and what a failure
of the token means.

PKCS#11 state belongs to a process: a signing process opens its own session after it
starts (``signing`` spawns them for a token key, never forks one holding a session), and
within a process one lock serialises the calls (two threads with sessions of their own
crashed SoftHSM2 in the feasibility probe).

A failure while opening (``open``) is a refusal the command line prints: the library
will not load, no token has the label, the PIN is refused. A failure while signing is a
``faults.TokenFault``: the daemon pauses and reports it (``outbox/daemon.json``), never
refusing the request in hand; the session is dropped, and the next signature opens a new
one, logging in again with the PIN that opened the first, never with one the token
refused (``pin.RefusedPin``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass

from ..codes import refusal
from ..config import KeySettings
from ..errors import CertdeskError
from ..faults import TokenFault
from ..home import Home
from .pin import RefusedPin

__all__ = ["TokenLink"]

_T = TypeVar("_T")
# Libraries (by module path) to initialise again before their next session: after a
# failure, SoftHSM2 (and network HSMs' libraries) find a token that came back only then.
# One set for the process, since the library is the process's too.
_STALE: set[str] = set()
_PIN_REFUSED = (
    pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange, pkcs11.PinExpired,
    pkcs11.PinLocked,
)  # fmt: skip


class TokenLink:
    def __init__(self, home: Home, settings: KeySettings, pin: bytes, source: str) -> None:
        self.settings = settings
        self._pin = pin
        self._source = source
        self._refused = RefusedPin(home)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._session: pkcs11.Session | None = None
        self._keys: dict[str, pkcs11.PrivateKey] = {}
        self.writable = False  # set before the first call: init generates keys

    @property
    def token(self) -> str:
        return self.settings.token_label

    def session(self) -> pkcs11.Session:
        """The open session (opened, and logged in, on first use)."""
        with self._lock:
            if os.getpid() != self._pid:
                raise RuntimeError("a token session is never used across a fork")
            if self._session is None:
                try:
                    self._session = self._open()
                except CertdeskError:
                    _STALE.add(self.settings.module)
                    raise
            return self._session

    def _open(self) -> pkcs11.Session:
        module = self.settings.module
        try:
            library = pkcs11.lib(module)
        except (OSError, RuntimeError) as exc:  # pkcs11's errors are RuntimeErrors too
            raise refusal("TOKEN_NON_DISPONIBILE", "modulo", modulo=module, errore=exc) from None
        try:
            if module in _STALE:
                library.reinitialize()
                _STALE.discard(module)
            token = library.get_token(token_label=self.token)
        except pkcs11.NoSuchToken:
            raise refusal(
                "TOKEN_NON_DISPONIBILE", "assente", token=self.token, modulo=module
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise refusal("TOKEN_NON_DISPONIBILE", token=self.token, errore=_name(exc)) from None
        if self._refused.refused_before(self._pin):
            raise refusal("PIN_ERRATO", "gia_rifiutato", fonte=self._source, token=self.token)
        try:
            # One login per process: C_Login is the only call that offers the PIN.
            session = token.open(rw=self.writable, user_pin=self._pin.decode("utf-8"))
        except _PIN_REFUSED as exc:
            self._refused.remember(self._pin)
            raise refusal(
                "PIN_ERRATO", token=self.token, motivo=_name(exc), fonte=self._source
            ) from None
        except pkcs11.UserAlreadyLoggedIn:
            session = token.open(rw=self.writable)  # this process's login still holds
        except pkcs11.PKCS11Error as exc:
            raise refusal("TOKEN_NON_DISPONIBILE", token=self.token, errore=_name(exc)) from None
        self._refused.forget()
        return session

    def private_key(self, label: str) -> pkcs11.PrivateKey:
        """The token's private key labelled ``label`` (its handle, cached per session)."""
        with self._lock:
            if label not in self._keys:
                found = list(
                    self.session().get_objects(
                        {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}
                    )
                )
                if len(found) != 1:
                    raise KeyError(label)
                key = found[0]
                assert isinstance(key, pkcs11.PrivateKey)
                self._keys[label] = key
            return self._keys[label]

    def sign(self, label: str, data: bytes, mechanism: Mechanism) -> bytes:
        """One signature; a token that fails is a ``TokenFault`` (a pause)."""
        def sign() -> bytes:
            key = self.private_key(label)
            assert isinstance(key, pkcs11.SignMixin)
            return key.sign(data, mechanism=mechanism)

        return self.guarded(sign)

    def guarded(self, call: Callable[[], _T]) -> _T:
        with self._lock:
            try:
                return call()
            except pkcs11.PKCS11Error as exc:
                self.drop()
                text = refusal("TOKEN_NON_DISPONIBILE", token=self.token, errore=_name(exc))
                raise TokenFault(text.code, text.message) from None
            except KeyError as exc:
                self.drop()  # the key vanished with its token, or was deleted
                text = refusal(
                    "TOKEN_NON_DISPONIBILE", token=self.token, errore=f"chiave {exc} assente"
                )
                raise TokenFault(text.code, text.message) from None
            except CertdeskError as exc:  # opening again failed: gone, or the PIN refused
                self.drop()
                raise TokenFault(exc.code, exc.message) from None

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """For init and loading (not signing): the token's own error as one clear line."""
        try:
            yield
        except pkcs11.PKCS11Error as exc:
            self.drop()
            raise refusal("TOKEN_NON_DISPONIBILE", token=self.token, errore=_name(exc)) from None

    def drop(self) -> None:
        """Forget the session (its handles are of no use once the token failed), and
        initialise the library again before the next one."""
        _STALE.add(self.settings.module)
        with self._lock:
            session, self._session = self._session, None
            self._keys.clear()
            if session is not None:
                with contextlib.suppress(pkcs11.PKCS11Error):  # gone with the token
                    session.close()


def _name(exc: BaseException) -> str:
    """A pkcs11 exception's class name (CKR_* text) for a message: they have no text."""
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
