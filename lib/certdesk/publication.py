"""Where relying parties find the CA's revocation material: the publication service's
address and the URLs written in certificates (``[publish]`` in ``certdesk.toml``).

A pure module: text in, text out. One setting, ``public_url`` (the service's public base
URL; by default ``http://`` + ``listen``), gives every URL; ``[ca] crl_url`` and
``ocsp_url``, when written, still win for their own. ``certdesk serve`` serves each file at
the *path* of its URL, so a ``public_url`` with a path (``https://pki.example.it/certdesk``)
is served under that path::

    <public_url>/ocsp                 OCSP: POST, and GET /ocsp/<base64 request> (RFC 5019)
    <public_url>/ca/issuing.crl       the CRL (DER)              CRL distribution point
    <public_url>/ca/issuing.cer       the issuing CA (DER)       AIA caIssuers
    <public_url>/ca/root.cer          the root CA (DER)
    <public_url>/ca/chain.pem         issuing CA then root (PEM)
    <public_url>/health               freshness of what is published (JSON)

After an issuing CA rollover (``certdesk rollover``) each later issuer has paths of its
own, so that a roll forward never changes what older certificates point to: the first
issuer (``gen1``) keeps the paths above, issuer ``genN`` gets::

    <public_url>/ca/genN/issuing.crl  its CRL (DER)              CRL distribution point
    <public_url>/ca/genN/issuing.cer  its certificate (DER)      AIA caIssuers
    <public_url>/ca/genN/chain.pem    it, then the root (PEM)

(``[ca] crl_url``, when written, is the first issuer's CRL URL only.)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_LISTEN",
    "FIRST_ISSUER",
    "IssuerUrls",
    "PublicUrls",
    "is_issuer_name",
    "is_local_url",
    "issuer_generation",
    "issuer_name",
    "parse_listen",
    "valid_public_url",
]

DEFAULT_LISTEN = "127.0.0.1:8080"

#: The issuing CA ``certdesk init`` made: it keeps the paths certificates named before
#: any rollover (``/ca/issuing.crl``, ``/ca/issuing.cer``, ``outbox/ca/issuing.pem``).
FIRST_ISSUER = "gen1"
_ISSUER_NAME = re.compile(r"gen([1-9][0-9]{0,5})")


def issuer_name(generation: int) -> str:
    """The name of the issuing CA of a generation (1: ``init``'s, then one per rollover):
    its folder in ``state/ca/`` and ``outbox/ca/``, its URL path, the ledger's Emittente."""
    if generation < 1:
        raise ValueError(f"issuer generations start at 1: {generation}")
    return f"gen{generation}"


def is_issuer_name(text: str) -> bool:
    return _ISSUER_NAME.fullmatch(text) is not None


def issuer_generation(name: str) -> int:
    match = _ISSUER_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"not an issuer's name: {name!r}")
    return int(match[1])


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (an IPv6 host in brackets: ``[::1]:8080``) as (host, port); None when
    it is not one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            return None
    elif ":" in host:
        return None  # an IPv6 address without brackets is ambiguous
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        return None
    return host, int(port_text)


def valid_public_url(text: str) -> bool:
    """``http(s)://host[:port][/path]``, with no query, fragment or user."""
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
        and "@" not in parts.netloc
        and not any(c.isspace() for c in text)
    )


def is_local_url(url: str) -> bool:
    """The URL names this machine only (a loopback or unspecified address, localhost):
    a relying party elsewhere cannot reach it."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


@dataclass(frozen=True)
class IssuerUrls:
    """What a certificate of one issuing CA names: its CRL and its CA certificate."""

    crl: str
    ca_issuers: str
    chain: str


@dataclass(frozen=True)
class PublicUrls:
    """The URLs of the publication service, as certificates name them."""

    base: str
    crl: str
    ocsp: str
    ca_issuers: str
    root: str
    chain: str
    health: str

    @classmethod
    def derive(cls, *, listen: str, public_url: str, crl_url: str, ocsp_url: str) -> PublicUrls:
        """From the settings: an empty ``public_url`` is ``http://`` + ``listen``; an empty
        ``crl_url``/``ocsp_url`` is derived from it."""
        base = (public_url or f"http://{listen}").rstrip("/")
        return cls(
            base=base,
            crl=crl_url or f"{base}/ca/issuing.crl",
            ocsp=ocsp_url or f"{base}/ocsp",
            ca_issuers=f"{base}/ca/issuing.cer",
            root=f"{base}/ca/root.cer",
            chain=f"{base}/ca/chain.pem",
            health=f"{base}/health",
        )

    def issuer(self, name: str) -> IssuerUrls:
        """The URLs of one issuing CA: the first keeps the ones above, a later one gets
        paths of its own under ``/ca/<name>/``."""
        if name == FIRST_ISSUER:
            return IssuerUrls(crl=self.crl, ca_issuers=self.ca_issuers, chain=self.chain)
        folder = f"{self.base}/ca/{name}"
        return IssuerUrls(
            crl=f"{folder}/issuing.crl", ca_issuers=f"{folder}/issuing.cer",
            chain=f"{folder}/chain.pem",
        )  # fmt: skip

    def in_certificates(self) -> tuple[str, ...]:
        """The URLs a leaf certificate names (CRL distribution point, AIA)."""
        return (self.crl, self.ocsp, self.ca_issuers)

    def local(self) -> list[str]:
        """The URLs written in certificates that only this machine can reach."""
        return [url for url in self.in_certificates() if is_local_url(url)]

    def path(self, url: str) -> str:
        """The path at which ``certdesk serve`` answers for ``url`` ("/" at least)."""
        return urlsplit(url).path or "/"
