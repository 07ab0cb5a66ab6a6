"""``kill -9`` during ``certdesk rollover``, at instants spread over its run: as soon as
``state/ca/genN/`` appears, as soon as its key is there, as soon as its certificate is
there, held at its commit by a write lock on the store (then killed: the instant between
the files and the transaction, every time), and after random delays. After each kill the
home is consistent: the store lists no new issuer and the daemon signs with the one
before, or it lists it with its key and certificate whole (and the daemon signs with
it); then a new ``certdesk rollover`` succeeds (clearing the folder left behind), the
daemon issues with the new issuer, and ``verify-ledger`` is intact.

The seed is printed; ``CERTDESK_CRASH_SEED=<seed>`` replays a run."""

from __future__ import annotations

import contextlib
import random
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from daemon_support import crash_seed, make_csr, wait_for
from rollover_support import kill_9, listed_issuers, start_rollover, store_locked

from conftest import PASSPHRASE, drop, ledger_rows, receipt, run_certdesk

STAGES = ("folder", "key", "certificate", "commit", "random", "random", "random")


def _generation(name: str) -> int:
    return int(name.removeprefix("gen"))


def _newest(home: Path) -> str:
    return max(["gen1", *listed_issuers(home)], key=_generation)


def _kill(home: Path, stage: str, rng: random.Random, target: Path) -> str:
    """Start ``certdesk rollover`` and SIGKILL it at ``stage``; says when it died."""
    files = {"folder": target, "key": target / "issuing.key.pem",
             "certificate": target / "issuing.pem"}  # fmt: skip
    proc = start_rollover(home)
    try:
        if stage == "random":
            delay = rng.uniform(0.02, 0.6)  # the command takes ~0.3-1 s
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=delay)
            return f"after {delay:.2f} s" + (" (it had finished)" if proc.poll() == 0 else "")
        if stage == "commit":
            wait_for(lambda: target.is_dir() or proc.poll() is not None, 30, str(target))
            with store_locked(home):
                wait_for(lambda: files["certificate"].exists() or proc.poll() is not None, 30,
                         "the new certificate")  # fmt: skip
                assert proc.poll() is None, proc.communicate()
                kill_9(proc)
            return "held at its commit"
        wait_for(lambda: files[stage].exists() or proc.poll() is not None, 30, stage,
                 interval=0.001)  # fmt: skip
        return f"as soon as its {stage} appeared" + (" (too late)" if proc.poll() == 0 else "")
    finally:
        kill_9(proc)


def _check_listed_issuers_whole(home: Path) -> None:
    """Every issuer the store lists has its key (opened by the passphrase) and its
    certificate, for that key, under this home's root."""
    root = x509.load_pem_x509_certificate((home / "state/ca/root.pem").read_bytes())
    for name in listed_issuers(home):
        folder = home / "state" / "ca" / name
        cert = x509.load_pem_x509_certificate((folder / "issuing.pem").read_bytes())
        key = serialization.load_pem_private_key(
            (folder / "issuing.key.pem").read_bytes(), password=PASSPHRASE.encode()
        )
        assert key.public_key() == cert.public_key(), name
        cert.verify_directly_issued_by(root)


def _issues_with(home: Path, issuer: str, n: int) -> None:
    """The daemon signs a new request with ``issuer``, and openssl agrees."""
    drop(home, f"r{n}.csr", make_csr(n % 40))
    run_certdesk(home, "watch", "--once", "--workers", "1")
    done = receipt(home, f"r{n}.csr")
    assert done["esito"] == "OK", done
    row = next(r for r in ledger_rows(home) if r["IdOperazione"] == done["id_operazione"])
    assert row["Emittente"] == issuer
    ca = home / "outbox" / "ca"
    folder = ca if issuer == "gen1" else ca / issuer
    checked = subprocess.run(
        ["openssl", "verify", "-CAfile", ca / "root.pem", "-untrusted", folder / "chain.pem",
         home / "outbox" / "certs" / str(done["certificato"])],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0 and ": OK" in checked.stdout, checked.stdout + checked.stderr


def test_kill_9_during_rollover_leaves_the_old_state_or_the_new_whole(home: Path) -> None:
    rng = crash_seed()
    history = []
    _issues_with(home, "gen1", 99)  # the store exists, and a first certificate
    for cycle, stage in enumerate(STAGES):
        before = _newest(home)
        target = home / "state" / "ca" / f"gen{_generation(before) + 1}"
        history.append(f"{target.name}: {_kill(home, stage, rng, target)}")
        _check_listed_issuers_whole(home)
        after = _newest(home)
        assert after in (before, target.name), history
        if stage in ("folder", "key", "commit"):
            assert after == before, history  # killed before its commit: nobody's
        _issues_with(home, after, 2 * cycle)
        made = run_certdesk(home, "rollover")
        newest = _newest(home)
        assert newest == f"gen{_generation(after) + 1}" and newest in made.stdout, made.stdout
        assert sorted(p.name for p in (home / "state/ca" / newest).iterdir()) == [
            "issuing.key.pem", "issuing.pem"]  # fmt: skip
        _check_listed_issuers_whole(home)
        _issues_with(home, newest, 2 * cycle + 1)
    print("; ".join(history))
    assert "intact" in run_certdesk(home, "verify-ledger").stdout
