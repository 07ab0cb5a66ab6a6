"""``certdesk verify-ledger`` (``verify.py``): the journal's hash chain and the ledger against
the store; the first row that does not hold is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import COMPANY, CsrFactory, issue, run_certdesk


def _tamper(path: Path, edit: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    if edit == "edit":
        lines[2] = lines[2].replace("IN_GENERAZIONE", "ATTIVATO", 1)
    elif edit == "delete":
        del lines[2]
    elif edit == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif edit == "truncate":
        del lines[-1]
    path.write_text("".join(lines))


@pytest.mark.parametrize("edit", ["edit", "delete", "reorder", "truncate"])
def test_verify_ledger_names_the_first_bad_journal_row(
    home: Path, csrs: CsrFactory, edit: str
) -> None:
    issue(home, csrs, {"a.csr": csrs.csr(), "b.csr": csrs.csr(f"/CN={COMPANY}")})
    assert run_certdesk(home, "verify-ledger").returncode == 0
    _tamper(home / "outbox" / "journal.csv", edit)
    result = run_certdesk(home, "verify-ledger", check=False)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    expected = "riga 5" if edit == "truncate" else "riga 3"
    assert "REGISTRO_ALTERATO" in line and expected in line, line


def test_verify_ledger_detects_an_edited_ledger_row(home: Path, csrs: CsrFactory) -> None:
    issue(home, csrs, {"a.csr": csrs.csr()})
    ledger = home / "outbox" / "ledger.csv"
    ledger.write_text(ledger.read_text().replace("ATTIVATO", "ANNULLATO"))
    result = run_certdesk(home, "verify-ledger", check=False)
    assert result.returncode == 1 and "ledger.csv riga 2" in result.stderr
