"""``kill -9`` of a daemon whose CA key is in a token (SoftHSM2), during a backlog: it
recovers as the file provider does (tests/test_daemon_crash.py, whose corpus, kill moments
and invariants this reuses, with fewer kills). The signing processes of a token key are
spawned, not forked, and open their own sessions: they too die with the daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from daemon_support import DaemonProcess, configure, crash_seed, wait_for
from pkcs11_support import (
    Token,
    pkcs11_home,
    requires_softhsm,
)
from test_daemon_crash import _check_invariants, _corpus, _kill

from conftest import drop, run_certdesk

pytestmark = requires_softhsm
KILLS = 8


def _children(pid: int) -> set[int]:
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if os.path.exists(f"/proc/{p}")}


@pytest.mark.slow
def test_kill_9_during_a_pkcs11_backlog(
    token: Token, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = crash_seed()
    home = pkcs11_home(tmp_path / "home", token)
    run_certdesk(home, "init", "--keys", "pkcs11", env=token.env)
    configure(home, rescan_seconds=0.3, settle_seconds=0.1, batch_size=16)
    for name, value in token.env.items():
        monkeypatch.setenv(name, value)  # DaemonProcess and run_certdesk pass os.environ on
    corpus = _corpus(rng)
    names = list(corpus)
    rng.shuffle(names)
    waves = [names[i::KILLS] for i in range(KILLS)]
    interrupted, history = 0, []
    for cycle, wave in enumerate(waves):
        for name in wave:
            drop(home, name, corpus[name])
        daemon = DaemonProcess(home, workers=1 + cycle % 2).start()
        try:
            # its signing processes, once they are up (spawned: ~0.5 s, seconds on a loaded machine)
            workers = wait_for(lambda d=daemon: _children(d.pid) or None, 30, "the workers")
            history.append(_kill(daemon, rng, cycle))
            wait_for(lambda w=workers: not _alive(w), 30, "the signing processes to die")
        finally:
            daemon.close()
        interrupted += bool(os.listdir(home / "state" / "work"))
    print(f"{KILLS} kills ({interrupted} with inputs in state/work/): {history}")
    finish = run_certdesk(home, "watch", "--once", "--workers", "2", timeout=180)
    assert "Traceback" not in finish.stderr, finish.stderr
    _check_invariants(home, corpus)
