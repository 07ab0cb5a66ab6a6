"""The issuing CAs of one home: the first (``init``'s, ``gen1``) and one more per
``certdesk rollover`` (``gen2``, ``gen3``...), all under the same root.

Which issuer signs a new certificate is a function of time: the newest generation whose
``active_from`` has come (a rollover takes effect at once, or from ``--from DATE``). An
older issuer is not forgotten: until its own certificate ends (and with it every leaf it
signed: a leaf never outlives its issuer) it keeps its CRL and its OCSP responses, signed
with its own key. The store says which issuers exist (``Store.issuers``, read again by the
daemon while it runs, so a rollover reaches a live daemon without a restart); this module
loads their certificates and keys, each once, when first asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .authority import CertificateAuthority
from .codes import refusal
from .config import Config
from .home import Home
from .publication import FIRST_ISSUER

__all__ = ["FIRST_ENTRY", "IssuerEntry", "Issuers", "short_of_validity"]

_DAWN = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class IssuerEntry:
    """An issuing CA as the store records it."""

    generation: int
    name: str
    active_from: datetime  # from when it signs new certificates


#: ``init``'s issuer, which every home has and the store does not list: active since ever.
FIRST_ENTRY = IssuerEntry(1, FIRST_ISSUER, _DAWN)


def short_of_validity(ca: CertificateAuthority, now: datetime) -> timedelta | None:
    """How much validity the issuer has left when that is less than a new leaf's
    (``[certificates] validity_days``): a leaf issued now would be cut at the issuer's
    end. None while there is enough."""
    left = ca.not_after - now
    if left < timedelta(days=ca.config.certificates.validity_days):
        return max(left, timedelta(0))
    return None


class Issuers:
    """The home's issuers, their keys loaded on first use with ``secret`` (the
    passphrase, or the token's PIN). Without a secret only ``first`` can be used."""

    def __init__(
        self, home: Home, config: Config, first: CertificateAuthority,
        secret: bytes | None = None, source: str = "",
    ) -> None:  # fmt: skip
        self.home = home
        self.config = config
        self._secret = secret
        self._source = source
        self._loaded: dict[str, CertificateAuthority] = {first.name: first}
        self.entries: tuple[IssuerEntry, ...] = (FIRST_ENTRY,)

    @property
    def first(self) -> CertificateAuthority:
        return self._loaded[FIRST_ISSUER]

    def update(self, entries: Iterable[IssuerEntry]) -> list[IssuerEntry]:
        """Take the store's list; returns the issuers it did not know (a rollover)."""
        known = {e.name for e in self.entries}
        merged = sorted({FIRST_ENTRY, *entries})
        self.entries = tuple(merged)
        return [e for e in merged if e.name not in known]

    def get(self, name: str) -> CertificateAuthority:
        """The issuer ``name``, loaded (and its key proved by a probe) on first use."""
        ca = self._loaded.get(name)
        if ca is None:
            if self._secret is None or name not in {e.name for e in self.entries}:
                raise refusal("EMITTENTE_SCONOSCIUTO", emittente=name)
            ca = CertificateAuthority.load(
                self.home, self.config, self._secret, source=self._source, issuer=name
            )
            self._loaded[name] = ca
        return ca

    def active_entry(self, now: datetime) -> IssuerEntry:
        return max(e for e in self.entries if e.active_from <= now)

    def active(self, now: datetime) -> CertificateAuthority:
        """The issuer that signs a certificate decided at ``now``."""
        return self.get(self.active_entry(now).name)

    def live(self, now: datetime) -> list[CertificateAuthority]:
        """Every issuer whose certificate has not ended (its leaves may still be valid,
        so its CRL and OCSP responses are kept fresh; one scheduled by ``--from`` is
        published ahead), oldest first; the active one always, even past its end, so
        that something is published."""
        active = self.active_entry(now).name
        issuers = [self.get(e.name) for e in self.entries]
        return [ca for ca in issuers if ca.not_after > now or ca.name == active]
