"""A crash in the middle of a channel's cancellation recovers like any other: ``kill -9`` a
real ``certdesk watch`` at random moments while it decides and publishes cancellations that
came through two channels (cumulative ones, ones naming an IdOperazione, a signed ``.p7m``
through the other channel, refusals), with a few new requests among them; restart it until
every input has its receipt, then check that each input was answered once, in its
channel's outbox; that exactly the certificates the rules name were cancelled, once each;
that each channel's ``ledger.csv`` is the full ledger's rows of that channel, byte for
byte; that the CRL lists exactly the cancelled serials and that ``verify-ledger`` passes.

Every cancellation touches certificates no other input touches (a channel's view of a
person is decided by one input at most), so what each must do does not depend on the
order in which the daemon, restarted, takes them. The kill moments rotate: a new claim in
``state/work/`` (an input being read, decided, committed), the CRL re-issued (a
cancellation committed, its ledgers and receipts to come), a channel's ``ledger.csv``
changed, some more receipts or a random delay. The seed is printed;
``CERTDESK_CRASH_SEED=<seed>`` replays a run.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import random
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_support import (
    DaemonProcess,
    a_random_while,
    codice_fiscale,
    configure,
    crash_seed,
    kill_at,
    make_csr,
    private_key_pem,
    processes_mentioning,
    wait_for,
)

from certdesk.channels import channel_of_claim
from certdesk.client import drop_file, receipt_path
from conftest import crl, run_certdesk

CHANNELS = ("a", "b")
KEY = 900  # person p has key KEY + p (a key is certified for one codice fiscale only)
# how many certificates person p has through each channel before the crashes
COUNTS = {"a": (2, 2, 1, 0, 2, 1, 2, 2, 1, 2, 1, 2), "b": (2, 0, 2, 2, 1, 2, 2, 1, 2, 1, 2, 1)}
PERSONS = len(COUNTS["a"])
AGAIN = {4: "a", 5: "b"}  # cancelled (cumulatively) there before the crashes, then issued again
FRESH = 11  # the person whose new requests arrive among the cancellations
KILLS = 8


@dataclass(frozen=True)
class Input:
    canale: str
    name: str
    data: bytes
    cancels: frozenset[str] = frozenset()  # what an accepted annullamento cancels
    code: str = ""  # the refusal's code; "" when accepted


def _annullamento(person: int, *ids: str) -> bytes:
    return json.dumps({
        "tipo": "annullamento", "codice_fiscale": codice_fiscale(KEY + person),
        "id_operazione": list(ids), "motivazione": "ATTIVITA_CESSATA", "nota": "",
        "operatore": "crash",
    }).encode()  # fmt: skip


def _receipt(home: Path, canale: str, name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(receipt_path(home, name, canale=canale).read_text())
    return loaded


def _once(home: Path, inputs: list[Input]) -> None:
    for entry in inputs:
        drop_file(home, entry.name, entry.data, canale=entry.canale)
    run_certdesk(home, "watch", "--once", "--workers", "1")


class Before:
    """The home before the crashes: every person's certificates through each channel,
    and what was answered and cancelled already."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.held: dict[tuple[str, int], list[str]] = collections.defaultdict(list)
        self.cancelled: dict[tuple[str, int], list[str]] = {}
        self.inputs: list[Input] = []

    def issue(self, requests: dict[tuple[str, int], list[int]], prefix: str) -> None:
        """``requests``: the variants person p requests through a channel."""
        made = {
            (canale, p): [Input(canale, f"{prefix}-{canale}-{p:02d}-{v}.csr", make_csr(KEY + p, v))
                          for v in variants]
            for (canale, p), variants in requests.items()
        }  # fmt: skip
        _once(self.home, [entry for entries in made.values() for entry in entries])
        for key, entries in made.items():
            for entry in entries:
                answer = _receipt(self.home, entry.canale, entry.name)
                assert answer["esito"] == "OK", answer
                self.held[key].append(str(answer["id_operazione"]))
            self.held[key].sort()
            self.inputs += entries

    def cancel_all(self, people: dict[int, str]) -> None:
        """Each person's first cancellation through the channel given: all of them there."""
        made = {(c, p): Input(c, f"pre-ann-{c}-{p:02d}.json", _annullamento(p))
                for p, c in people.items()}  # fmt: skip
        _once(self.home, list(made.values()))
        for key, entry in made.items():
            ids = self.held.pop(key)
            assert sorted(_receipt(self.home, entry.canale, entry.name)["id_operazione"]) == ids
            self.cancelled[key] = ids
            self.inputs.append(Input(entry.canale, entry.name, entry.data, frozenset(ids)))

    def every(self, canale: str, person: int) -> frozenset[str]:
        return frozenset(self.held[(canale, person)])


def _prepare(home: Path, tmp_path: Path) -> tuple[Before, list[Input]]:
    """The certificates, and the inputs the crashes will meet with what each must do."""
    before = Before(home)
    variants = {"a": 0, "b": 5}  # distinct requests (bytes) of the same person and key
    before.issue({(c, p): [variants[c] + v for v in range(COUNTS[c][p])]
                  for c in CHANNELS for p in range(PERSONS) if COUNTS[c][p]}, "pre")  # fmt: skip
    before.cancel_all(AGAIN)
    before.issue({(c, p): [10, 11] for p, c in AGAIN.items()}, "again")
    held, every = before.held, before.every

    # The signed annullamento: person 7's first certificate of channel a, with its own key,
    # signed as the contract says, dropped through channel b.
    target = held[("a", 7)][0]
    key, document, signed = (tmp_path / n for n in ("key-7.pem", "ann.json", "ann.json.p7m"))
    key.write_bytes(private_key_pem(KEY + 7))
    document.write_bytes(_annullamento(7, target))
    subprocess.run(
        ["openssl", "cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-signer",
         str(home / "outbox" / "a" / "certs" / f"{target}.pem"), "-inkey", str(key),
         "-in", str(document), "-out", str(signed)],
        check=True, capture_output=True,
    )  # fmt: skip

    def one(canale: str, person: int, at: int) -> tuple[bytes, frozenset[str]]:
        id_op = held[(canale, person)][at]
        return _annullamento(person, id_op), frozenset({id_op})

    return before, [
        # first cancellations: cumulative, within their channel only
        Input("a", "ann-00.json", _annullamento(0), every("a", 0)),
        Input("b", "ann-00.json", _annullamento(0), every("b", 0)),  # the same person in b
        Input("a", "ann-01.json", _annullamento(1), every("a", 1)),
        Input("b", "ann-02.json", _annullamento(2), every("b", 2)),  # a's certificate stays
        Input("a", "ann-09.json", _annullamento(9), every("a", 9)),
        Input("b", "ann-10.json", _annullamento(10), every("b", 10)),
        # a first cancellation naming one IdOperazione is cumulative too, within its channel
        Input("b", "ann-08.json", _annullamento(8, held[("b", 8)][0]), every("b", 8)),
        # not their first in that channel: exactly the one named
        Input("a", "ann-04.json", *one("a", 4, 1)),
        Input("b", "ann-05.json", *one("b", 5, 0)),
        # the holder's signature, through the other channel: that certificate alone
        Input("b", "ann-07.json.p7m", signed.read_bytes(), frozenset({target})),
        # refused: nobody's in a, already cancelled, another channel's (not disclosed)
        Input("a", "ann-03.json", _annullamento(3), code="NESSUN_CERTIFICATO_ATTIVO"),
        Input("a", "ann-04-old.json", _annullamento(4, before.cancelled[("a", 4)][0]),
              code="STATO_NON_ANNULLABILE"),
        Input("a", "ann-06.json", _annullamento(6, held[("b", 6)][0]),
              code="ID_OPERAZIONE_NON_TROVATO"),
    ]  # fmt: skip


# -- the kills ---------------------------------------------------------------------------------
def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _receipt_count(home: Path) -> int:
    return sum(
        1 for c in CHANNELS for n in os.listdir(home / "outbox" / c / "receipts")
        if not n.startswith(".")
    )  # fmt: skip


def _kill(daemon: DaemonProcess, rng: random.Random, cycle: int, claims: set[str]) -> str:
    """Let the daemon run until a moment of this cycle's kind, then SIGKILL it."""
    home, outbox = daemon.home, daemon.home / "outbox"
    trigger = cycle % 4

    def moment() -> str:
        if trigger == 0:  # an input being read, decided, committed
            work = home / "state" / "work"
            wait_for(lambda: set(os.listdir(work)) - claims, timeout=5, interval=0.0005)
            return "a new claim"
        if trigger == 1:  # a cancellation committed: ledgers, OCSP, receipts to come
            start = _stamp(outbox / "ca" / "issuing.crl")
            wait_for(lambda: _stamp(outbox / "ca" / "issuing.crl") != start, 5, interval=0.0005)
            return "the CRL re-issued"
        if trigger == 2:  # a channel's ledger updated
            ledgers = [outbox / c / "ledger.csv" for c in CHANNELS]
            start_ledgers = [_stamp(p) for p in ledgers]
            wait_for(lambda: [_stamp(p) for p in ledgers] != start_ledgers, 5, interval=0.0005)
            return "a channel's ledger.csv changed"
        if cycle % 8 == 3:
            start_count, more = _receipt_count(home), rng.randint(1, 3)
            wait_for(lambda: _receipt_count(home) >= start_count + more, 5, interval=0.0005)
            return f"{more} more receipts"
        return a_random_while(daemon, rng, 0.05, 1.5)

    return kill_at(daemon, moment, trigger)


@pytest.mark.slow
def test_kill_9_during_channel_cancellations(home: Path, tmp_path: Path) -> None:
    rng = crash_seed()
    configure(home, rescan_seconds=0.3, settle_seconds=0.05, batch_size=2)
    for canale in CHANNELS:
        run_certdesk(home, "canale", "add", canale)
    before, crash = _prepare(home, tmp_path)
    fresh = [Input(CHANNELS[n % 2], f"fresh-{n}.csr", make_csr(KEY + FRESH, 20 + n))
             for n in range(KILLS)]  # fmt: skip
    order = list(crash)
    rng.shuffle(order)
    waves = [[*order[cycle::KILLS], fresh[cycle]] for cycle in range(KILLS)]

    history, interrupted, decided = [], 0, 0
    work = home / "state" / "work"
    for cycle, wave in enumerate(waves):
        live = cycle % 3 == 1  # some waves arrive while the daemon runs
        if not live:
            for entry in wave:
                drop_file(home, entry.name, entry.data, canale=entry.canale)
        claims = set(os.listdir(work))
        daemon = DaemonProcess(home, workers=1 + cycle % 2).start()
        try:
            if live:
                for entry in wave:
                    drop_file(home, entry.name, entry.data, canale=entry.canale)
            history.append(_kill(daemon, rng, cycle, claims))
            wait_for(lambda: not processes_mentioning(str(home)), 30, "orphaned workers to die")
        finally:
            daemon.close()
        if os.listdir(work):
            interrupted += 1
        if _decided_unanswered(home):
            decided += 1
    print(f"{KILLS} kills ({interrupted} with inputs in state/work/, {decided} between a "
          f"commit and its receipts): {history}")

    everything = before.inputs + crash + fresh
    with DaemonProcess(home) as daemon:
        wait_for(lambda: all(receipt_path(home, e.name, canale=e.canale).exists()
                             for e in everything), 60, "every receipt")  # fmt: skip
        assert daemon.stop() == 0, daemon.log()
    assert not processes_mentioning(str(home))
    assert "Traceback" not in daemon.log()

    _check_answers(home, crash, fresh)
    _check_once(home, everything)
    cancelled = {i for ids in before.cancelled.values() for i in ids}
    cancelled |= {i for entry in crash for i in entry.cancels}
    _check_cancelled(home, cancelled)
    for canale in CHANNELS:
        _check_projection(home, canale)
    verified = run_certdesk(home, "verify-ledger", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert interrupted >= 1, f"no kill landed with an input in hand: {history}"
    assert decided >= 1, f"no kill landed between a decision and its receipts: {history}"


def _decided_unanswered(home: Path) -> int:
    """Inputs whose decision the store committed, not yet finished (receipts, archive)."""
    db = sqlite3.connect(f"file:{home / 'state' / 'certdesk.sqlite3'}?mode=ro", uri=True)
    try:
        found: int = db.execute(
            "SELECT count(*) FROM inputs WHERE done = 0 AND receipt IS NOT NULL"
        ).fetchone()[0]
    finally:
        db.close()
    return found


# -- the checks --------------------------------------------------------------------------------
def _check_answers(home: Path, crash: list[Input], fresh: list[Input]) -> None:
    for entry in crash:
        answer = _receipt(home, entry.canale, entry.name)
        if entry.code:
            assert answer["esito"] == "KO", (entry.name, answer)
            assert [e["codice"] for e in answer["errori"]] == [entry.code], (entry.name, answer)
        else:
            assert answer["esito"] == "OK", (entry.name, answer)
            assert sorted(answer["id_operazione"]) == sorted(entry.cancels), (entry.name, answer)
    for entry in fresh:
        assert _receipt(home, entry.canale, entry.name)["esito"] == "OK", entry.name


def _check_once(home: Path, everything: list[Input]) -> None:
    """Every input answered once, in its own channel's outbox; nothing left in hand."""
    outbox = home / "outbox"
    for canale in CHANNELS:
        expected = {receipt_path(home, e.name, canale=canale).name
                    for e in everything if e.canale == canale}  # fmt: skip
        assert sorted(os.listdir(outbox / canale / "receipts")) == sorted(expected)
        assert os.listdir(home / "inbox" / canale) == []
    assert os.listdir(outbox / "receipts") == []
    assert os.listdir(home / "state" / "work") == []
    for folder, _, files in os.walk(outbox):
        assert not [f for f in files if f.endswith(".tmp")], folder
    db = sqlite3.connect(f"file:{home / 'state' / 'certdesk.sqlite3'}?mode=ro", uri=True)
    try:
        claims = db.execute("SELECT claim, file FROM inputs").fetchall()
    finally:
        db.close()
    recorded = collections.Counter((channel_of_claim(claim), file) for claim, file in claims)
    assert recorded == collections.Counter((e.canale, e.name) for e in everything)


def _ledger(home: Path, canale: str = "") -> list[dict[str, str]]:
    path = home / "outbox" / canale / "ledger.csv" if canale else home / "outbox" / "ledger.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _check_cancelled(home: Path, cancelled: set[str]) -> None:
    """Exactly these cancelled, each once (one ANNULLATO event in the journal), the rest
    valid; the CRL lists exactly their serials."""
    with open(home / "outbox" / "journal.csv", newline="", encoding="utf-8") as fh:
        events = collections.Counter(
            row["IdOperazione"] for row in csv.DictReader(fh) if row["AStato"] == "ANNULLATO"
        )
    assert set(events) == cancelled
    assert [i for i, n in events.items() if n != 1] == []
    rows = _ledger(home)
    assert {r["IdOperazione"] for r in rows if r["Stato"] == "ANNULLATO"} == cancelled
    assert {r["Stato"] for r in rows if r["IdOperazione"] not in cancelled} == {"ATTIVATO"}
    serials = {r["IdOperazione"]: r["Seriale"] for r in rows}
    assert {format(r.serial_number, "x") for r in crl(home)} == {serials[i] for i in cancelled}


def _check_projection(home: Path, canale: str) -> None:
    """``outbox/<canale>/ledger.csv`` is the full ledger's header and its rows of that
    channel, byte for byte; the channel's certificates are its own."""
    full = (home / "outbox" / "ledger.csv").read_bytes().splitlines(keepends=True)
    header, rows = full[0], full[1:]
    columns = next(csv.reader([header.decode()]))
    assert columns[-1] == "Canale"

    def of(row: bytes) -> str:
        return dict(zip(columns, next(csv.reader([row.decode()])), strict=True))["Canale"]

    assert {of(row) for row in rows} == set(CHANNELS)
    own = (home / "outbox" / canale / "ledger.csv").read_bytes()
    assert own == b"".join([header, *(row for row in rows if of(row) == canale)])
    certified = {r["IdOperazione"] for r in _ledger(home, canale) if r["Seriale"]}
    assert {p.stem for p in (home / "outbox" / canale / "certs").glob("*.pem")} == certified
