"""Issue 12's smaller findings: hard links, a swapped inbox/, the make targets' home, a quiet
install. Each test reproduces what an attacker or a careless set-up did to the landed code."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import make_csr

from certdesk.daemon.folders import FolderReplaced, HomeFolders
from certdesk.home import Home
from certdesk.intake import claim
from conftest import REPO, drop, receipt, run_certdesk

pytestmark = pytest.mark.usefixtures("passphrase_env")


def _fingerprint(path: Path) -> tuple[int, int, int, bytes]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, path.read_bytes()


# -- hard links --------------------------------------------------------------------------
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


def test_a_refused_file_keeps_the_mode_it_was_dropped_with(home: Path) -> None:
    """certdesk never changes the mode of a file it did not create; a refused file is
    private because the folders that keep it are (0700)."""
    dropped = drop(home, "not-a-request.csr", b"hello\n")
    dropped.chmod(0o640)
    run_certdesk(home, "watch", "--once", "--workers", "1")
    (kept,) = (home / "state" / "quarantine").glob("*/not-a-request.csr")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    for folder in (kept.parent, kept.parent.parent, kept.parent.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# -- a swapped inbox/ ----------------------------------------------------------------------
def test_claims_come_from_the_inbox_that_was_opened(home: Path, tmp_path: Path) -> None:
    """Between the check and the claim inbox/ may be swapped: the claim still takes the
    file from the folder the daemon opened, never from the one put in its place."""
    where = Home.at(home)
    folders = HomeFolders(where)
    try:
        drop(home, "req.csr", b"the integrator's request\n")
        other = tmp_path / "other"
        other.mkdir()
        (other / "req.csr").write_bytes(b"someone else's file\n")
        os.rename(home / "inbox", home / "inbox-moved")
        os.symlink(other, home / "inbox")
        with pytest.raises(FolderReplaced) as replaced:
            folders.check()
        assert replaced.value.code == "CARTELLA_SOSTITUITA"
        assert folders.candidates() == ["req.csr"]
        item = claim(where, "req.csr", inbox_fd=folders.inbox_fd)
        assert item is not None
        assert Path(item.path(where)).read_bytes() == b"the integrator's request\n"
        assert (other / "req.csr").read_bytes() == b"someone else's file\n"
    finally:
        folders.close()


# -- the make targets use the home the command line would --------------------------------
def _make_dry_run(target: str, **env: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    clean = {k: v for k, v in os.environ.items() if k not in ("CERTDESK_HOME", "HOME_DIR")}
    done = subprocess.run(
        ["make", "-n", "-C", str(REPO), target],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=True,
    )
    command = "watch" if target == "run" else target
    (line,) = [ln for ln in done.stdout.splitlines() if "certdesk " in ln and command in ln]
    return line


@pytest.mark.parametrize("target", ["run", "admin"])
def test_make_targets_honour_certdesk_home(target: str, tmp_path: Path) -> None:
    assert "--home" not in _make_dry_run(target, CERTDESK_HOME=str(tmp_path))
    assert f'--home "{tmp_path}"' in _make_dry_run(target, HOME_DIR=str(tmp_path))


def test_the_cli_reads_certdesk_home(home: Path, tmp_path: Path) -> None:
    """What ``make run``/``make admin`` rely on: with no --home, $CERTDESK_HOME is the home."""
    drop(home, "mine.csr", make_csr(802))
    run_certdesk(home, "watch", "--once", "--workers", "1")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())",
         "status", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "CERTDESK_HOME": str(home)},
        check=True,
    )
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and rows[0]["stato"] == "ATTIVATO"


# -- a quiet install -----------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_installing_the_project_prints_no_warning_of_its_own(tmp_path: Path) -> None:
    """pip builds certdesk as ``make run`` does (editable, isolated build with the
    pyproject's setuptools); nothing the build backend says may be a warning. The only
    lines allowed are this machine's pip configuration notes ("Location ... is ignored")."""
    target = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
         "--quiet", "--no-deps", "-e", str(REPO)],
        capture_output=True, text=True, timeout=220, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = [
        line for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "Location '" not in line
    ]  # fmt: skip
    assert said == []
