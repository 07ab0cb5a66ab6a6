"""Installing certdesk (``pyproject.toml``): pip builds it as ``make run`` does, and says
nothing of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.usefixtures("passphrase_env")


@pytest.mark.timeout(240)
def test_installing_the_project_prints_no_warning_of_its_own(tmp_path: Path) -> None:
    """pip builds certdesk as ``make run`` does (editable, isolated build with the
    pyproject's setuptools); nothing the build backend says may be a warning. The only
    lines allowed are this machine's pip configuration notes ("Location ... is ignored")."""
    target = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
         "--quiet", "--no-deps", "-e", str(REPO)],
        capture_output=True, text=True, timeout=220, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = [
        line for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "Location '" not in line
    ]  # fmt: skip
    assert said == []
