"""``make bench``'s backup case works (``benchmarks/backup_case.py``), run alone as
``python -m benchmarks.backup_case`` at a tiny size: a populated home backed up,
verified, its state restored, a small home restored whole, and drops timed with and
without backups running. The figures of such a run mean nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_the_backup_bench_case_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.backup_case", "--size", "400", "--drops", "8",
         "--work", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=290,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the corpus says so when it generates CSRs first (an empty cache: a first run)
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("corpus: ")]
    assert lines[0].startswith("backup of 400 requests: ") and "MB/s" in lines[0]
    assert any(line.startswith("backup --verify: ") for line in lines)
    assert any(line.startswith("restore of the state (checked copy, counters") for line in lines)
    assert any("republish included" in line for line in lines)
    assert any(line.startswith("drop → receipt during ") and "p99" in line for line in lines)
