"""The CA's issuing key in a token (issue 16): ``certdesk watch --once`` over a backlog
with ``[keys] provider = "pkcs11"`` on a SoftHSM2 token, beside the raw rate of the same
token in this process (one core: check, build, sign through PKCS#11, serialise), both
measured in this run, as the file provider's end-to-end rates are beside its raw rate.

The token is made here, under the run's work folder (its own ``SOFTHSM2_CONF``), with
the issuing key of the run's size; without softhsm2 or python-pkcs11 the case is one row
saying what is missing (``make bench`` installs softhsm2 as root).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import prose
from .backlog import BacklogRun, WorkerCount, backlog
from .homes import CERTDESK, ENV
from .progress import log
from .raw import raw_rate
from .report import Row
from .settings import TARGETS, Sizes

__all__ = ["Pkcs11Result", "pkcs11_case", "pkcs11_note", "pkcs11_rows"]

PIN = "benchmark-pin-not-secret"
_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
_SECTION = "PKCS#11"
RAW = prose.RowText(_SECTION, "raw, key in SoftHSM2 ({kind}), one core ({when})", prose.RATE)
END_TO_END = prose.RowText(
    _SECTION,
    "watch --once, {backlog:,} CSRs, --workers {workers}, key in SoftHSM2",
    "{rate:,.0f} cert/s (first receipt {first:.2f} s, then {steady:,.0f} cert/s; "
    "CPU per request: daemon {main_ms:.2f} ms + signing {workers_ms:.2f} ms{runs})",
    "{ratio:.2f}x token raw",
    ">= {target}x token raw",
)
SKIPPED = prose.RowText(_SECTION, "the issuing key in a SoftHSM2 token", "not measured: {why}")
NOTE = (
    "**PKCS#11**: the issuing key ({kind}) in a SoftHSM2 token made for the run; its raw "
    "rate is this process signing through the token on one core (the higher of before and "
    "after the end-to-end runs); the signing processes are spawned and each opens its own "
    "session. The token's raw rate is {share:.0%} of the key-in-memory raw rate of this "
    "run's first rows: that is the price of the token, the end-to-end ratio what certdesk "
    "adds to it."
)


@dataclass(frozen=True)
class Pkcs11Result:
    kind: str  # the issuing key's type
    raw_before: float
    raw_after: float
    e2e: tuple[WorkerCount, ...]  # in the order of ``Sizes.workers``

    @property
    def raw(self) -> float:
        return max(self.raw_before, self.raw_after)


def _missing() -> str:
    if shutil.which("softhsm2-util") is None or _module() is None:
        return "softhsm2 is not installed (make bench installs it as root)"
    if importlib.util.find_spec("pkcs11") is None:
        return "python-pkcs11 is not installed (pip install -e '.[pkcs11]')"
    return ""


def _module() -> str | None:
    return next((m for m in _MODULES if os.path.exists(m)), None)


def _token_env(work: Path) -> dict[str, str]:
    """A fresh token folder and token; the environment a certdesk process needs for it."""
    folder = work / "softhsm"
    (folder / "tokens").mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nlog.level = ERROR\n")
    env = {**ENV, "SOFTHSM2_CONF": str(conf), "CERTDESK_PKCS11_PIN": PIN}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN,
         "--so-pin", PIN + "-so"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return env


def _template(work: Path, sizes: Sizes, env: dict[str, str], module: str) -> Path:
    home = work / "pkcs11-template"
    home.mkdir()
    (home / "certdesk.toml").write_text(
        f'[ca]\nroot_key = "{sizes.root_key}"\nissuing_key = "{sizes.issuing_key}"\n'
        f'[keys]\nprovider = "pkcs11"\nmodule = "{module}"\ntoken_label = "bench"\n',
        encoding="utf-8",
    )
    subprocess.run(
        [*CERTDESK, "--home", str(home), "init", "--keys", "pkcs11"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return home


def pkcs11_case(work: Path, csrs: Sequence[bytes], sizes: Sizes) -> Pkcs11Result | str:
    """The measurements, or why they could not be made."""
    if why := _missing():
        return why
    module = _module()
    assert module is not None
    env = _token_env(work)
    # This process opens the same token for the raw rate (SoftHSM2 reads it at load).
    os.environ["SOFTHSM2_CONF"] = env["SOFTHSM2_CONF"]
    template = _template(work, sizes, env, module)
    log("PKCS#11: raw rate through the token (before)")
    before = raw_rate(template, csrs[: sizes.raw], sizes.raw_reps, PIN.encode())
    runs: dict[int, list[BacklogRun]] = {w: [] for w in sizes.workers}
    for run_no in range(sizes.backlog_reps):
        for workers in sizes.workers:
            log(f"PKCS#11: backlog of {sizes.backlog} CSRs, --workers {workers}")
            done = backlog(template, work, csrs[: sizes.backlog], workers, run_no,
                           name="pkcs11-backlog", env=env)  # fmt: skip
            runs[workers].append(done)
    log("PKCS#11: raw rate through the token (after)")
    after = raw_rate(template, csrs[: sizes.raw], sizes.raw_reps, PIN.encode())
    e2e = tuple(
        WorkerCount(w, max(done, key=lambda r: r.rate), tuple(r.rate for r in done))
        for w, done in runs.items()
    )
    return Pkcs11Result(sizes.issuing_key, before, after, e2e)


def _row(text: prose.RowText, met: bool | None = None, **values: object) -> Row:
    cells = (text.section, text.measure, text.result, text.ratio)
    target = text.target.format_map(values) if met is not None else ""
    return Row(*(c.format_map(values) for c in cells), target, met)


def pkcs11_rows(result: Pkcs11Result | str, sizes: Sizes) -> list[Row]:
    if isinstance(result, str):
        return [_row(SKIPPED, why=result)]
    rows = [
        _row(RAW, kind=result.kind, when="before", rate=result.raw_before),
        _row(RAW, kind=result.kind, when="after", rate=result.raw_after),
    ]
    for count in result.e2e:
        best, target = count.best, TARGETS.e2e1 if count.workers == 1 else None
        ratio = best.rate / result.raw
        rates = ", ".join(prose.RUN_RATE.format(rate=r) for r in count.rates)
        rows.append(_row(
            END_TO_END, ratio >= target if target is not None else None,
            backlog=sizes.backlog, workers=count.workers, rate=best.rate, first=best.first,
            steady=best.steady, main_ms=best.main_ms, workers_ms=best.workers_ms,
            ratio=ratio, target=target,
            runs=prose.END_TO_END_RUNS.format(rates=rates) if len(count.rates) > 1 else "",
        ))  # fmt: skip
    return rows


def pkcs11_note(result: Pkcs11Result | str, file_raw: float) -> list[str]:
    if isinstance(result, str):
        return []
    return [NOTE.format(kind=result.kind, share=result.raw / file_raw)]
