"""The issuing CAs published in ``outbox/ca/``: the first's files in ``outbox/ca/`` itself,
each later one's (``certdesk rollover``) in ``outbox/ca/<genN>/``.

The service learns of a new issuer from the folder: ``outbox/ca/`` is listed again
whenever it changed (its inode or modification time: the daemon creates the issuer's
folder before it renames its files in), so a rollover reaches a running service
without a restart. Each issuer's files are ``published.PublishedFile``s, re-read
whenever the file opened is another one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..outbox import Outbox
from ..publication import FIRST_ISSUER, is_issuer_name
from .ocsp_wire import CertId
from .published import CaCertificate, Chain, CrlFile, PublishedFile

__all__ = ["IssuerDirectory", "PublishedIssuer"]


@dataclass(frozen=True)
class PublishedIssuer:
    name: str
    certificate: PublishedFile[CaCertificate]
    crl: PublishedFile[CrlFile]
    chain: PublishedFile[Chain]

    @classmethod
    def of(cls, outbox: Outbox, name: str) -> PublishedIssuer:
        files = outbox.issuer(name)
        return cls(
            name, PublishedFile(files.certificate, CaCertificate.of),
            PublishedFile(files.crl, CrlFile.of), PublishedFile(files.chain, Chain.of),
        )  # fmt: skip


class IssuerDirectory:
    """Every issuer ``outbox/ca/`` publishes, by name, the first one first."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.first = PublishedIssuer.of(outbox, FIRST_ISSUER)
        self._issuers: dict[str, PublishedIssuer] = {FIRST_ISSUER: self.first}
        self._seen: tuple[int, int, int] | None = None

    def _scan(self) -> None:
        try:
            st = os.stat(self.outbox.ca)
        except FileNotFoundError:
            return
        identity = (st.st_dev, st.st_ino, st.st_mtime_ns)
        if identity == self._seen:
            return
        self._seen = identity
        with os.scandir(self.outbox.ca) as entries:
            names = [e.name for e in entries if is_issuer_name(e.name) and e.is_dir()]
        for name in sorted(names):
            if name not in self._issuers:
                self._issuers[name] = PublishedIssuer.of(self.outbox, name)

    def get(self, name: str) -> PublishedIssuer | None:
        if name not in self._issuers:
            self._scan()
        return self._issuers.get(name)

    def all(self) -> list[PublishedIssuer]:
        self._scan()
        return list(self._issuers.values())

    def issuer_of(self, cert_id: CertId) -> CaCertificate | None:
        """The published issuer a CertID names (its name's and key's hashes, with the
        request's own hash algorithm); None when none of ours."""
        for issuer in self.all():
            certificate = issuer.certificate.read()
            if certificate is not None and certificate.keys.issued(cert_id):
                return certificate
        return None
