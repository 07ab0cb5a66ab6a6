"""``python -m benchmarks``: throughput, latency and scale of certdesk, as one table.

Everything runs in this process tree, against homes made in a temporary folder: the raw
signing rate in this process, ``certdesk watch`` as subprocesses (as a user runs it),
the CRL case in a process of its own (for its peak memory), and the ``openssl x509 -req``
loop in bash. Every compared figure is a ratio of two figures measured in this run.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .corpus import load_corpus
from .floor import files_seconds, startup_seconds
from .report import Row, environment, render_markdown, render_text

__all__ = ["FULL", "SMOKE", "Sizes", "main", "run"]

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "benchmark-passphrase-not-secret"
ENV = {**os.environ, "CERTDESK_CA_PASSPHRASE": PASSPHRASE}
CERTDESK = [sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())"]


@dataclass(frozen=True)
class Sizes:
    raw: int = 400  # CSRs per raw repetition
    raw_reps: int = 3
    backlog: int = 2000
    backlog_reps: int = 3  # runs per worker count, interleaved; the best one counts
    workers: tuple[int, ...] = (1, 2)
    drops: int = 200
    crl: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    store: int = 1_000_000
    lookups: int = 1000
    burst: int = 200
    openssl: int = 100
    root_key: str = "rsa4096"
    issuing_key: str = "rsa3072"


FULL = Sizes()
SMOKE = Sizes(
    raw=12,
    raw_reps=1,
    backlog=16,
    backlog_reps=1,
    drops=3,
    crl=(50, 500),
    store=3000,
    lookups=50,
    burst=6,
    openssl=3,
    root_key="rsa2048",
    issuing_key="rsa2048",
)

TARGETS = {
    "e2e1": 0.9,
    "e2e2": 1.6,
    "openssl": 40.0,
    "p50_ms": 50.0,
    "p99_ms": 200.0,
    "crl100k_s": 3.0,
    "crl1m_s": 30.0,
    "lookup_ms": 10.0,
    "rss_mb": 300.0,
    "scale_ratio": 0.8,
}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- homes and the daemon ---------------------------------------------------------------
def make_template(work: Path, sizes: Sizes) -> Path:
    home = work / "template"
    home.mkdir()
    (home / "certdesk.toml").write_text(
        f'[ca]\nroot_key = "{sizes.root_key}"\nissuing_key = "{sizes.issuing_key}"\n',
        encoding="utf-8",
    )
    subprocess.run(
        [*CERTDESK, "--home", str(home), "init"], env=ENV, check=True, capture_output=True
    )
    return home


def new_home(template: Path, work: Path, name: str) -> Path:
    home = work / name
    shutil.copytree(template, home, symlinks=True)
    return home


def _heartbeat(home: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads((home / "outbox" / "daemon.json").read_text())
        return loaded
    except (OSError, ValueError):
        return {}


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
        deadline = time.monotonic() + timeout
        while _heartbeat(home).get("state") != "running":
            if proc.poll() is not None:
                raise RuntimeError(f"certdesk watch exited {proc.returncode}: see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"certdesk watch did not start in {timeout:.0f} s: {log}")
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _receipt(home: Path, name: str) -> Path:
    return home / "outbox" / "receipts" / f"{name}.json"


def _check_receipts(home: Path, names: Sequence[str]) -> list[float]:
    """mtimes of the receipts; fails unless every one says OK."""
    times = []
    for name in names:
        path = _receipt(home, name)
        receipt = json.loads(path.read_text(encoding="utf-8"))
        if receipt.get("esito") != "OK":
            raise RuntimeError(f"{name}: {receipt.get('errori')}")
        times.append(path.stat().st_mtime)
    return times


def _wait_for(paths: Sequence[Path], timeout: float, poll: float = 0.0005) -> None:
    deadline = time.monotonic() + timeout
    for path in paths:
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no receipt {path.name} after {timeout:.0f} s")
            time.sleep(poll)


# -- the measurements -------------------------------------------------------------------
def raw_rate(template: Path, csrs: Sequence[bytes], reps: int) -> float:
    """Certificates per second on one core: verify the CSR, build, sign, serialise."""
    from certdesk.authority import CertificateAuthority
    from certdesk.config import load_config
    from certdesk.home import Home
    from certdesk.policy import inspect_request

    home = Home.at(template)
    ca = CertificateAuthority.load(home, load_config(home.root), PASSPHRASE.encode())
    best = 0.0
    for _ in range(reps):
        now = datetime.now(UTC)
        started = time.perf_counter()
        for pem in csrs:
            inspected = inspect_request(pem)
            ca.issue(inspected.codice_fiscale.value, inspected.spki_der, now)
        best = max(best, len(csrs) / (time.perf_counter() - started))
    return best


def inspect_seconds(csrs: Sequence[bytes]) -> float:
    """CPU seconds of ``inspect_request`` per CSR (the part of raw that is not signing)."""
    from certdesk.policy import inspect_request

    started = time.process_time()
    for pem in csrs:
        inspect_request(pem)
    return (time.process_time() - started) / len(csrs)


def engine_overhead(template: Path, work: Path, csrs: Sequence[bytes]) -> float:
    """CPU seconds per request that the daemon's main process spends besides checking the
    CSR: claim, store commits, certificate, ledger, journal and receipt files, archive.

    The engine runs in this process with an instant signer (fixed certificate bytes), in
    batches of the daemon's size, so what is left is the main process' own work."""
    from datetime import timedelta

    from certdesk.authority import IssuedCertificate
    from certdesk.home import Home
    from certdesk.intake import claim
    from certdesk.runtime import open_engine
    from certdesk.signing import InProcessSigner, SignJob

    class InstantSigner(InProcessSigner):
        def sign(self, jobs: Sequence[SignJob]) -> list[IssuedCertificate]:
            return [
                IssuedCertificate(
                    der=b"\x30" * 1100,
                    pem=b"-----BEGIN CERTIFICATE-----\n" + b"A" * 1500 + b"\n",
                    serial=j.serial or int.from_bytes(os.urandom(16), "big") | 1,
                    not_before=j.now,
                    not_after=j.now + timedelta(days=1095),
                    sha256="00" * 32,
                )
                for j in jobs
            ]

    home = new_home(template, work, "overhead")
    names = _fill_inbox(home, csrs, "overhead")
    os.environ["CERTDESK_CA_PASSPHRASE"] = PASSPHRASE
    engine = open_engine(Home.at(home), workers=1)
    engine.signer.close()
    engine.signer = InstantSigner(engine.ca)
    try:
        engine.recover()
        started = time.process_time()
        # As the daemon does: one pipeline, each file claimed when the next chunk is due.
        engine.process(c for n in names if (c := claim(engine.home, n)) is not None)
        spent = time.process_time() - started
    finally:
        engine.close()
    _check_receipts(home, names)
    return spent / len(names) - inspect_seconds(csrs)


def _fill_inbox(home: Path, csrs: Sequence[bytes], prefix: str) -> list[str]:
    names = []
    past = time.time() - 60  # dropped a minute ago: complete, nothing to wait for
    for i, pem in enumerate(csrs):
        name = f"{prefix}-{i:05d}.csr"
        path = home / "inbox" / name
        path.write_bytes(pem)
        os.utime(path, (past, past))
        names.append(name)
    os.sync()  # our own writes must not be flushed on the daemon's time
    return names


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process' CPU seconds, its children's) from /proc, read while they run."""
    import psutil

    proc = psutil.Process(pid)
    own = sum(proc.cpu_times()[:2])
    children = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += sum(child.cpu_times()[:2])
    return own, children


def backlog(
    template: Path, work: Path, csrs: Sequence[bytes], workers: int, run: int = 0
) -> dict[str, float]:
    """``certdesk watch --once --workers N`` over a backlog, timed from outside; the CPU
    of the daemon and of its signing processes is read when the last receipt appears."""
    home = new_home(template, work, f"backlog-w{workers}-{run}")
    names = _fill_inbox(home, csrs, "backlog")
    log = work / f"backlog-w{workers}-{run}.log"
    # Inputs are taken in name order, and chunks published in order: this one is last.
    last_receipt = _receipt(home, max(names))
    cpu = (0.0, 0.0)
    started = time.time()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*CERTDESK, "--home", str(home), "watch", "--once", "--workers", str(workers)],
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        while proc.poll() is None and not last_receipt.exists():
            time.sleep(0.002)  # a stat every 2 ms: nothing next to the daemon's work
        if proc.poll() is None:
            cpu = _cpu_seconds(proc.pid)
        if proc.wait() != 0:
            raise RuntimeError(f"certdesk watch --once exited {proc.returncode}: see {log}")
    ended = time.time()
    times = _check_receipts(home, names)
    last = max(times)
    return {
        "rate": len(names) / (last - started),
        "wall": ended - started,
        "first": min(times) - started,
        "last": last - started,
        # After the first receipt (a run shorter than the mtime resolution: the rate).
        "steady": (
            (len(names) - 1) / (last - min(times))
            if last - min(times) > 0.01
            else len(names) / (last - started)
        ),
        "main_ms": cpu[0] * 1000 / len(names),
        "workers_ms": cpu[1] * 1000 / len(names),
    }


def latency(template: Path, work: Path, csrs: Sequence[bytes]) -> dict[str, float]:
    """Single drops (write aside, rename) into a live idle daemon, each timed to its receipt."""
    home = new_home(template, work, "latency")
    inbox = home / "inbox"
    samples = []
    with running_daemon(home, work / "latency.log"):
        time.sleep(0.5)
        for i, pem in enumerate(csrs):
            name = f"drop-{i:05d}.csr"
            aside = inbox / f".{name}.tmp"
            with open(aside, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            receipt = _receipt(home, name)
            started = time.perf_counter()
            os.rename(aside, inbox / name)
            _wait_for([receipt], timeout=60)
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)  # idle again before the next drop
    _check_receipts(home, [f"drop-{i:05d}.csr" for i in range(len(csrs))])
    samples.sort()
    return {
        "p50": _percentile(samples, 50),
        "p99": _percentile(samples, 99),
        "max": samples[-1],
    }


def _percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def crl_case(template: Path, work: Path, entries: int) -> dict[str, float]:
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
    result: dict[str, float] = json.loads(out)
    if result["entries"] != entries:
        raise RuntimeError(f"the CRL lists {result['entries']} entries, not {entries}")
    return result


def _rss_mb(pid: int) -> tuple[float, float, float]:
    """(main RSS, main peak RSS, workers' RSS) in MiB."""
    import psutil

    proc = psutil.Process(pid)
    rss = proc.memory_info().rss / 2**20
    peak = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    children = sum(c.memory_info().rss for c in proc.children(recursive=True)) / 2**20
    return rss, peak, children


def _burst(home: Path, csrs: Sequence[bytes], prefix: str) -> dict[str, float]:
    """Drop a burst of CSRs (each renamed in) into a running daemon; time to the last receipt."""
    if not csrs:
        raise ValueError("an empty burst: the corpus is too short for the bursts asked")
    inbox = home / "inbox"
    asides = []
    for i, pem in enumerate(csrs):
        aside = inbox / f".{prefix}-{i:05d}.csr.tmp"
        aside.write_bytes(pem)
        asides.append(aside)
    os.sync()
    names = [a.name[1:-4] for a in asides]
    stalled = _io_stall_us()
    started = time.perf_counter()
    for aside, name in zip(asides, names, strict=True):
        os.rename(aside, inbox / name)
    _wait_for([_receipt(home, n) for n in names], timeout=600, poll=0.002)
    seconds = time.perf_counter() - started
    stall = (_io_stall_us() - stalled) / 1e6 / seconds  # share of the time some task waited on I/O
    _check_receipts(home, names)
    return {"rate": len(names) / seconds, "seconds": seconds, "io_stall": stall}


def _io_stall_us() -> float:
    """Microseconds in which some task of this machine waited on I/O (Linux PSI), or 0."""
    try:
        line = Path("/proc/pressure/io").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    return float(line.rpartition("total=")[2] or 0)


BURSTS = 3  # per home; the fastest counts


def _runs(result: dict[str, Any]) -> str:
    """The rates of every run, each with the share of its time the machine stalled on I/O."""
    runs = result.get("runs", [(result["rate"], result.get("io_stall", 0.0))])
    return ", ".join(f"{rate:,.0f} (I/O {stall:.0%})" for rate, stall in runs)


def _best_bursts(homes: Sequence[Path], csrs: Sequence[bytes], size: int) -> list[dict[str, Any]]:
    """Bursts of distinct CSRs into each home's running daemon, the homes taking turns (in
    alternating order), a few seconds apart; the fastest of each home counts. Taking turns
    gives the homes compared the same machine: on this shared one, background writeback
    alone can halve a burst's rate for a minute."""
    results: list[list[dict[str, float]]] = [[] for _ in homes]
    for n in range(BURSTS):
        turn = list(enumerate(homes))
        for index, home in turn if n % 2 == 0 else reversed(turn):
            time.sleep(4)  # the last burst's idle work (its OCSP responses) is done
            batch = csrs[n * size : (n + 1) * size]
            results[index].append(_burst(home, batch, f"burst-{n}"))
    best: list[dict[str, Any]] = [dict(max(runs, key=lambda r: r["rate"])) for runs in results]
    for chosen, runs in zip(best, results, strict=True):
        chosen["runs"] = [(r["rate"], r["io_stall"]) for r in runs]
    return best


def _cancel_one(home: Path, codice_fiscale: str) -> float:
    """One annullamento (cumulative for the codice fiscale), timed drop → receipt."""
    from certdesk.client import file_cancellation

    started = time.perf_counter()
    path = file_cancellation(
        home,
        codice_fiscale=codice_fiscale,
        id_operazione=[],
        motivazione="ATTIVITA_CESSATA",
        operatore="benchmark",
    )
    _wait_for([_receipt(home, path.name)], timeout=600, poll=0.002)
    seconds = time.perf_counter() - started
    receipt = json.loads(_receipt(home, path.name).read_text())
    if receipt.get("esito") != "OK":
        raise RuntimeError(f"annullamento refused: {receipt.get('errori')}")
    return seconds


def scale(template: Path, work: Path, sizes: Sizes, csrs: Sequence[bytes]) -> dict[str, Any]:
    """A store of ``sizes.store`` certificates: lookups, ledger, pandas, daemon RSS, per-file
    costs against an empty home."""
    import random

    from certdesk.home import Home
    from certdesk.publish import Publisher
    from certdesk.store import Store

    from .corpus import codice_fiscale
    from .scale import populate

    result: dict[str, Any] = {}
    home = new_home(template, work, "scale")
    _log(f"scale: populating {sizes.store:,} certificates")
    population = populate(home, sizes.store, samples=sizes.lookups)
    os.sync()  # the population's gigabytes must not be flushed on the daemon's time
    result["populate_s"] = population.seconds
    result["states"] = population.states
    rng = random.Random(6)
    store = Store(home / "state" / "certdesk.sqlite3")
    by_cf, by_id = [], []
    for cf, id_op in zip(population.sample_cf, population.sample_id, strict=True):
        started = time.perf_counter()
        found = store.find(codice_fiscale=cf)
        by_cf.append((time.perf_counter() - started) * 1000)
        assert found, cf
        started = time.perf_counter()
        record = store.get(id_op)
        by_id.append((time.perf_counter() - started) * 1000)
        assert record is not None, id_op
    rng.shuffle(by_cf)
    result["lookup_cf"] = (_percentile(by_cf, 50), _percentile(by_cf, 99))
    result["lookup_id"] = (_percentile(by_id, 50), _percentile(by_id, 99))
    publisher = Publisher(Home.at(home))
    publisher.ensure_layout()
    started = time.perf_counter()
    publisher.rebuild_ledger(store)
    result["ledger_s"] = time.perf_counter() - started
    with store.transaction() as txn:
        txn.mark_ledger(current=True)  # as the engine does after a rebuild
    store.close()
    result["ledger_mb"] = (home / "outbox" / "ledger.csv").stat().st_size / 2**20
    result["pandas_s"], result["pandas_how"] = _load_pandas(home, sizes.store)
    os.sync()
    # A daemon that has run for a while finds its store in the page cache; this one was
    # just written, and the machine may have evicted it since: read it once.
    with open(home / "state" / "certdesk.sqlite3", "rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass
    log = work / "scale.log"
    started = time.perf_counter()
    with running_daemon(home, log) as proc:
        result["start_s"] = time.perf_counter() - started
        time.sleep(3)  # settle: the first periodic pass (expiry, CRL, OCSP) runs meanwhile
        result["rss_idle"] = _rss_mb(proc.pid)
        # The reference: the same bursts and the same annullamento into a daemon on an
        # empty home running beside it, the two taking turns.
        empty = new_home(template, work, "scale-empty")
        with running_daemon(empty, work / "scale-empty.log"):
            result["burst_empty"], result["burst_scale"] = _best_bursts(
                [empty, home], csrs, sizes.burst
            )
            for key, where in (("cancel_empty", empty), ("cancel_scale", home)):
                time.sleep(2)
                result[key] = _cancel_one(where, codice_fiscale(0))
        shutil.rmtree(empty)
        time.sleep(1)
        result["rss_after"] = _rss_mb(proc.pid)
    shutil.rmtree(home)
    return result


def _load_pandas(home: Path, expected: int) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        from certdesk.frame import load_ledger

        frame = load_ledger(home)
        how = "certdesk.frame.load_ledger (typed)"
    except ImportError:
        import pandas as pd

        frame = pd.read_csv(home / "outbox" / "ledger.csv", dtype=str, keep_default_na=False)
        how = "pandas.read_csv"
    seconds = time.perf_counter() - started
    if len(frame) != expected:
        raise RuntimeError(f"the ledger has {len(frame)} rows, not {expected}")
    return seconds, how


_EXTFILE = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://certdesk.example/ca/issuing.crl
"""


def openssl_loop(template: Path, work: Path, csrs: Sequence[bytes]) -> float:
    """What a sysadmin writes: one ``openssl x509 -req`` per CSR, same CA key; per second."""
    folder = work / "openssl"
    folder.mkdir()
    files = []
    for i, pem in enumerate(csrs):
        path = folder / f"req-{i:05d}.csr"
        path.write_bytes(pem)
        files.append(str(path))
    (folder / "ext.cnf").write_text(_EXTFILE)
    ca = template / "state" / "ca"
    script = (
        'for f in "$@"; do openssl x509 -req -in "$f" -CA "$CA/issuing.pem" '
        '-CAkey "$CA/issuing.key.pem" -passin env:CERTDESK_CA_PASSPHRASE '
        '-CAcreateserial -CAserial "$DIR/serial.srl" -days 1095 -sha256 '
        '-extfile "$DIR/ext.cnf" -out "$f.pem" 2>/dev/null || exit 1; done'
    )
    started = time.perf_counter()
    subprocess.run(
        ["bash", "-c", script, "openssl-loop", *files],
        env={**ENV, "CA": str(ca), "DIR": str(folder)},
        check=True,
    )
    seconds = time.perf_counter() - started
    if not all(Path(f + ".pem").exists() for f in files):
        raise RuntimeError("the openssl loop did not write every certificate")
    return len(files) / seconds


# -- the run ----------------------------------------------------------------------------
def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f} cert/s"


def _fmt_n(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


def run(sizes: Sizes, work: Path) -> tuple[list[Row], list[str], dict[str, str]]:
    rows: list[Row] = []
    count = max(sizes.backlog, sizes.raw, sizes.drops, BURSTS * sizes.burst, sizes.openssl)
    csrs = load_corpus(count)
    # Timed as installed: a wheel install compiles the bytecode; an editable checkout run
    # with PYTHONDONTWRITEBYTECODE would otherwise compile every module at every start.
    compileall.compile_dir(REPO / "lib", quiet=1)
    _log(f"CA: root {sizes.root_key}, issuing {sizes.issuing_key}")
    template = make_template(work, sizes)
    env = environment(work, sizes.issuing_key)

    _log("raw in-process rate (before)")
    raw_before = raw_rate(template, csrs[: sizes.raw], sizes.raw_reps)
    e2e: dict[int, dict[str, float]] = {}
    tried: dict[int, list[float]] = {}
    for run_no in range(sizes.backlog_reps):
        for workers in sizes.workers:
            _log(f"backlog of {sizes.backlog} CSRs, --workers {workers} (run {run_no + 1})")
            res = backlog(template, work, csrs[: sizes.backlog], workers, run_no)
            tried.setdefault(workers, []).append(res["rate"])
            if workers not in e2e or res["rate"] > e2e[workers]["rate"]:
                e2e[workers] = res
    _log("raw in-process rate (after)")
    raw_after = raw_rate(template, csrs[: sizes.raw], sizes.raw_reps)
    raw = max(raw_before, raw_after)  # the stricter reference for every ratio
    rows.append(Row("raw", "in-process, one core (before)", _fmt_rate(raw_before)))
    rows.append(Row("raw", "in-process, one core (after)", _fmt_rate(raw_after)))
    _log("main-process cost per request (instant signer)")
    inspect_s = inspect_seconds(csrs[: sizes.raw])
    overhead_s = engine_overhead(template, work, csrs[: sizes.backlog])
    sign_s = max(1 / raw - inspect_s, 1e-6)
    cores = os.cpu_count() or 1
    rows.append(
        Row(
            "raw",
            "CPU per request: CSR checks / signing / main-process rest",
            f"{inspect_s * 1000:.2f} / {sign_s * 1000:.2f} / {overhead_s * 1000:.2f} ms",
        )
    )
    _log("floor: the contract's files alone, and the start-up")
    files_s = files_seconds(work, csrs[: sizes.backlog])
    startup_s = startup_seconds()
    rows.append(
        Row(
            "floor",
            "CPU no daemon of the contract avoids: files per request / start-up",
            f"{files_s * 1000:.2f} ms / {startup_s:.2f} s ({startup_s / sizes.backlog * 1000:.2f}"
            f" ms per request over {sizes.backlog:,})",
        )
    )
    for workers, res in e2e.items():
        ratio = res["rate"] / raw
        target = TARGETS["e2e1"] if workers == 1 else TARGETS["e2e2"]
        rows.append(
            Row(
                "end-to-end",
                f"watch --once, {sizes.backlog:,} CSRs, --workers {workers}",
                f"{_fmt_rate(res['rate'])} (first receipt {res['first']:.2f} s, then "
                f"{_fmt_rate(res['steady'])}; exit {res['wall']:.2f} s; CPU per request: "
                f"daemon {res['main_ms']:.2f} ms + signing {res['workers_ms']:.2f} ms"
                + (
                    f"; runs: {', '.join(f'{r:,.0f}' for r in tried[workers])}"
                    if len(tried[workers]) > 1
                    else ""
                )
                + ")",
                f"{ratio:.2f}x raw",
                f">= {target}x raw" if workers in (1, 2) else "",
                ratio >= target if workers in (1, 2) else None,
            )
        )

    _log(f"latency: {sizes.drops} single drops into an idle daemon")
    lat = latency(template, work, csrs[: sizes.drops])
    rows.append(
        Row(
            "latency",
            f"drop -> receipt p50, {sizes.drops} drops",
            f"{lat['p50']:.1f} ms",
            target=f"<= {TARGETS['p50_ms']:.0f} ms",
            met=lat["p50"] <= TARGETS["p50_ms"],
        )
    )
    rows.append(
        Row(
            "latency",
            "drop -> receipt p99",
            f"{lat['p99']:.1f} ms (max {lat['max']:.1f} ms)",
            target=f"<= {TARGETS['p99_ms']:.0f} ms",
            met=lat["p99"] <= TARGETS["p99_ms"],
        )
    )

    for entries in sizes.crl:
        _log(f"CRL with {entries:,} entries")
        res = crl_case(template, work, entries)
        limit = {100_000: TARGETS["crl100k_s"], 1_000_000: TARGETS["crl1m_s"]}.get(entries)
        rows.append(
            Row(
                "CRL",
                f"build + publish, {_fmt_n(entries)} revoked",
                f"{res['seconds']:.2f} s, peak RSS {res['peak_rss_mb']:.0f} MiB, "
                f"{res['bytes'] / 2**20:.1f} MiB DER",
                target=f"<= {limit:.0f} s" if limit else "",
                met=res["seconds"] <= limit if limit else None,
            )
        )

    _log(f"scale: a store of {sizes.store:,} certificates")
    sc = scale(template, work, sizes, csrs[: BURSTS * sizes.burst])
    n = _fmt_n(sizes.store)
    rows.append(Row("scale", f"populate {n} (SQLite, bulk)", f"{sc['populate_s']:.1f} s"))
    for key, label in (("lookup_cf", "by codice fiscale"), ("lookup_id", "by IdOperazione")):
        p50, p99 = sc[key]
        rows.append(
            Row(
                "scale",
                f"status lookup {label} at {n} (p50 / p99)",
                f"{p50:.3f} / {p99:.3f} ms",
                target=f"<= {TARGETS['lookup_ms']:.0f} ms",
                met=p99 <= TARGETS["lookup_ms"],
            )
        )
    rows.append(
        Row(
            "scale",
            f"ledger export at {n} (rebuild_ledger)",
            f"{sc['ledger_s']:.1f} s ({sc['ledger_mb']:.0f} MiB)",
        )
    )
    rows.append(Row("scale", f"ledger.csv into pandas at {n}", f"{sc['pandas_s']:.1f} s"))
    rows.append(Row("scale", f"daemon start at {n} (to running)", f"{sc['start_s']:.1f} s"))
    rss, peak, children = sc["rss_idle"]
    rss_after = sc["rss_after"][0]
    rows.append(
        Row(
            "scale",
            f"daemon RSS at {n}, settled",
            f"{rss:.0f} MiB (after the burst {rss_after:.0f}; start-up peak {peak:.0f}; "
            f"workers {children:.0f})",
            target=f"<= {TARGETS['rss_mb']:.0f} MiB",
            met=max(rss, rss_after) <= TARGETS["rss_mb"],
        )
    )
    ratio = sc["burst_scale"]["rate"] / sc["burst_empty"]["rate"]
    rows.append(
        Row(
            "scale",
            f"burst of {sizes.burst} CSRs into a live daemon, at {n} vs empty",
            f"{_fmt_rate(sc['burst_scale']['rate'])} vs {_fmt_rate(sc['burst_empty']['rate'])}"
            f" (runs, in turn: {_runs(sc['burst_scale'])} vs {_runs(sc['burst_empty'])})",
            f"{ratio:.2f}x",
            f">= {TARGETS['scale_ratio']}x (no growth)",
            ratio >= TARGETS["scale_ratio"],
        )
    )
    rows.append(
        Row(
            "scale",
            f"one annullamento, drop -> receipt, at {n} vs empty",
            f"{sc['cancel_scale'] * 1000:.0f} ms vs {sc['cancel_empty'] * 1000:.0f} ms",
            f"{sc['cancel_scale'] / sc['cancel_empty']:.1f}x",
            # The same "no growth" rule as the burst, as a time: at most 1 / 0.8 as long.
            f"<= {1 / TARGETS['scale_ratio']:.2f}x (no growth)",
            sc["cancel_scale"] / sc["cancel_empty"] <= 1 / TARGETS["scale_ratio"],
        )
    )

    _log(f"openssl x509 -req loop over {sizes.openssl} CSRs")
    loop = openssl_loop(template, work, csrs[: sizes.openssl])
    best = max(res["rate"] for res in e2e.values())
    default = e2e.get(os.cpu_count() or 1, e2e[max(e2e)])
    ratio = default["rate"] / loop
    rows.append(Row("baseline", f"openssl x509 -req loop, {sizes.openssl} CSRs", _fmt_rate(loop)))
    rows.append(
        Row(
            "baseline",
            "end-to-end (default --workers) vs openssl loop",
            f"{_fmt_rate(default['rate'])} vs {_fmt_rate(loop)} (best e2e {_fmt_rate(best)})",
            f"{ratio:.0f}x",
            f">= {TARGETS['openssl']:.0f}x",
            ratio >= TARGETS["openssl"],
        )
    )
    notes = _notes(sizes, sc)
    notes += _ceilings(raw, inspect_s, sign_s, overhead_s, cores, sizes.workers)
    notes += _measured_ceilings(raw, e2e, cores)
    notes += _floor_note(raw, inspect_s, sign_s, overhead_s, files_s, startup_s, sizes, cores)
    return rows, notes, env


def _ceilings(
    raw: float, inspect_s: float, sign_s: float, overhead_s: float, cores: int,
    workers: Sequence[int],
) -> list[str]:  # fmt: skip
    """What the CPU accounting of this run allows, to read the end-to-end ratios against."""
    text = (
        f"**CPU accounting** (this run): a request costs {inspect_s * 1000:.2f} ms of CSR "
        f"checks and {overhead_s * 1000:.2f} ms of other work in the daemon's main process "
        f"(claim, store commits, files, archive), and {sign_s * 1000:.2f} ms of signing in a "
        "worker. Upper bounds on the end-to-end rate (no start-up, no pipeline bubbles):"
    )
    for n in workers:
        main = 1 / (inspect_s + overhead_s)
        signing = n / sign_s
        cpu = min(cores, n + 1) / (inspect_s + overhead_s + sign_s)
        best = min(main, signing, cpu)
        limit = {best: "?", main: "the main process", signing: "the workers", cpu: "the cores"}
        text += (
            f" `--workers {n}`: {best:,.0f} cert/s = {best / raw:.2f}x raw, bound by "
            f"{limit[best]} (main process alone {main:,.0f}/s, signing {signing:,.0f}/s, "
            f"{min(cores, n + 1)} cores {cpu:,.0f}/s);"
        )
    text = text.rstrip(";") + "."
    goal = TARGETS["e2e2"] * raw
    cores2 = min(cores, 3)
    rest = min(cores2 / goal - inspect_s - sign_s, 1 / goal - inspect_s)
    text += (
        f" Reaching {TARGETS['e2e2']}x raw ({goal:,.0f}/s) with 2 workers needs the rest of "
        "the main process' work per request (CSR checks still there) at "
        + (f"{rest * 1000:.2f} ms or less" if rest > 0 else "less than nothing")
        + f", against {overhead_s * 1000:.2f} ms measured."
    )
    return [text]


def _measured_ceilings(raw: float, e2e: dict[int, dict[str, float]], cores: int) -> list[str]:
    """The same bound from the CPU the real runs spent, read when their last receipt
    appeared (start-up included): the daemon's own and its signing processes'."""
    parts = []
    for n, res in sorted(e2e.items()):
        total = res["main_ms"] + res["workers_ms"]
        if total <= 0:
            continue
        bound = min(cores, n + 1) * 1000 / total
        parts.append(
            f"`--workers {n}`: {res['main_ms']:.2f} + {res['workers_ms']:.2f} = {total:.2f} ms "
            f"of CPU per request, so at most {bound:,.0f} cert/s = {bound / raw:.2f}x raw on "
            f"{min(cores, n + 1)} cores, against {res['rate']:,.0f} cert/s measured"
        )
    if not parts:
        return []
    return [
        "**CPU measured in the end-to-end runs** (the best run of each worker count): "
        + "; ".join(parts)
        + f". {TARGETS['e2e2']}x raw with 2 workers on {cores} cores would need at most "
        f"{cores * 1000 / (TARGETS['e2e2'] * raw):.2f} ms per request in all, start-up "
        f"included, where the CSR checks and the signature alone cost {1000 / raw:.2f} ms."
    ]


def _floor_note(
    raw: float, inspect_s: float, sign_s: float, overhead_s: float, files_s: float,
    startup_s: float, sizes: Sizes, cores: int,
) -> list[str]:  # fmt: skip
    """How much of the 2-worker target's CPU budget the floor leaves to certdesk's own work."""
    goal = TARGETS["e2e2"] * raw
    budget = min(cores, 3) / goal  # CPU seconds per request the target allows, in all
    left = budget - inspect_s - sign_s - files_s - startup_s / sizes.backlog
    own = overhead_s - files_s
    return [
        f"**Floor** (this run, `benchmarks/floor.py`): the least any daemon of the contract "
        f"spends besides checking and signing. A request's files (claimed by a rename, read, "
        f"certificate and receipt written aside and renamed, original archived; no fsync, no "
        f"store) cost {files_s * 1000:.3f} ms of CPU; starting the interpreter with the "
        f"modules `certdesk watch` loads costs {startup_s:.2f} s, "
        f"{startup_s / sizes.backlog * 1000:.3f} ms per request over {sizes.backlog:,}. "
        f"{TARGETS['e2e2']}x raw ({goal:,.0f}/s) with 2 workers on {min(cores, 3)} cores allows "
        f"{budget * 1000:.3f} ms of CPU per request in all; after the CSR checks "
        f"({inspect_s * 1000:.3f} ms), the signature ({sign_s * 1000:.3f} ms) and the floor, "
        + (
            f"{left * 1000:.3f} ms is left"
            if left > 0
            else f"nothing is left ({left * 1000:.3f} ms)"
        )
        + " for the store's commits, the ledger, the journal, the receipts' content, the "
        f"fsyncs and the daemon's logic, which take {own * 1000:.3f} ms here."
    ]


def _notes(sizes: Sizes, sc: dict[str, Any]) -> list[str]:
    states = ", ".join(f"{k} {v:,}" for k, v in sc["states"].items())
    return [
        f"**raw**: in this process, best of {sizes.raw_reps} passes over {sizes.raw} CSRs: "
        "`inspect_request` (parse, key checks, signature verification, codice fiscale) + "
        "`CertificateAuthority.issue` (build, sign with the issuing key, DER and PEM). "
        "Measured before and after the end-to-end runs; ratios use the higher of the two.",
        f"**end-to-end**: {sizes.backlog:,} distinct CSRs (distinct RSA-2048 keys and codici "
        "fiscali) already in `inbox/` of a fresh home; `certdesk watch --once --workers N` is "
        "started as a subprocess; the rate is CSRs / (time from the start of the command to "
        "the last receipt's mtime), start-up included; every receipt is checked to say OK. "
        f"Each worker count runs {sizes.backlog_reps} time(s), interleaved, each in a fresh "
        "home; the best run counts (as for raw: on a shared machine the best run is the one "
        "least disturbed). "
        "Durability on: receipts are written only after the store commit and after the "
        "certificates, ledger and journal are fsynced. `exit` adds what `--once` does after "
        "the backlog (pre-signing OCSP responses, which the daemon does when idle).",
        f"**latency**: `certdesk watch` (default workers) on a fresh home, idle; {sizes.drops} "
        "CSRs written aside and fsynced, then timed from the rename into `inbox/` to the "
        "appearance of the receipt (polled every 0.5 ms), 50 ms apart.",
        "**CRL**: a store with N cancelled, unexpired certificates; "
        "`RevocationPublisher.publish_crl` (read the store, build, sign, write DER and PEM) "
        "in a process of its own; peak RSS is that process' high-water mark, imports included.",
        f"**scale**: {sizes.store:,} requests inserted in bulk with SQLite ({states}), with "
        "receipts, the hash-chained journal and `journal.csv`; the indexes grow with the "
        "rows, as the daemon grows them (an index built at the end packs its pages, and "
        "the first new rows would split them); certificate bytes are opaque "
        f"blobs of real size. Lookups: {sizes.lookups} `Store.find(codice_fiscale=...)` and "
        "`Store.get(id)` calls on a cold connection. The daemon is started on that home "
        "(a restart: the ledger was exported and marked current; the store marks every "
        "certificate's OCSP response fresh, as a daemon that ran all along would have them, "
        "without writing 0.7M files; after the start, idle slices build the CRL's entries "
        "ahead) and its RSS read with psutil 3 s after it reports `running`. "
        f"{BURSTS} bursts ({sizes.burst} new CSRs each, renamed into `inbox/` at once; "
        "the fastest counts) and one cumulative annullamento are timed into that daemon and "
        "into one on an empty home running beside it, the two taking turns (every run is "
        "listed with the share of its time some task of the machine waited on I/O, from "
        "Linux PSI: it tells a busy disk from a slow daemon; the store file "
        "is read once before the daemon starts, "
        "as a long-running daemon finds it in the page cache; cold, every request pays a "
        "few random index-page reads). The annullamento finds the person's certificates by "
        "codice fiscale, rewrites `ledger.csv` around the changed rows (kernel copy, then "
        "fsync; the replaced file is freed after the receipt) and re-signs the CRL, which "
        "lists every unexpired cancellation (read from a covering index; the entries "
        "already built are kept): the copy and the CRL grow with the store, because the "
        "contract publishes the ledger as one CSV file that appears atomically (written "
        "aside, renamed) and the CRL as a full CRL. Annullamenti waiting together share "
        "one rewrite and one CRL.",
        f"**openssl**: `bash` loop of `openssl x509 -req` over {sizes.openssl} CSRs with the "
        "same encrypted issuing key (`-passin`), an extension file of the same profile, "
        "`-CAcreateserial`; compared with the end-to-end rate at the default worker count "
        "(the number of cores).",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it works")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--work", type=Path, default=None, help="keep the homes here")
    parser.add_argument("--store", type=int, default=None, help="certificates in the store")
    parser.add_argument("--backlog", type=int, default=None)
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.store:
        sizes = replace(sizes, store=args.store)
    if args.backlog:
        sizes = replace(sizes, backlog=args.backlog)
    command = "python -m benchmarks" + (" --smoke" if args.smoke else "")
    work_ctx: Callable[[], Any]
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=False)
        work_ctx = lambda: _keep(args.work)  # noqa: E731
    else:
        work_ctx = lambda: tempfile.TemporaryDirectory(prefix="certdesk-bench-")  # noqa: E731
    started = time.perf_counter()
    with work_ctx() as folder:
        rows, notes, env = run(sizes, Path(folder))
    env["harness run time"] = f"{time.perf_counter() - started:.0f} s"
    print(render_text(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_markdown(rows, env, notes, command), encoding="utf-8")
    _log(f"written {args.out}")
    return 0


@contextmanager
def _keep(folder: Path) -> Iterator[str]:
    yield str(folder)
