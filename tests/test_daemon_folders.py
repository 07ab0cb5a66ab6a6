"""The home's folders as the daemon opened them (``daemon/folders.py``): inbox/ or outbox/
swapped for a symlink under a live daemon stops it, untouched; claims come from the inbox
that was opened. Every test fails if a thread it started is still alive after it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from daemon_support import DaemonProcess, make_csr

from certdesk.daemon.folders import FolderReplaced, HomeFolders
from certdesk.home import Home
from certdesk.intake import claim
from conftest import drop

pytestmark = pytest.mark.usefixtures("passphrase_env", "no_thread_leaks")


@pytest.mark.parametrize("folder", ["inbox", "outbox"])
def test_a_replaced_folder_stops_the_daemon(home: Path, tmp_path: Path, folder: str) -> None:
    """inbox/ (or outbox/) renamed away under a live daemon and a symlink to someone
    else's folder put in its place: the daemon takes nothing from that folder, writes
    nothing into it, and stops with CARTELLA_SOSTITUITA (exit 1), not a traceback."""
    other = tmp_path / "someone-else"
    other.mkdir()
    (other / "private.csr").write_bytes(make_csr(32))
    (other / "notes.txt").write_text("not for certdesk")
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    with DaemonProcess(home, "--rescan-seconds", "0.2") as daemon:
        os.rename(home / folder, home / f"{folder}-old")
        os.symlink(other, home / folder)
        assert daemon.wait(15) == 1
        log = daemon.log()
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    assert "CARTELLA_SOSTITUITA" in log and f"{folder}/" in log and "Traceback" not in log
    for folder in ("work", "archive", "quarantine"):
        assert os.listdir(home / "state" / folder) == []


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
