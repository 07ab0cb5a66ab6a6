"""Load from ``wrk`` (Debian's): keep-alive clients cycling through a list of GET paths."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LoadRun", "wrk_run"]

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")

# Each thread of wrk cycles through the paths from its own starting point.
_SCRIPT = """\
local paths = {{
{paths}
}}
local i = 0
init = function(args)
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


@dataclass(frozen=True)
class LoadRun:
    rate: float  # responses per second
    p50_ms: float
    p99_ms: float


def _script(work: Path, name: str, paths: Sequence[str]) -> Path:
    script = work / f"{name}.lua"
    body = ",\n".join(f'  "{p}"' for p in paths)  # base64url and hex: nothing to escape
    script.write_text(_SCRIPT.format(paths=body), encoding="ascii")
    return script


def wrk_run(
    work: Path, base: str, paths: Sequence[str], connections: int, seconds: float
) -> LoadRun:
    """``connections`` keep-alive clients (one wrk thread per core, at most one per
    connection) for ``seconds``; every answer must be a 2xx."""
    script = _script(work, f"paths-{abs(hash(tuple(paths))) % 10**8}", paths)
    threads = max(1, min(connections, 2))
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         "--latency", "-s", str(script), base],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    out = done.stdout
    failed = _NON_2XX.search(out)
    errors = _ERRORS.search(out)
    if failed or (errors and any(int(n) for n in errors.groups())):
        raise RuntimeError(f"wrk saw failed requests against {base}:\n{out}")
    rate = _RATE.search(out)
    found = {m[1]: float(m[2]) * _UNITS[m[3]] for m in _PERCENTILE.finditer(out)}
    if rate is None or set(found) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return LoadRun(float(rate[1]), found["50"], found["99"])
