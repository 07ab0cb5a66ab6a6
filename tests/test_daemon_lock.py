"""One daemon per home (``daemon/lock.py``): a second ``certdesk watch`` on the same home
refuses with one line naming the first, which goes on undisturbed."""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_support import DaemonProcess

from conftest import run_certdesk

pytestmark = pytest.mark.usefixtures("passphrase_env", "no_thread_leaks")


def test_a_second_daemon_on_the_same_home_refuses(home: Path) -> None:
    with DaemonProcess(home) as first:
        for args in (["watch"], ["watch", "--once"]):
            second = run_certdesk(home, *args, "--workers", "1", check=False, timeout=60)
            assert second.returncode != 0
            assert "Traceback" not in second.stderr
            errors = [line for line in second.stderr.splitlines() if "DAEMON_GIA_ATTIVO" in line]
            assert len(errors) == 1, second.stderr
            assert f"pid {first.pid}" in errors[0] and "già attivo" in errors[0]
            assert second.stderr.rstrip().splitlines()[-1] == errors[0]
        assert first.proc is not None and first.proc.poll() is None  # undisturbed
        assert first.stop() == 0
    # The lock went with the first daemon: a new one starts.
    assert run_certdesk(home, "watch", "--once", "--workers", "1").returncode == 0
