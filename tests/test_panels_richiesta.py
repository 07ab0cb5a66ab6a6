"""Richiedi certificato, headless: upload with set_state, button.click(), read what it shows;
filed into the channel chosen, its receipt read there."""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest_panels import (
    CF_COMPANY,
    CF_PERSON,
    PAUSA_SPAZIO,
    PAUSED_WARNING,
    FakeDaemon,
    make_channels,
    make_csr,
    write_heartbeat,
)
from cryptography import x509

from certdesk.frame import format_date, load_ledger
from certdesk.panels import make_request_panel
from certdesk.panels._richiesta import MAX_CSR_BYTES, RequestPanel
from conftest import run_certdesk


def upload(panel: RequestPanel, name: str, data: bytes) -> None:
    """What the browser sends when a person picks a file (ipywidgets 8's wire format)."""
    panel.upload.set_state({"value": [{
        "name": name, "type": "application/pkcs10", "size": len(data), "content": data,
        "last_modified": int(time.time() * 1000),
    }]})


def submit_and_wait(panel: RequestPanel, timeout: float = 20.0) -> None:
    panel.submit.click()
    assert panel.waiter.join(timeout), "the panel is still waiting"
    assert panel.waiter.error is None


def inbox_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "inbox").glob("*") if not p.name.startswith("."))


def test_request_is_filed_and_its_outcome_shown(tmp_path: Path) -> None:
    csr = make_csr(CF_PERSON)
    with FakeDaemon(tmp_path) as daemon:
        panel = make_request_panel(tmp_path)
        assert "certdesk-daemon-ok" in panel.daemon.value
        upload(panel, "mia richiesta.pem", csr)
        assert "mia richiesta.pem" in panel.chosen.value
        submit_and_wait(panel)
    # what it wrote: the very bytes uploaded, under a plain *.csr name the daemon takes
    assert len(daemon.processed) == 1
    filed = daemon.processed[0]
    assert re.fullmatch(r"richiesta-\d{8}T\d+-[0-9a-f]{8}\.csr", filed)
    assert (tmp_path / "state" / "archive" / filed).read_bytes() == csr
    # what it shows: the portal's fields
    receipt = panel.last_receipt
    assert receipt is not None and receipt["esito"] == "OK"
    id_op = receipt["id_operazione"]
    shown = panel.result.value
    for label in ("IdOperazione", "Certificato", "Stato", "Data Richiesta", "Data Scadenza",
                  "Esito"):
        assert f">{label}</th>" in shown
    assert id_op in shown and f"{id_op}.pem" in shown and "ATTIVATO" in shown
    assert format_date(receipt["data_richiesta"]) in shown
    assert format_date(receipt["data_scadenza"]) in shown
    assert re.search(r"\d{2}/\d{2}/\d{4}", shown)
    assert "Richiesta elaborata" in panel.status.value
    # the download link carries the certificate published in outbox/certs
    link = re.search(r'download="([^"]+)" href="data:application/x-pem-file;base64,([^"]+)"',
                     shown)
    assert link is not None
    assert link.group(1) == f"{id_op}.pem"
    pem = base64.b64decode(link.group(2))
    assert pem == (tmp_path / "outbox" / "certs" / f"{id_op}.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.rfc4514_string() == f"CN={CF_PERSON}"
    # ready for the next one
    assert panel.upload.value == ()
    assert not panel.submit.disabled


def test_der_request_of_a_company(tmp_path: Path) -> None:
    csr = make_csr(CF_COMPANY, pem=False)
    with FakeDaemon(tmp_path):
        panel = make_request_panel(tmp_path)
        upload(panel, "azienda.der", csr)
        submit_and_wait(panel)
    assert panel.last_receipt is not None and panel.last_receipt["esito"] == "OK"
    ledger = load_ledger(tmp_path)
    assert ledger.loc[0, "CodiceFiscale"] == CF_COMPANY
    assert ledger.loc[0, "IdOperazione"] in panel.result.value


def test_refusal_shows_code_and_message(tmp_path: Path) -> None:
    with FakeDaemon(tmp_path):
        panel = make_request_panel(tmp_path)
        upload(panel, "rotto.csr", b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n")
        submit_and_wait(panel)
    assert panel.last_receipt is not None and panel.last_receipt["esito"] == "KO"
    assert "Richiesta rifiutata" in panel.status.value
    assert '<code class="certdesk-error-code">CSR_NON_VALIDA</code>' in panel.result.value
    assert "richiesta illeggibile" in panel.result.value
    assert "certdesk-download" not in panel.result.value
    assert ">KO<" in panel.result.value


def test_accepted_then_issued_follows_the_ledger(tmp_path: Path) -> None:
    with FakeDaemon(tmp_path, two_phase=True):
        panel = make_request_panel(tmp_path)
        upload(panel, "lenta.csr", make_csr(CF_PERSON))
        submit_and_wait(panel)
    receipt = panel.last_receipt
    assert receipt is not None and receipt["stato"] == "IN_GENERAZIONE"
    assert "ATTIVATO" in panel.result.value
    assert "certdesk-download" in panel.result.value


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "FILE_VUOTO"), (b"x" * (MAX_CSR_BYTES + 1), "FILE_TROPPO_GRANDE")],
)
def test_unfit_files_are_not_filed(tmp_path: Path, data: bytes, code: str) -> None:
    panel = make_request_panel(tmp_path)
    upload(panel, "file.csr", data)
    panel.submit.click()
    assert code in panel.status.value
    assert not panel.waiter.busy
    assert not (tmp_path / "inbox").exists() or inbox_files(tmp_path) == []


def test_nothing_chosen(tmp_path: Path) -> None:
    panel = make_request_panel(tmp_path)
    panel.submit.click()
    assert "Seleziona prima il file" in panel.status.value
    assert not (tmp_path / "inbox").exists()


def test_ui_is_not_frozen_and_request_stays_queued_without_daemon(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, age=120)  # a daemon that died two minutes ago
    panel = make_request_panel(tmp_path, timeout=1.0, interval=0.05)
    assert "certdesk-daemon-ko" in panel.daemon.value
    assert "non dà segni di vita" in panel.daemon.value
    upload(panel, "a.csr", make_csr(CF_PERSON))
    started = time.monotonic()
    panel.submit.click()
    assert time.monotonic() - started < 0.5  # the handler returns at once
    assert panel.waiter.busy and panel.submit.disabled
    assert "in attesa" in panel.status.value
    panel.submit.click()  # a second click while waiting files nothing more
    assert "già in elaborazione" in panel.status.value
    assert panel.waiter.join(10)
    assert "resta in coda" in panel.status.value
    queued = inbox_files(tmp_path)
    assert len(queued) == 1 and queued[0].suffix == ".csr"
    assert panel.last_input == queued[0]
    assert not panel.submit.disabled


def test_a_paused_daemon_is_said_and_the_request_stays_queued(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, state="paused", extra={"pausa": PAUSA_SPAZIO})
    panel = make_request_panel(tmp_path, timeout=0.5, interval=0.05)
    assert "certdesk-daemon-paused" in panel.daemon.value
    assert PAUSED_WARNING in panel.daemon.value
    assert "Daemon non attivo" not in panel.daemon.value
    upload(panel, "a.csr", make_csr(CF_PERSON))
    panel.submit.click()
    assert panel.waiter.join(10)
    assert "resta in coda" in panel.status.value
    assert len(inbox_files(tmp_path)) == 1
    assert PAUSED_WARNING in panel.daemon.value  # still said after the wait
    write_heartbeat(tmp_path)  # resumed
    panel.refresh_daemon()
    assert "certdesk-daemon-ok" in panel.daemon.value and "pausa" not in panel.daemon.value


def test_dates_are_italian_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receipt stamped 23:30 UTC on 31 December is shown as 01/01 in Rome."""
    name = "richiesta-x.csr"
    monkeypatch.setattr("certdesk.panels._richiesta.unique_name", lambda *_a: name)
    receipts = tmp_path / "outbox" / "receipts"
    receipts.mkdir(parents=True)
    (receipts / f"{name}.json").write_text(json.dumps({
        "file": name, "tipo": "richiesta", "esito": "OK", "id_operazione": "abc",
        "stato": "ATTIVATO", "certificato": "abc.pem",
        "data_richiesta": "2026-12-31T23:30:00Z", "data_scadenza": "2027-12-31T23:30:00Z",
        "errori": [],
    }))
    panel = make_request_panel(tmp_path)
    upload(panel, "x.csr", make_csr(CF_PERSON))
    submit_and_wait(panel)
    assert ">01/01/2027<" in panel.result.value
    assert ">01/01/2028<" in panel.result.value
    assert "non è ancora in outbox/certs" in panel.result.value  # no PEM: said, not crashed


# -- channels (issue 18) ----------------------------------------------------------------------


def test_the_channels_offered_are_those_taking_inputs(tmp_path: Path) -> None:
    panel = make_request_panel(tmp_path)  # no store: the default channel alone
    assert list(panel.canale.options) == [("predefinito (inbox/)", "")]
    make_channels(tmp_path, "zeta", "acme", "vecchio", retired=["vecchio"])
    assert list(make_request_panel(tmp_path).canale.options) == [
        ("predefinito (inbox/)", ""), ("acme", "acme"), ("zeta", "zeta")]
    panel.refresh_channels()  # as after each outcome
    assert [v for _l, v in panel.canale.options] == ["", "acme", "zeta"]
    panel.canale.value = "zeta"
    make_channels(tmp_path, retired=["zeta"])
    panel.refresh_channels()
    assert [v for _l, v in panel.canale.options] == ["", "acme"]
    assert panel.canale.value == ""  # never a channel that takes nothing


def test_a_request_through_a_channel_is_answered_there(tmp_path: Path) -> None:
    make_channels(tmp_path, "acme")
    with FakeDaemon(tmp_path):
        panel = make_request_panel(tmp_path)
        panel.canale.value = "acme"
        upload(panel, "a.csr", make_csr(CF_PERSON))
        submit_and_wait(panel)
    assert panel.last_input is not None and panel.last_input.parent == tmp_path / "inbox" / "acme"
    name = panel.last_input.name
    assert (tmp_path / "outbox" / "acme" / "receipts" / f"{name}.json").is_file()
    assert not (tmp_path / "outbox" / "receipts" / f"{name}.json").exists()
    assert panel.last_receipt is not None and panel.last_receipt["esito"] == "OK"
    assert "Richiesta elaborata" in panel.status.value
    ledger = load_ledger(tmp_path, canali=["acme"])
    assert list(ledger["IdOperazione"]) == [panel.last_receipt["id_operazione"]]


def test_a_channel_whose_inbox_is_gone_files_nothing(tmp_path: Path) -> None:
    make_channels(tmp_path, "acme")
    panel = make_request_panel(tmp_path)
    panel.canale.value = "acme"
    (tmp_path / "inbox" / "acme").rmdir()
    upload(panel, "a.csr", make_csr(CF_PERSON))
    panel.submit.click()
    assert "Impossibile depositare la richiesta in <code>inbox/acme/</code>" in panel.status.value
    assert not panel.waiter.busy and panel.last_input is None
    assert inbox_files(tmp_path) == []


def test_filed_into_a_channel_and_answered_by_the_real_daemon(ca_template: Path,
                                                              tmp_path: Path) -> None:
    """The real daemon (``certdesk watch --once``) takes the request from inbox/acme/ and
    answers in outbox/acme/receipts/, where the panel waits for it."""
    home = tmp_path / "home"
    shutil.copytree(ca_template, home)
    make_channels(home, "acme")
    panel = make_request_panel(home, timeout=120, interval=0.05)
    panel.canale.value = "acme"
    upload(panel, "mia.csr", make_csr(CF_PERSON))
    panel.submit.click()
    assert panel.last_input is not None and panel.last_input.parent == home / "inbox" / "acme"
    assert "depositata in <code>inbox/acme/</code>" in panel.status.value
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert panel.waiter.join(30) and panel.waiter.error is None
    receipt = panel.last_receipt
    assert receipt is not None and receipt["esito"] == "OK", receipt
    assert receipt["stato"] == "ATTIVATO"
    id_op = receipt["id_operazione"]
    name = panel.last_input.name
    assert (home / "outbox" / "acme" / "receipts" / f"{name}.json").is_file()
    assert not (home / "outbox" / "receipts" / f"{name}.json").exists()
    assert id_op in panel.result.value and "certdesk-download" in panel.result.value
    row = load_ledger(home).set_index("IdOperazione").loc[id_op]
    assert row["Canale"] == "acme" and row["Stato"] == "ATTIVATO"
    assert id_op in (home / "outbox" / "acme" / "ledger.csv").read_text()
