"""``make bench``'s archive case works (``benchmarks/archive_case.py``): a backlog through
``certdesk watch --once``, the disk ``state/`` gained per request with day packs, the same
originals rebuilt as one folder each, and their rows. Tiny sizes; the figures of such a
run mean little, but packs already take less than folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys
from pathlib import Path
from benchmarks.archive_case import archive_case, archive_note, archive_rows
from benchmarks.corpus import load_corpus
from benchmarks.homes import make_template
from benchmarks.report import render_text
from benchmarks.settings import SMOKE
work = Path(sys.argv[1])
result = archive_case(make_template(work, SMOKE), work, load_corpus(24, log=False), 1)
print(render_text(archive_rows(result)))
print(archive_note(result)[0])
assert result.packs < result.folders, result
"""


@pytest.mark.timeout(240)
def test_the_archive_bench_case_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(work)], cwd=REPO,
                          capture_output=True, text=True, timeout=230)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("archive  state/ per request, originals in day packs, 24 CSRs")
               for line in lines), proc.stdout  # fmt: skip
    assert any("one folder per original (before)" in line for line in lines), proc.stdout
    assert any("watch --once, 24 CSRs, --workers 1, with the packs" in line for line in lines)
    assert "**Archive**" in proc.stdout
    assert list((work / "archive-w1-0" / "state" / "archive").glob("*.pack"))
