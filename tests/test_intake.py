"""Taking files out of ``inbox/`` (``intake.py``): a hard link is refused unread and what it
shares is untouched; a refused file keeps the mode it was dropped with."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from daemon_support import make_csr

from conftest import drop, receipt, run_certdesk

pytestmark = pytest.mark.usefixtures("passphrase_env")


def _fingerprint(path: Path) -> tuple[int, int, int, bytes]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, path.read_bytes()


def test_a_hard_link_is_refused_unread_and_what_it_shares_is_untouched(
    home: Path, tmp_path: Path
) -> None:
    drop(home, "mine.csr", make_csr(800))
    run_certdesk(home, "watch", "--once", "--workers", "1")
    (cert,) = (home / "outbox" / "certs").glob("*.pem")
    crl = home / "outbox" / "ca" / "issuing.crl"
    # someone else's files, a valid request among them: certdesk must not read it
    outside = tmp_path / "outside.txt"
    outside.write_text("somebody's notes\n")
    outside.chmod(0o644)
    elsewhere_csr = tmp_path / "elsewhere.csr"
    elsewhere_csr.write_bytes(make_csr(801))
    elsewhere_csr.chmod(0o640)
    shared = {"cert.csr": cert, "crl.json": crl, "notes.csr": outside, "valid.csr": elsewhere_csr}
    before = {target: _fingerprint(target) for target in shared.values()}
    for name, target in shared.items():
        os.link(target, home / "inbox" / name)

    run_certdesk(home, "watch", "--once", "--workers", "1")

    for name in shared:
        got = receipt(home, name)
        assert got["esito"] == "KO", name
        assert [e["codice"] for e in got["errori"]] == ["INPUT_COLLEGAMENTO_FISICO"], name
    assert {target: _fingerprint(target) for target in shared.values()} == before
    # nothing of them reached outbox/: no second certificate, no copy of the notes
    assert len(list((home / "outbox" / "certs").glob("*.pem"))) == 1
    for path in (home / "outbox").rglob("*"):
        if path.is_file() and path != crl and path != cert:
            assert b"somebody's notes" not in path.read_bytes(), path
    run_certdesk(home, "verify-ledger")


def test_a_refused_file_is_kept_privately_whatever_its_mode(home: Path) -> None:
    """A refused file's bytes go to the day's quarantine pack, 0600 in 0700 folders,
    whatever mode it was dropped with; certdesk never chmods the file it was given."""
    from archive_support import assert_packs_private, kept_by_name

    dropped = drop(home, "not-a-request.csr", b"hello\n")
    dropped.chmod(0o644)
    run_certdesk(home, "watch", "--once", "--workers", "1")
    kept = kept_by_name(home)["not-a-request.csr"]
    assert kept.quarantined and kept.packed and kept.data == b"hello\n"
    (pack,) = (home / "state" / "quarantine").glob("*.pack")
    assert stat.S_IMODE(pack.stat().st_mode) == 0o600
    assert_packs_private(home)
    assert stat.S_IMODE((home / "state").stat().st_mode) == 0o700
