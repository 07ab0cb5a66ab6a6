"""The CRL of a store with N cancelled certificates, built in a process of its own (so that
its peak memory is the CRL's alone) by ``python -m benchmarks.scale crl``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .homes import ENV, REPO, new_home

__all__ = ["CrlResult", "crl_case"]


@dataclass(frozen=True)
class CrlResult:
    seconds: float  # build, sign, write DER and PEM
    peak_rss_mb: float  # the process' high-water mark, imports included
    rss_before_mb: float
    entries: int  # listed in the CRL written
    bytes: int  # of its DER


def _parse(out: str) -> CrlResult:
    fields = json.loads(out)
    return CrlResult(
        seconds=float(fields["seconds"]),
        peak_rss_mb=float(fields["peak_rss_mb"]),
        rss_before_mb=float(fields["rss_before_mb"]),
        entries=int(fields["entries"]),
        bytes=int(fields["bytes"]),
    )


def crl_case(template: Path, work: Path, entries: int) -> CrlResult:
    home = new_home(template, work, f"crl-{entries}")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "crl",
            "--home",
            str(home),
            "--entries",
            str(entries),
        ],
        env=ENV,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    shutil.rmtree(home)
    result = _parse(out)
    if result.entries != entries:
        raise RuntimeError(f"the CRL lists {result.entries} entries, not {entries}")
    return result
