"""The machine and the software a run measured, for the report's Environment list."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import prose

__all__ = ["environment", "run_time"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or prose.UNKNOWN


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return prose.MEMORY_GIB.format(gib=int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return prose.UNKNOWN


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "--output=fstype", str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[-1]
    except (OSError, subprocess.CalledProcessError):
        return prose.UNKNOWN


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return prose.NOT_INSTALLED


def _openssl_cli() -> str:
    try:
        return subprocess.run(
            ["openssl", "version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return prose.NOT_INSTALLED


def _facts(work: Path, ca_key: str) -> dict[str, object]:
    from cryptography.hazmat.backends.openssl.backend import backend

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": _memory(),
        "system": platform.system(),
        "release": platform.release(),
        "filesystem": _filesystem(work),
        "load1": load[0],
        "load5": load[1],
        "load15": load[2],
        "python": sys.version.split()[0],
        "certdesk": _version("certdesk"),
        "cryptography": _version("cryptography"),
        "openssl_library": backend.openssl_version_text(),
        "openssl_command": _openssl_cli(),
        "sqlite": sqlite3.sqlite_version,
        "pandas": _version("pandas"),
        "ca_key": ca_key,
    }


def environment(work: Path, ca_key: str) -> dict[str, str]:
    """Label → value, read at the start of the run (the load average is the machine's then)."""
    facts = _facts(work, ca_key)
    return {label: template.format_map(facts) for label, template in prose.ENVIRONMENT}


def run_time(seconds: float) -> tuple[str, str]:
    """The environment's last line, added when the run is over."""
    label, template = prose.RUN_TIME
    return label, template.format(seconds=seconds)
