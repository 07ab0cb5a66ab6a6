"""Annullamento certificato, headless: choose, file, and see the daemon's answer."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest_panels import (
    CF_COMPANY,
    CF_PERSON,
    PAUSA_SPAZIO,
    PAUSED_WARNING,
    FakeDaemon,
    ledger_row,
    write_heartbeat,
    write_ledger,
)

from certdesk.frame import load_ledger
from certdesk.panels import make_cancellation_panel
from certdesk.panels._annullamento import CancellationPanel
from certdesk.reasons import Motivazione

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def shown(widget_layout_display: str | None) -> bool:
    return widget_layout_display != "none"


def file_and_wait(panel: CancellationPanel, timeout: float = 20.0) -> None:
    panel.submit.click()
    assert panel.waiter.join(timeout), "the panel is still waiting"
    assert panel.waiter.error is None


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_ledger(tmp_path, [
        ledger_row("p-1", CF_PERSON, "ATTIVATO", T0),
        ledger_row("p-2", CF_PERSON, "ATTIVATO", T0 + 3 * DAY),
        ledger_row("p-3", CF_PERSON, "RIFIUTATO", T0 + 4 * DAY),
        ledger_row("c-1", CF_COMPANY, "ANNULLATO", T0, motivazione="ATTIVITA_CESSATA",
                   annullamento="2026-07-01T10:00:00Z"),
        ledger_row("c-2", CF_COMPANY, "ATTIVATO", T0 + 10 * DAY),
        ledger_row("c-3", CF_COMPANY, "ATTIVATO", T0 + 20 * DAY),
        ledger_row("x-1", "BNCLRA85M41F205X", "SCADUTO", T0 - 400 * DAY),
    ])
    return tmp_path


def test_reasons_are_the_portals_six(home: Path) -> None:
    panel = make_cancellation_panel(home)
    assert [label for label, _code in panel.motivazione.options] == [
        "Chiave primaria smarrita", "Attività cessata", "Furto certificato",
        "Rinnovo scadenza", "Malfunzionamento", "Altro"]
    assert [code for _label, code in panel.motivazione.options] == [m.value for m in Motivazione]
    assert panel.motivazione.value is None  # a reason is chosen, never defaulted
    assert panel.submit.description == "Richiedi annullamento"
    # only people with an ATTIVATO certificate are offered
    assert list(panel.codice_fiscale.options) == sorted([CF_COMPANY, CF_PERSON])
    assert not shown(panel.submit.layout.display)


def test_first_cancellation_is_cumulative(home: Path) -> None:
    panel = make_cancellation_panel(home)
    panel.codice_fiscale.value = CF_PERSON.lower() + " "  # typed carelessly
    assert shown(panel.submit.layout.display) and shown(panel.form.layout.display)
    assert "p-1" in panel.certs.value and "p-2" in panel.certs.value
    assert "p-3" not in panel.certs.value  # only ATTIVATO ones
    assert ">01/06/2026<" in panel.certs.value and ">04/06/2026<" in panel.certs.value
    assert "cumulativa" in panel.notice.value and "TUTTI i 2 certificati" in panel.notice.value
    assert not shown(panel.scelta.layout.display)
    panel.motivazione.value = "FURTO_CERTIFICATO"
    panel.operatore.value = "Mario Bianchi"
    with FakeDaemon(home) as daemon:
        file_and_wait(panel)
    # what it wrote: the contract's request, naming every ATTIVATO certificate
    assert len(daemon.processed) == 1
    request = json.loads((home / "state" / "archive" / daemon.processed[0]).read_text())
    assert request == {"tipo": "annullamento", "codice_fiscale": CF_PERSON,
                       "id_operazione": ["p-1", "p-2"], "motivazione": "FURTO_CERTIFICATO",
                       "nota": "", "operatore": "Mario Bianchi"}
    assert panel.last_input is not None and panel.last_input.name == daemon.processed[0]
    # what it shows: the confirmation with every cancelled IdOperazione
    assert panel.last_receipt is not None and panel.last_receipt["esito"] == "OK"
    assert "Annullamento eseguito" in panel.result.value
    assert "<code>p-1</code>" in panel.result.value and "<code>p-2</code>" in panel.result.value
    assert "Furto certificato" in panel.result.value
    ledger = load_ledger(home).set_index("IdOperazione")
    assert ledger.loc["p-1", "Stato"] == "ANNULLATO" and ledger.loc["p-2", "Stato"] == "ANNULLATO"
    # nothing left to cancel: the button is gone, the list says so, the person too
    assert not shown(panel.submit.layout.display)
    assert "Nessun certificato in stato <b>ATTIVATO</b>" in panel.certs.value
    assert CF_PERSON not in panel.codice_fiscale.options
    assert panel.motivazione.value is None


def test_later_cancellations_name_one_certificate(home: Path) -> None:
    panel = make_cancellation_panel(home)
    panel.select(CF_COMPANY)
    assert "c-2" in panel.certs.value and "c-3" in panel.certs.value
    assert "c-1" not in panel.certs.value
    assert "cumulativa" not in panel.notice.value
    assert "un solo IdOperazione" in panel.notice.value
    assert shown(panel.scelta.layout.display)
    assert [v for _l, v in panel.scelta.options] == ["c-2", "c-3"]
    panel.scelta.value = "c-3"
    panel.motivazione.value = "ALTRO"
    panel.operatore.value = "op"
    panel.submit.click()
    assert "le note sono obbligatorie" in panel.status.value
    assert not (home / "inbox").exists()
    panel.nota.value = "chiusura sede secondaria"
    with FakeDaemon(home) as daemon:
        file_and_wait(panel)
    request = json.loads((home / "state" / "archive" / daemon.processed[0]).read_text())
    assert request["id_operazione"] == ["c-3"]
    assert request["motivazione"] == "ALTRO" and request["nota"] == "chiusura sede secondaria"
    assert "<code>c-3</code>" in panel.result.value and "c-2</code>" not in panel.result.value
    # c-2 is still ATTIVATO: the button stays
    assert shown(panel.submit.layout.display)
    assert [v for _l, v in panel.scelta.options] == ["c-2"]


def test_no_active_certificate_no_button(home: Path) -> None:
    panel = make_cancellation_panel(home)
    panel.select("BNCLRA85M41F205X")
    assert not shown(panel.submit.layout.display)
    assert "Nessun certificato in stato <b>ATTIVATO</b>" in panel.certs.value
    panel.select("")
    assert panel.certs.value == ""
    panel.submit.click()
    assert "Nessun certificato ATTIVATO" in panel.status.value
    assert not (home / "inbox").exists()


@pytest.mark.parametrize(
    ("reason", "operatore", "message"),
    [(None, "op", "Scegli la motivazione"),
     ("MALFUNZIONAMENTO", "  ", "Indica il nome dell'operatore")],
)
def test_incomplete_forms_file_nothing(home: Path, reason: str | None, operatore: str,
                                       message: str) -> None:
    panel = make_cancellation_panel(home)
    panel.select(CF_PERSON)
    panel.motivazione.value = reason
    panel.operatore.value = operatore
    panel.submit.click()
    assert message in panel.status.value
    assert not panel.waiter.busy
    assert not (home / "inbox").exists()


def test_refusal_shows_the_reason(home: Path) -> None:
    panel = make_cancellation_panel(home)
    panel.select(CF_COMPANY)
    panel.motivazione.value = "RINNOVO_SCADENZA"
    panel.operatore.value = "op"
    with FakeDaemon(home) as daemon:
        # someone else cancelled c-2 meanwhile: the panel's list is stale
        next(r for r in daemon.rows if r["IdOperazione"] == "c-2")["Stato"] = "ANNULLATO"
        file_and_wait(panel)
    assert panel.last_receipt is not None and panel.last_receipt["esito"] == "KO"
    assert "rifiutata" in panel.status.value
    assert '<code class="certdesk-error-code">CERTIFICATO_NON_ATTIVO</code>' in panel.result.value
    assert "c-2" in panel.result.value
    assert "Annullamento eseguito" not in panel.result.value


def test_waits_without_freezing_and_says_when_the_daemon_is_away(home: Path) -> None:
    panel = make_cancellation_panel(home, timeout=0.5, interval=0.05)
    assert "certdesk-daemon-ko" in panel.daemon.value
    panel.select(CF_PERSON)
    panel.motivazione.value = "ATTIVITA_CESSATA"
    panel.operatore.value = "op"
    panel.submit.click()
    assert panel.waiter.busy and panel.submit.disabled
    assert panel.waiter.join(10)
    assert "resta in coda" in panel.status.value
    queued = [p for p in (home / "inbox").iterdir() if not p.name.startswith(".")]
    assert len(queued) == 1 and queued[0].suffix == ".json"
    assert json.loads(queued[0].read_text())["motivazione"] == "ATTIVITA_CESSATA"


def test_a_paused_daemon_is_said(home: Path) -> None:
    write_heartbeat(home, state="paused", extra={"pausa": PAUSA_SPAZIO})
    panel = make_cancellation_panel(home)
    assert "certdesk-daemon-paused" in panel.daemon.value
    assert PAUSED_WARNING in panel.daemon.value
    assert "Daemon non attivo" not in panel.daemon.value
    write_heartbeat(home, extra={"pausa": None})  # resumed
    panel.select(CF_PERSON)  # reads the heartbeat again
    assert "certdesk-daemon-ok" in panel.daemon.value and "pausa" not in panel.daemon.value
    write_heartbeat(home, state="paused", extra={"pausa": PAUSA_SPAZIO})
    panel.cerca.click()
    assert PAUSED_WARNING in panel.daemon.value


def test_a_broken_ledger_is_said_not_crashed(tmp_path: Path) -> None:
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "ledger.csv").write_bytes(b"\xff\xfe\x00garbage")
    panel = make_cancellation_panel(tmp_path)
    assert "REGISTRO_NON_LEGGIBILE" in panel.daemon.value
    panel.select(CF_PERSON)
    assert "REGISTRO_NON_LEGGIBILE" in panel.daemon.value
    assert panel.submit.layout.display == "none"
