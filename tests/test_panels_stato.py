"""Stato certificati, headless: filters (channels too), counters, highlights, charts, exports,
heartbeat."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from pathlib import Path

import ipywidgets as widgets
import openpyxl
import pandas as pd
import pytest
from conftest_panels import (
    CF_COMPANY,
    CF_PERSON,
    PAUSA_SPAZIO,
    PAUSED_WARNING,
    iso,
    ledger_row,
    make_channels,
    read_ledger_rows,
    write_heartbeat,
    write_ledger,
)

from certdesk.channels import ADMIN_CHANNEL
from certdesk.frame import LEDGER_COLUMNS, load_ledger
from certdesk.panels import DaemonPause, _charts, _stato_charts, daemon_health, make_status_panel
from certdesk.panels._bars import placeholder_svg
from certdesk.panels._export import excel_available
from certdesk.panels._stato import StatusPanel
from certdesk.records import RequestRecord, ledger_line
from certdesk.states import Stato

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
CF_OTHER = "BNCLRA85M41F205X"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("certdesk.panels._clock.now", lambda: NOW)


@pytest.fixture(autouse=True)
def exports_folder(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the panel writes exports (certdesk admin names it in CERTDESK_EXPORTS)."""
    folder = tmp_path_factory.mktemp("esportazioni")
    monkeypatch.setenv("CERTDESK_EXPORTS", str(folder))
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    days = dt.timedelta(days=1)
    write_ledger(tmp_path, [
        # expires in 10 days: "in scadenza"
        ledger_row("op-soon", CF_PERSON, "ATTIVATO", NOW - 355 * days),
        ledger_row("op-late", CF_PERSON, "ATTIVATO", NOW - 30 * days),
        ledger_row("op-gone", CF_PERSON, "ANNULLATO", NOW - 60 * days,
                   motivazione="CHIAVE_SMARRITA", annullamento="2026-10-30T10:00:00Z"),
        ledger_row("op-co1", CF_COMPANY, "ATTIVATO", NOW - 5 * days),
        ledger_row("op-co2", CF_COMPANY, "ANNULLATO", NOW - 90 * days, motivazione="ALTRO",
                   annullamento="2026-09-01T10:00:00Z"),
        ledger_row("op-ko", CF_COMPANY, "RIFIUTATO", NOW - 2 * days),
        ledger_row("op-old", CF_OTHER, "SCADUTO", NOW - 400 * days),
        ledger_row("op-new", CF_OTHER, "IN_GENERAZIONE", NOW),
    ])
    return tmp_path


def table_ids(panel: StatusPanel) -> list[str]:
    return re.findall(r"<td[^>]*>(op-[a-z0-9-]+)</td>", panel.table.value)


def test_table_counters_and_highlight(home: Path) -> None:
    panel = make_status_panel(home)
    assert panel.matching == 8
    assert table_ids(panel)[0] == "op-new"  # newest request first
    assert set(table_ids(panel)) == {r for r in load_ledger(home)["IdOperazione"]}
    counters = panel.counters.value
    assert "<b>8</b> richieste su 8" in counters
    for state, n in {"ATTIVATO": 3, "ANNULLATO": 2, "RIFIUTATO": 1, "SCADUTO": 1,
                     "IN_GENERAZIONE": 1}.items():
        assert f"{state}: <b>{n}</b>" in counters
    assert "in scadenza entro 30 giorni: <b>1</b>" in counters
    highlighted = re.findall(r'<tr class="in-scadenza"[^>]*><td[^>]*>(op-[a-z-]+)<',
                             panel.table.value)
    assert highlighted == ["op-soon"]
    # people's labels and dates
    assert "Chiave primaria smarrita" in panel.table.value
    assert ">30/10/2026<" in panel.table.value
    for header in ("IdOperazione", "Stato", "Data Richiesta", "Data Scadenza", "Esito"):
        assert f">{header}</th>" in panel.table.value


def test_filters(home: Path) -> None:
    panel = make_status_panel(home)
    panel.codice_fiscale.value = "rssmra"  # part of it, any case
    assert set(table_ids(panel)) == {"op-soon", "op-late", "op-gone"}
    panel.stato.value = "ATTIVATO"
    assert set(table_ids(panel)) == {"op-soon", "op-late"}
    assert "<b>2</b> richieste su 8" in panel.counters.value
    panel.codice_fiscale.value = ""
    panel.stato.value = ""
    panel.dal.value = (NOW - dt.timedelta(days=31)).date()
    panel.al.value = (NOW - dt.timedelta(days=2)).date()
    assert set(table_ids(panel)) == {"op-late", "op-co1", "op-ko"}
    panel.dal.value = None
    panel.al.value = None
    panel.solo_in_scadenza.value = True
    assert table_ids(panel) == ["op-soon"]
    panel.solo_in_scadenza.value = False
    panel.codice_fiscale.value = "NESSUNO"
    assert "Nessuna richiesta corrisponde ai filtri" in panel.table.value


def test_request_date_filter_uses_italian_days(tmp_path: Path) -> None:
    write_ledger(tmp_path, [
        ledger_row("op-night", CF_PERSON, "ATTIVATO",
                   dt.datetime(2026, 11, 26, 23, 30, tzinfo=dt.UTC)),  # 27/11 in Rome
    ])
    panel = make_status_panel(tmp_path)
    panel.dal.value = dt.date(2026, 11, 27)
    assert table_ids(panel) == ["op-night"]
    panel.dal.value = None
    panel.al.value = dt.date(2026, 11, 26)
    assert table_ids(panel) == []


def _placeholder(image: widgets.Image) -> bool:
    """Whether ``image`` still shows its "in preparazione…" frame, and says so by a class."""
    placeholders = {placeholder_svg(title) for title in _stato_charts.TITLES.values()}
    waiting = bytes(image.value) in placeholders
    assert waiting == (_stato_charts.PENDING in image._dom_classes)
    return waiting


def test_charts_are_drawn(home: Path) -> None:
    panel = make_status_panel(home)
    for image in panel.charts.values():  # never an empty image: a broken picture
        assert _placeholder(image) and bytes(image.value).startswith(b"<svg")
        assert b"in preparazione" in bytes(image.value)
    assert panel.wait_for_charts()
    for key, image in panel.charts.items():
        assert bytes(image.value).startswith(b"<svg"), key
        assert not _placeholder(image), key
        assert image.format == "svg+xml"
    before = panel.charts["stato"].value
    panel.codice_fiscale.value = CF_COMPANY
    assert panel.wait_for_charts()
    assert panel.charts["stato"].value != before  # charts follow the filters


def _drawn(panel: StatusPanel, within: float) -> bool:
    """Whether every chart holds a picture within ``within`` seconds (nobody waiting)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_placeholder(i) for i in panel.charts.values()):
            return True
        time.sleep(0.02)
    return False


def test_the_first_charts_wait_for_the_page(home: Path) -> None:
    """Drawn while the page still loads, the charts' queries delayed the counters and the
    table: they wait until the browser makes a view of one (ipywidgets counts them)."""
    panel = make_status_panel(home)
    assert not _drawn(panel, within=1.0)
    panel.charts["motivazioni"].set_state({"_view_count": 1})  # from the page
    assert _drawn(panel, within=20.0)


def test_a_panel_closed_before_its_page_showed_draws_nothing(
        home: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Closed while its first charts wait for the page (a tab closed at once): the
    drawing gives up, and never asks the closed connection (an error in the log)."""
    panel = make_status_panel(home)
    thread = panel.painter._thread
    assert thread is not None and thread.is_alive()
    panel.close()
    thread.join(5.0)
    assert not thread.is_alive()
    assert "could not be drawn" not in caplog.text
    assert all(_placeholder(i) for i in panel.charts.values())


def test_charts_no_page_shows_are_drawn_after_a_while(home: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A front end that counts no views (or a panel never shown) still gets its charts."""
    monkeypatch.setattr(_stato_charts, "UNSEEN_WAIT", 0.5)
    panel = make_status_panel(home)
    assert _drawn(panel, within=20.0)


def test_a_chart_is_sent_again_to_each_new_view(home: Path) -> None:
    """An image drawn while the page connects must not stay blank: each view the browser
    makes of it (ipywidgets counts them) is sent the image again."""
    panel = make_status_panel(home)
    assert panel.wait_for_charts()
    image = panel.charts["stato"]
    sent: list[object] = []
    image.send_state = lambda key=None: sent.append(key)  # type: ignore[method-assign]
    image.set_state({"_view_count": 1})  # from the page: it made its view
    image.set_state({"_view_count": 0})  # and closed it: nothing to send
    image.set_state({"_view_count": 1})  # a reload
    assert sent == ["value", "value"]


def test_chart_data(home: Path) -> None:
    ledger = load_ledger(home)
    by_state = _charts.counts_by_state(ledger)
    assert list(by_state.index) == ["IN_GENERAZIONE", "ATTIVATO", "SCADUTO", "ANNULLATO",
                                    "RIFIUTATO"]
    assert by_state.to_dict() == {"IN_GENERAZIONE": 1, "ATTIVATO": 3, "SCADUTO": 1,
                                  "ANNULLATO": 2, "RIFIUTATO": 1}
    issued = _charts.issued_per_month(ledger)
    assert int(issued.sum()) == 6  # ATTIVATO, SCADUTO, ANNULLATO
    assert str(issued.index[0]) == "2025-10" and str(issued.index[-1]) == "2026-11"
    assert len(issued) == 14  # months without issues are zeros, not gaps
    ahead = _charts.expiries_ahead(ledger, NOW)
    assert len(ahead) == 12 and str(ahead.index[0]) == "2026-11"
    # op-soon on 7 December, op-late next October; op-co1 (November 2027) is beyond
    assert int(ahead.sum()) == 2
    assert int(ahead.iloc[0]) == 0 and int(ahead.iloc[1]) == 1 and int(ahead.iloc[11]) == 1
    reasons = _charts.cancellations_by_reason(ledger)
    assert list(reasons.index) == ["Chiave primaria smarrita", "Attività cessata",
                                   "Furto certificato", "Rinnovo scadenza", "Malfunzionamento",
                                   "Altro"]
    assert reasons["Chiave primaria smarrita"] == 1 and reasons["Altro"] == 1
    assert int(reasons.sum()) == 2


def export(panel: StatusPanel, kind: str, folder: Path) -> tuple[str, bytes]:
    """Press an export button, wait for the file, and return its name and bytes."""
    button = panel.csv_button if kind == "csv" else panel.xlsx_button
    button.click()
    assert panel.exporter.join(60) and panel.exporter.error is None, panel.exporter.error
    link = re.search(rf'class="certdesk-export-{kind}" download="([^"]+)" '
                     r'href="certdesk/esportazioni/([^"?]+)\?download=1"', panel.exports.value)
    assert link is not None, panel.exports.value
    assert link.group(1) == link.group(2)
    path = folder / link.group(1)
    assert path.stat().st_mode & 0o077 == 0  # the export is the administrators' alone
    return link.group(1), path.read_bytes()


def test_export_of_the_filtered_table(home: Path, exports_folder: Path,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    panel = make_status_panel(home)
    panel.stato.value = "ATTIVATO"
    assert panel.exports.value == ""
    assert panel.csv_button.description == "Esporta CSV (3 righe)"  # said before it starts
    name, data = export(panel, "csv", exports_folder)
    assert re.fullmatch(r"certificati-\d{8}-\d{4}-[0-9a-f]{12}\.csv", name)
    out = tmp_path_factory.mktemp("export") / "ledger.csv"
    out.write_bytes(data)
    assert next(csv.reader(io.StringIO(data.decode()))) == list(LEDGER_COLUMNS)
    again = load_ledger(out)  # the export is a ledger: the filter applied to the CSV
    expected = load_ledger(home, stati=["ATTIVATO"])
    pd.testing.assert_frame_equal(
        again.sort_values("IdOperazione").reset_index(drop=True),
        expected.sort_values("IdOperazione").reset_index(drop=True))
    assert set(again["IdOperazione"]) == {"op-soon", "op-late", "op-co1"}
    # changing a filter drops links to the old selection
    panel.stato.value = ""
    assert panel.exports.value == ""


@pytest.mark.skipif(not excel_available(), reason="openpyxl not installed")
def test_export_to_excel(home: Path, exports_folder: Path) -> None:
    panel = make_status_panel(home)
    name, data = export(panel, "xlsx", exports_folder)
    assert name.endswith(".xlsx")
    sheet = pd.read_excel(io.BytesIO(data), sheet_name="Certificati", engine="openpyxl")
    assert list(sheet.columns) == list(LEDGER_COLUMNS)
    assert len(sheet) == 8
    row = sheet[sheet["IdOperazione"] == "op-new"].iloc[0]
    # Excel has no time zones: the workbook holds Italian wall-clock time (UTC+1 in November)
    assert row["DataRichiesta"] == pd.Timestamp("2026-11-27 13:00:00")


# What OWASP says a spreadsheet may run: a cell starting with =, +, -, @, tab or CR.
HOSTILE = ('=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\tX", "\rY")


@pytest.fixture
def hostile_home(tmp_path: Path) -> Path:
    rows = []
    for i, text in enumerate(HOSTILE):
        row = ledger_row(f"op-h{i}", CF_PERSON, "ATTIVATO", NOW - i * dt.timedelta(days=1))
        row["FileOrigine"] = text
        rows.append(row)
    odd = ledger_row("op-odd", HOSTILE[0], "ANNULLATO", NOW, motivazione=HOSTILE[3],
                     annullamento="2026-11-27T10:00:00Z")
    odd["Profilo"] = HOSTILE[2]
    rows.append(odd)
    plain = ledger_row("op-plain", CF_PERSON, "ATTIVATO", NOW)
    plain["FileOrigine"] = "richiesta a=b +1.csr"  # a formula character past the start is text
    rows.append(plain)
    write_ledger(tmp_path, rows, quoting=csv.QUOTE_ALL)
    return tmp_path


def test_csv_export_neutralises_formulas(hostile_home: Path, exports_folder: Path) -> None:
    ledger_before = (hostile_home / "outbox" / "ledger.csv").read_bytes()
    panel = make_status_panel(hostile_home)
    _name, data = export(panel, "csv", exports_folder)
    rows = {r["IdOperazione"]: r for r in csv.DictReader(io.StringIO(data.decode(), newline=""))}
    for i, text in enumerate(HOSTILE):
        assert rows[f"op-h{i}"]["FileOrigine"] == "'" + text
    odd = rows["op-odd"]
    assert odd["CodiceFiscale"] == "'" + HOSTILE[0]
    assert odd["Profilo"] == "'" + HOSTILE[2]
    assert odd["Motivazione"] == "'" + HOSTILE[3]  # a category the contract does not know
    assert odd["DataAnnullamento"] == "2026-11-27T10:00:00Z"  # dates are left as they are
    plain = rows["op-plain"]
    assert plain["FileOrigine"] == "richiesta a=b +1.csr"
    assert plain["CodiceFiscale"] == CF_PERSON and plain["Profilo"] == "utente"
    assert plain["DataRichiesta"] == iso(NOW) and plain["Motivazione"] == ""
    # every cell quoted: a bare CR (or an Italian Excel's ";") cannot open a new cell
    assert "\"'\rY\"" in data.decode()
    # the ledger programs read stays raw, and so does what the panel holds
    assert (hostile_home / "outbox" / "ledger.csv").read_bytes() == ledger_before
    raw = {r["IdOperazione"]: r for r in read_ledger_rows(hostile_home)}
    assert [raw[f"op-h{i}"]["FileOrigine"] for i in range(len(HOSTILE))] == list(HOSTILE)
    assert set(load_ledger(hostile_home)["FileOrigine"]) >= set(HOSTILE)
    record = RequestRecord("op-r", CF_PERSON, "utente", Stato.ATTIVATO, NOW, "OK", HOSTILE[0])
    assert ledger_line(record).endswith(',"=HYPERLINK(""http://x"",""y"")",,\n')


@pytest.mark.skipif(not excel_available(), reason="openpyxl not installed")
def test_excel_export_writes_text_never_formulas(hostile_home: Path,
                                                 exports_folder: Path) -> None:
    panel = make_status_panel(hostile_home)
    _name, data = export(panel, "xlsx", exports_folder)
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Certificati"]
    header = [cell.value for cell in sheet[1]]
    rows = {
        cells[0].value: dict(zip(header, cells, strict=True))
        for cells in sheet.iter_rows(min_row=2)
    }

    def assert_text(cell: object, expected: str) -> None:
        assert isinstance(cell, openpyxl.cell.cell.Cell)
        assert cell.data_type == "s", (cell.value, cell.data_type)
        # XML reads a bare CR back as LF: what matters is the leading quote
        assert cell.value == expected.replace("\r", "\n")

    for i, text in enumerate(HOSTILE):
        assert_text(rows[f"op-h{i}"]["FileOrigine"], "'" + text)
    odd = rows["op-odd"]
    assert_text(odd["CodiceFiscale"], "'" + HOSTILE[0])
    assert_text(odd["Profilo"], "'" + HOSTILE[2])
    assert_text(odd["Motivazione"], "'" + HOSTILE[3])
    plain = rows["op-plain"]
    assert_text(plain["FileOrigine"], "richiesta a=b +1.csr")
    assert_text(plain["CodiceFiscale"], CF_PERSON)
    # dates stay dates (Italian wall-clock time), empty cells stay empty
    assert plain["DataRichiesta"].is_date
    assert plain["DataRichiesta"].value == dt.datetime(2026, 11, 27, 13, 0)
    assert plain["Motivazione"].value is None


def test_empty_home(tmp_path: Path, exports_folder: Path) -> None:
    panel = make_status_panel(tmp_path)
    assert "Il registro è vuoto" in panel.table.value
    assert "<b>0</b> richieste su 0" in panel.counters.value
    assert panel.wait_for_charts()
    assert all(b"nessun dato" in bytes(img.value) for img in panel.charts.values())
    assert "certdesk-daemon-ko" in panel.daemon.value
    assert "mai stato avviato" in panel.daemon.value
    _name, data = export(panel, "csv", exports_folder)
    assert "CSV (0 righe)" in panel.exports.value
    assert next(csv.reader(io.StringIO(data.decode()))) == list(LEDGER_COLUMNS)


def test_refresh_reads_the_ledger_again(home: Path) -> None:
    panel = make_status_panel(home)
    write_ledger(home, [ledger_row("op-only", CF_PERSON, "ATTIVATO", NOW)])
    assert "op-only" not in panel.table.value
    panel.refresh.click()
    assert table_ids(panel) == ["op-only"]


def test_heartbeat(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("certdesk.panels._clock.now", lambda: dt.datetime.now(dt.UTC))
    write_heartbeat(home)
    panel = make_status_panel(home)
    assert "certdesk-daemon-ok" in panel.daemon.value and "Daemon attivo" in panel.daemon.value
    assert daemon_health(home).alive
    write_heartbeat(home, age=25)
    panel.refresh.click()
    assert "certdesk-daemon-ko" in panel.daemon.value
    assert "non dà segni di vita da 2" in panel.daemon.value
    write_heartbeat(home, state="stopped")
    assert daemon_health(home).reason == "il daemon è stato fermato"
    write_heartbeat(home, pid=2**22 + 12345)  # fresh, but no such process
    health = daemon_health(home)
    assert not health.alive and "non esiste più" in health.reason
    (home / "outbox" / "daemon.json").write_text("{not json")
    assert not daemon_health(home).alive
    (home / "outbox" / "daemon.json").write_text("[1, 2]")  # JSON, but not a heartbeat
    assert "non è leggibile" in daemon_health(home).reason


def test_a_paused_daemon_is_alive_but_says_so(home: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setattr("certdesk.panels._clock.now", lambda: dt.datetime.now(dt.UTC))
    write_heartbeat(home, state="paused", extra={"pausa": PAUSA_SPAZIO})
    health = daemon_health(home)
    assert health.alive
    assert health.pause == DaemonPause(
        "SPAZIO_INSUFFICIENTE", PAUSA_SPAZIO["messaggio"],
        dt.datetime(2026, 11, 27, 11, 58, tzinfo=dt.UTC))
    panel = make_status_panel(home)
    shown = panel.daemon.value
    assert "certdesk-daemon-paused" in shown and PAUSED_WARNING in shown
    assert "<code>SPAZIO_INSUFFICIENTE</code>: Free space on /srv/certdesk is 80 MiB" in shown
    assert "free some space &lt;now&gt;." in shown  # the daemon's words, escaped
    assert "Daemon attivo" not in shown and "Daemon non attivo" not in shown

    write_heartbeat(home, state="paused", extra={"pausa": {
        "codice": "GUASTO_MACCHINA", "messaggio": "I/O error on state/", "dal": "nope"}})
    panel.refresh.click()
    assert ("Il daemon è in pausa (guasto della macchina: errore del disco o di I/O): le "
            "richieste restano in attesa") in panel.daemon.value
    for code, cause in (("TOKEN_NON_DISPONIBILE", "token PKCS#11 della CA non disponibile"),
                        ("PIN_ERRATO", "PIN del token PKCS#11 rifiutato")):  # issue 16
        write_heartbeat(home, state="paused", extra={"pausa": {
            "codice": code, "messaggio": "...", "dal": "2026-11-27T11:58:00Z"}})
        panel.refresh.click()
        assert f"Il daemon è in pausa dal 27/11/2026 12:58 ({cause}" in panel.daemon.value
    write_heartbeat(home, state="paused")  # no pausa: still paused, for a cause not given
    panel.refresh.click()
    assert "Il daemon è in pausa (causa non indicata)" in panel.daemon.value
    # a paused daemon that stopped beating (a disk too full even for daemon.json)
    write_heartbeat(home, state="paused", age=25, extra={"pausa": PAUSA_SPAZIO})
    panel.refresh.click()
    assert "certdesk-daemon-ko" in panel.daemon.value
    assert ("L'ultimo battito diceva: in pausa dal 27/11/2026 12:58 (spazio su disco "
            "insufficiente)") in panel.daemon.value


def test_a_heartbeat_caught_half_written_is_read_again(home: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a full disk the daemon rewrites daemon.json in place: new text, then old tail."""
    monkeypatch.setattr("certdesk.panels._clock.now", lambda: dt.datetime.now(dt.UTC))
    path = home / "outbox" / "daemon.json"
    write_heartbeat(home, state="paused", extra={"pausa": PAUSA_SPAZIO})
    whole = path.read_text()
    path.write_text(whole + whole[len(whole) // 2:])
    # the daemon's write is done by the time the panel looks again
    monkeypatch.setattr("certdesk.panels._health.time.sleep", lambda _s: path.write_text(whole))
    health = daemon_health(home)
    assert health.alive and health.pause is not None
    assert health.pause.codice == "SPAZIO_INSUFFICIENTE"


@pytest.mark.parametrize("extra", [{"pausa": None}, {}], ids=["pausa-null", "older-heartbeat"])
def test_a_running_daemon_shows_no_pause(home: Path, monkeypatch: pytest.MonkeyPatch,
                                         extra: dict[str, object]) -> None:
    monkeypatch.setattr("certdesk.panels._clock.now", lambda: dt.datetime.now(dt.UTC))
    write_heartbeat(home, extra=extra)
    panel = make_status_panel(home)
    assert "certdesk-daemon-ok" in panel.daemon.value
    assert "pausa" not in panel.daemon.value
    assert daemon_health(home).pause is None


def test_a_broken_ledger_is_said_not_crashed(tmp_path: Path) -> None:
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "ledger.csv").write_text("colonna,sbagliata\n1,2\n")
    panel = make_status_panel(tmp_path)
    assert "certdesk-ledger-error" in panel.daemon.value
    assert "REGISTRO_NON_LEGGIBILE" in panel.daemon.value
    assert "Il registro è vuoto" in panel.table.value


# -- channels (issue 18) ----------------------------------------------------------------------


def channel_row(id_op: str, cf: str, stato: str, richiesta: dt.datetime,
                canale: str) -> dict[str, str]:
    return {**ledger_row(id_op, cf, stato, richiesta), "Canale": canale}


@pytest.fixture
def channels_home(tmp_path: Path) -> Path:
    """Requests of four channels, and a store that made two more: one not used yet, one
    used and retired since."""
    days = dt.timedelta(days=1)
    write_ledger(tmp_path, [
        channel_row("op-d1", CF_PERSON, "ATTIVATO", NOW - 50 * days, ""),
        channel_row("op-d2", CF_COMPANY, "RIFIUTATO", NOW - 40 * days, ""),
        channel_row("op-adm", CF_OTHER, "ATTIVATO", NOW - 30 * days, ADMIN_CHANNEL),
        channel_row("op-a1", CF_PERSON, "ATTIVATO", NOW - 20 * days, "acme"),
        channel_row("op-a2", CF_OTHER, "ANNULLATO", NOW - 10 * days, "acme"),
        channel_row("op-v1", CF_COMPANY, "ATTIVATO", NOW - 5 * days, "vecchio"),
    ])
    make_channels(tmp_path, "acme", "nuovo", "vecchio", retired=["vecchio"])
    return tmp_path


def test_the_channel_filter_offers_every_channel(channels_home: Path, tmp_path_factory:
                                                 pytest.TempPathFactory) -> None:
    panel = make_status_panel(channels_home)
    assert list(panel.canale.options) == [
        ("Tutti", "*"), ("predefinito (inbox/)", ""), ("amministratori", ADMIN_CHANNEL),
        ("acme", "acme"), ("nuovo", "nuovo"), ("vecchio (ritirato)", "vecchio")]
    assert panel.canale.value == "*" and panel.matching == 6
    # a home whose store this process cannot read (or has none): what the ledger shows
    bare = tmp_path_factory.mktemp("senza-store")
    write_ledger(bare, read_ledger_rows(channels_home))
    assert [v for _l, v in make_status_panel(bare).canale.options] == [
        "*", "", ADMIN_CHANNEL, "acme", "vecchio"]


@pytest.mark.parametrize(("canale", "ids", "label"), [
    ("", {"op-d1", "op-d2"}, "predefinito (inbox/)"),
    (ADMIN_CHANNEL, {"op-adm"}, "amministratori"),
    ("acme", {"op-a1", "op-a2"}, "acme"),
    ("nuovo", set(), ""),
])
def test_the_channel_filter_and_column(channels_home: Path, exports_folder: Path,
                                       canale: str, ids: set[str], label: str) -> None:
    panel = make_status_panel(channels_home)
    assert ">Canale</th>" in panel.table.value
    panel.canale.value = canale
    assert set(table_ids(panel)) == ids
    assert f"<b>{len(ids)}</b> richieste su 6" in panel.counters.value
    assert panel.which.canali == (canale,)
    if not ids:
        assert "Nessuna richiesta corrisponde ai filtri" in panel.table.value
        return
    cells = re.findall(r'<td[^>]*>([^<]*)</td></tr>', panel.table.value)  # the last column
    assert set(cells) == {label}
    panel.stato.value = "ATTIVATO"  # with the other filters
    expected = load_ledger(channels_home, canali=[canale], stati=["ATTIVATO"])
    assert set(table_ids(panel)) == set(expected["IdOperazione"])
    _name, data = export(panel, "csv", exports_folder)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert {r["IdOperazione"] for r in rows} == set(expected["IdOperazione"])
    # the export is a ledger: the raw value, @admin made inert like any cell starting so
    assert {r["Canale"] for r in rows} == {"'@admin" if canale == ADMIN_CHANNEL else canale}


def test_charts_follow_the_channel(channels_home: Path) -> None:
    panel = make_status_panel(channels_home)
    assert panel.wait_for_charts()
    before = panel.charts["stato"].value
    panel.canale.value = "acme"
    assert panel.wait_for_charts()
    assert panel.charts["stato"].value != before


def test_refresh_keeps_the_channel_while_it_is_offered(channels_home: Path) -> None:
    panel = make_status_panel(channels_home)
    panel.canale.value = ADMIN_CHANNEL
    rows = read_ledger_rows(channels_home)
    write_ledger(channels_home, [*rows, channel_row("op-b1", CF_PERSON, "ATTIVATO", NOW,
                                                    "beta")])
    panel.refresh.click()
    assert ("beta", "beta") in panel.canale.options  # a channel the ledger shows now
    assert panel.canale.value == ADMIN_CHANNEL and table_ids(panel) == ["op-adm"]
    panel.canale.value = "beta"
    assert table_ids(panel) == ["op-b1"]
    write_ledger(channels_home, rows)  # gone (a ledger rebuilt): every channel again
    panel.refresh.click()
    assert panel.canale.value == "*" and panel.matching == 6
