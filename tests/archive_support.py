"""The archive of originals as tests read it: every input the store recorded, with its
original found by ``certdesk archivio``'s own code (``archive_read``), and the command
itself run as an integrator would."""

from __future__ import annotations

import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from certdesk.archive_read import find_original
from certdesk.errors import CertdeskError
from certdesk.home import Home
from certdesk.store import Store
from conftest import run_certdesk


@dataclass(frozen=True)
class Kept:
    """One recorded input and its kept original: ``data`` when it is a file's bytes (from
    a pack or a folder), ``path`` when kept as it came in a folder."""

    claim: str
    name: str
    quarantined: bool
    data: bytes | None
    path: Path | None
    packed: bool


def kept_originals(home: Path) -> list[Kept]:
    """Every input the store recorded, oldest first, with its original."""
    with sqlite3.connect(home / "state" / "certdesk.sqlite3") as conn:
        rows = conn.execute("SELECT claim, file, quarantined FROM inputs ORDER BY claim").fetchall()
    store = Store(home / "state" / "certdesk.sqlite3")
    try:
        found: list[Kept] = []
        for claim, name, quarantined in rows:
            record = store.original(claim)
            try:
                original = find_original(Home.at(home), store, claim)
            except CertdeskError as exc:  # a link, a FIFO, a folder: kept as it came
                assert exc.code == "ORIGINALE_NON_REGOLARE", exc
                (path,) = (home / "state").glob(f"*/{claim}/*")
                found.append(Kept(claim, name, bool(quarantined), None, path, False))
                continue
            path = Path(original.path) if original.path else None
            data = original.data if path is None else path.read_bytes()
            packed = record is not None and bool(record.pack)
            found.append(Kept(claim, name, bool(quarantined), data, path, packed))
        return found
    finally:
        store.close()


def kept_by_name(home: Path) -> dict[str, Kept]:
    """``kept_originals`` by recorded name (each name dropped once)."""
    kept = kept_originals(home)
    by_name = {k.name: k for k in kept}
    assert len(by_name) == len(kept), "a name was dropped twice: use kept_originals"
    return by_name


def assert_packs_private(home: Path) -> None:
    """Packs are 0600 in 0700 folders: a refused private key is readable by certdesk's
    user alone."""
    for folder in ("archive", "quarantine"):
        where = home / "state" / folder
        assert stat.S_IMODE(where.stat().st_mode) == 0o700, where
        for pack in where.glob("*.pack"):
            assert stat.S_IMODE(pack.stat().st_mode) == 0o600, pack


def archivio(home: Path, out: Path, *args: str) -> bytes:
    """``certdesk archivio ARGS --out OUT``: the original's bytes as written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    run_certdesk(home, "archivio", *args, "--out", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    return out.read_bytes()


def pack_records(home: Path) -> dict[str, tuple[str, int, dict[str, object]]]:
    """Every record of every pack, read from the packs alone (no store): claim -> (pack,
    start of its bytes, header). A claim met twice, or a pack that does not end on a
    whole record, fails."""
    import json

    found: dict[str, tuple[str, int, dict[str, object]]] = {}
    for folder in ("archive", "quarantine"):
        for pack in sorted((home / "state" / folder).glob("*.pack")):
            data = pack.read_bytes()
            position = 0
            while position < len(data):
                end = data.index(b"\n", position)
                header = json.loads(data[position:end])
                start, size = end + 1, int(header["size"])
                assert data[start + size : start + size + 1] == b"\n", (pack, position)
                claim = str(header["claim"])
                assert claim not in found, f"{claim} recorded twice"
                found[claim] = (f"{folder}/{pack.name}", start, header)
                position = start + size + 1
    return found
