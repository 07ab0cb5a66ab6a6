"""Annullamento certificato, headless: choose, file, and see the daemon's answer. The panel
files into the administrators' channel (``state/admin/inbox/``), which may cancel a
certificate requested through any channel."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import string
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as widgets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest_panels import (
    CF_COMPANY,
    CF_PERSON,
    PAUSA_SPAZIO,
    PAUSED_WARNING,
    FakeDaemon,
    ledger_row,
    make_channels,
    make_csr,
    write_heartbeat,
    write_ledger,
)

from certdesk.channels import ADMIN_CHANNEL
from certdesk.client import drop_file, file_cancellation, receipt_path
from certdesk.frame import LEDGER_COLUMNS, _typed, load_ledger
from certdesk.ledger_arrow import LEDGER_SCHEMA
from certdesk.outbox import Outbox
from certdesk.panels import make_cancellation_panel
from certdesk.panels._annullamento import CancellationPanel
from certdesk.panels._people import MAX_MATCHES, normalise_cf, people_with_active
from certdesk.reasons import Motivazione
from conftest import run_certdesk

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def shown(widget_layout_display: str | None) -> bool:
    return widget_layout_display != "none"


def filed(home: Path) -> list[Path]:
    """What waits in the administrators' inbox and in ``inbox/``."""
    return sorted(p for inbox in (home / "state" / "admin" / "inbox", home / "inbox")
                  if inbox.is_dir() for p in inbox.iterdir() if not p.name.startswith("."))


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
    # as ``certdesk init`` and the daemon's start make it (Home.ensure)
    (tmp_path / "state" / "admin" / "inbox").mkdir(mode=0o700, parents=True)
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
    # filed into the administrators' channel, and answered there
    assert panel.last_input.parent == home / "state" / "admin" / "inbox"
    assert (home / "state" / "admin" / "receipts" / f"{panel.last_input.name}.json").is_file()
    assert not (home / "outbox" / "receipts").exists() or not any(
        (home / "outbox" / "receipts").iterdir())
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
    assert filed(home) == []
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
    assert filed(home) == []


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
    assert filed(home) == []


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
    assert "depositata in <code>state/admin/inbox/</code>" in panel.status.value
    assert panel.waiter.join(10)
    assert "resta in coda" in panel.status.value
    queued = filed(home)
    assert len(queued) == 1 and queued[0].suffix == ".json"
    assert queued[0].parent == home / "state" / "admin" / "inbox"
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


# -- choosing among a large population -------------------------------------------------------

CROWD = 200_000
#: A person with many requests, in :func:`crowd_ledger`.
CF_CROWD = "VRDGPP70C03L219K"


def crowd_ledger(n: int, *, seed: int = 15, crowd_requests: int = 60) -> pd.DataFrame:
    """An in-memory ledger (typed as :func:`load_ledger` types it) of ``n`` distinct people.

    One request each, one in eight ``ANNULLATO``, one in 97 written in lower case, plus
    :data:`CF_CROWD` with ``crowd_requests`` ``ATTIVATO`` ones. Built in memory because
    writing and parsing a CSV of this size would be most of a test's time.
    """
    rng = random.Random(seed)
    letters = string.ascii_uppercase
    codici = [f"{''.join(rng.choices(letters, k=6))}{i:09d}X" for i in range(n)]
    codici = [cf.lower() if i % 97 == 0 else cf for i, cf in enumerate(codici)]
    stati = ["ANNULLATO" if i % 8 == 0 else "ATTIVATO" for i in range(n)]
    codici += [CF_CROWD] * crowd_requests
    stati += ["ATTIVATO"] * crowd_requests
    rows = len(codici)
    raw = pd.DataFrame({name: pd.Series([""] * rows, dtype=str) for name in LEDGER_COLUMNS})
    raw["IdOperazione"] = [f"op-{i}" for i in range(rows)]
    raw["CodiceFiscale"] = codici
    raw["Stato"] = stati
    raw["DataRichiesta"] = "2026-06-01T09:00:00Z"
    raw["DataScadenza"] = "2027-06-01T09:00:00Z"
    return _typed(raw, Path("ledger.csv"))


@pytest.fixture(scope="module")
def crowd() -> pd.DataFrame:
    return crowd_ledger(CROWD)


@pytest.fixture(scope="module")
def crowd_home(crowd: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose columnar ledger (what the panel asks) holds the crowd, in two parts."""
    home = tmp_path_factory.mktemp("crowd")
    folder = Outbox.of(home).columnar_ledger
    folder.mkdir(parents=True)
    # as the daemon writes them: codici fiscali in capitals (identity.parse_codice_fiscale)
    crowd = crowd.assign(CodiceFiscale=crowd["CodiceFiscale"].str.upper())
    table = pa.Table.from_pandas(crowd, preserve_index=False).cast(LEDGER_SCHEMA)
    half = len(crowd) // 2
    pq.write_table(table.slice(0, half), folder / "op-0.parquet")
    pq.write_table(table.slice(half), folder / f"op-{half}.parquet")
    (folder / "_certdesk.json").write_text('{"formato": 1, "seq": 1, "righe_per_parte": 8192}')
    return home


@pytest.fixture
def crowd_panel(crowd_home: Path) -> CancellationPanel:
    return make_cancellation_panel(crowd_home)


def test_prefix_matches_are_bounded_and_exact(crowd: pd.DataFrame) -> None:
    index = people_with_active(crowd)
    active = crowd[crowd["Stato"].astype("string") == "ATTIVATO"]
    everyone = sorted({cf.upper() for cf in active["CodiceFiscale"]})
    assert len(index) == len(everyone) > 150_000
    rng = random.Random(4)
    sampled = [cf[:rng.randint(1, 16)] for cf in rng.sample(everyone, 25)]
    annullato = str(crowd["CodiceFiscale"].iloc[8])  # one in eight is ANNULLATO only
    typed = ["", "a", " ab ", "ABC", "abcd", "Z", "ZZZZZZ", "0", "È", CF_CROWD.lower(),
             annullato, *sampled]
    counts = []
    for prefix in typed:
        wanted = normalise_cf(prefix)
        matching = [cf for cf in everyone if cf.startswith(wanted)]
        got = index.starting_with(prefix)
        assert got == matching[:MAX_MATCHES], prefix
        counts.append(len(matching))
    assert index.starting_with(annullato) == []
    # both sides of the bound were exercised: cut lists and complete short ones
    assert max(counts) > MAX_MATCHES and any(0 < c < MAX_MATCHES for c in counts)
    assert CF_CROWD in index and CF_CROWD.lower() + " " in index and annullato not in index


def test_typing_a_codice_fiscale_in_full_selects_the_person(
    crowd: pd.DataFrame, crowd_panel: CancellationPanel
) -> None:
    panel = crowd_panel
    row = crowd.iloc[12_345]
    assert row["Stato"] == "ATTIVATO"
    cf = str(row["CodiceFiscale"])
    for keystroke in range(1, len(cf)):  # typed a character at a time, in lower case
        panel.codice_fiscale.value = cf[:keystroke].lower()
        assert not shown(panel.submit.layout.display)
        assert all(o.startswith(cf[:keystroke].upper()) for o in panel.codice_fiscale.options)
    panel.codice_fiscale.value = cf.lower()
    assert cf.upper() in panel.codice_fiscale.options
    assert f">{row['IdOperazione']}<" in panel.certs.value and shown(panel.submit.layout.display)
    assert panel.shown_cf == cf.upper()
    # a person with many requests: one suggestion, every certificate listed
    panel.codice_fiscale.value = CF_CROWD
    assert list(panel.codice_fiscale.options) == [CF_CROWD]
    assert "TUTTI i 60 certificati" in panel.notice.value
    # typing someone else hides the form: it never files for the previous person
    panel.codice_fiscale.value = CF_CROWD[:-1]
    assert not shown(panel.submit.layout.display) and panel.certs.value == ""


def widget_tree(widget: widgets.Widget) -> Iterator[widgets.Widget]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from widget_tree(child)


def test_the_browser_never_receives_the_population(crowd_panel: CancellationPanel) -> None:
    panel = crowd_panel
    assert panel.query.rows("SELECT count(DISTINCT CodiceFiscale) FROM ledger")[0][0] > 150_000
    for typed in ["", "A", "ab", "ABC", CF_CROWD[:3], CF_CROWD, "", "Q"]:
        panel.codice_fiscale.value = typed
        state = panel.codice_fiscale.get_state()
        assert 0 < len(state["options"]) <= MAX_MATCHES, typed
        # everything the page's widgets hold stays small (a person's table included)
        sent = sum(len(json.dumps(w.get_state(), default=str)) for w in widget_tree(panel))
        assert sent < 64_000, (typed, sent)
    panel.select(CF_CROWD)  # a lookup from code, then Cerca: still the bounded list
    panel.cerca.click()
    assert "TUTTI i 60 certificati" in panel.notice.value
    assert 0 < len(panel.codice_fiscale.get_state()["options"]) <= MAX_MATCHES


# -- channels (issue 18) ----------------------------------------------------------------------


def channel_row(id_op: str, cf: str, stato: str, richiesta: dt.datetime, canale: str,
                **kw: str) -> dict[str, str]:
    return {**ledger_row(id_op, cf, stato, richiesta, **kw), "Canale": canale}


@pytest.fixture
def channels_home(home: Path) -> Path:
    write_ledger(home, [
        channel_row("p-d", CF_PERSON, "ATTIVATO", T0, ""),
        channel_row("p-a", CF_PERSON, "ATTIVATO", T0 + DAY, "acme"),
        channel_row("p-m", CF_PERSON, "ATTIVATO", T0 + 2 * DAY, ADMIN_CHANNEL),
        channel_row("c-1", CF_COMPANY, "ANNULLATO", T0, "acme", motivazione="ALTRO",
                    annullamento="2026-07-01T10:00:00Z"),
        channel_row("c-2", CF_COMPANY, "ATTIVATO", T0 + 10 * DAY, "acme"),
        channel_row("c-3", CF_COMPANY, "ATTIVATO", T0 + 20 * DAY, ""),
    ])
    return home


def test_each_certificate_shows_its_channel_and_the_first_cancels_every_one(
        channels_home: Path) -> None:
    panel = make_cancellation_panel(channels_home)
    panel.select(CF_PERSON)
    assert ">Canale</th>" in panel.certs.value
    for id_op, label in (("p-d", "predefinito (inbox/)"), ("p-a", "acme"),
                         ("p-m", "amministratori")):
        assert re.search(rf">{id_op}</td><td[^>]*>{re.escape(label)}</td>", panel.certs.value)
    # the administrators' authority is every channel: "first" and "cumulative" count all
    assert "TUTTI i 3 certificati elencati, di ogni canale" in panel.notice.value
    panel.motivazione.value = "CHIAVE_SMARRITA"
    panel.operatore.value = "amministratore"
    with FakeDaemon(channels_home):
        file_and_wait(panel)
    assert panel.last_receipt is not None and panel.last_receipt["esito"] == "OK"
    assert sorted(panel.last_receipt["id_operazione"]) == ["p-a", "p-d", "p-m"]
    ledger = load_ledger(channels_home).set_index("IdOperazione")
    assert set(ledger.loc[["p-a", "p-d", "p-m"], "Stato"]) == {"ANNULLATO"}


def test_a_later_cancellation_picks_one_certificate_of_any_channel(channels_home: Path
                                                                   ) -> None:
    panel = make_cancellation_panel(channels_home)
    panel.select(CF_COMPANY)
    assert "cumulativa" not in panel.notice.value  # c-1 was cancelled, through acme
    labels = dict((v, label) for label, v in panel.scelta.options)
    assert labels["c-2"] == "c-2 (acme, richiesto il 11/06/2026)"
    assert labels["c-3"] == "c-3 (predefinito (inbox/), richiesto il 21/06/2026)"
    panel.scelta.value = "c-2"
    panel.motivazione.value = "MALFUNZIONAMENTO"
    panel.operatore.value = "amministratore"
    with FakeDaemon(channels_home):
        file_and_wait(panel)
    assert panel.last_receipt is not None and panel.last_receipt["id_operazione"] == ["c-2"]
    assert [v for _l, v in panel.scelta.options] == ["c-3"]


def test_without_the_administrators_inbox_nothing_is_filed(home: Path) -> None:
    """The daemon makes state/admin/inbox/ when it starts (only its user may write there):
    a panel that cannot file there says so, and never files into inbox/ instead."""
    (home / "state" / "admin" / "inbox").rmdir()
    panel = make_cancellation_panel(home)
    panel.select(CF_PERSON)
    panel.motivazione.value = "FURTO_CERTIFICATO"
    panel.operatore.value = "op"
    panel.submit.click()
    assert ("Impossibile depositare la richiesta in <code>state/admin/inbox/</code>"
            in panel.status.value)
    assert "solo l'utente del daemon" in panel.status.value
    assert not panel.waiter.busy and panel.last_input is None
    assert filed(home) == [] and not (home / "inbox").exists()


def test_the_real_daemon_cancels_through_the_administrators_channel(
        ca_template: Path, tmp_path: Path) -> None:
    """A certificate requested through inbox/acme/ is beyond what inbox/ may cancel, and
    within what the panel's channel may: ``certdesk watch --once`` answers both."""
    home = tmp_path / "home"
    shutil.copytree(ca_template, home)
    make_channels(home, "acme")
    drop_file(home, "via-acme.csr", make_csr(CF_PERSON, slot=1), canale="acme")
    drop_file(home, "diretta.csr", make_csr(CF_PERSON, slot=2))
    run_certdesk(home, "watch", "--once", "--workers", "1")
    by_channel = {str(r["Canale"] if isinstance(r["Canale"], str) else ""): str(r["IdOperazione"])
                  for _, r in load_ledger(home).iterrows()}
    assert set(by_channel) == {"", "acme"}
    acme, direct = by_channel["acme"], by_channel[""]
    # through inbox/ (the default channel), acme's certificate does not exist
    refused = file_cancellation(home, codice_fiscale=CF_PERSON, id_operazione=[acme],
                                motivazione="FURTO_CERTIFICATO", operatore="gestionale")
    run_certdesk(home, "watch", "--once", "--workers", "1")
    answer = json.loads(receipt_path(home, refused.name).read_text())
    assert answer["esito"] == "KO"
    assert [e["codice"] for e in answer["errori"]] == ["ID_OPERAZIONE_NON_TROVATO"]

    panel = make_cancellation_panel(home, timeout=120, interval=0.05)
    panel.select(CF_PERSON)
    assert re.search(rf">{acme}</td><td[^>]*>acme</td>", panel.certs.value)
    assert "TUTTI i 2 certificati elencati, di ogni canale" in panel.notice.value
    panel.motivazione.value = "FURTO_CERTIFICATO"
    panel.operatore.value = "amministratore"
    panel.submit.click()
    assert panel.last_input is not None
    assert panel.last_input.parent == home / "state" / "admin" / "inbox"
    run_certdesk(home, "watch", "--once", "--workers", "1")
    assert panel.waiter.join(30) and panel.waiter.error is None
    receipt = panel.last_receipt
    assert receipt is not None and receipt["esito"] == "OK", receipt
    assert sorted(receipt["id_operazione"]) == sorted([acme, direct])
    assert (home / "state" / "admin" / "receipts" / f"{panel.last_input.name}.json").is_file()
    assert "Annullamento eseguito" in panel.result.value
    ledger = load_ledger(home).set_index("IdOperazione")
    assert set(ledger["Stato"]) == {"ANNULLATO"}
    assert ledger.loc[acme, "Canale"] == "acme"  # still acme's request, cancelled by admins
    # the channel's own ledger shows it too, and the operator is the document's
    assert f"{acme}," in (home / "outbox" / "acme" / "ledger.csv").read_text()
    assert "ANNULLATO" in (home / "outbox" / "acme" / "ledger.csv").read_text()
    assert panel.submit.layout.display == "none"  # nothing ATTIVATO is left
