"""``certdesk rollover``: a new issuing CA under the same root (docs/operations.md).

- root's key in this home: ``certdesk rollover [--from DATE]`` (``roll``);
- root kept offline (docs/hsm.md's ceremony, again): ``certdesk rollover --request``
  (``request``: the new key and its CSR), ``certdesk sign-issuing`` in the root's home,
  then ``certdesk rollover --import FILE [--from DATE]`` (``install``).

The crash-safe order: the new issuer's folder ``state/ca/genN/`` (its key, then its
certificate, each written whole and synced), then one store transaction lists it
(``Transaction.add_issuer``). Until that commit the new issuer exists for nobody: a kill
leaves the old state, and the next rollover clears the folder it left. From the commit on,
the daemon, running or started later, signs new certificates with it from its date and
publishes its certificate, chain and CRL: nothing is written to ``outbox/`` here, whose
one writer is the daemon (or ``republish``).
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from .authority import CertificateAuthority, ca_exists
from .clock import format_utc, now_utc
from .codes import refusal
from .config import Config, load_config, public_urls
from .errors import CertdeskError
from .fsutil import atomic_write, fsync_dir
from .hierarchy import check_rolled, roll_issuing, rolled_request
from .home import Home
from .issuers import IssuerEntry
from .keys import KeyProvider, issuer_folder, provider_for, resolve_secret
from .publication import issuer_name
from .store import Store

__all__ = ["install", "request", "roll"]

_CSR = "issuing.csr.pem"


class _Rollover:
    """One rollover's home, secret, store and the generation it makes."""

    def __init__(self, home: Home, secret_file: Path | None) -> None:
        if not ca_exists(home):
            raise refusal("CA_NON_INIZIALIZZATA", cartella=home.ca_dir)
        self.home = home
        self.config: Config = load_config(home.root)
        self.secret, self.source = resolve_secret(home, self.config, secret_file)
        self.store = Store(home.database)
        known = [entry.generation for entry in self.store.issuers()]
        self.generation = max([1, *known]) + 1
        self.name = issuer_name(self.generation)
        self.folder = issuer_folder(home, self.name)

    def provider(self, *, writable: bool = False, issuer: str | None = None) -> KeyProvider:
        return provider_for(
            self.home, self.config, self.secret, self.source, writable=writable,
            issuer=issuer or self.name,
        )  # fmt: skip

    def fresh_folder(self) -> None:
        """An empty ``state/ca/genN/``. One left by a rollover killed before its commit
        was never used by anyone: it goes. One holding a request waits for its import."""
        if self.folder.exists():
            if (self.folder / _CSR).exists():
                raise refusal(
                    "ROLLOVER_NON_VALIDO", "in_attesa", csr=self.folder / _CSR,
                    cartella=self.folder,
                )  # fmt: skip
            shutil.rmtree(self.folder)
        self.folder.mkdir(mode=0o700)

    def new_key(self) -> CertificateIssuerPrivateKeyTypes:
        provider = self.provider(writable=True)
        # A token keeps the key a killed rollover made under this label: it is adopted
        # (the same checks as --use-existing-keys), never a second one made beside it.
        if provider.present("issuing"):
            return provider.adopt("issuing")
        return provider.create("issuing", self.config.ca.issuing_key)

    def commit(self, issuing: x509.Certificate, active_from: str | None) -> str:
        moment = _active_from(active_from, issuing)
        atomic_write(self.folder / "issuing.pem", issuing.public_bytes(serialization.Encoding.PEM))
        fsync_dir(self.folder)
        fsync_dir(self.home.ca_dir)
        # A probe signature: the key and the certificate belong together before anyone
        # is told of them.
        CertificateAuthority.load(
            self.home, self.config, self.secret, source=self.source, issuer=self.name
        )
        with self.store.transaction() as txn:
            txn.add_issuer(IssuerEntry(self.generation, self.name, moment), now_utc())
        urls = public_urls(self.config).issuer(self.name)
        digest = hashlib.sha256(issuing.public_bytes(serialization.Encoding.DER)).hexdigest()
        return (
            f"issuing CA {self.name} ({issuing.subject.rfc4514_string()}, valid until "
            f"{format_utc(issuing.not_valid_after_utc)}, SHA-256 {digest}) signs new "
            f"certificates from {format_utc(moment)}; its CRL {urls.crl}, its certificate "
            f"{urls.ca_issuers}. A running daemon takes it within seconds; the earlier "
            "issuers keep their CRL and OCSP until their certificates expire"
        )

    def close(self) -> None:
        self.store.close()


def _active_from(text: str | None, issuing: x509.Certificate) -> datetime:
    """``--from``: an ISO 8601 date or time (UTC unless it says otherwise); a moment
    already past means at once. It must fall before the new issuer's end."""
    now = now_utc()
    if text is None:
        return now
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment is None or moment >= issuing.not_valid_after_utc:
        raise refusal(
            "ROLLOVER_NON_VALIDO", "data", valore=text,
            dal=format_utc(issuing.not_valid_before_utc),
            al=format_utc(issuing.not_valid_after_utc),
        )  # fmt: skip
    return max(moment, now)


def roll(home: Home, secret_file: Path | None, active_from: str | None) -> str:
    """The one-step rollover: the root's key is in this home (file or token)."""
    rollover = _Rollover(home, secret_file)
    try:
        root_provider = rollover.provider()
        if not root_provider.present("root"):
            raise refusal("ROLLOVER_NON_VALIDO", "radice_assente", cartella=home.ca_dir)
        rollover.fresh_folder()
        key = rollover.new_key()
        issuing = roll_issuing(home, rollover.config, root_provider, key, rollover.generation)
        try:
            return rollover.commit(issuing, active_from)
        except CertdeskError:
            shutil.rmtree(rollover.folder)  # refused before its commit: never anyone's
            raise
    finally:
        rollover.close()


def request(home: Home, secret_file: Path | None) -> str:
    """The root is offline: the new issuer's key, and its CSR to carry to the root."""
    rollover = _Rollover(home, secret_file)
    try:
        rollover.fresh_folder()
        key = rollover.new_key()
        csr = rollover.folder / _CSR
        atomic_write(csr, rolled_request(rollover.config, key, rollover.generation))
        fsync_dir(rollover.folder)
        return (
            f"key of the new issuing CA {rollover.name} made; its request is {csr}: carry it "
            "to the root's machine ('certdesk sign-issuing'), then run here "
            "'certdesk rollover --import FILE'"
        )
    finally:
        rollover.close()


def install(
    home: Home, secret_file: Path | None, certificate: Path, active_from: str | None
) -> str:
    """The certificates ``sign-issuing`` made for the request: checked, then installed."""
    rollover = _Rollover(home, secret_file)
    try:
        if not (rollover.folder / _CSR).exists():
            raise refusal("ROLLOVER_NON_VALIDO", "nessuna_attesa", cartella=rollover.folder)
        key = rollover.provider().load("issuing")
        issuing = check_rolled(home, key, certificate.read_bytes(), str(certificate))
        return rollover.commit(issuing, active_from)
    finally:
        rollover.close()
