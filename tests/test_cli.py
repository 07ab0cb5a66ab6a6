"""The command line (``cli.py``): ``certdesk status``, and the home a command works on
(``--home``, else $CERTDESK_HOME), which ``make run`` and ``make admin`` rely on."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import make_csr

from conftest import COMPANY, PERSON, REPO, CsrFactory, drop, issue, run_certdesk

pytestmark = pytest.mark.usefixtures("passphrase_env")


def test_status_formats_and_filters(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": csrs.csr(f"/CN={COMPANY}"), "c.csr": b"x"})
    table = run_certdesk(home, "status").stdout
    assert "Data richiesta" in table and PERSON in table
    import re

    assert re.search(r"\b\d{2}/\d{2}/\d{4}\b", table)
    rows = json.loads(
        run_certdesk(home, "status", "--format", "json", "--stato", "ATTIVATO").stdout
    )
    assert {r["codice_fiscale"] for r in rows} == {PERSON, COMPANY}
    only = json.loads(
        run_certdesk(home, "status", "--format", "json", "--codice-fiscale", PERSON.lower()).stdout
    )
    assert [r["codice_fiscale"] for r in only] == [PERSON]
    as_csv = run_certdesk(home, "status", "--format", "csv", "--stato", "RIFIUTATO").stdout
    parsed = list(csv.DictReader(as_csv.splitlines()))
    assert len(parsed) == 1 and parsed[0]["Esito"] == "CSR_NON_LEGGIBILE"
    bad = run_certdesk(home, "status", "--codice-fiscale", "XYZ", check=False)
    assert bad.returncode == 1 and "CODICE_FISCALE_NON_VALIDO" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- the make targets use the home the command line would ----------------------------------
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
    command = target  # make run: certdesk run (the daemon and the publication service)
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
