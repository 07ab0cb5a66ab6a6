"""``make bench``'s "Panels and ledger at scale" works: the case at a tiny home (300
requests), with one pass in Debian's Chromium through ``certdesk admin``.

Not a timed test: the figures of a tiny home on a busy machine mean nothing; what it
proves is that every step runs and checks itself (the two engines give the same answers,
``load_ledger`` every row, the export every ANNULLATO row) and lands in the section,
which is written into an existing page in place, twice without doubling.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CERTDESK_CHROMIUM", "/usr/bin/chromium")
PAGE = "# certdesk benchmarks\n\n## Results\n\nx\n\n## Store indexes (measured)\n\ny\n"


def _case(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks.panels_case", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.browser
@pytest.mark.timeout(250)
def test_panels_case_runs_at_a_tiny_size(tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    out, saved = tmp_path / "benchmarks.md", tmp_path / "panels.pickle"
    out.write_text(PAGE, encoding="utf-8")
    done = _case("--smoke", "--out", str(out), "--work", str(tmp_path / "work"),
                 "--save", str(saved), timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    text = out.read_text(encoding="utf-8")
    # in place: before the store indexes, the rest of the page kept
    assert text.startswith("# certdesk benchmarks\n\n## Results\n\nx\n\n")
    assert text.index("## Panels and ledger at scale") < text.index("## Store indexes")
    assert "Budgets met:" in text and "medians of 1 pass(es)" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
            if line.startswith("| ") and "---" not in line}
    for measure in ("load_ledger(home), whole", "one person's rows: pyarrow",
                    "Stato: navigation -> counters and table shown",
                    "Stato: state ANNULLATO chosen", "Stato: Esporta CSV",
                    "Stato: kernel RSS", "Annullamento: navigation -> panel shown",
                    "Annullamento: codice fiscale prefix typed",
                    "Annullamento: page closed", "Stato: opened again",
                    "Annullamento: opened again"):
        (line,) = [v for k, v in rows.items() if k.startswith(measure)]
        assert line.split(" | ")[1].strip() not in ("", "–"), line  # the 300 column
        if "opened again" in measure:  # every static file from the browser's cache
            assert "; 0 of " in line.split(" | ")[1], line
    assert "the export held" not in text  # every ANNULLATO row was downloaded
    assert "300" in done.stdout  # the table on the terminal too

    # the saved figures render again, replacing the section, not adding a second one
    again = _case("--render", str(saved), "--out", str(out), timeout=60)
    assert again.returncode == 0, again.stderr[-4000:]
    assert out.read_text(encoding="utf-8").count("## Panels and ledger at scale") == 1
