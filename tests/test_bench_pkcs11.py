"""``make bench``'s PKCS#11 case works (``benchmarks/pkcs11_case.py``): a SoftHSM2 token
made in the run's work folder, its raw rate in-process, the end-to-end backlog with the
pkcs11 provider, and their rows. Tiny sizes, in a process of its own (SoftHSM2 reads its
configuration once per process); the figures of such a run mean nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pkcs11_support import requires_softhsm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys
from dataclasses import replace
from pathlib import Path
from benchmarks.corpus import load_corpus
from benchmarks.pkcs11_case import pkcs11_case, pkcs11_note, pkcs11_rows
from benchmarks.report import render_text
from benchmarks.settings import SMOKE
sizes = replace(SMOKE, backlog=24, raw=12)
result = pkcs11_case(Path(sys.argv[1]), load_corpus(24, log=False), sizes)
assert not isinstance(result, str), result
print(render_text(pkcs11_rows(result, sizes)))
print(pkcs11_note(result, 1000.0)[0])
"""


@requires_softhsm
@pytest.mark.timeout(240)
def test_the_pkcs11_bench_case_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(work)], cwd=REPO,
                          capture_output=True, text=True, timeout=230)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert len([line for line in lines if line.startswith("PKCS#11  raw")]) == 2
    e2e = [line for line in lines if "watch --once, 24 CSRs" in line]
    assert len(e2e) == 2 and all("x token raw" in line for line in e2e), proc.stdout
    assert ">= 0.9x token raw" in e2e[0]
    assert "**PKCS#11**" in proc.stdout
    assert (work / "pkcs11-backlog-w1-0" / "outbox" / "certs").is_dir()
