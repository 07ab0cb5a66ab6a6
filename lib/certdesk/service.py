"""The engine: the front the daemon and the CLI use, over the operations.

It wires one home's parts (CA, store, signer, outbox) once and hands each call to its
use case in ``certdesk.operations``: ``process`` (issuing and cancelling), ``recover``,
``periodic``, ``idle_work``, ``republish``. The crash-safe order of each is in its
module's docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from .authority import CertificateAuthority
from .clock import now_utc
from .config import Config
from .home import Home
from .intake import Claim
from .issuers import Issuers
from .operations import processing, recovery, upkeep
from .operations.parts import Parts
from .publish import Publisher
from .receipts import Outcome
from .revocation_publisher import RevocationPublisher
from .signing import Signer
from .store import Store

__all__ = ["Engine", "Outcome"]


class Engine:
    """One home's operations; owns the store and the signer (``close``)."""

    def __init__(
        self,
        home: Home,
        config: Config,
        ca: CertificateAuthority,
        store: Store,
        signer: Signer,
        *,
        clock: Callable[[], datetime] = now_utc,
        issuers: Issuers | None = None,
    ) -> None:
        """``issuers``: every issuing CA of the home (``runtime.open_engine`` gives them
        the secret, so that a rollover's new issuer is loaded while the daemon runs)."""
        publisher = Publisher(home)
        issuers = issuers or Issuers(home, config, ca)
        # OCSP responses are signed by the same processes as certificates (both cores);
        # looked up at each call, so a replaced signer is the one used.
        revocation = RevocationPublisher(
            home, config, ca, store, sign_ocsp=lambda jobs: self.signer.sign_ocsp(jobs),
            issuers=issuers,
        )  # fmt: skip
        self._parts = Parts(
            home, config, ca, store, signer, publisher, revocation, clock, issuers
        )

    # -- the parts, for the CLI, the panels' tests and the benchmarks -----------------
    @property
    def home(self) -> Home:
        return self._parts.home

    @property
    def config(self) -> Config:
        return self._parts.config

    @property
    def ca(self) -> CertificateAuthority:
        return self._parts.ca

    @property
    def store(self) -> Store:
        return self._parts.store

    @property
    def publisher(self) -> Publisher:
        return self._parts.publisher

    @property
    def revocation(self) -> RevocationPublisher:
        return self._parts.revocation

    @property
    def signer(self) -> Signer:
        return self._parts.signer

    @signer.setter
    def signer(self, signer: Signer) -> None:
        self._parts.signer = signer

    # -- inputs ---------------------------------------------------------------------
    def process(
        self, items: Iterable[Claim], *, report: Callable[[list[Outcome]], None] | None = None
    ) -> list[Outcome]:
        """Process claimed inputs in order (``operations.processing``)."""
        return processing.process(self._parts, items, report)

    def recover(self) -> list[Outcome]:
        """Finish what a crash or a pause interrupted (``operations.recovery``)."""
        return recovery.recover(self._parts)

    def finish_interrupted(self) -> list[Outcome]:
        """Publish what a batch that failed half-way had committed."""
        return recovery.finish_interrupted(self._parts)

    def outcome_of(self, item: Claim) -> Outcome | None:
        return recovery.outcome_of(self._parts, item)

    def refuse_internal(self, item: Claim, error: Exception) -> Outcome:
        return recovery.refuse_internal(self._parts, item, error)

    # -- time -----------------------------------------------------------------------
    def periodic(self) -> None:
        upkeep.periodic(self._parts)

    def sweep_expired(self) -> int:
        return upkeep.sweep_expired(self._parts)

    def idle_work(self, *, ahead: bool = True) -> int:
        return upkeep.idle_work(self._parts, ahead=ahead)

    def catch_up_columnar(self) -> int:
        return upkeep.catch_up_columnar(self._parts)

    @property
    def warnings(self) -> list[dict[str, str]]:
        """What the daemon warns of (``EMITTENTE_IN_SCADENZA``), as of the last periodic pass."""
        return self._parts.warnings

    def check_issuer_validity(self) -> list[dict[str, str]]:
        return upkeep.check_issuer_validity(self._parts)

    def republish(self, *, ocsp_ahead: bool = True) -> dict[str, int]:
        return upkeep.republish(self._parts, ocsp_ahead=ocsp_ahead)

    def close(self) -> None:
        self._parts.signer.close()
        self._parts.store.close()
