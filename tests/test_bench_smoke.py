"""``make bench`` works: every step of the harness, with tiny sizes (``--smoke``).

Not a timed test: the figures of a smoke run mean nothing; what it proves is that each
measurement runs, checks its own results (every receipt OK, every CRL entry listed,
every ledger row loaded) and lands in the table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(180)
def test_bench_smoke_run(tmp_path: Path) -> None:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"{', '.join(missing)} not installed (make test installs them as root)")
    out = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out),
         "--work", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    table = result.stdout
    for section in ("raw", "floor", "end-to-end", "latency", "CRL", "scale", "OCSP", "baseline"):
        assert f"\n{section} " in table, section
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# certdesk benchmarks")
    assert "## Environment" in text and "cryptography" in text
    assert "| end-to-end | watch --once" in text
    assert "--workers 2" in text
    assert "Targets met:" in text
    # The floor's note says what the 2-worker target leaves to certdesk's own work.
    assert "**Floor**" in text and "for the store's commits" in text
    # The OCSP responder under wrk, beside nginx serving the same files.
    assert "| OCSP | certdesk serve, RFC 5019 GETs, 50 keep-alive client(s)" in text
    assert "x nginx" in text
    # One row per measurement, each with a result.
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 18
    assert all(line.split("|")[3].strip() for line in rows[1:])
