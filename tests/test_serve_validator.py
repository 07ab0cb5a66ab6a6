"""An independent validator, and freshness, with the daemon running beside the service.

pyhanko-certvalidator is given the root alone and fetching on: it fetches the issuing CA
from the certificate's caIssuers URL, then the OCSP answer or the CRL from the
certificate's own URLs, with revocation information required for the certificate. It
validates a fresh certificate and refuses a cancelled one.

Freshness (issue 14, item 4): once an annullamento's receipt appears, the responder
already answers ``revoked`` with the reason and time, and the CRL it serves lists the
certificate; a new certificate's status is ``tryLater`` until its first response is
signed, never ``unauthorized``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from daemon_support import DaemonProcess, make_csr, receipt_path, wait_for, wait_receipt
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from serve_support import (
    Served,
    cancel,
    free_port,
    http_request,
    ocsp_request,
    ocsp_status,
    publish_on,
)

from conftest import drop

RULES = [RevocationCheckingRule.OCSP_REQUIRED, RevocationCheckingRule.CRL_REQUIRED]


@dataclass(frozen=True)
class Live:
    home: Path
    daemon: DaemonProcess
    served: Served

    def status(self, cert: Path) -> str:
        der = ocsp_request(self.home / "outbox" / "ca" / "issuing.pem", "-cert", str(cert))
        reply = http_request(self.served.port, "POST", "/ocsp", der,
                             Content_Type="application/ocsp-request")  # fmt: skip
        return ocsp_status(reply.body)

    def issue(self, n: int) -> Path:
        """A certificate for person ``n``; its status is tryLater (never unauthorized)
        until its first response is signed, then good."""
        drop(self.home, f"p{n}.csr", make_csr(n))
        receipt = wait_receipt(self.home, f"p{n}.csr", timeout=30)
        assert receipt["esito"] == "OK", receipt
        cert = self.home / "outbox" / "certs" / receipt["certificato"]
        seen: list[str] = []

        def good() -> bool:
            seen.append(self.status(cert))
            return seen[-1] == "GOOD"

        wait_for(good, 30, "the first OCSP response", interval=0.05)
        assert set(seen) <= {"TRY_LATER", "GOOD"}, seen
        return cert


@pytest.fixture(scope="module")
def live(ca_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("serve-live") / "home"
    shutil.copytree(ca_template, home)
    port = free_port()
    publish_on(home, port)
    daemon = DaemonProcess(home)
    try:
        daemon.start()
        daemon.wait_running()
        with Served(home, port) as served:
            yield Live(home, daemon, served)
    finally:
        daemon.close()


def _validate(home: Path, cert: Path, rule: RevocationCheckingRule) -> None:
    """pyhanko-certvalidator with the root alone, fetching, revocation info required."""

    def load(path: Path) -> asn1_x509.Certificate:
        _, _, der = pem.unarmor(path.read_bytes())
        return asn1_x509.Certificate.load(der)

    policy = CertRevTrustPolicy(RevocationCheckingPolicy(
        ee_certificate_rule=rule,
        # certdesk publishes no CRL of the root for the issuing CA: not asked here
        intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
    ))  # fmt: skip
    context = ValidationContext(
        trust_roots=[load(home / "outbox" / "ca" / "root.pem")],
        allow_fetching=True,
        revinfo_policy=policy,
        fetcher_backend=RequestsFetcherBackend(per_request_timeout=10),
    )
    validator = CertificateValidator(load(cert), validation_context=context)
    asyncio.run(validator.async_validate_usage({"digital_signature"}, {"client_auth"}))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_validator_accepts_a_fresh_certificate_from_its_own_urls(
    live: Live, rule: RevocationCheckingRule
) -> None:
    cert = live.issue(10 + RULES.index(rule))
    before = len(live.served.access_lines())
    _validate(live.home, cert, rule)
    fetched = " ".join(live.served.access_lines()[before:])
    assert '"/ca/issuing.cer" 200' in fetched  # the issuing CA, from caIssuers
    assert ('"/ocsp" 200' in fetched) if rule.name.startswith("OCSP") else (
        '"/ca/issuing.crl" 200' in fetched
    )


def test_after_the_receipt_of_an_annullamento_the_answer_is_revoked_at_once(live: Live) -> None:
    cert = live.issue(20)
    serial = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
    id_operazione = cert.stem
    name = cancel(live.home, 20, id_operazione, "ATTIVITA_CESSATA", wait=False)
    receipt = receipt_path(live.home, name)
    deadline = time.monotonic() + 30
    while not receipt.exists():  # ask the moment the receipt appears
        assert time.monotonic() < deadline, "no receipt for the annullamento"
        time.sleep(0.001)
    assert live.status(cert) == "REVOKED"
    crl = x509.load_der_x509_crl(http_request(live.served.port, "GET", "/ca/issuing.crl").body)
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.cessation_of_operation
    for rule in RULES:
        with pytest.raises(RevokedError):
            _validate(live.home, cert, rule)
