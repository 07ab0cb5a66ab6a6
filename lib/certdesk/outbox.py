"""``outbox/``: every path certdesk publishes, named in one place (contract, section 5).

The outbox is a projection of the state store that users, integrators and tests read by
name, so its names are the contract. This module is their one owner: the publishers, the
daemon's heartbeat and reserve, the client, the panels and the ledger's DataFrame all ask
an :class:`Outbox` for a path, and no other module joins a name to an outbox folder
(``tests/test_layers.py`` checks it).

    outbox/certs/<IdOperazione>.pem       certificate
    outbox/receipts/<name>.json           receipt of an input (``certdesk.names``)
    outbox/ledger.csv, outbox/journal.csv the ledger and the hash-chained journal
    outbox/ca/root.pem, issuing.pem, chain.pem, issuing.crl (DER), issuing.crl.pem
    outbox/ca/<genN>/issuing.pem, chain.pem, issuing.crl, issuing.crl.pem
                                          a later issuing CA (``certdesk rollover``)
    outbox/ocsp/<serial-hex>.der          pre-signed OCSP response (``certdesk.revocation``)
    outbox/ledger.parquet/<IdOperazione>.parquet   the ledger as Parquet parts
    outbox/daemon.json                    the daemon's heartbeat
    outbox/<canale>/certs/, receipts/, ledger.csv
                                          a channel's own (``Outbox.of_channel``)

Files appear atomically: each is written aside, under a hidden ``.<name>.<...>.tmp`` in
its own folder, then renamed; a start-up deletes the asides a killed writer left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .home import Home
from .names import receipt_name, recorded_receipt_name
from .publication import FIRST_ISSUER, is_issuer_name
from .revocation import ocsp_file_name

__all__ = ["IssuerFiles", "Outbox"]


@dataclass(frozen=True)
class IssuerFiles:
    """What ``outbox/ca/`` publishes of one issuing CA. The first issuer's files are
    ``outbox/ca/`` itself (the paths every certificate named before a rollover); a later
    issuer's are in ``outbox/ca/<name>/``."""

    name: str
    folder: Path
    certificate: Path  # PEM; served as DER at the caIssuers URL
    chain: Path  # the issuer, then the root
    crl: Path  # DER, at the CRL distribution point
    crl_pem: Path


@dataclass(frozen=True)
class Outbox:
    """The paths under one ``outbox/`` folder (``root``). Folders and fixed files are built
    once (cached); the per-item ``*_fspath`` variants give plain strings, for the batch
    writers that name thousands of files a second."""

    root: Path

    @classmethod
    def of(cls, home: Home | str | os.PathLike[str]) -> Outbox:
        """The outbox of a home: a :class:`Home`, or the home's folder (kept relative if
        it is: a client's paths are the ones it was given)."""
        return cls((home if isinstance(home, Home) else Home(Path(home))).outbox)

    @classmethod
    def of_channel(cls, home: Home, canale: str) -> Outbox:
        """Where the receipts of ``canale`` go, with a named channel's certificates and
        ledger: ``outbox/`` itself for the default channel (``channels``)."""
        return cls(home.channel_outbox(canale))

    # -- folders ---------------------------------------------------------------------
    @cached_property
    def certs(self) -> Path:
        return self.root / "certs"

    @cached_property
    def receipts(self) -> Path:
        return self.root / "receipts"

    @cached_property
    def ca(self) -> Path:
        return self.root / "ca"

    @cached_property
    def ocsp(self) -> Path:
        return self.root / "ocsp"

    @cached_property
    def columnar_ledger(self) -> Path:
        """The ledger as Parquet parts (``certdesk.outbox_columnar``)."""
        return self.root / "ledger.parquet"

    @cached_property
    def columnar_parts_glob(self) -> str:
        """Every part of ``ledger.parquet/`` and nothing else, for a query engine."""
        return os.fspath(self.columnar_ledger / "*.parquet")

    @cached_property
    def folders(self) -> tuple[Path, ...]:
        """``outbox/`` and each folder in it, parents first."""
        return (self.root, self.certs, self.receipts, self.ca, self.ocsp, self.columnar_ledger)

    @cached_property
    def channel_folders(self) -> tuple[Path, ...]:
        """A channel's outbox: itself, its certificates and its receipts."""
        return (self.root, self.certs, self.receipts)

    # -- files of their own ------------------------------------------------------------
    @cached_property
    def ledger(self) -> Path:
        return self.root / "ledger.csv"

    @cached_property
    def journal(self) -> Path:
        return self.root / "journal.csv"

    @cached_property
    def heartbeat(self) -> Path:
        return self.root / "daemon.json"

    @cached_property
    def root_certificate(self) -> Path:
        return self.ca / "root.pem"

    @cached_property
    def issuing_certificate(self) -> Path:
        return self.ca / "issuing.pem"

    @cached_property
    def chain(self) -> Path:
        """The issuing CA's certificate, then the root's."""
        return self.ca / "chain.pem"

    @cached_property
    def crl(self) -> Path:
        """The CRL in DER, where ``[ca] crl_url`` points."""
        return self.ca / "issuing.crl"

    @cached_property
    def crl_pem(self) -> Path:
        return self.ca / "issuing.crl.pem"

    def issuer(self, name: str) -> IssuerFiles:
        """The files of the issuing CA ``name`` (``publication.issuer_name``)."""
        if name == FIRST_ISSUER:
            folder = self.ca
        elif is_issuer_name(name):
            folder = self.ca / name
        else:
            raise ValueError(f"not an issuer's name: {name!r}")
        return IssuerFiles(
            name=name, folder=folder, certificate=folder / "issuing.pem",
            chain=folder / "chain.pem", crl=folder / "issuing.crl",
            crl_pem=folder / "issuing.crl.pem",
        )  # fmt: skip

    # -- one file per item ---------------------------------------------------------------
    def certificate(self, id_operazione: str) -> Path:
        return Path(self.certificate_fspath(id_operazione))

    def certificate_fspath(self, id_operazione: str) -> str:
        return f"{self._certs}/{id_operazione}.pem"

    def certificate_named(self, certificato: str) -> Path:
        """The file a receipt's ``certificato`` (the ledger's ``Certificato``) names: a
        file name in ``certs/``; only its last part is taken, so it stays in there."""
        return self.certs / Path(certificato).name

    def receipt(self, recorded: str) -> Path:
        """The receipt of the input recorded as ``recorded`` (``names.recordable_name``)."""
        return Path(self.receipt_fspath(recorded))

    def receipt_fspath(self, recorded: str) -> str:
        return f"{self._receipts}/{recorded_receipt_name(recorded)}"

    def receipt_of(self, input_name: str | bytes) -> Path:
        """The receipt of ``inbox/input_name`` for any name, as a client sees it: ``str`` as
        ``os.listdir`` gives it, or ``bytes`` (``names.receipt_name``)."""
        return self.receipts / receipt_name(input_name)

    def ocsp_response_fspath(self, serial: int) -> str:
        """The pre-signed OCSP response of the certificate with this serial."""
        return f"{self._ocsp}/{ocsp_file_name(serial)}"

    @staticmethod
    def aside(target: Path, purpose: str) -> Path:
        """Where ``target`` is written anew before it is renamed over the old one:
        ``.<name>.<purpose>.tmp`` beside it, which a start-up deletes if a crash left it."""
        return target.with_name(f".{target.name}.{purpose}.tmp")

    # plain-string folders, for the ``*_fspath`` names
    @cached_property
    def _certs(self) -> str:
        return os.fspath(self.certs)

    @cached_property
    def _receipts(self) -> str:
        return os.fspath(self.receipts)

    @cached_property
    def _ocsp(self) -> str:
        return os.fspath(self.ocsp)
