"""Cancelling (``operations/cancelling.py``): annullamenti through the drop folder and the
command line. The first of a person is cumulative, later ones name one certificate; only
ATTIVATO is cancelled and nobody cancels another's; lost or stolen keys are blocked; a run
of annullamenti is decided in one pass; ``certdesk cancel --wait`` on a live daemon."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509

from conftest import (
    COMPANY,
    OTHER,
    PASSPHRASE,
    PERSON,
    CsrFactory,
    annullamento,
    cancel,
    codes,
    crl,
    drop,
    ledger_by_id,
    process,
    receipt,
    request,
    run_certdesk,
    serial,
)


def test_first_cancellation_is_cumulative(home: Path, issued: dict[str, str]) -> None:
    result = cancel(home, PERSON, issued["p1"], motivazione="FURTO_CERTIFICATO")
    assert result["esito"] == "OK", result
    assert result["tipo"] == "annullamento"
    assert sorted(result["id_operazione"]) == sorted([issued["p0"], issued["p1"], issued["p2"]])
    rows = ledger_by_id(home)
    for name in ("p0", "p1", "p2"):
        row = rows[issued[name]]
        assert row["Stato"] == "ANNULLATO"
        assert row["Motivazione"] == "FURTO_CERTIFICATO"
        assert row["DataAnnullamento"].endswith("Z")
    assert rows[issued["o"]]["Stato"] == "ATTIVATO"
    assert rows[issued["c"]]["Stato"] == "ATTIVATO"
    # the CRL already shows them, with keyCompromise
    revoked = {r.serial_number: r for r in crl(home)}
    for name in ("p0", "p1", "p2"):
        entry = revoked[serial(home, issued[name])]
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason is x509.ReasonFlags.key_compromise
    assert serial(home, issued["o"]) not in revoked
    assert run_certdesk(home, "verify-ledger").returncode == 0
    with open(home / "outbox" / "journal.csv", newline="") as fh:
        changes = [r for r in csv.DictReader(fh) if r["AStato"] == "ANNULLATO"]
    assert len(changes) == 3 and {c["DaStato"] for c in changes} == {"ATTIVATO"}
    assert {c["Motivazione"] for c in changes} == {"FURTO_CERTIFICATO"}


def test_later_cancellations_name_exactly_one(
    home: Path, csrs: CsrFactory, issued: dict[str, str]
) -> None:
    assert cancel(home, PERSON, issued["p0"], motivazione="RINNOVO_SCADENZA")["esito"] == "OK"
    # after a cancellation the same person may request new certificates at any time
    new1 = request(home, csrs, PERSON, "n1.csr")
    new2 = request(home, csrs, PERSON, "n2.csr")
    both = cancel(home, PERSON, new1, new2, motivazione="MALFUNZIONAMENTO")
    assert both["esito"] == "KO" and codes(both) == ["UN_SOLO_ID_OPERAZIONE"]
    none = cancel(home, PERSON, motivazione="MALFUNZIONAMENTO")
    assert codes(none) == ["UN_SOLO_ID_OPERAZIONE"]
    one = cancel(home, PERSON, new1, motivazione="MALFUNZIONAMENTO")
    assert one["esito"] == "OK" and one["id_operazione"] == [new1]
    rows = ledger_by_id(home)
    assert rows[new1]["Stato"] == "ANNULLATO" and rows[new2]["Stato"] == "ATTIVATO"
    reasons = {
        r.serial_number: r.extensions.get_extension_for_class(x509.CRLReason).value.reason
        for r in crl(home)
    }
    assert reasons[serial(home, new1)] is x509.ReasonFlags.superseded


def test_only_attivato_can_be_cancelled_and_refusal_is_whole(
    home: Path, csrs: CsrFactory, issued: dict[str, str]
) -> None:
    assert cancel(home, PERSON, motivazione="ATTIVITA_CESSATA")["esito"] == "OK"
    again = cancel(home, PERSON, issued["p0"], motivazione="ATTIVITA_CESSATA")
    assert (
        codes(again) == ["STATO_NON_ANNULLABILE"] and "ANNULLATO" in again["errori"][0]["messaggio"]
    )
    drop(home, "bad.csr", b"junk")
    process(home)
    rejected_id = receipt(home, "bad.csr")["id_operazione"]
    refused = cancel(home, COMPANY, rejected_id, issued["c"], motivazione="ALTRO", nota="x")
    assert codes(refused) == ["ID_OPERAZIONE_NON_TROVATO"]  # rejected row has no owner
    assert ledger_by_id(home)[issued["c"]]["Stato"] == "ATTIVATO"  # refused whole


def test_nobody_cancels_someone_elses_certificate(home: Path, issued: dict[str, str]) -> None:
    result = cancel(home, PERSON, issued["o"])
    assert codes(result) == ["ID_OPERAZIONE_NON_TROVATO"]
    unknown = cancel(home, PERSON, "20990101-000000999")
    assert codes(unknown) == ["ID_OPERAZIONE_NON_TROVATO"]
    assert {r["Stato"] for r in ledger_by_id(home).values()} == {"ATTIVATO"}


def test_altro_requires_a_note_and_has_no_crl_reason(home: Path, issued: dict[str, str]) -> None:
    assert codes(cancel(home, COMPANY, motivazione="ALTRO")) == ["NOTA_OBBLIGATORIA"]
    done = cancel(home, COMPANY, motivazione="ALTRO", nota="contratto chiuso")
    assert done["esito"] == "OK"
    entry = next(r for r in crl(home) if r.serial_number == serial(home, issued["c"]))
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)


def test_malformed_cancellations(home: Path, issued: dict[str, str]) -> None:
    cases = {
        "bad-reason.json": ({"codice_fiscale": PERSON, "motivazione": "PERCHE_SI"},
                            "MOTIVAZIONE_NON_VALIDA"),
        "bad-cf.json": ({"codice_fiscale": "XYZ", "motivazione": "ALTRO", "nota": "n"},
                        "CODICE_FISCALE_NON_VALIDO"),
        "no-cf.json": ({"motivazione": "ALTRO", "nota": "n"}, "CODICE_FISCALE_MANCANTE"),
        "bad-ids.json": ({"codice_fiscale": PERSON, "motivazione": "ALTRO", "nota": "n",
                          "id_operazione": [1, 2]}, "ID_OPERAZIONE_NON_VALIDO"),
    }  # fmt: skip
    for name, (document, _) in cases.items():
        drop(home, name, json.dumps({"tipo": "annullamento", **document}).encode())
    drop(home, "broken.json", b'{"tipo": "annullamento", ')
    process(home)
    for name, (_, code) in cases.items():
        assert codes(receipt(home, name)) == [code], name
    assert codes(receipt(home, "broken.json")) == ["JSON_NON_VALIDO"]
    assert {r["Stato"] for r in ledger_by_id(home).values()} == {"ATTIVATO"}


def test_first_cancellation_without_active_certificates(home: Path) -> None:
    assert codes(cancel(home, PERSON, motivazione="FURTO_CERTIFICATO")) == [
        "NESSUN_CERTIFICATO_ATTIVO"
    ]


@pytest.mark.parametrize(
    ("motivazione", "blocked"),
    [("CHIAVE_SMARRITA", True), ("FURTO_CERTIFICATO", True), ("RINNOVO_SCADENZA", False)],
)
def test_lost_or_stolen_keys_are_blocked(
    home: Path, csrs: CsrFactory, motivazione: str, blocked: bool
) -> None:
    key = csrs.key()
    request(home, csrs, PERSON, "k1.csr", key=key)
    assert cancel(home, PERSON, motivazione=motivazione)["esito"] == "OK"
    drop(home, "k2.csr", csrs.csr(f"/CN={PERSON}", key=key, digest="-sha384"))
    process(home)
    result = receipt(home, "k2.csr")
    if blocked:
        assert codes(result) == ["CHIAVE_BLOCCATA"]
    else:
        assert result["esito"] == "OK"


def test_cancel_wait_with_a_live_daemon(home: Path, issued: dict[str, str]) -> None:
    import os
    import sys

    env = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "certdesk.daemon", "--home", str(home), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ok = run_certdesk(home, "cancel", "--codice-fiscale", PERSON, "--motivazione",
                          "FURTO_CERTIFICATO", "--wait", check=False)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        lines = ok.stdout.splitlines()
        printed = json.loads("\n".join(lines[1:]))
        assert printed["esito"] == "OK" and len(printed["id_operazione"]) == 3
        ko = run_certdesk(home, "cancel", "--codice-fiscale", PERSON, "--motivazione",
                          "FURTO_CERTIFICATO", "--id-operazione", issued["p0"], "--wait",
                          check=False)  # fmt: skip
        assert ko.returncode == 1
        assert json.loads("\n".join(ko.stdout.splitlines()[1:]))["esito"] == "KO"
    finally:
        daemon.terminate()
        code = daemon.wait(timeout=30)
    assert code == 0


def test_a_run_of_annullamenti_is_decided_in_order_and_published_once(
    home: Path, issued: dict[str, str]
) -> None:
    """Annullamenti waiting together are decided in one pass, each seeing the ones before
    it: the person's first (cumulative) cancellation, then a second one for the same
    person that finds nothing left; another person; a refused one in between. One CRL
    and one ledger update show all of them when the receipts appear."""
    from certdesk.client import file_cancellation

    names = [
        file_cancellation(home, codice_fiscale=PERSON, id_operazione=[issued["p0"]],
                          motivazione="ATTIVITA_CESSATA", name="a1.json").name,
        file_cancellation(home, codice_fiscale=PERSON, id_operazione=[issued["p1"]],
                          motivazione="ATTIVITA_CESSATA", name="a2.json").name,
        file_cancellation(home, codice_fiscale=OTHER, id_operazione=[issued["c"]],
                          motivazione="ATTIVITA_CESSATA", name="a3.json").name,
        file_cancellation(home, codice_fiscale=OTHER, id_operazione=[issued["o"]],
                          motivazione="FURTO_CERTIFICATO", name="a4.json").name,
    ]  # fmt: skip
    for name in names:  # waiting together: all settled when the daemon looks
        os.utime(home / "inbox" / name, (time.time() - 60, time.time() - 60))
    crl_number_before = crl(home).extensions.get_extension_for_class(x509.CRLNumber).value
    process(home)
    first, again, foreign, other = (receipt(home, n) for n in names)
    assert first["esito"] == "OK"
    assert sorted(first["id_operazione"]) == sorted(issued[n] for n in ("p0", "p1", "p2"))
    assert again["esito"] == "KO"  # p1 was cancelled by the first, in the same pass
    assert foreign["esito"] == "KO"  # the company's certificate is not OTHER's
    assert other["esito"] == "OK" and other["id_operazione"] == [issued["o"]]
    rows = ledger_by_id(home)
    assert {rows[issued[n]]["Stato"] for n in ("p0", "p1", "p2", "o")} == {"ANNULLATO"}
    assert rows[issued["c"]]["Stato"] == "ATTIVATO"
    revoked = {r.serial_number for r in crl(home)}
    assert revoked == {serial(home, issued[n]) for n in ("p0", "p1", "p2", "o")}
    number = crl(home).extensions.get_extension_for_class(x509.CRLNumber).value
    assert number.crl_number == crl_number_before.crl_number + 1  # one CRL for the run
    assert not list((home / "outbox").glob(".*.tmp"))  # the replaced ledger was freed
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_a_run_with_malformed_annullamenti_applies_the_valid_one(
    home: Path, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Annullamenti are decided in one transaction: a malformed one is refused with its
    own code, and neither fails the run nor stops the valid one in it."""
    from certdesk.home import Home
    from certdesk.intake import claim
    from certdesk.runtime import open_engine

    files = {
        "a-operatore.json": json.dumps(annullamento(
            id_operazione=[issued["p0"]], motivazione="FURTO_CERTIFICATO", operatore={},
        )).encode(),
        "b-numero.json": b'{"tipo": "annullamento", "codice_fiscale": "' + COMPANY.encode()
        + b'", "motivazione": "ATTIVITA_CESSATA", "versione": ' + b"7" * 5000 + b"}",
        "c-valido.json": json.dumps(annullamento(
            codice_fiscale=OTHER, id_operazione=[issued["o"]], motivazione="CHIAVE_SMARRITA",
        )).encode(),
        "d-surrogato.json": json.dumps(annullamento(
            codice_fiscale=COMPANY, id_operazione=[issued["c"]], nota="chiuso \ud800",
        )).encode(),  # json.dumps writes the "\ud800" escape
        "e-nota.json": json.dumps(annullamento(
            id_operazione=[issued["p1"]], motivazione="ALTRO", nota=[],
        )).encode(),
    }  # fmt: skip
    for name, data in files.items():
        drop(home, name, data)
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    local = Home.at(home)
    engine = open_engine(local, workers=1)
    try:
        taken = [claim(local, name) for name in files]
        assert all(t is not None for t in taken)
        outcomes = engine.process([t for t in taken if t is not None])
    finally:
        engine.close()
    assert {o.file: (o.esito, o.codice) for o in outcomes} == {
        "a-operatore.json": ("KO", "OPERATORE_NON_VALIDO"),
        "b-numero.json": ("KO", "JSON_NON_VALIDO"),
        "c-valido.json": ("OK", ""),
        "d-surrogato.json": ("KO", "JSON_NON_VALIDO"),
        "e-nota.json": ("KO", "NOTA_NON_VALIDA"),
    }
    assert "'operatore'" in receipt(home, "a-operatore.json")["errori"][0]["messaggio"]
    assert "'versione'" in receipt(home, "b-numero.json")["errori"][0]["messaggio"]
    assert "'nota'" in receipt(home, "d-surrogato.json")["errori"][0]["messaggio"]
    assert receipt(home, "c-valido.json")["id_operazione"] == [issued["o"]]
    rows = ledger_by_id(home)
    assert rows[issued["o"]]["Stato"] == "ANNULLATO"
    assert {rows[issued[n]]["Stato"] for n in ("p0", "p1", "p2", "c")} == {"ATTIVATO"}
    assert serial(home, issued["o"]) in {r.serial_number for r in crl(home)}
    assert run_certdesk(home, "verify-ledger").returncode == 0
