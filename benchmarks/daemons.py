"""``certdesk watch`` as a user runs it, and what its processes cost, read from outside."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from .homes import CERTDESK, ENV

__all__ = ["CpuSplit", "Memory", "cpu_seconds", "io_stall_us", "memory", "running_daemon"]


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds (user + system) of a process and of its children."""

    main_s: float
    children_s: float


@dataclass(frozen=True)
class Memory:
    """A process' memory in MiB: resident now, its high-water mark, its children's."""

    rss_mb: float
    peak_mb: float
    children_mb: float


def _state(home: Path) -> object:
    """The daemon's state from its heartbeat, None while there is none (or half-written)."""
    try:
        loaded = json.loads((home / "outbox" / "daemon.json").read_text())
    except (OSError, ValueError):
        return None
    return loaded.get("state") if isinstance(loaded, dict) else None


def _wait_running(proc: subprocess.Popen[bytes], home: Path, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _state(home) != "running":
        if proc.poll() is not None:
            raise RuntimeError(f"certdesk watch exited {proc.returncode}: see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"certdesk watch did not start in {timeout:.0f} s: {log}")
        time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_daemon(
    home: Path, log: Path, workers: int | None = None, timeout: float = 600
) -> Iterator[subprocess.Popen[bytes]]:
    """``certdesk watch`` on ``home`` until the block ends (then SIGTERM)."""
    args = [*CERTDESK, "--home", str(home), "watch"]
    if workers is not None:
        args += ["--workers", str(workers)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_running(proc, home, log, timeout)
        yield proc
    finally:
        _stop(proc)


def cpu_seconds(pid: int) -> CpuSplit:
    """The process' CPU and its children's, from /proc, read while they run."""
    proc = psutil.Process(pid)
    own = sum(proc.cpu_times()[:2])
    children = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += sum(child.cpu_times()[:2])
    return CpuSplit(own, children)


def _peak_mb(pid: int) -> float:
    """VmHWM: the high-water mark of the resident set, which psutil does not report."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(pid: int) -> Memory:
    proc = psutil.Process(pid)
    rss = proc.memory_info().rss / 2**20
    peak = _peak_mb(pid)
    children = sum(c.memory_info().rss for c in proc.children(recursive=True)) / 2**20
    return Memory(rss, peak, children)


def io_stall_us() -> float:
    """Microseconds in which some task of this machine waited on I/O (Linux PSI), or 0."""
    try:
        line = Path("/proc/pressure/io").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    return float(line.rpartition("total=")[2] or 0)
