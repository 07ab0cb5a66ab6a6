"""Signers, batched durable writes and the pipelined request batch.

The pipeline (``certdesk.operations.issuing.issue``) hands chunk k+1 to the signing workers before
it publishes chunk k; these tests force tiny chunks so that repeats, key conflicts and
signing failures cross chunk boundaries, and check the order the contract fixes: nothing
is renamed into place before the batch is durable, receipts after certificates.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from daemon_support import configure
from stdnum.it import codicefiscale

from certdesk import fsutil
from certdesk.authority import CertificateAuthority, IssuedCertificate
from certdesk.config import load_config
from certdesk.home import Home
from certdesk.intake import claim
from certdesk.publish import Publisher
from certdesk.records import journal_line, ledger_line
from certdesk.runtime import open_engine
from certdesk.service import Engine
from certdesk.signing import (
    CheckJob,
    InProcessSigner,
    PendingChecks,
    PendingSignatures,
    PoolSigner,
    SignJob,
)
from certdesk.store import Store
from conftest import PASSPHRASE

pytestmark = pytest.mark.timeout(120)


def _cf(n: int) -> str:
    prefix = f"RSSMRA80A{1 + n % 28:02d}H{500 + n // 28:03d}"
    return prefix + codicefiscale.calc_check_digit(prefix)


_KEYS: list[rsa.RSAPrivateKey] = []


def _key(i: int) -> rsa.RSAPrivateKey:
    while len(_KEYS) <= i:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[i]


def _csr(cf: str, key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cf)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _spki(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def ca(home: Path) -> CertificateAuthority:
    where = Home.at(home)
    return CertificateAuthority.load(where, load_config(where.root), PASSPHRASE.encode())


@pytest.fixture
def engine(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    configure(home, batch_size=2)  # chunks of 2 (the first of 1)
    opened = open_engine(Home.at(home), workers=1)
    opened.recover()
    try:
        yield opened
    finally:
        opened.close()


# -- signers -----------------------------------------------------------------------------
def test_pool_signer_keeps_the_order_of_the_jobs(home: Path, ca: CertificateAuthority) -> None:
    now = datetime.now(UTC)
    jobs = [SignJob(_cf(i), _spki(_key(i % 3)), now) for i in range(7)]
    pool = PoolSigner(Home.at(home), PASSPHRASE.encode(), 2)
    try:
        pending = pool.submit(jobs)  # returns at once; the workers sign meanwhile
        signed = pending.result()
    finally:
        pool.close()
    assert [c.serial for c in signed] == [x509.load_der_x509_certificate(c.der).serial_number
                                          for c in signed]  # fmt: skip
    for job, cert in zip(jobs, signed, strict=True):
        parsed = x509.load_der_x509_certificate(cert.der)
        assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
            job.codice_fiscale
        )
        assert (
            parsed.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == job.spki_der
        )
        parsed.verify_directly_issued_by(ca.issuing_cert)
    # Same profile as in this process: only serial, dates and signature differ.
    local = InProcessSigner(ca).sign(jobs[:1])[0]
    mine = x509.load_der_x509_certificate(local.der)
    theirs = x509.load_der_x509_certificate(signed[0].der)
    assert [e.oid for e in mine.extensions] == [e.oid for e in theirs.extensions]


def test_pool_signer_signs_ocsp_responses(home: Path, ca: CertificateAuthority) -> None:
    """Pre-signed OCSP responses come from the workers too, in the order of the jobs."""
    from cryptography.x509 import ocsp

    from certdesk.revocation import OcspJob

    now = datetime.now(UTC)
    certs = InProcessSigner(ca).sign([SignJob(_cf(i), _spki(_key(i)), now) for i in range(3)])
    revoked_at = now - timedelta(hours=1)
    jobs = [
        OcspJob(c.der, revoked_at if i == 1 else None, None, now, now + timedelta(days=7))
        for i, c in enumerate(certs)
    ]
    pool = PoolSigner(Home.at(home), PASSPHRASE.encode(), 2, ca)
    try:
        responses = pool.sign_ocsp(jobs)
    finally:
        pool.close()
    public_key = ca.issuing_cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    for i, (cert, der) in enumerate(zip(certs, responses, strict=True)):
        response = ocsp.load_der_ocsp_response(der)
        assert response.serial_number == cert.serial
        expected = ocsp.OCSPCertStatus.REVOKED if i == 1 else ocsp.OCSPCertStatus.GOOD
        assert response.certificate_status == expected
        public_key.verify(
            response.signature,
            response.tbs_response_bytes,
            padding.PKCS1v15(),
            response.signature_hash_algorithm or hashes.SHA256(),
        )


def test_forked_workers_reuse_the_loaded_key(home: Path, ca: CertificateAuthority) -> None:
    # A wrong passphrase would fail a worker that decrypts the key again: it does not.
    pool = PoolSigner(Home.at(home), b"not the passphrase", 1, ca)
    try:
        signed = pool.sign([SignJob(_cf(3), _spki(_key(0)), datetime.now(UTC))])
    finally:
        pool.close()
    x509.load_der_x509_certificate(signed[0].der).verify_directly_issued_by(ca.issuing_cert)


def test_pool_signer_survives_a_killed_worker(home: Path) -> None:
    pool = PoolSigner(Home.at(home), PASSPHRASE.encode(), 1)
    try:
        now = datetime.now(UTC)
        assert len(pool.sign([SignJob(_cf(1), _spki(_key(0)), now)])) == 1
        for pid in list(pool._pool._processes):  # the worker dies (OOM killer, kill -9)
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        signed = pool.sign([SignJob(_cf(2), _spki(_key(1)), now)])
        assert len(signed) == 1
    finally:
        pool.close()


def test_in_process_signer_reports_errors_at_result(ca: CertificateAuthority) -> None:
    pending = InProcessSigner(ca).submit([SignJob(_cf(1), b"not a key", datetime.now(UTC))])
    with pytest.raises(ValueError):
        pending.result()


# -- batched durable writes --------------------------------------------------------------
@pytest.mark.parametrize("mode", ["syncfs", "no-syncfs", "dirty"])
def test_write_aside_sync_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 mode: str) -> None:  # fmt: skip
    calls: list[int] = []
    real = fsutil._syncfs
    if mode == "no-syncfs" or real is None:
        monkeypatch.setattr(fsutil, "_syncfs", None)
    else:
        monkeypatch.setattr(fsutil, "_syncfs", lambda fd: calls.append(fd) or real(fd))
    if mode == "dirty":  # much else waiting to be written back: one fsync per file
        monkeypatch.setattr(fsutil, "_dirty_bytes", lambda: 2**40)
    elif mode == "syncfs":
        monkeypatch.setattr(fsutil, "_dirty_bytes", lambda: 0)
    targets = [tmp_path / f"f{i}.txt" for i in range(5)]
    (tmp_path / "f0.txt").write_bytes(b"old")
    pairs = [(fsutil.write_aside(t, f"new {i}".encode()), t) for i, t in enumerate(targets)]
    assert (tmp_path / "f0.txt").read_bytes() == b"old"  # nothing visible yet
    assert not any(t.exists() for t in targets[1:])
    fsutil.sync_data(a for a, _ in pairs)
    fsutil.rename_into_place(pairs)
    if real is not None:
        assert len(calls) == (1 if mode == "syncfs" else 0)
    assert [t.read_bytes() for t in targets] == [f"new {i}".encode() for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(t.name for t in targets)


def test_publish_batch_renames_receipts_after_certificates(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = Home.at(home)
    publisher = Publisher(where)
    publisher.ensure_layout()
    store = Store(where.database)
    events: list[str] = []
    real_sync, real_replace = fsutil.sync_data, os.replace

    def sync(paths: object) -> None:
        events.append("sync")
        real_sync(paths)  # type: ignore[arg-type]

    def replace(src: str, dst: str) -> None:
        events.append(os.path.basename(os.path.dirname(dst)))
        real_replace(src, dst)

    monkeypatch.setattr("certdesk.publish.sync_data", sync)
    monkeypatch.setattr(fsutil.os, "replace", replace)
    try:
        publisher.publish_batch(
            store,
            certificates=[("20260101-000000001", b"pem 1"), ("20260101-000000002", b"pem 2")],
            ledger=[],
            receipts=[("a.csr", {"esito": "OK"}), ("b.csr", {"esito": "KO"})],
        )
    finally:
        store.close()
    assert events == ["sync", "certs", "certs", "receipts", "receipts"]
    assert json.loads((where.outbox / "receipts" / "b.csr.json").read_text()) == {"esito": "KO"}
    leftovers = [p for p in where.outbox.rglob(".*.tmp")]
    assert leftovers == []


# -- the store at scale: indexes and the ledger fast path --------------------------------
def test_fast_ledger_rebuild_equals_record_by_record(engine: Engine) -> None:
    names = ["plain.csr", 'with,comma "quoted".csr', "new\nline\x07.csr", "refused.csr"]
    for i, name in enumerate(names):
        data = _csr(_cf(40 + i), _key(10 + i)) if name != "refused.csr" else b"garbage"
        (engine.home.inbox / name).write_bytes(data)
    claims = [c for n in names if (c := claim(engine.home, n)) is not None]
    engine.process(claims)
    engine.publisher.rebuild_ledger(engine.store)
    expected = "".join(ledger_line(r) for r in engine.store.iter_requests())
    text = engine.publisher.ledger.read_text(encoding="utf-8")
    assert text.split("\n", 1)[1] == expected
    assert len(expected.splitlines()) == 4
    journal = "".join(journal_line(e) for e in engine.store.iter_events())
    assert engine.publisher.journal.read_text(encoding="utf-8").split("\n", 1)[1] == journal
    engine.publisher.rebuild_journal(engine.store)
    assert engine.publisher.journal.read_text(encoding="utf-8").split("\n", 1)[1] == journal


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "read-write"])
def test_ledger_update_patches_rows_like_a_rebuild(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool
) -> None:
    if not kernel_copy:
        monkeypatch.delattr(os, "copy_file_range")
    names = [f"r{i}.csr" for i in range(6)] + ['odd, "name"\x01.csr']
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(_csr(_cf(60 + i), _key(30 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    ids = [r.id_operazione for r in engine.store.iter_requests()]
    changed = [ids[0], ids[3], ids[-1]]  # first, middle and last rows
    now = datetime.now(UTC)
    with engine.store.transaction() as txn:
        for id_op in changed:
            txn.cancel(id_op, now=now, motivazione="ALTRO", nota="prova", operatore="test")
    before = engine.publisher.ledger.read_bytes()
    engine.publisher.update_ledger(engine.store, changed)
    patched = engine.publisher.ledger.read_bytes()
    # The replaced file is freed later (after the receipts), and only then.
    replaced = engine.home.outbox / ".ledger.csv.replaced.tmp"
    assert replaced.read_bytes() == before
    engine.publisher.release_old_ledger()
    assert not replaced.exists()
    engine.publisher.rebuild_ledger(engine.store)
    assert patched == engine.publisher.ledger.read_bytes()
    assert patched.count(b"ANNULLATO") == 3


def test_ledger_update_puts_missing_rows_in_place(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows a failed batch never appended (here the first and a middle one, while a later
    row is in the file) are inserted where they belong, with a changed row patched, and
    no rebuild; a ledger that is not what certdesk writes is rebuilt."""
    names = [f"m{i}.csr" for i in range(4)]
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(_csr(_cf(80 + i), _key(40 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    ledger = engine.publisher.ledger
    lines = ledger.read_text(encoding="utf-8").splitlines(keepends=True)
    ledger.write_text(lines[0] + lines[2] + lines[4], encoding="utf-8")  # rows 1 and 3 lost
    missing = [lines[1].split(",")[0], lines[3].split(",")[0]]
    changed = lines[2].split(",")[0]
    with engine.store.transaction() as txn:
        txn.cancel(changed, now=datetime.now(UTC), motivazione="ALTRO", nota="x", operatore="t")
    rebuilds: list[str] = []
    rebuild = engine.publisher.rebuild_ledger
    monkeypatch.setattr(engine.publisher, "rebuild_ledger", lambda store: rebuilds.append("!"))
    engine.publisher.update_ledger(engine.store, [*missing, changed])
    expected = "".join(ledger_line(r) for r in engine.store.iter_requests())
    assert ledger.read_text(encoding="utf-8") == lines[0] + expected
    assert rebuilds == []
    engine.publisher.update_ledger(engine.store, missing)  # present now: the same rows
    assert ledger.read_text(encoding="utf-8") == lines[0] + expected
    ledger.write_text(lines[0] + lines[1] + lines[2][:20], encoding="utf-8")  # torn
    engine.publisher.update_ledger(engine.store, missing)
    ledger.write_text(lines[1] + lines[2], encoding="utf-8")  # no header
    engine.publisher.update_ledger(engine.store, missing)
    assert rebuilds == ["!", "!"]
    monkeypatch.setattr(engine.publisher, "rebuild_ledger", rebuild)


def test_ledger_catch_up_after_a_crash_appends_only_the_missing_tail(engine: Engine) -> None:
    """A crash between a batch's commit and its append leaves out the last rows: they are
    appended (no rebuild); a ledger whose end cannot be shown whole and equal to the store
    is refused, so the caller rebuilds."""
    names = [f"t{i}.csr" for i in range(5)]
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(_csr(_cf(90 + i), _key(50 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    ledger = engine.publisher.ledger
    whole = ledger.read_bytes()
    lines = whole.splitlines(keepends=True)
    assert len(lines) == 6

    def ledger_after(text: bytes) -> tuple[bool, bytes]:
        ledger.write_bytes(text)
        return engine.publisher.catch_up_ledger(engine.store), ledger.read_bytes()

    assert ledger_after(b"".join(lines[:4])) == (True, whole)  # the last two appended
    assert ledger_after(whole) == (True, whole)  # nothing missing: nothing appended
    assert ledger_after(lines[0]) == (True, whole)  # the header alone: every row
    assert ledger_after(b"".join(lines[:4]) + lines[4][:30])[0] is False  # torn last row
    altered = lines[3].replace(b"ATTIVATO", b"ANNULLATO")
    assert ledger_after(b"".join(lines[:3]) + altered)[0] is False  # not the store's row
    assert ledger_after(b"")[0] is False
    assert ledger_after(b"".join(lines[1:4]))[0] is False  # no header
    # A last row the CSV quotes (a name with a comma, quotes, a newline shown as \x0a).
    ledger.write_bytes(whole)
    (engine.home.inbox / 'a, "b"\nc.csr').write_bytes(_csr(_cf(99), _key(59)))
    taken = claim(engine.home, 'a, "b"\nc.csr')
    assert taken is not None
    engine.process([taken])
    whole = ledger.read_bytes()
    assert whole.endswith(b',"a, ""b""\\x0ac.csr"\n')
    assert ledger_after(b"".join(whole.splitlines(keepends=True)[:-1])) == (True, whole)
    assert ledger_after(whole) == (True, whole)


# -- the pipelined batch -----------------------------------------------------------------
def _drop_all(engine: Engine, files: Sequence[tuple[str, bytes]]) -> list[dict[str, object]]:
    for name, data in files:
        (engine.home.inbox / name).write_bytes(data)
    claims = [c for name, _ in files if (c := claim(engine.home, name)) is not None]
    outcomes = engine.process(claims)
    assert [o.file for o in outcomes] == [name for name, _ in files]
    receipts = []
    for name, _ in files:
        path = engine.home.outbox / "receipts" / f"{name}.json"
        receipts.append(json.loads(path.read_text(encoding="utf-8")))
    return receipts


def test_pipeline_across_chunks(engine: Engine) -> None:
    first = _csr(_cf(1), _key(0))
    files = [
        ("a.csr", first),
        ("b.csr", _csr(_cf(2), _key(1))),
        ("c.csr", first),  # a repeat of a request two chunks back: same answer
        ("d.csr", _csr(_cf(3), _key(1))),  # b's key for another person: refused
        ("e.csr", b"not a request"),
        ("f.csr", _csr(_cf(4), _key(2))),
        ("g.csr", _csr(_cf(5), _key(3))),
    ]
    receipts = _drop_all(engine, files)
    esiti = [(r["esito"], (r["errori"] or [{"codice": ""}])[0]["codice"]) for r in receipts]
    assert esiti == [
        ("OK", ""),
        ("OK", ""),
        ("OK", ""),
        ("KO", "CHIAVE_GIA_CERTIFICATA"),
        ("KO", "CSR_NON_LEGGIBILE"),
        ("OK", ""),
        ("OK", ""),
    ]
    assert receipts[2]["id_operazione"] == receipts[0]["id_operazione"]
    assert receipts[2].get("ripetizione") is True
    # Every accepted request has its certificate, a ledger row in order, and is done.
    ids = [r["id_operazione"] for r in receipts]
    for r in receipts:
        if r["esito"] == "OK":
            assert (engine.home.outbox / "certs" / f"{r['id_operazione']}.pem").exists()
    ledger = engine.publisher.ledger.read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in ledger] == sorted(set(ids))
    assert engine.store.pending_inputs() == []
    assert list(engine.home.work.iterdir()) == []
    # The journal and ledger match the store.
    from certdesk.verify import verify_journal, verify_ledger

    verify_journal(engine.publisher.journal, engine.store)
    verify_ledger(engine.publisher.ledger, engine.store)


class _FailSecond:
    """Signs in this process, but the second submitted chunk fails."""

    workers = 1

    def __init__(self, inner: InProcessSigner) -> None:
        self.inner = inner
        self.calls = 0

    def submit(self, jobs: Sequence[SignJob]) -> PendingSignatures:
        self.calls += 1
        if self.calls == 2:
            jobs = [SignJob(j.codice_fiscale, b"broken", j.now) for j in jobs]
        return self.inner.submit(jobs)

    def submit_checks(self, jobs: Sequence[CheckJob]) -> PendingChecks:
        return self.inner.submit_checks(jobs)

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        return self.submit(jobs).result()

    def close(self) -> None:
        pass


def test_a_failed_chunk_is_refused_and_the_others_issued(
    engine: Engine, ca: CertificateAuthority
) -> None:
    engine.signer.close()
    engine.signer = _FailSecond(InProcessSigner(ca))
    files = [(f"{c}.csr", _csr(_cf(20 + i), _key(20 + i))) for i, c in enumerate("abcde")]
    receipts = _drop_all(engine, files)
    # chunks: [a] [b c] [d e]; the second fails as a whole
    assert [r["esito"] for r in receipts] == ["OK", "KO", "KO", "OK", "OK"]
    assert receipts[1]["errori"][0]["codice"] == "FIRMA_NON_RIUSCITA"
    assert receipts[1]["stato"] == "RIFIUTATO"


# -- the serial is reserved before the signature ------------------------------------------
class _CheckingSigner(InProcessSigner):
    """Signs in this process, after checking (through a second connection, so only what
    is committed) that the store already names each job's serial and validity."""

    def __init__(self, engine: Engine, fail: bool = False) -> None:
        super().__init__(engine.ca)
        self._db = engine.store.path
        self._fail = fail
        self.seen: list[tuple[str, str]] = []

    def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
        other = Store(self._db)
        try:
            for job in jobs:
                assert job.serial is not None
                row = other._conn.execute(
                    "SELECT stato, data_scadenza FROM requests WHERE seriale = ?",
                    (format(job.serial, "x"),),
                ).fetchone()
                assert row is not None and row[0] == "IN_GENERAZIONE", row
                self.seen.append((format(job.serial, "x"), row[1]))
        finally:
            other.close()
        if self._fail:
            raise RuntimeError("the signing device is gone")
        return super().sign(jobs)


def test_serial_and_validity_are_committed_before_the_signature(engine: Engine) -> None:
    signer = _CheckingSigner(engine)
    engine.signer.close()
    engine.signer = signer
    names = [f"s{i}.csr" for i in range(3)]
    for i, name in enumerate(names):
        (engine.home.inbox / name).write_bytes(_csr(_cf(90 + i), _key(50 + i)))
    engine.process([c for n in names if (c := claim(engine.home, n)) is not None])
    assert len(signer.seen) == 3
    for serial, until in signer.seen:
        (record,) = [r for r in engine.store.iter_requests() if r.seriale == serial]
        assert record.stato.value == "ATTIVATO"
        cert = x509.load_pem_x509_certificate(
            engine.publisher.certificate_path(record.id_operazione).read_bytes()
        )
        assert format(cert.serial_number, "x") == serial
        assert cert.not_valid_after_utc == record.data_scadenza
        assert until == record.data_scadenza.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_failed_signature_leaves_no_serial_in_the_ledger(engine: Engine) -> None:
    engine.signer.close()
    engine.signer = _CheckingSigner(engine, fail=True)
    (engine.home.inbox / "f.csr").write_bytes(_csr(_cf(95), _key(55)))
    engine.process([c for c in [claim(engine.home, "f.csr")] if c is not None])
    (record,) = list(engine.store.iter_requests())
    assert record.stato.value == "RIFIUTATO" and record.esito == "FIRMA_NON_RIUSCITA"
    assert record.seriale == "" and record.data_scadenza is None and record.certificato == ""
    # What was published says the same: the appended ledger row equals a rebuild's, and
    # the receipt names no expiry.
    appended = engine.publisher.ledger.read_bytes()
    engine.publisher.rebuild_ledger(engine.store)
    assert appended == engine.publisher.ledger.read_bytes()
    receipt = json.loads((engine.home.outbox / "receipts" / "f.csr.json").read_text())
    assert receipt["esito"] == "KO" and receipt["data_scadenza"] in (None, "")


def test_recovery_reserves_a_serial_for_a_row_recorded_without_one(engine: Engine) -> None:
    """A request left IN_GENERAZIONE by a version that did not reserve serials is given
    one (committed) before it is signed, and its certificate carries it."""
    from certdesk.states import Stato

    der = x509.load_pem_x509_csr(_csr(_cf(97), _key(57))).public_bytes(serialization.Encoding.DER)
    now = datetime.now(UTC)
    with engine.store.transaction() as txn:
        id_op = txn.record_new(
            stato=Stato.IN_GENERAZIONE, now=now, codice_fiscale=_cf(97), profilo="PF",
            esito="", file_origine="legacy.csr", claim="legacy-claim", input_sha256="ab" * 32,
            spki_sha256="cd" * 32, csr_der=der,
        )  # fmt: skip
    assert engine.store.get(id_op).seriale == ""  # type: ignore[union-attr]
    engine.finish_interrupted()
    record = engine.store.get(id_op)
    assert record is not None and record.stato is Stato.ATTIVATO and record.seriale
    cert = x509.load_pem_x509_certificate(
        engine.publisher.certificate_path(id_op).read_bytes()
    )
    assert format(cert.serial_number, "x") == record.seriale
    assert cert.not_valid_after_utc == record.data_scadenza
