"""Integrator channels through the command line: requests and receipts in each channel's
folders, ledgers that show each channel its own rows, who may cancel what, a signed
``.p7m`` from any channel, retiring, republishing, a daemon that takes a new channel
while it runs, and a home written before channels (its ledger and journal upgraded).

The Unix side (groups, modes, what each user can read) is tests/test_channels_unix.py;
``kill -9`` during channels' cancellations is tests/test_channels_crash.py."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from daemon_support import DaemonProcess, wait_for

from certdesk.channels import ADMIN_CHANNEL, Authority, channel_of_claim, is_channel_name
from certdesk.names import safe_name
from certdesk.records import LEDGER_COLUMNS, RequestRecord
from certdesk.states import Stato
from conftest import PERSON, CsrFactory, codes, run_certdesk

OTHER_PERSON = "BNCLRD70B02F205H"


# -- the rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "acme", "acme-2", "x" * 32, "0"])
def test_channel_names_accepted(name: str) -> None:
    assert is_channel_name(name)


@pytest.mark.parametrize(
    "name", ["", "Acme", "a.b", "a/b", "-a", "a-", "x" * 33, "ca", "certs", "receipts", "ocsp",
             "admin", "@admin", "àcme", "a b", ".."],
)  # fmt: skip
def test_channel_names_refused(name: str) -> None:
    assert not is_channel_name(name)


def test_a_claim_carries_its_channel() -> None:
    assert channel_of_claim("20261201T000000000000-0a1b2c3d") == ""
    assert channel_of_claim("20261201T000000000000-0a1b2c3d.acme") == "acme"
    assert channel_of_claim("20261201T000000000000-0a1b2c3d.@admin") == ADMIN_CHANNEL


def _record(id_op: str, canale: str) -> RequestRecord:
    from datetime import UTC, datetime

    return RequestRecord(id_op, PERSON, "utente", Stato.ATTIVATO, datetime.now(UTC), "OK",
                         "x.csr", canale=canale)  # fmt: skip


def test_authority_of_a_channel_the_administrators_and_a_holder() -> None:
    mine, theirs, default = _record("1", "a"), _record("2", "b"), _record("3", "")
    assert Authority.of_channel("a").visible([mine, theirs, default]) == [mine]
    assert Authority.of_channel("").visible([mine, theirs, default]) == [default]
    assert Authority.of_channel(ADMIN_CHANNEL).visible([mine, theirs, default]) == [
        mine, theirs, default
    ]  # fmt: skip
    assert Authority.of_holder("b", "1").visible([mine, theirs, default]) == [mine]


# -- through the command line ------------------------------------------------------------------
def _drop(home: Path, canale: str, name: str, data: bytes) -> None:
    inbox = home / "inbox" / canale if canale else home / "inbox"
    aside = inbox / f".{name}.tmp"
    aside.write_bytes(data)
    aside.rename(inbox / name)


def _process(home: Path) -> None:
    run_certdesk(home, "watch", "--once", "--workers", "1")


def _receipt(home: Path, canale: str, name: str) -> dict[str, Any]:
    folder = home / "outbox" / canale if canale else home / "outbox"
    if canale == ADMIN_CHANNEL:
        folder = home / "state" / "admin"
    loaded: dict[str, Any] = json.loads(
        (folder / "receipts" / f"{safe_name(name)}.json").read_text()
    )
    return loaded


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cancellation(cf: str, *ids: str, motivazione: str = "MALFUNZIONAMENTO") -> bytes:
    document = {"tipo": "annullamento", "codice_fiscale": cf, "id_operazione": list(ids),
                "motivazione": motivazione, "operatore": "test"}  # fmt: skip
    return json.dumps(document).encode()


@pytest.fixture
def channels(home: Path) -> Path:
    for name in ("a", "b"):
        run_certdesk(home, "canale", "add", name)
    return home


def _request(home: Path, csrs: CsrFactory, canale: str, name: str, cf: str = PERSON,
             key: Path | None = None) -> None:  # fmt: skip
    _drop(home, canale, name, csrs.csr(f"/CN={cf}", key=key))


def test_requests_land_in_their_channels_outbox_and_ledger(
    channels: Path, csrs: CsrFactory
) -> None:
    home = channels
    _request(home, csrs, "a", "x.csr")
    _request(home, csrs, "b", "x.csr")  # the same name in another channel
    _request(home, csrs, "", "x.csr", cf=OTHER_PERSON)
    _process(home)
    got = {c: _receipt(home, c, "x.csr") for c in ("a", "b", "")}
    assert {c: r["esito"] for c, r in got.items()} == {"a": "OK", "b": "OK", "": "OK"}
    assert len({r["id_operazione"] for r in got.values()}) == 3
    for canale in ("a", "b"):
        id_op = got[canale]["id_operazione"]
        copy = home / "outbox" / canale / "certs" / f"{id_op}.pem"
        assert copy.read_bytes() == (home / "outbox" / "certs" / f"{id_op}.pem").read_bytes()
        assert not (home / "outbox" / canale / "certs" / f"{got['']['id_operazione']}.pem").exists()
    full = (home / "outbox" / "ledger.csv").read_text().splitlines(keepends=True)
    assert full[0].rstrip("\n").split(",") == list(LEDGER_COLUMNS)
    assert full[0].rstrip("\n").endswith(",Emittente,Canale")
    for canale in ("a", "b"):
        own = (home / "outbox" / canale / "ledger.csv").read_text().splitlines(keepends=True)
        assert own == [full[0]] + [line for line in full[1:] if line.endswith(f",{canale}\n")]
        assert OTHER_PERSON not in "".join(own)
    assert {r["IdOperazione"]: r["Canale"] for r in _rows(home / "outbox" / "ledger.csv")} == {
        got[c]["id_operazione"]: c for c in ("a", "b", "")
    }
    journal = _rows(home / "outbox" / "journal.csv")
    assert {r["Canale"] for r in journal} == {"a", "b", ""}
    run_certdesk(home, "verify-ledger")
    mine = home / "outbox" / "a" / "ledger.csv"
    kept = mine.read_bytes()
    mine.write_bytes(kept.replace(b"ATTIVATO", b"ANNULLATO"))  # a channel's ledger altered
    result = run_certdesk(home, "verify-ledger", check=False)
    assert result.returncode == 1 and "REGISTRO_ALTERATO" in result.stderr
    assert "a/ledger.csv riga 2" in result.stderr
    mine.write_bytes(kept)
    from certdesk.frame import load_ledger

    assert sorted(load_ledger(home)["Canale"].fillna("")) == ["", "a", "b"]  # empty: <NA>


def test_the_same_bytes_in_two_channels_are_two_requests(
    channels: Path, csrs: CsrFactory
) -> None:
    """A retry is answered in its own channel: another channel's request is not shown."""
    home = channels
    data = csrs.csr(f"/CN={PERSON}")
    _drop(home, "a", "r.csr", data)
    _process(home)
    _drop(home, "a", "again.csr", data)
    _drop(home, "b", "r.csr", data)
    _process(home)
    first, again, other = (_receipt(home, "a", "r.csr"), _receipt(home, "a", "again.csr"),
                           _receipt(home, "b", "r.csr"))  # fmt: skip
    assert again["id_operazione"] == first["id_operazione"] and again.get("ripetizione")
    assert other["esito"] == "OK" and other["id_operazione"] != first["id_operazione"]
    assert not other.get("ripetizione")


def test_each_channel_cancels_its_own_and_the_administrators_any(
    channels: Path, csrs: CsrFactory
) -> None:
    home = channels
    for canale, name in (("a", "a1.csr"), ("a", "a2.csr"), ("b", "b1.csr"), ("", "d1.csr")):
        _request(home, csrs, canale, name)
    _process(home)
    ids = {n: _receipt(home, c, n)["id_operazione"]
           for c, n in (("a", "a1.csr"), ("a", "a2.csr"), ("b", "b1.csr"), ("", "d1.csr"))}
    # A names B's certificate: as if it did not exist
    _drop(home, "a", "theirs.json", _cancellation(PERSON, ids["b1.csr"]))
    # the default channel names A's: the same
    _drop(home, "", "theirs.json", _cancellation(PERSON, ids["a1.csr"]))
    _process(home)
    assert codes(_receipt(home, "a", "theirs.json")) == ["ID_OPERAZIONE_NON_TROVATO"]
    assert codes(_receipt(home, "", "theirs.json")) == ["ID_OPERAZIONE_NON_TROVATO"]
    # A's first: cumulative over A's alone
    _drop(home, "a", "first.json", _cancellation(PERSON))
    _process(home)
    assert sorted(_receipt(home, "a", "first.json")["id_operazione"]) == sorted(
        [ids["a1.csr"], ids["a2.csr"]]
    )
    states = {r["IdOperazione"]: r["Stato"] for r in _rows(home / "outbox" / "ledger.csv")}
    assert states[ids["b1.csr"]] == states[ids["d1.csr"]] == "ATTIVATO"
    # B's first is cumulative within B (the person's earlier cancellation was A's)
    _drop(home, "b", "first.json", _cancellation(PERSON))
    _process(home)
    assert _receipt(home, "b", "first.json")["id_operazione"] == [ids["b1.csr"]]
    # the administrators: the person has had cancellations, so they name one; any channel's
    args = ["cancel", "--canale", ADMIN_CHANNEL, "--codice-fiscale", PERSON, "--motivazione",
            "ALTRO", "--nota", "richiesta allo sportello", "--operatore", "mario"]  # fmt: skip
    name = run_certdesk(home, *args).stdout.strip()
    _process(home)
    assert codes(_receipt(home, ADMIN_CHANNEL, name)) == ["UN_SOLO_ID_OPERAZIONE"]
    name = run_certdesk(home, *args, "--id-operazione", ids["d1.csr"]).stdout.strip()
    _process(home)
    assert _receipt(home, ADMIN_CHANNEL, name)["id_operazione"] == [ids["d1.csr"]]
    states = {r["IdOperazione"]: r["Stato"] for r in _rows(home / "outbox" / "ledger.csv")}
    assert set(states.values()) == {"ANNULLATO"}
    own = _rows(home / "outbox" / "b" / "ledger.csv")
    assert [(r["IdOperazione"], r["Stato"]) for r in own] == [(ids["b1.csr"], "ANNULLATO")]
    run_certdesk(home, "verify-ledger")


def _sign(tmp: Path, document: bytes, cert: Path, key: Path, *extra: str) -> bytes:
    source, out = tmp / "doc.json", tmp / "doc.json.p7m"
    source.write_bytes(document)
    subprocess.run(
        ["openssl", "cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-signer",
         str(cert), "-inkey", str(key), "-in", str(source), "-out", str(out), *extra],
        check=True, capture_output=True,
    )  # fmt: skip
    return out.read_bytes()


def test_a_signed_cancellation_cancels_its_certificate_from_any_channel(
    channels: Path, csrs: CsrFactory, tmp_path: Path
) -> None:
    home = channels
    key, other_key = csrs.key(), csrs.key()
    _request(home, csrs, "a", "mine.csr", key=key)
    _request(home, csrs, "a", "mine2.csr", key=other_key)
    _process(home)
    id_op = _receipt(home, "a", "mine.csr")["id_operazione"]
    id_two = _receipt(home, "a", "mine2.csr")["id_operazione"]
    cert = home / "outbox" / "a" / "certs" / f"{id_op}.pem"
    cert_two = home / "outbox" / "a" / "certs" / f"{id_two}.pem"
    signed = _sign(tmp_path, _cancellation(PERSON, id_op, motivazione="CHIAVE_SMARRITA"), cert, key)
    _drop(home, "b", "revoca.json.p7m", signed)  # through B: the key is the authority
    # signed with the person's other certificate: not the one it names
    _drop(home, "b", "diverso.json.p7m",
          _sign(tmp_path, _cancellation(PERSON, id_two), cert, key))  # fmt: skip
    _drop(home, "b", "cumulativo.json.p7m", _sign(tmp_path, _cancellation(PERSON), cert, key))
    _drop(home, "b", "rotto.json.p7m", signed[: len(signed) // 2])
    _drop(home, "b", "cert.json.p7m", cert.read_bytes())
    _process(home)
    assert _receipt(home, "b", "revoca.json.p7m")["id_operazione"] == [id_op]
    assert codes(_receipt(home, "b", "diverso.json.p7m")) == ["FIRMATARIO_DIVERSO"]
    assert codes(_receipt(home, "b", "cumulativo.json.p7m")) == ["P7M_NON_VALIDO"]
    assert codes(_receipt(home, "b", "rotto.json.p7m")) == ["P7M_NON_VALIDO"]
    assert codes(_receipt(home, "b", "cert.json.p7m")) == ["P7M_NON_VALIDO"]
    states = {r["IdOperazione"]: (r["Stato"], r["Motivazione"])
              for r in _rows(home / "outbox" / "a" / "ledger.csv")}  # fmt: skip
    assert states == {id_op: ("ANNULLATO", "CHIAVE_SMARRITA"), id_two: ("ATTIVATO", "")}
    # once cancelled, the same signed file again: only ATTIVATO can be cancelled
    _drop(home, "", "ancora.json.p7m", signed)
    # as text: ``-outform PEM`` (the last -outform wins), the base64 tools often hand out
    as_text = _sign(tmp_path, _cancellation(PERSON, id_two), cert_two, other_key, "-md",
                    "sha512", "-nocerts", "-outform", "PEM")  # fmt: skip
    assert as_text.startswith(b"-----BEGIN CMS-----")
    _drop(home, "a", "altra.json.p7m", as_text)
    _process(home)
    assert codes(_receipt(home, "", "ancora.json.p7m")) == ["STATO_NON_ANNULLABILE"]
    assert _receipt(home, "a", "altra.json.p7m")["id_operazione"] == [id_two]
    run_certdesk(home, "verify-ledger")


def test_a_retired_channel_refuses_what_still_arrives(channels: Path, csrs: CsrFactory) -> None:
    home = channels
    done = run_certdesk(home, "canale", "retire", "a")
    assert "retired" in done.stdout
    assert (home / "inbox" / "a").stat().st_mode & 0o7777 == 0o2750
    _request(home, csrs, "a", "late.csr")
    _drop(home, "a", "late.json", _cancellation(PERSON))
    _process(home)
    assert codes(_receipt(home, "a", "late.csr")) == ["CANALE_RITIRATO"]
    assert codes(_receipt(home, "a", "late.json")) == ["CANALE_RITIRATO"]
    listed = run_certdesk(home, "canale", "list").stdout
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["a", "b"]
    assert listed.splitlines()[1].split()[-1] != "-"  # a: retired, with its date


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["add", "Acme"], "CANALE_NON_VALIDO"),
        (["add", "certs"], "CANALE_NON_VALIDO"),
        (["add", "a"], "CANALE_ESISTENTE"),
        (["add", "zz", "--group", "no-such-group-certdesk"], "GRUPPO_SCONOSCIUTO"),
        (["retire", "nessuno"], "CANALE_SCONOSCIUTO"),
    ],
)
def test_canale_refusals(channels: Path, args: list[str], code: str) -> None:
    result = run_certdesk(channels, "canale", *args, check=False)
    assert result.returncode == 1 and f"certdesk: {code}: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_canale_add_makes_the_folders_and_adopts_an_interrupted_one(home: Path) -> None:
    (home / "inbox" / "c").mkdir()  # an add killed after its first folder
    run_certdesk(home, "canale", "add", "c")
    assert (home / "inbox" / "c").stat().st_mode & 0o7777 == 0o2770
    for folder in ("", "certs", "receipts"):
        assert (home / "outbox" / "c" / folder).stat().st_mode & 0o7777 == 0o2750
    assert (home / "outbox" / "c" / "ledger.csv").read_text().startswith("IdOperazione,")
    (home / "inbox" / "d").mkdir()
    (home / "inbox" / "d" / "x.csr").write_bytes(b"someone's file")
    result = run_certdesk(home, "canale", "add", "d", check=False)
    assert "CANALE_ESISTENTE" in result.stderr and (home / "inbox" / "d" / "x.csr").exists()


def test_a_folder_that_is_no_channel_is_still_refused(channels: Path) -> None:
    (channels / "inbox" / "notachannel").mkdir()
    _process(channels)
    assert codes(_receipt(channels, "", "notachannel")) == ["INPUT_CARTELLA"]
    assert (channels / "inbox" / "a").is_dir()  # a channel's folder is no input


def test_republish_rebuilds_each_channels_outbox(channels: Path, csrs: CsrFactory) -> None:
    import shutil

    home = channels
    _request(home, csrs, "a", "x.csr")
    _request(home, csrs, "b", "y.csr")
    _process(home)
    _drop(home, "b", "no.json", _cancellation(PERSON))
    _process(home)
    def kept(p: Path) -> bool:  # CRLs, OCSP and the heartbeat are signed or stamped anew
        return p.is_file() and p.parent.name not in ("ocsp", "ca", "ledger.parquet") and (
            p.name != "daemon.json")

    before = {p.relative_to(home): p.read_bytes() for p in (home / "outbox").rglob("*")
              if kept(p)}  # fmt: skip
    assert {Path("outbox/a/ledger.csv"), Path("outbox/b/receipts/no.json.json")} <= set(before)
    shutil.rmtree(home / "outbox" / "a")
    (home / "outbox" / "b" / "ledger.csv").unlink()
    run_certdesk(home, "republish")
    after = {p.relative_to(home): p.read_bytes() for p in (home / "outbox").rglob("*")
             if p.relative_to(home) in before}  # fmt: skip
    assert after == before
    run_certdesk(home, "verify-ledger")


def test_a_running_daemon_takes_a_channel_made_while_it_runs(
    home: Path, csrs: CsrFactory
) -> None:
    with DaemonProcess(home):
        run_certdesk(home, "canale", "add", "late")
        _request(home, csrs, "late", "x.csr")
        receipt = home / "outbox" / "late" / "receipts" / "x.csr.json"
        wait_for(receipt.exists, 30, "the new channel's receipt")
    assert json.loads(receipt.read_text())["esito"] == "OK"


def test_a_home_written_before_channels_is_upgraded(home: Path, csrs: CsrFactory) -> None:
    """ledger.csv and journal.csv without Canale (as an older certdesk wrote them): the
    next start writes both anew, every hash as it was."""
    _request(home, csrs, "", "x.csr")
    _request(home, csrs, "", "y.csr", cf=OTHER_PERSON)
    _process(home)
    ledger, journal = home / "outbox" / "ledger.csv", home / "outbox" / "journal.csv"
    new_ledger, new_journal = ledger.read_text(), journal.read_text()
    for path in (ledger, journal):
        lines = path.read_text().splitlines()
        path.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in lines))
    hashes = [r["Hash"] for r in _rows(journal)]
    _process(home)
    assert ledger.read_text() == new_ledger and journal.read_text() == new_journal
    assert [r["Hash"] for r in _rows(journal)] == hashes
    run_certdesk(home, "verify-ledger")


def test_a_key_blocked_through_another_channel_is_refused_without_its_id(
    channels: Path, csrs: CsrFactory
) -> None:
    home = channels
    key = csrs.key()
    _request(home, csrs, "a", "k.csr", key=key)
    _process(home)
    id_op = _receipt(home, "a", "k.csr")["id_operazione"]
    _drop(home, "a", "lost.json", _cancellation(PERSON, motivazione="CHIAVE_SMARRITA"))
    _process(home)
    _request(home, csrs, "a", "again.csr", key=key)
    _request(home, csrs, "b", "again.csr", key=key)
    _process(home)
    mine, theirs = _receipt(home, "a", "again.csr"), _receipt(home, "b", "again.csr")
    assert codes(mine) == codes(theirs) == ["CHIAVE_BLOCCATA"]
    assert id_op in mine["errori"][0]["messaggio"]
    assert id_op not in json.dumps(theirs)


def test_a_restored_home_has_its_channels_again(
    channels: Path, csrs: CsrFactory, tmp_path: Path
) -> None:
    home = channels
    _request(home, csrs, "a", "x.csr")
    _request(home, csrs, "b", "y.csr")
    _process(home)
    run_certdesk(home, "canale", "retire", "b")
    run_certdesk(home, "backup", str(tmp_path / "bk"))
    restored = tmp_path / "restored"
    run_certdesk(restored, "restore", str(tmp_path / "bk"))
    assert (restored / "inbox" / "a").stat().st_mode & 0o7777 == 0o2770
    assert (restored / "inbox" / "b").stat().st_mode & 0o7777 == 0o2750  # retired
    for canale in ("a", "b"):
        assert (restored / "outbox" / canale / "ledger.csv").read_bytes() == (
            home / "outbox" / canale / "ledger.csv").read_bytes()  # fmt: skip
        assert sorted(p.name for p in (restored / "outbox" / canale / "receipts").iterdir()) == (
            sorted(p.name for p in (home / "outbox" / canale / "receipts").iterdir()))
    _request(restored, csrs, "a", "after.csr")
    _process(restored)
    assert _receipt(restored, "a", "after.csr")["esito"] == "OK"
    run_certdesk(restored, "verify-ledger")
