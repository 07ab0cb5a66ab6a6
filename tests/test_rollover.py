"""Issuing CA rollover (issue 17, part 3): ``certdesk rollover`` in the middle of a live
daemon, certificates of both issuers checked by ``openssl`` and pkilint, cancellations of
each in their own issuer's CRL and OCSP only; a backlog reserved under the old issuer
signed by it after the switch; a home made before rollovers keeps its URLs; the warning."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from daemon_support import DaemonProcess, make_csr, wait_for, wait_receipt
from engine_support import leave_in_generazione
from serve_support import Served, cancel, free_port, openssl_ocsp_url, publish_on

from ca_helpers import pkilint_findings
from certdesk.clock import now_utc
from certdesk.home import Home
from certdesk.intake import claim
from certdesk.rollover import roll
from certdesk.runtime import open_engine
from conftest import ledger_rows, pkilint_cert, run_certdesk


def _drop(home: Path, name: str, data: bytes) -> None:
    aside = home / "inbox" / f".{name}.tmp"
    aside.write_bytes(data)
    aside.rename(home / "inbox" / name)


def _cert(home: Path, receipt: dict[str, object]) -> Path:
    return home / "outbox" / "certs" / str(receipt["certificato"])


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def _verify(cert: Path, issuer: Path, root: Path) -> None:
    done = _openssl("verify", "-CAfile", root, "-untrusted", issuer, cert)
    assert done.returncode == 0 and ": OK" in done.stdout, done.stdout + done.stderr


def _crl_serials(crl: Path, issuer: Path) -> set[int]:
    done = _openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", issuer, "-noout", "-verify")
    assert done.returncode == 0 and "verify OK" in done.stderr, done.stderr
    assert pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX", crl) == []
    return {r.serial_number for r in x509.load_der_x509_crl(crl.read_bytes())}


def _uri(cert: x509.Certificate, kind: type) -> list[str]:
    value = cert.extensions.get_extension_for_class(kind).value
    if isinstance(value, x509.CRLDistributionPoints):
        return [n.value for p in value for n in (p.full_name or [])]
    return [d.access_location.value for d in value]


def test_a_rollover_in_the_middle_of_a_live_daemon(home: Path) -> None:
    port = free_port()
    publish_on(home, port)
    ca = home / "outbox" / "ca"
    with DaemonProcess(home) as daemon:
        daemon.wait_running()
        for n in (1, 2):
            _drop(home, f"old{n}.csr", make_csr(n))
        old = [wait_receipt(home, f"old{n}.csr") for n in (1, 2)]
        assert all(r["esito"] == "OK" for r in old)
        made = run_certdesk(home, "rollover")
        assert "gen2" in made.stdout, made.stderr
        wait_for(lambda: (ca / "gen2" / "issuing.crl").exists(), 30, "the new issuer's CRL")
        for n in (3, 4):
            _drop(home, f"new{n}.csr", make_csr(n))
        new = [wait_receipt(home, f"new{n}.csr") for n in (3, 4)]
        assert all(r["esito"] == "OK" for r in new), new
        assert daemon.proc is not None and daemon.proc.poll() is None  # never restarted
        # each certificate verifies against its own chain, and names its own issuer's URLs
        old_cert, new_cert = _cert(home, old[0]), _cert(home, new[0])
        _verify(old_cert, ca / "issuing.pem", ca / "root.pem")
        _verify(new_cert, ca / "gen2" / "issuing.pem", ca / "root.pem")
        wrong = _openssl("verify", "-CAfile", ca / "root.pem", "-untrusted", ca / "issuing.pem",
                         new_cert)  # fmt: skip
        assert wrong.returncode != 0
        for cert in (old_cert, new_cert):
            pkilint_cert(cert)
        old_x = x509.load_pem_x509_certificate(old_cert.read_bytes())
        new_x = x509.load_pem_x509_certificate(new_cert.read_bytes())
        base = f"http://127.0.0.1:{port}"
        assert _uri(old_x, x509.CRLDistributionPoints) == [f"{base}/ca/issuing.crl"]
        assert _uri(new_x, x509.CRLDistributionPoints) == [f"{base}/ca/gen2/issuing.crl"]
        assert f"{base}/ca/gen2/issuing.cer" in _uri(new_x, x509.AuthorityInformationAccess)
        gen2 = x509.load_pem_x509_certificate((ca / "gen2" / "issuing.pem").read_bytes())
        assert new_x.not_valid_after_utc <= gen2.not_valid_after_utc  # never past its issuer
        # the ledger says who signed what
        by_id = {r["IdOperazione"]: r for r in ledger_rows(home)}
        assert [by_id[str(r["id_operazione"])]["Emittente"] for r in old + new] == [
            "gen1", "gen1", "gen2", "gen2"]  # fmt: skip
        # a cancellation of each: in its own issuer's CRL and OCSP, not the other's
        cancel(home, 1, str(old[0]["id_operazione"]), "FURTO_CERTIFICATO", wait=False)
        cancel(home, 3, str(new[0]["id_operazione"]), "CHIAVE_SMARRITA", wait=False)
        for name in (f"annulla-1-{old[0]['id_operazione']}.json",
                     f"annulla-3-{new[0]['id_operazione']}.json"):  # fmt: skip
            assert wait_receipt(home, name)["esito"] == "OK"
        in_old = _crl_serials(ca / "issuing.crl", ca / "issuing.pem")
        in_new = _crl_serials(ca / "gen2" / "issuing.crl", ca / "gen2" / "issuing.pem")
        assert in_old == {old_x.serial_number} and in_new == {new_x.serial_number}
        served = Served(home, port).start()
        try:
            _check_ocsp(home, served, old, new)
            health = subprocess.run(["curl", "-s", served.url("/health")], capture_output=True,
                                    text=True, timeout=30)  # fmt: skip
            assert set(json.loads(health.stdout)["crls"]) == {"gen1", "gen2"}
        finally:
            served.close()
        assert daemon.stop() == 0
    assert run_certdesk(home, "verify-ledger").returncode == 0


def _check_ocsp(home: Path, served: Served, old: list[dict[str, object]],
                new: list[dict[str, object]]) -> None:  # fmt: skip
    ca = home / "outbox" / "ca"
    expected = [(old[0], "revoked", ca), (old[1], "good", ca),
                (new[0], "revoked", ca / "gen2"), (new[1], "good", ca / "gen2")]  # fmt: skip
    for receipt, status, folder in expected:
        cert = _cert(home, receipt)
        done = openssl_ocsp_url(served, folder / "issuing.pem", folder / "chain.pem",
                                "-cert", str(cert))  # fmt: skip
        assert f"{cert}: {status}" in done.stdout, done.stdout + done.stderr
        assert "Response verify OK" in done.stderr
    # asked of the other issuer, a certificate is not ours to answer for
    wrong = openssl_ocsp_url(served, ca / "issuing.pem", ca / "chain.pem",
                             "-cert", str(_cert(home, new[1])))  # fmt: skip
    assert "unauthorized" in wrong.stdout + wrong.stderr


def test_a_backlog_reserved_under_the_old_issuer_is_signed_by_it_after_the_switch(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``kill -9`` after the decisions, before the signatures: the requests wait
    IN_GENERAZIONE with their serial and issuer; a rollover happens; the restart signs
    them with the issuer they were reserved under."""
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", "test-passphrase-not-secret")
    pending = leave_in_generazione(home, {f"b{n}.csr": make_csr(10 + n) for n in range(3)})
    assert len(pending) == 3 and {r.emittente for r in pending} == {"gen1"}
    roll(Home.at(home), None, None)
    restarted = open_engine(Home.at(home), workers=1)
    try:
        restarted.recover()
        done = [restarted.store.get(r.id_operazione) for r in pending]
        assert all(r is not None and r.stato.value == "ATTIVATO" for r in done)
        for record in done:
            assert record is not None
            der = restarted.store.certificate_der(record.id_operazione)
            assert der is not None
            cert = x509.load_der_x509_certificate(der)
            assert "G2" not in cert.issuer.rfc4514_string() and record.emittente == "gen1"
        # and a new request now gets the new issuer
        _drop(home, "after.csr", make_csr(20))
        taken = claim(restarted.home, "after.csr")
        assert taken is not None
        restarted.process([taken])
        after = max(restarted.store.find(), key=lambda r: r.id_operazione)
        assert after.emittente == "gen2"
    finally:
        restarted.close()


def test_an_existing_home_keeps_its_first_issuer_and_its_urls(home: Path) -> None:
    """A home made before rollovers: every certificate is gen1's, at the same paths."""
    _drop(home, "a.csr", make_csr(30))
    run_certdesk(home, "watch", "--once", "--workers", "1")
    rows = ledger_rows(home)
    assert [r["Emittente"] for r in rows] == ["gen1"]
    assert list(rows[0])[-2:] == ["Emittente", "Canale"]  # appended: the older keep their places
    assert (home / "outbox" / "ca" / "issuing.crl").exists()
    assert not [p for p in (home / "outbox" / "ca").iterdir() if p.is_dir()]


def test_the_warning_when_the_issuer_ends_before_a_new_certificate_would(home: Path) -> None:
    config = home / "certdesk.toml"
    config.write_text(config.read_text() + "[certificates]\nvalidity_days = 4000\n")
    with DaemonProcess(home) as daemon:
        daemon.wait_running()

        def warned() -> bool:
            beat = json.loads((home / "outbox" / "daemon.json").read_text())
            return any(a["codice"] == "EMITTENTE_IN_SCADENZA" for a in beat.get("avvisi", []))

        wait_for(warned, 30, "the warning in daemon.json")
        _drop(home, "w.csr", make_csr(40))
        receipt = wait_receipt(home, "w.csr")
        assert daemon.stop() == 0
    assert "EMITTENTE_IN_SCADENZA" in daemon.log()
    leaf = x509.load_pem_x509_certificate(_cert(home, receipt).read_bytes())
    issuer = x509.load_pem_x509_certificate((home / "outbox/ca/issuing.pem").read_bytes())
    assert leaf.not_valid_after_utc == issuer.not_valid_after_utc  # cut at its issuer's end
    from certdesk.panels._health import daemon_health, health_banner

    health = daemon_health(home, now=now_utc())
    assert health.warnings == () or "EMITTENTE_IN_SCADENZA" in health_banner(health)


def test_rollover_refusals_are_one_line(home: Path) -> None:
    done = run_certdesk(home, "rollover", "--from", "not a date", check=False)
    assert done.returncode == 1 and "ROLLOVER_NON_VALIDO" in done.stderr
    assert "Traceback" not in done.stderr and not (home / "state/ca/gen2").exists()
    done = run_certdesk(home, "rollover", "--import", str(home / "nothing.pem"), check=False)
    assert done.returncode == 1 and "ROLLOVER_NON_VALIDO" in done.stderr


def test_the_offline_walk_request_sign_issuing_import(home: Path, tmp_path: Path) -> None:
    """``rollover --request``, ``sign-issuing`` at the root (here the same home holds it),
    ``rollover --import``: the new issuer is installed and signs from ``--from``."""
    made = run_certdesk(home, "rollover", "--request")
    csr = home / "state" / "ca" / "gen2" / "issuing.csr.pem"
    assert csr.exists(), made.stderr
    again = run_certdesk(home, "rollover", check=False)
    assert again.returncode == 1 and "ROLLOVER_NON_VALIDO" in again.stderr
    signed = tmp_path / "gen2-chain.pem"
    run_certdesk(home, "sign-issuing", str(csr), "--out", str(signed))
    installed = run_certdesk(home, "rollover", "--import", str(signed), "--from", "2999-01-01",
                             check=False)  # fmt: skip
    assert installed.returncode == 1 and "ROLLOVER_NON_VALIDO" in installed.stderr  # past its end
    installed = run_certdesk(home, "rollover", "--import", str(signed))
    assert "gen2" in installed.stdout
    _drop(home, "o.csr", make_csr(50))
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert [r["Emittente"] for r in ledger_rows(home)] == ["gen2"]
    ca = home / "outbox" / "ca"
    _verify(home / "outbox" / "certs" / ledger_rows(home)[0]["Certificato"],
            ca / "gen2" / "issuing.pem", ca / "root.pem")  # fmt: skip
