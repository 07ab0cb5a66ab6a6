"""The CSR checks run in the signer's workers; the main process only reads and decides."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from engine_support import cf_n as _cf
from engine_support import csr_for, key_n

from certdesk.errors import RequestRejected
from certdesk.home import Home
from certdesk.intake import claim
from certdesk.operations import deciding
from certdesk.policy import InspectedRequest
from certdesk.service import Engine
from certdesk.signing import CheckJob, InProcessSigner, PendingChecks, PoolSigner
from conftest import PASSPHRASE, opened_engine

pytestmark = pytest.mark.timeout(120)


_keys = itertools.count(1000)  # a key of its own for every request of this file


def _csr(cf: str) -> bytes:
    return csr_for(cf, key_n(next(_keys)))


@pytest.fixture
def engine(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Two worker processes: the checks go to them."""
    with opened_engine(home, monkeypatch, workers=2, batch_size=4) as opened:
        yield opened


def _drop(engine: Engine, files: Sequence[tuple[str, bytes]]) -> list[dict[str, object]]:
    for name, data in files:
        (engine.home.inbox / name).write_bytes(data)
    claims = [c for name, _ in files if (c := claim(engine.home, name)) is not None]
    engine.process(claims)
    return [
        json.loads((engine.home.outbox / "receipts" / f"{name}.json").read_text("utf-8"))
        for name, _ in files
    ]


def test_pool_checks_keep_the_order_and_the_codes_of_refusals(home: Path) -> None:
    good = _csr(_cf(1))
    jobs = [
        CheckJob(good, allow_ec=False),
        CheckJob(b"not a csr", allow_ec=False),
        CheckJob(_csr("NOT-A-CODICE"), allow_ec=False),
        CheckJob(_csr(_cf(2)), allow_ec=False),
        CheckJob(b"", allow_ec=False),
    ]
    pool = PoolSigner(Home.at(home), PASSPHRASE.encode(), 2)
    try:
        results = pool.submit_checks(jobs).result()
    finally:
        pool.close()
    assert isinstance(results[0], InspectedRequest)
    assert results[0].codice_fiscale.value == _cf(1)
    assert isinstance(results[3], InspectedRequest)
    assert results[3].codice_fiscale.value == _cf(2)
    refused = [r for r in results if isinstance(r, RequestRejected)]
    codes = [r.code for r in refused]
    assert codes == ["CSR_NON_LEGGIBILE", "CODICE_FISCALE_NON_VALIDO", "FILE_VUOTO"]
    assert all(r.message for r in refused)


def test_the_main_process_does_not_check_csrs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With worker processes, a CSR check in this process would be a bug: the workers
    were forked before the patch, so they still check; this process may not."""

    def not_here(data: bytes, *, allow_ec: bool = False) -> InspectedRequest:
        raise AssertionError("a CSR was checked in the main process")

    monkeypatch.setattr(deciding, "inspect_request", not_here)
    files = [(f"r{i}.csr", _csr(_cf(10 + i))) for i in range(9)]
    files.append(("bad.csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"))
    receipts = _drop(engine, files)
    assert [r["esito"] for r in receipts] == ["OK"] * 9 + ["KO"]
    assert receipts[-1]["errori"][0]["codice"] == "CSR_NON_LEGGIBILE"  # type: ignore[index]


class _ChecksFail(InProcessSigner):
    """Signs here; checking fails as a whole, as when a worker dies twice."""

    workers = 2  # as a pool of two: the checks go to the workers

    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks:
        class _Broken:
            def result(self) -> list[object]:
                raise RuntimeError("the checking processes died")

        return _Broken()  # type: ignore[return-value]


def test_checks_that_fail_in_the_workers_are_made_here(engine: Engine) -> None:
    engine.signer.close()
    engine.signer = _ChecksFail(engine.ca)
    files = [(f"s{i}.csr", _csr(_cf(40 + i))) for i in range(5)] + [("x.csr", b"junk")]
    receipts = _drop(engine, files)
    assert [r["esito"] for r in receipts] == ["OK"] * 5 + ["KO"]
    assert receipts[-1]["errori"][0]["codice"] == "CSR_NON_LEGGIBILE"  # type: ignore[index]


class _NoChecks(InProcessSigner):
    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks:
        raise AssertionError("one worker: the main process checks")


def test_with_one_worker_the_main_process_checks(engine: Engine) -> None:
    """One worker is the busier process (it signs): the main process checks meanwhile."""
    engine.signer.close()
    engine.signer = _NoChecks(engine.ca)
    files = [(f"o{i}.csr", _csr(_cf(90 + i))) for i in range(5)] + [("y.csr", b"junk")]
    receipts = _drop(engine, files)
    assert [r["esito"] for r in receipts] == ["OK"] * 5 + ["KO"]


def test_a_killed_worker_costs_no_batch_out_in_the_pool(home: Path) -> None:
    """Signatures, checks and signatures out together when a worker dies, and more sent
    after the first is collected: the first batch to notice restarts the pool, the others
    are sent again to the new one, which is not restarted under the new work; none is lost
    or cancelled (a cancelled batch would be refused as FIRMA_NON_RIUSCITA)."""
    from datetime import UTC, datetime

    from certdesk.signing import SignJob

    now = datetime.now(UTC)
    checks = [CheckJob(_csr(_cf(60 + i)), allow_ec=False) for i in range(4)]
    spkis = [r.spki_der for r in InProcessSigner.__new__(InProcessSigner).submit_checks(checks)
             .result() if isinstance(r, InspectedRequest)]  # fmt: skip
    pool = PoolSigner(Home.at(home), PASSPHRASE.encode(), 2)
    try:
        assert len(pool.sign([SignJob(_cf(70), spkis[0], now)])) == 1  # workers up
        first = pool.submit([SignJob(_cf(71 + i), spkis[i], now) for i in range(4)])
        checked = pool.submit_checks(checks)
        second = pool.submit([SignJob(_cf(75 + i), spkis[i], now) for i in range(4)])
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)
        assert len(first.result()) == 4
        # As the pipeline does: new work goes out before the other batches are collected.
        third = pool.submit([SignJob(_cf(80 + i), spkis[i % 4], now) for i in range(200)])
        assert all(isinstance(r, InspectedRequest) for r in checked.result())
        assert len(second.result()) == 4
        assert len(third.result()) == 200
    finally:
        pool.close()
