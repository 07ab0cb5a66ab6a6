"""Signers: where CSRs are checked and certificates get their CA signature, in this
process or in workers.

A signature with the CA key costs about a millisecond and holds the GIL, so throughput
needs processes. Each worker gets the CA key once: forked with the daemon's key in
memory (key files), or spawned to open its own session with the token (PKCS#11 state is
never shared across a fork); jobs carry only the codice fiscale, the public key and the
issuer's name, results only the certificate. With two or more, the same processes check
the CSRs (``submit_checks``: no store needed), so the daemon's main process only claims,
decides, commits and publishes; they pre-sign OCSP responses (``sign_ocsp``) when idle.

``submit`` and ``submit_checks`` do not wait: the engine hands the checks of chunk k+1
and the signatures of chunk k to the workers, then publishes chunk k-1 while they work.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from .authority import CertificateAuthority, IssuedCertificate
from .codes import refusal
from .config import load_config
from .errors import CertdeskError, RequestRejected
from .faults import TokenFault
from .home import Home
from .policy import InspectedRequest, inspect_request
from .publication import FIRST_ISSUER
from .revocation import OcspJob, sign_ocsp_job
from .workerlife import bind_to_parent

__all__ = [
    "CheckJob",
    "CheckResult",
    "InProcessSigner",
    "PendingChecks",
    "PendingSignatures",
    "PoolSigner",
    "SignJob",
    "Signer",
    "make_signer",
]

log = logging.getLogger("certdesk")

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class SignJob:
    codice_fiscale: str
    spki_der: bytes
    now: datetime
    serial: int | None = None  # reserved in the store before signing
    issuer: str = FIRST_ISSUER  # chosen with the serial (``issuers``): recovery keeps it


@dataclass(frozen=True)
class CheckJob:
    """The bytes of a request file, for ``policy.inspect_request``."""

    data: bytes
    allow_ec: bool


#: a request that passed its own checks, or the rule it broke
CheckResult = InspectedRequest | RequestRejected


class PendingSignatures(Protocol):
    """Certificates being signed; ``result()`` waits for them, in the order of the jobs."""

    def result(self) -> list[IssuedCertificate]: ...


class PendingChecks(Protocol):
    """Requests being checked; ``result()`` waits for them, in the order of the jobs. It
    raises if the checking failed as a whole (a worker died twice, a bug): the caller then
    checks in its own process, where a bug is logged and refused for its one request."""

    def result(self) -> list[CheckResult]: ...


class Signer(Protocol):
    #: how many processes sign in parallel (the engine sizes its batches with it)
    workers: int

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]: ...

    def submit(self, jobs: Sequence[SignJob]) -> PendingSignatures: ...

    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks: ...

    def sign_ocsp(self, jobs: Sequence[OcspJob]) -> list[bytes]: ...

    def close(self) -> None: ...


class _Ready(Generic[_Result]):
    """Results already made (or the error that stopped them)."""

    def __init__(self, done: list[_Result] | None, error: BaseException | None = None) -> None:
        self._done = done
        self._error = error

    def result(self) -> list[_Result]:
        if self._error is not None:
            raise self._error
        assert self._done is not None
        return self._done


class InProcessSigner:
    """Signs in the calling process: no IPC, no parallelism (tests, one-off tools).
    ``issuers`` (``issuers.Issuers``) gives the issuing CAs by name; without it, only ``ca``."""

    workers = 1

    def __init__(self, ca: CertificateAuthority, issuers: IssuerLookup | None = None) -> None:
        self._ca = ca
        self._issuers = issuers

    def _issuer(self, name: str) -> CertificateAuthority:
        if self._issuers is not None:
            return self._issuers.get(name)
        if name != self._ca.name:
            raise refusal("EMITTENTE_SCONOSCIUTO", emittente=name)
        return self._ca

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        return [_issue(self._issuer(j.issuer), j) for j in jobs]

    def submit(self, jobs: Sequence[SignJob]) -> PendingSignatures:
        try:
            return _Ready(self.sign(jobs))
        except Exception as exc:
            return _Ready(None, exc)

    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks:
        return self.submit_checks_here(jobs)

    @staticmethod
    def submit_checks_here(jobs: Sequence[CheckJob]) -> PendingChecks:
        try:
            return _Ready(_check_chunk(jobs))
        except Exception as exc:
            return _Ready(None, exc)

    def sign_ocsp(self, jobs: Sequence[OcspJob]) -> list[bytes]:
        return [_respond(self._issuer(j.issuer), j) for j in jobs]

    def close(self) -> None:
        pass


class IssuerLookup(Protocol):
    def get(self, name: str) -> CertificateAuthority: ...


def _issue(ca: CertificateAuthority, job: SignJob) -> IssuedCertificate:
    return ca.issue(job.codice_fiscale, job.spki_der, job.now, job.serial)


def _respond(ca: CertificateAuthority, job: OcspJob) -> bytes:
    return sign_ocsp_job(job, issuer_cert=ca.issuing_cert, issuer_key=ca.issuing_key)


# The CA a worker signs with: set by the pool's initializer (a forked worker), or loaded
# by the worker itself on first use (a spawned one: a key in a token).
_worker_ca: CertificateAuthority | None = None
_worker_home: tuple[str, bytes] | None = None
# The issuers made by a rollover after the worker started, loaded on first use.
_worker_others: dict[str, CertificateAuthority] = {}


def _init_worker(
    root: str, passphrase: bytes, parent_pid: int, loaded: CertificateAuthority | None
) -> None:
    """A worker's first step. With the ``fork`` start method the initializer's arguments
    are not pickled: ``loaded`` is the daemon's own CA, already in memory, so the worker
    skips decrypting the key again (the passphrase's key derivation is on the path to the
    first certificate). Without it (a spawned worker, for a key in a token: PKCS#11
    state is never inherited), the worker loads the CA itself, on first use
    (``_worker``), so that a token that fails is reported by a job, never breaks the pool."""
    global _worker_ca, _worker_home
    bind_to_parent(parent_pid)
    _worker_ca, _worker_home = loaded, (root, passphrase)


def _worker() -> CertificateAuthority:
    """This worker's CA. Loading it opens the worker's own session with the token; a
    failure (the token gone, the PIN refused) is a fault the daemon pauses for, tried
    again with the next job (a refused PIN is never offered again: ``keys.pin``)."""
    global _worker_ca
    if _worker_ca is None:
        assert _worker_home is not None, "worker initializer did not run"
        home = Home.at(_worker_home[0])
        try:
            # The daemon proved the key with a probe before starting its workers.
            _worker_ca = CertificateAuthority.load(
                home, load_config(home.root), _worker_home[1], probe=False
            )
        except CertdeskError as exc:
            raise TokenFault(exc.code, exc.message) from None
    return _worker_ca


def _worker_issuer(name: str) -> CertificateAuthority:
    """The issuing CA ``name``: one a rollover made is loaded here once (its key opened
    with the same secret), so a live daemon signs with it without new workers."""
    ca = _worker()
    if name == ca.name:
        return ca
    other = _worker_others.get(name)
    if other is None:
        assert _worker_home is not None, "worker initializer did not run"
        home = Home.at(_worker_home[0])
        try:
            other = CertificateAuthority.load(
                home, load_config(home.root), _worker_home[1], probe=False, issuer=name
            )
        except CertdeskError as exc:
            raise TokenFault(exc.code, exc.message) from None
        _worker_others[name] = other
    return other


def _warm_up() -> int:
    _worker()
    return os.getpid()


def _sign_chunk(jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
    return [_issue(_worker_issuer(j.issuer), j) for j in jobs]


def _check_chunk(jobs: Sequence[CheckJob]) -> list[CheckResult]:
    """A refusal is a result; anything else raised (a bug, no memory) fails the chunk."""
    results: list[CheckResult] = []
    for job in jobs:
        try:
            results.append(inspect_request(job.data, allow_ec=job.allow_ec))
        except RequestRejected as exc:
            results.append(exc)
    return results


def _ocsp_chunk(jobs: Sequence[OcspJob]) -> list[bytes]:
    return [_respond(_worker_issuer(j.issuer), j) for j in jobs]


class _PoolResults(Generic[_Job, _Result]):
    """Chunks of jobs out in the pool; ``result()`` waits for them, in the order of the jobs.

    A worker that dies (killed, out of memory) breaks the pool and every batch out in it.
    The first batch to notice restarts the pool; the others find it restarted and are sent
    again to the new one (a restart cancels what the old pool held). A batch whose own
    restart breaks again raises ``BrokenProcessPool``: a fault of the machine (a pause),
    never a refusal of its requests."""

    def __init__(
        self,
        signer: PoolSigner,
        work: Callable[[Sequence[_Job]], list[_Result]],
        jobs: Sequence[_Job],
    ) -> None:
        self._signer = signer
        self._work = work
        self._jobs = jobs
        self._pool, self._futures = signer._send(work, jobs)

    def result(self) -> list[_Result]:
        restarted = False
        while True:
            try:
                return [r for future in self._futures for r in future.result()]
            except (BrokenProcessPool, CancelledError):
                if self._signer._is_current(self._pool):
                    if restarted:
                        raise BrokenProcessPool("the signing processes died twice") from None
                    log.warning("a signing worker died: restarting the signing processes")
                    self._signer.restart()
                    restarted = True
                self._pool, self._futures = self._signer._send(self._work, self._jobs)


class PoolSigner:
    """``workers`` processes, each holding the CA key; started (and the key loaded) at once,
    while the daemon recovers, so the first request does not wait for them."""

    def __init__(
        self,
        home: Home,
        passphrase: bytes,
        workers: int,
        ca: CertificateAuthority | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self._initargs = (str(home.root), passphrase)
        self._ca = ca
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # "fork" explicitly (Python 3.14 defaults to forkserver): the workers get the
        # loaded CA without pickling it, and die with this process (workerlife). A key in
        # a token cannot be inherited (a forked child must not use its parent's PKCS#11
        # session, nor its initialised library): its workers are spawned and log in.
        spawn = self._ca is not None and not self._ca.inheritable
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn" if spawn else "fork"),
            initializer=_init_worker,
            initargs=(*self._initargs, os.getpid(), None if spawn else self._ca),
        )
        self._warm = [pool.submit(_warm_up) for _ in range(self.workers)]
        return pool

    def _warming(self) -> CertificateAuthority | None:
        """The daemon's own CA while spawned workers still start (a new interpreter, its
        imports, its own login: a few tenths of a second), so that the first
        certificates are signed here instead of waiting for them; None otherwise (forked
        workers start at once)."""
        ca = self._ca
        if ca is None or ca.inheritable or all(f.done() for f in self._warm):
            return None
        return ca

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def submit(self, jobs: Sequence[SignJob]) -> PendingSignatures:
        ca = self._warming()
        if ca is not None and all(j.issuer == ca.name for j in jobs):
            return InProcessSigner(ca).submit(jobs)
        return self._map(_sign_chunk, jobs)

    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks:
        if self._warming() is not None:
            return InProcessSigner.submit_checks_here(jobs)
        return self._map(_check_chunk, jobs)

    def sign_ocsp(self, jobs: Sequence[OcspJob]) -> list[bytes]:
        return self._map(_ocsp_chunk, jobs).result()

    def _map(
        self, work: Callable[[Sequence[_Job]], list[_Result]], jobs: Sequence[_Job]
    ) -> _PoolResults[_Job, _Result] | _Ready[_Result]:
        if not jobs:
            return _Ready([])
        try:
            return _PoolResults(self, work, jobs)
        except BrokenProcessPool as exc:
            return _Ready(None, exc)  # reported by ``result()``, as every other failure

    def _send(
        self, work: Callable[[Sequence[_Job]], list[_Result]], jobs: Sequence[_Job]
    ) -> tuple[ProcessPoolExecutor, list[Future[list[_Result]]]]:
        """The jobs out in the current pool, one chunk per worker (fewest round trips);
        a pool found broken is restarted once first."""
        size = -(-len(jobs) // self.workers)
        for attempt in range(2):
            pool = self._pool
            try:
                return pool, [pool.submit(work, jobs[i : i + size])
                              for i in range(0, len(jobs), size)]  # fmt: skip
            except BrokenProcessPool:
                if attempt:
                    raise
                log.warning("the signing processes had stopped: restarting them")
                self.restart()
        raise AssertionError("unreachable")

    def _is_current(self, pool: ProcessPoolExecutor) -> bool:
        return pool is self._pool

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        return self.submit(jobs).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_signer(
    home: Home, ca: CertificateAuthority, passphrase: bytes, workers: int | None
) -> Signer:
    """Worker processes, the number of cores by default.

    Even ``--workers 1`` signs in a worker: the main process reads, checks, commits and
    writes files meanwhile, which beats doing both in turn on one core."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    return PoolSigner(home, passphrase, count, ca)
