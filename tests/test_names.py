"""Names of inputs: one input, one receipt, whatever bytes its name is made of.

The property tests run over every file name Linux allows (1 to 255 bytes, no ``/``, no
NUL, not ``.`` or ``..``); the end-to-end test drops names that used to be recorded
alike (issue 12) into a real ``certdesk watch --once``."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from archive_support import kept_originals, pack_records
from cryptography import x509
from daemon_support import codice_fiscale, make_csr
from hypothesis import example, given
from hypothesis import strategies as st

from certdesk import client
from certdesk.home import Home
from certdesk.intake import Claim
from certdesk.intake import recordable_name as daemon_recordable_name
from certdesk.names import NAME_MAX, raw_name, receipt_name, recordable_name
from certdesk.publish import Publisher
from certdesk.records import printable

# Pieces that make escapes interesting: backslashes next to text that looks like an
# escape, bytes that are not UTF-8, C1 controls (U+0080 as C2 80), valid non-ASCII
# letters, an encoded surrogate (not UTF-8 either), control characters, suffixes.
_PIECES = [
    b"\\",
    b"x",
    b"u00",
    b"e9",
    b"80",
    b"~",
    b"\xe9",
    b"\x80",
    b"\xff",
    b"\xc2\x80",
    b"\xc2\x9f",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xed\xa0\x80",
    b"\n",
    b"\x7f",
    b".",
    b".csr",
    b".json",
    b"a",
    b" ",
]


def _linux_name(raw: bytes) -> bytes:
    """``raw`` made a name Linux allows: no "/" or NUL, 1 to 255 bytes, not "." or ".."."""
    name = raw.replace(b"/", b"_").replace(b"\0", b"_")[:NAME_MAX] or b"n"
    return b"dot" + name if name in (b".", b"..") else name


linux_names = st.one_of(
    st.binary(min_size=1, max_size=NAME_MAX),
    st.text(min_size=1, max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=300).map(b"".join),
).map(_linux_name)


def _escaped(raw: bytes) -> str:
    """The scheme of ``certdesk.names`` written out again, character by character."""
    out = []
    for char in raw.decode("utf-8", "surrogateescape"):
        if char == "\\":
            out.append("\\\\")
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif "\x80" <= char <= "\x9f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def _is_file_name(text: str) -> bool:
    return (
        0 < len(text.encode("utf-8")) <= NAME_MAX
        and "/" not in text
        and "\0" not in text
        and text not in (".", "..")
    )


@given(st.lists(linux_names, unique=True, max_size=30))
@example([b"caf\xe9.csr", b"caf\\xe9.csr"])
@example([b"\xc2\x80", b"\x80", b"\\x80", b"\\u0080"])
@example([b"\xe9" * 100 + b"a.csr", b"\xe9" * 100 + b"b.csr"])
def test_every_record_of_a_name_is_injective(names: list[bytes]) -> None:
    recorded = [recordable_name(raw) for raw in names]
    assert len(set(recorded)) == len(names)
    # The ledger and journal write FileOrigine through printable(): still one per name.
    assert len({printable(text) for text in recorded}) == len(names)
    assert len({receipt_name(raw) for raw in names}) == len(names)


@given(linux_names)
@example(b"caf\xe9.csr")
@example(b"caf\\xe9.csr")
@example(b"\\" * 200 + b".csr")
@example(b"\xff" * 255)
@example(b"\xe2\x82\xac" * 85)
def test_a_recorded_name_is_the_escape_or_its_cut(raw: bytes) -> None:
    recorded = recordable_name(raw)
    assert recorded == recordable_name(os.fsdecode(raw))
    assert _is_file_name(recorded)
    escaped = _escaped(raw)
    try:
        kept = raw.decode("utf-8")
    except UnicodeDecodeError:
        kept = None
    if kept is not None and kept == escaped:
        assert recorded == kept  # a plain UTF-8 name is recorded as it is
    if len(escaped.encode("utf-8")) <= NAME_MAX:
        assert recorded == escaped
        assert raw_name(recorded) == raw
    else:
        # Cut: the head of the escape, the mark, a digest of the raw bytes, the suffix.
        assert "\\~" in recorded
        head = recorded[: recorded.rindex("\\~")]
        assert escaped.startswith(head)
        if raw.endswith(b".csr"):
            assert recorded.endswith(".csr")
        with pytest.raises(ValueError):
            raw_name(recorded)


@given(linux_names)
@example(b"caf\xe9.csr")
@example(b"-\xff" * 120 + b".json")
def test_client_and_daemon_agree_on_every_receipt(raw: bytes) -> None:
    home = Path("/srv/certdesk")
    recorded = daemon_recordable_name(os.fsdecode(raw))
    daemon_path = Publisher(Home.at(home)).receipt_path(Claim("20261201T000000000000-0", recorded))
    assert client.receipt_path(home, os.fsdecode(raw)) == daemon_path
    assert client.receipt_path(home, raw) == daemon_path
    assert daemon_path.parent == home / "outbox" / "receipts"
    assert _is_file_name(daemon_path.name) and daemon_path.name.endswith(".json")


def test_recorded_names_are_real_file_names(tmp_path: Path) -> None:
    """The claim renames the input to its recorded name: the file system takes each."""
    folder = os.fsencode(tmp_path)
    for raw in (b"\xff" * 255, b"\\" * 255, b"\xc2\x80" * 125 + b".csr", b"a\\~" * 85):
        recorded = recordable_name(raw)
        for name in (recorded, receipt_name(raw)):
            path = folder + b"/" + name.encode("utf-8")
            with open(path, "wb"):
                pass
            os.unlink(path)


def _drop_raw(home: Path, raw: bytes, data: bytes) -> None:
    """Write aside and rename into inbox/ under the exact bytes ``raw``."""
    inbox = os.fsencode(home / "inbox")
    os.makedirs(inbox, exist_ok=True)
    aside = inbox + b"/.drop-" + hashlib.sha256(raw).hexdigest().encode() + b".tmp"
    with open(aside, "wb") as fh:
        fh.write(data)
    os.rename(aside, inbox + b"/" + raw)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_names_recorded_alike_before_get_one_receipt_each(
    home: Path, process_once: Callable[[], subprocess.CompletedProcess[str]]
) -> None:
    latin1 = b"caf\xe9.csr"  # Latin-1 "café.csr": not UTF-8
    backslash = b"caf\\xe9.csr"  # the same text typed literally: backslash, x, e, 9
    # Two names whose escapes are too long for a file name and are cut alike.
    long_a, long_b = b"\xe9" * 120 + b"a.csr", b"\xe9" * 120 + b"b.csr"
    people = {latin1: 940, backslash: 941, long_a: 942, long_b: 943}
    for raw, n in people.items():
        _drop_raw(home, raw, make_csr(n))
    process_once()

    receipts = sorted((home / "outbox" / "receipts").iterdir())
    assert len(receipts) == len(people), receipts
    got: dict[bytes, dict[str, Any]] = {}
    for raw, n in people.items():
        path = client.receipt_path(home, raw)
        assert path == client.receipt_path(home, os.fsdecode(raw))
        assert path in receipts, (raw, path, receipts)
        got[raw] = json.loads(path.read_text(encoding="utf-8"))
        assert got[raw]["esito"] == "OK", got[raw]
        cert = x509.load_pem_x509_certificate(
            (home / "outbox" / "certs" / got[raw]["certificato"]).read_bytes()
        )
        assert codice_fiscale(n) in cert.subject.rfc4514_string()
    # Each name is recorded as its own text: the bad byte as \xe9, a backslash doubled.
    assert got[latin1]["file"] == "caf\\xe9.csr"
    assert got[backslash]["file"] == "caf\\\\xe9.csr"
    assert got[long_a]["file"] != got[long_b]["file"]
    assert len({r["id_operazione"] for r in got.values()}) == len(people)
    # The originals were kept under those names (the packs' headers say them too).
    kept = kept_originals(home)
    assert {k.name for k in kept} == {r["file"] for r in got.values()}
    assert {str(h["file"]) for _, _, h in pack_records(home).values()} == {k.name for k in kept}
    for raw, n in people.items():
        assert next(k.data for k in kept if k.name == got[raw]["file"]) == make_csr(n)

    ledger = {row["IdOperazione"]: row for row in _csv_rows(home / "outbox" / "ledger.csv")}
    assert len(ledger) == len(people)
    journal = _csv_rows(home / "outbox" / "journal.csv")
    for raw, n in people.items():
        row = ledger[got[raw]["id_operazione"]]
        assert row["CodiceFiscale"] == codice_fiscale(n)
        assert row["FileOrigine"] == got[raw]["file"]
        origins = {r["FileOrigine"] for r in journal if r["IdOperazione"] == row["IdOperazione"]}
        assert origins == {got[raw]["file"]}
