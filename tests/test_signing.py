"""Signers (``signing.py``): the CA signature in this process or in forked workers, which keep
the order of the jobs, sign OCSP responses too, reuse the loaded key and survive a killed
worker."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from engine_support import cf_n, key_n, spki_der

from certdesk.authority import CertificateAuthority
from certdesk.home import Home
from certdesk.signing import InProcessSigner, PoolSigner, SignJob
from conftest import PASSPHRASE

pytestmark = pytest.mark.timeout(120)


def test_pool_signer_keeps_the_order_of_the_jobs(home: Path, ca: CertificateAuthority) -> None:
    now = datetime.now(UTC)
    jobs = [SignJob(cf_n(i), spki_der(key_n(i % 3)), now) for i in range(7)]
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
    certs = InProcessSigner(ca).sign([SignJob(cf_n(i), spki_der(key_n(i)), now) for i in range(3)])
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
        signed = pool.sign([SignJob(cf_n(3), spki_der(key_n(0)), datetime.now(UTC))])
    finally:
        pool.close()
    x509.load_der_x509_certificate(signed[0].der).verify_directly_issued_by(ca.issuing_cert)


def test_pool_signer_survives_a_killed_worker(home: Path) -> None:
    pool = PoolSigner(Home.at(home), PASSPHRASE.encode(), 1)
    try:
        now = datetime.now(UTC)
        assert len(pool.sign([SignJob(cf_n(1), spki_der(key_n(0)), now)])) == 1
        for pid in list(pool._pool._processes):  # the worker dies (OOM killer, kill -9)
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        signed = pool.sign([SignJob(cf_n(2), spki_der(key_n(1)), now)])
        assert len(signed) == 1
    finally:
        pool.close()


def test_in_process_signer_reports_errors_at_result(ca: CertificateAuthority) -> None:
    pending = InProcessSigner(ca).submit([SignJob(cf_n(1), b"not a key", datetime.now(UTC))])
    with pytest.raises(ValueError):
        pending.result()
