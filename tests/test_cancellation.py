"""Annullamento through the drop folder and the CLI: the rules, the CRL (read by
cryptography and openssl, linted by pkilint), OCSP responses, ledger and journal."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ca_helpers import pkilint_findings
from certdesk.cancellation import load_cancellation_document, parse_cancellation
from certdesk.clock import now_utc
from certdesk.errors import CancellationRejected
from conftest import PASSPHRASE, CsrFactory, drop, receipt, run_certdesk

PERSON = "RSSMRA80A01H501U"
OTHER = "BNCLRD70B02F205H"
COMPANY = "00743110157"


def process(home: Path) -> None:
    run_certdesk(home, "watch", "--once", "--workers", "1")


def request(home: Path, csrs: CsrFactory, cf: str, name: str, key: Path | None = None) -> str:
    drop(home, name, csrs.csr(f"/CN={cf}", key=key))
    process(home)
    result = receipt(home, name)
    assert result["esito"] == "OK", result
    return str(result["id_operazione"])


def cancel(home: Path, cf: str, *ids: str, motivazione: str = "FURTO_CERTIFICATO",
           nota: str = "") -> dict[str, Any]:  # fmt: skip
    args = ["cancel", "--codice-fiscale", cf, "--motivazione", motivazione, "--nota", nota]
    for id_op in ids:
        args += ["--id-operazione", id_op]
    name = run_certdesk(home, *args).stdout.strip()
    process(home)
    return receipt(home, name)


def codes(result: dict[str, Any]) -> list[str]:
    return [e["codice"] for e in result["errori"]]


def ledger(home: Path) -> dict[str, dict[str, str]]:
    with open(home / "outbox" / "ledger.csv", newline="") as fh:
        return {r["IdOperazione"]: r for r in csv.DictReader(fh)}


def crl(home: Path) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((home / "outbox" / "ca" / "issuing.crl").read_bytes())


def cert_path(home: Path, id_op: str) -> Path:
    return home / "outbox" / "certs" / f"{id_op}.pem"


def serial(home: Path, id_op: str) -> int:
    return x509.load_pem_x509_certificate(cert_path(home, id_op).read_bytes()).serial_number


def openssl_verify_crl(home: Path, id_op: str) -> subprocess.CompletedProcess[str]:
    ca = home / "outbox" / "ca"
    return subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(ca / "chain.pem"),
         "-CRLfile", str(ca / "issuing.crl.pem"), str(cert_path(home, id_op))],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture
def issued(home: Path, csrs: CsrFactory) -> dict[str, str]:
    """Three certificates for one person, one for another, one for a company."""
    ids = {}
    for index in range(3):
        drop(home, f"p{index}.csr", csrs.csr(f"/CN={PERSON}"))
    drop(home, "o.csr", csrs.csr(f"/CN={OTHER}"))
    drop(home, "c.csr", csrs.csr(f"/CN={COMPANY}"))
    process(home)
    for name in ("p0", "p1", "p2", "o", "c"):
        result = receipt(home, f"{name}.csr")
        assert result["esito"] == "OK"
        ids[name] = result["id_operazione"]
    return ids


def test_first_cancellation_is_cumulative(home: Path, issued: dict[str, str]) -> None:
    result = cancel(home, PERSON, issued["p1"], motivazione="FURTO_CERTIFICATO")
    assert result["esito"] == "OK", result
    assert result["tipo"] == "annullamento"
    assert sorted(result["id_operazione"]) == sorted([issued["p0"], issued["p1"], issued["p2"]])
    rows = ledger(home)
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


def test_openssl_and_pkilint_on_the_crl(home: Path, issued: dict[str, str]) -> None:
    assert cancel(home, PERSON, motivazione="CHIAVE_SMARRITA")["esito"] == "OK"
    revoked = openssl_verify_crl(home, issued["p0"])
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    live = openssl_verify_crl(home, issued["c"])
    assert live.returncode == 0 and ": OK" in live.stdout, live.stderr
    assert pkilint_findings("lint_crl", "-t", "CRL", "-p", "PKIX",
                            home / "outbox" / "ca" / "issuing.crl") == []  # fmt: skip
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(home / "outbox/ca/issuing.crl"),
         "-noout", "-text"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Key Compromise" in text and "X509v3 CRL Number" in text


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
    rows = ledger(home)
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
    assert ledger(home)[issued["c"]]["Stato"] == "ATTIVATO"  # refused whole


def test_nobody_cancels_someone_elses_certificate(home: Path, issued: dict[str, str]) -> None:
    result = cancel(home, PERSON, issued["o"])
    assert codes(result) == ["ID_OPERAZIONE_NON_TROVATO"]
    unknown = cancel(home, PERSON, "20990101-000000999")
    assert codes(unknown) == ["ID_OPERAZIONE_NON_TROVATO"]
    assert {r["Stato"] for r in ledger(home).values()} == {"ATTIVATO"}


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
    assert {r["Stato"] for r in ledger(home).values()} == {"ATTIVATO"}


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


def test_crl_number_is_monotonic(home: Path, issued: dict[str, str]) -> None:
    def number() -> int:
        return crl(home).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    first = number()
    cancel(home, COMPANY, motivazione="ATTIVITA_CESSATA")
    second = number()
    cancel(home, OTHER, motivazione="MALFUNZIONAMENTO")
    assert first < second < number()


def _ocsp(home: Path, id_op: str) -> subprocess.CompletedProcess[str]:
    ca = home / "outbox" / "ca"
    response = home / "outbox" / "ocsp" / f"{serial(home, id_op):x}.der"
    return subprocess.run(
        ["openssl", "ocsp", "-respin", str(response), "-issuer", str(ca / "issuing.pem"),
         "-VAfile", str(ca / "issuing.pem"), "-CAfile", str(ca / "chain.pem"),
         "-cert", str(cert_path(home, id_op)), "-resp_text"],
        capture_output=True, text=True,
    )  # fmt: skip


def test_ocsp_responses_good_and_revoked(home: Path, issued: dict[str, str]) -> None:
    assert cancel(home, PERSON, motivazione="CHIAVE_SMARRITA")["esito"] == "OK"
    revoked = _ocsp(home, issued["p0"])
    assert "Response verify OK" in revoked.stderr + revoked.stdout, revoked.stderr
    assert "revoked" in revoked.stdout and "Reason: keyCompromise" in revoked.stdout
    good = _ocsp(home, issued["c"])
    assert "Response verify OK" in good.stderr + good.stdout
    assert ": good" in good.stdout
    path = home / "outbox" / "ocsp" / f"{serial(home, issued['p0']):x}.der"
    assert pkilint_findings("lint_ocsp_response", path) == []


def test_expiry_moves_to_scaduto_and_leaves_the_crl(
    home: Path, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from certdesk.home import Home
    from certdesk.runtime import open_engine

    assert cancel(home, COMPANY, motivazione="ATTIVITA_CESSATA")["esito"] == "OK"
    assert len(crl(home)) == 1
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    later = now_utc() + timedelta(days=4000)
    engine = open_engine(Home.at(home), workers=1, clock=lambda: later)
    try:
        assert engine.sweep_expired() == 4  # the four still ATTIVATO
    finally:
        engine.close()
    rows = ledger(home)
    assert {rows[issued[n]]["Stato"] for n in ("p0", "p1", "p2", "o")} == {"SCADUTO"}
    assert rows[issued["c"]]["Stato"] == "ANNULLATO"
    assert len(crl(home)) == 0  # an expired certificate leaves the CRL
    assert run_certdesk(home, "verify-ledger").returncode == 0
    expired = cancel(home, PERSON, issued["p0"])
    assert codes(expired) == ["STATO_NON_ANNULLABILE"]


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


def test_ocsp_of_a_cancellation_is_signed_before_its_receipt(
    home: Path, csrs: CsrFactory, issued: dict[str, str]
) -> None:
    """The revoked OCSP response exists before the receipt appears, even while new
    certificates are still waiting for their first response."""
    for index in range(3):
        drop(home, f"a{index}.csr", csrs.csr(f"/CN={COMPANY}"))
    drop(home, "z-annullamento.json", json.dumps({
        "tipo": "annullamento", "codice_fiscale": OTHER, "id_operazione": [issued["o"]],
        "motivazione": "CHIAVE_SMARRITA", "operatore": "test",
    }).encode())  # fmt: skip
    process(home)
    answer = home / "outbox" / "receipts" / "z-annullamento.json.json"
    assert json.loads(answer.read_text())["esito"] == "OK"
    response = home / "outbox" / "ocsp" / f"{serial(home, issued['o']):x}.der"
    assert response.stat().st_mtime_ns <= answer.stat().st_mtime_ns
    assert (
        ": revoked" in _ocsp(home, issued["o"]).stdout
        or "revoked" in _ocsp(home, issued["o"]).stdout
    )


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
    rows = ledger(home)
    assert {rows[issued[n]]["Stato"] for n in ("p0", "p1", "p2", "o")} == {"ANNULLATO"}
    assert rows[issued["c"]]["Stato"] == "ATTIVATO"
    revoked = {r.serial_number for r in crl(home)}
    assert revoked == {serial(home, issued[n]) for n in ("p0", "p1", "p2", "o")}
    number = crl(home).extensions.get_extension_for_class(x509.CRLNumber).value
    assert number.crl_number == crl_number_before.crl_number + 1  # one CRL for the run
    assert not list((home / "outbox").glob(".*.tmp"))  # the replaced ledger was freed
    assert run_certdesk(home, "verify-ledger").returncode == 0


def test_a_started_daemon_builds_the_crl_entries_ahead(
    home: Path, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a start, idle slices build the CRL's entries (here one per slice, read in
    order across slices), so the next cancellation builds only its own entry and the CRL
    still lists every cancelled certificate."""
    from certdesk.client import file_cancellation
    from certdesk.home import Home
    from certdesk.intake import claim
    from certdesk.runtime import open_engine

    for name in ("p0", "o"):
        who = PERSON if name == "p0" else OTHER
        assert cancel(home, who, issued[name], motivazione="ATTIVITA_CESSATA")["esito"] == "OK"
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", PASSPHRASE)
    from certdesk.operations import upkeep

    monkeypatch.setattr(upkeep, "_CRL_ENTRIES_SLICE", 1)
    engine = open_engine(Home.at(home), workers=1)
    try:
        entries = engine.revocation._entries
        assert engine.idle_work(ahead=False) == 0 and len(entries) == 0  # --once: not ahead
        slices = 0
        while engine.idle_work():
            slices += 1
        # p0 was PERSON's first cancellation: cumulative, so p1 and p2 too.
        assert slices == 4 and len(entries) == 4 and entries.complete
        built = dict(entries._built)
        path = file_cancellation(home, codice_fiscale=COMPANY, id_operazione=[issued["c"]],
                                 motivazione="FURTO_CERTIFICATO")  # fmt: skip
        taken = claim(Home.at(home), path.name)
        assert taken is not None
        [outcome] = engine.process([taken])
        assert outcome.esito == "OK"
        assert all(entries._built[s] is e for s, e in built.items())  # reused, not rebuilt
    finally:
        engine.close()
    listed = {r.serial_number for r in crl(home)}
    assert listed == {serial(home, issued[n]) for n in ("p0", "p1", "p2", "o", "c")}
    assert openssl_verify_crl(home, issued["c"]).returncode != 0


# -- malformed documents: a specific code, a message naming the field, nothing else raised
VALID_ID = "20250101-000000001"


def _document(**fields: object) -> dict[str, object]:
    document: dict[str, object] = {
        "tipo": "annullamento", "codice_fiscale": PERSON, "id_operazione": [VALID_ID],
        "motivazione": "ALTRO", "nota": "contratto chiuso", "operatore": "mario",
    }  # fmt: skip
    document.update(fields)
    return document


def _refused_bytes(data: bytes) -> CancellationRejected:
    with pytest.raises(CancellationRejected) as caught:
        parse_cancellation(load_cancellation_document(data))
    caught.value.message.encode("utf-8")  # a receipt and the store can hold it
    assert caught.value.code.isupper() and caught.value.code != "ERRORE_INTERNO"
    return caught.value


def _refused(document: dict[str, object]) -> CancellationRejected:
    return _refused_bytes(json.dumps(document).encode())


def test_a_valid_document_parses() -> None:
    parsed = parse_cancellation(load_cancellation_document(json.dumps(_document()).encode()))
    assert parsed.codice_fiscale == PERSON and parsed.id_operazione == (VALID_ID,)
    assert parsed.nota == "contratto chiuso" and parsed.operatore == "mario"
    bare = {"codice_fiscale": "rss-mra-80a01-h501u", "id_operazione": VALID_ID,
            "motivazione": "FURTO_CERTIFICATO"}  # fmt: skip
    parsed = parse_cancellation(bare)
    assert parsed.codice_fiscale == PERSON and parsed.id_operazione == (VALID_ID,)
    assert parsed.nota == "" and parsed.operatore == ""


WRONG_TYPES: list[object] = [0, 1.5, [], ["x"], {}, {"x": "y"}, False, True, None]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("operatore", v, "OPERATORE_NON_VALIDO") for v in WRONG_TYPES]
    + [("nota", v, "NOTA_NON_VALIDA") for v in WRONG_TYPES]
    + [
        ("operatore", "o" * 201, "OPERATORE_NON_VALIDO"),
        ("nota", "n" * 2001, "NOTA_NON_VALIDA"),
        ("codice_fiscale", None, "CODICE_FISCALE_MANCANTE"),
        ("codice_fiscale", "  ", "CODICE_FISCALE_MANCANTE"),
        ("codice_fiscale", 7, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", [PERSON], "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", {}, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", True, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "\u2028" + PERSON, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "R\u017fSMRA80A01H501U", "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "RSSMRA\uff18\uff10A01H501U", "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "X" * 60_000, "CODICE_FISCALE_NON_VALIDO"),
        ("id_operazione", None, "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", {}, "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", 20250101, "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [1, 2], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [None], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [[VALID_ID]], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [""], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", ["x" * 65], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", ["2025\u20140101"], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [f"20250101-{i:09d}" for i in range(101)], "ID_OPERAZIONE_NON_VALIDO"),
        ("motivazione", None, "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", ["ALTRO"], "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", {"ALTRO": 1}, "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", 5, "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", "altro", "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", "M" * 50_000, "MOTIVAZIONE_NON_VALIDA"),
    ],
)  # fmt: skip
def test_each_malformed_field_has_its_code_and_is_named(
    field: str, value: object, code: str
) -> None:
    error = _refused(_document(**{field: value}))
    assert error.code == code
    assert f"'{field}'" in error.message
    assert len(error.message) < 400  # the value is not echoed whole
    others = {"codice_fiscale", "id_operazione", "motivazione", "nota", "operatore"} - {field}
    assert not any(f"'{other}'" in error.message for other in others)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"versione": ' + b"9" * 5000 + b"}", "'versione'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"id_operazione": [-' + b"1" * 5000 + b"]}", "'id_operazione'[0]"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "\\ud800"}',
         "'nota'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"operatore": "a\\udfffb"}', "'operatore'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U\\ud800", "motivazione": "ALTRO", "nota": "n"}',
         "'codice_fiscale'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"id_operazione": ["\\udc00"]}', "'id_operazione'[0]"),
        (b'{"\\ud800": 1, "codice_fiscale": "RSSMRA80A01H501U"}', "chiave"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": NaN}',
         "'nota'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "x": {"y": [Infinity, -Infinity]}}',
         "'x'['y'][0]"),
        (b'{"codice_fiscale": "BNCLRD70B02F205H", "motivazione": "ALTRO", "nota": "n", '
         b'"codice_fiscale": "RSSMRA80A01H501U"}', "'codice_fiscale'"),
        (b"\xef\xbb\xbf" + json.dumps(_document()).encode(), "BOM"),
        (json.dumps(_document()).encode("utf-16"), "UTF-8"),
        (json.dumps(_document(nota="perch\u00e9"), ensure_ascii=False).encode("latin-1"),
         "UTF-8"),
        (b'{"nota": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "annidati"),
        (b"[" * 20_000, "annidati"),
        (b"", "JSON"),
        (b"[]", "oggetto"),
        (b'"annullamento"', "oggetto"),
        (b"null", "oggetto"),
        (b"1" + b"0" * 5000, "oggetto"),
        (b'{"nota": "a\x01b"}', "JSON"),
    ],
)  # fmt: skip
def test_malformed_json_is_refused_as_json_non_valido(data: bytes, named: str) -> None:
    error = _refused_bytes(data)
    assert error.code == "JSON_NON_VALIDO"
    assert named in error.message


def test_an_oversized_document_is_refused() -> None:
    error = _refused_bytes(json.dumps(_document(nota="n" * 70_000)).encode())
    assert error.code == "FILE_TROPPO_GRANDE"


@pytest.mark.parametrize(
    ("field", "code"),
    [("nota", "NOTA_NON_VALIDA"), ("operatore", "OPERATORE_NON_VALIDO"),
     ("id_operazione", "ID_OPERAZIONE_NON_VALIDO"),
     ("codice_fiscale", "CODICE_FISCALE_NON_VALIDO")],
)  # fmt: skip
def test_a_lone_surrogate_given_directly_is_refused(field: str, code: str) -> None:
    """parse_cancellation holds its own line: a surrogate that bypassed the loader would
    fail the run's transaction in SQLite, or the receipt that echoes it."""
    value: object = ["\ud800"] if field == "id_operazione" else PERSON[:5] + "\ud800"
    with pytest.raises(CancellationRejected) as caught:
        parse_cancellation(_document(**{field: value}))
    assert caught.value.code == code and f"'{field}'" in caught.value.message
    caught.value.message.encode("utf-8")


def test_values_that_cannot_be_printed_are_not_printed() -> None:
    """repr() of a 5000-digit int raises ValueError, of a deep list RecursionError."""
    deep: list[object] = []
    for _ in range(50_000):
        deep = [deep]
    for value in (10**5000, deep):
        with pytest.raises(CancellationRejected) as caught:
            parse_cancellation(_document(motivazione=value))
        assert caught.value.code == "MOTIVAZIONE_NON_VALIDA"
        for field in ("nota", "operatore", "id_operazione", "codice_fiscale"):
            with pytest.raises(CancellationRejected):
                parse_cancellation(_document(**{field: value}))


def test_a_run_with_malformed_annullamenti_applies_the_valid_one(
    home: Path, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Annullamenti are decided in one transaction: a malformed one is refused with its
    own code, and neither fails the run nor stops the valid one in it."""
    from certdesk.home import Home
    from certdesk.intake import claim
    from certdesk.runtime import open_engine

    files = {
        "a-operatore.json": json.dumps(_document(
            id_operazione=[issued["p0"]], motivazione="FURTO_CERTIFICATO", operatore={},
        )).encode(),
        "b-numero.json": b'{"tipo": "annullamento", "codice_fiscale": "' + COMPANY.encode()
        + b'", "motivazione": "ATTIVITA_CESSATA", "versione": ' + b"7" * 5000 + b"}",
        "c-valido.json": json.dumps(_document(
            codice_fiscale=OTHER, id_operazione=[issued["o"]], motivazione="CHIAVE_SMARRITA",
        )).encode(),
        "d-surrogato.json": json.dumps(_document(
            codice_fiscale=COMPANY, id_operazione=[issued["c"]], nota="chiuso \ud800",
        )).encode(),  # json.dumps writes the "\ud800" escape
        "e-nota.json": json.dumps(_document(
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
    rows = ledger(home)
    assert rows[issued["o"]]["Stato"] == "ANNULLATO"
    assert {rows[issued[n]]["Stato"] for n in ("p0", "p1", "p2", "c")} == {"ATTIVATO"}
    assert serial(home, issued["o"]) in {r.serial_number for r in crl(home)}
    assert run_certdesk(home, "verify-ledger").returncode == 0
