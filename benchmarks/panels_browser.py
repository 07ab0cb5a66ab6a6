"""The panels in Debian's Chromium (Playwright, headless, offline) through ``certdesk admin``.

One server per home (the CLI as a user runs it, 127.0.0.1, a token); one pass = a fresh
browser context that opens Stato, filters it, exports the cancelled rows, closes it, then
opens Annullamento, types a codice fiscale prefix, closes it; then opens each of the two
twice more, with the browser's cache on, and times the second visit (what an
administrator waits for all day: the static files are in the cache by then). The first
pages are routed by Playwright (``page.route``), which turns the browser's cache off:
every one of them fetches all its files, as a first visit does. Every figure is timed
here, from the Playwright call that acts to the moment the page shows its effect (polled
every animation frame): what a person waits for, the round trip to the kernel included.
The kernels' memory is read with psutil from the Voila process' children.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psutil

from .homes import CERTDESK, ENV

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Route

__all__ = ["CHROMIUM", "BrowserPass", "Sample", "browser_available", "browser_passes"]

CHROMIUM = os.environ.get("CERTDESK_CHROMIUM", "/usr/bin/chromium")
# Long enough for a page that misses every budget to still be measured, not failed.
WAIT_MS = 180_000
COUNTERS = ".certdesk-counters"
TABLE = ".certdesk-table"
CHARTS = "img[class*='certdesk-chart-']"
NOTEBOOKS = 3  # richiesta, stato, annullamento: one warmed-up kernel each
_TEXT_OF = "s => (document.querySelector(s) || {innerText: ''}).innerText"
#: Chromium's resolver fails every host but 127.0.0.1 (Voila's template links a stylesheet
#: on a public CDN): offline without page.route, which turns the browser's cache off.
_OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
STATIC_URL = re.compile(r"^http://127\.0\.0\.1:\d+/voila/(static|labextensions|templates)/")
_CHART_SOURCES = f"() => Array.from(document.querySelectorAll(\"{CHARTS}\"), i => i.src)"


@dataclass(frozen=True)
class Sample:
    """What a pass types: a codice fiscale of the home with an ATTIVATO certificate."""

    codice_fiscale: str
    cancelled: int  # ANNULLATO rows: what the export must hold
    requests: int  # in the home: how long a chart may take before it is reported missing

    @property
    def charts_wait_ms(self) -> float:
        return 60_000 if self.requests >= 100_000 else 20_000


@dataclass
class BrowserPass:
    """One pass' figures: seconds, MiB, bytes; None where the home gave nothing to do."""

    stato_visible_s: float = 0.0
    charts_first_s: float | None = None  # navigation -> the four charts drawn
    filter_cf_s: float = 0.0
    charts_filter_s: float | None = None  # the codice fiscale's Enter -> every chart redrawn
    filter_clear_s: float = 0.0
    next_page_s: float | None = None
    filter_state_s: float = 0.0
    export_link_s: float = 0.0
    download_s: float = 0.0
    export_bytes: int = 0
    stato_open_mib: float = 0.0
    stato_export_mib: float = 0.0
    stato_peak_mib: float = 0.0  # the kernel's high-water mark (VmHWM) before it went
    stato_gone_s: float = 0.0
    annullamento_visible_s: float = 0.0
    suggest_s: float = 0.0
    annullamento_open_mib: float = 0.0
    annullamento_peak_mib: float = 0.0
    annullamento_gone_s: float = 0.0
    # the same pages opened again in the pass' browser, its cache on: seconds, and the
    # static files (Voila's, the extensions') the page asked the server for, of how many
    stato_again_s: float | None = None
    stato_again_fetched: int | None = None
    stato_again_static: int | None = None
    annullamento_again_s: float | None = None
    annullamento_again_fetched: int | None = None
    annullamento_again_static: int | None = None
    server_start_s: float = 0.0  # the same for every pass of a server
    pool_warm_s: float = 0.0  # listening -> a kernel warmed up for each notebook
    richiesta_visible_s: float | None = None  # a page that reads no ledger: the floor
    richiesta_mib: float | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def figure_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "notes"]


def browser_available() -> bool:
    if not os.access(CHROMIUM, os.X_OK):
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


# -- the server -------------------------------------------------------------------------------


@dataclass
class AdminServer:
    proc: subprocess.Popen[bytes]
    port: int
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        return f"{self.base}/voila/render/{notebook}?token={self.token}"

    def _models(self) -> list[dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", f"/api/kernels?token={self.token}")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"GET api/kernels: {response.status}")
        models: list[dict[str, Any]] = json.loads(body)
        return models

    def wait_warm(self) -> float:
        """Seconds until every notebook has its kernel warmed up for the next page (the
        server's pool: one per notebook), as on a server up for more than a few seconds."""
        started = time.perf_counter()
        deadline = time.monotonic() + WAIT_MS / 1000
        while sum(bool(m.get("certdesk_warm")) for m in self._models()) < NOTEBOOKS:
            if time.monotonic() > deadline:
                raise RuntimeError("the kernels for the next pages were never warmed up")
            time.sleep(0.1)
        return time.perf_counter() - started

    def kernels(self) -> dict[str, int]:
        """Running kernels of pages (``GET api/kernels``, without those warmed up for the
        next pages): id -> connections."""
        return {k["id"]: int(k.get("connections", 0)) for k in self._models()
                if not k.get("certdesk_pooled")}

    def kernel_process(self, kernel_id: str) -> psutil.Process | None:
        """The kernel's process: Voila's child started with ``kernel-<id>.json``."""
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(kernel_id in part for part in child.cmdline()):
                    return child
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"certdesk admin exited {proc.returncode}: see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"certdesk admin did not listen within 120 s: see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: Voila shuts its kernels down itself; whatever is left is killed by pid."""
    kernels = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    _gone, alive = psutil.wait_procs(kernels, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


@contextlib.contextmanager
def admin_server(home: Path, log: Path) -> Iterator[tuple[AdminServer, float]]:
    """``certdesk --home HOME admin`` on a free port of 127.0.0.1 with a token; the server
    and the seconds from its start until it listens."""
    port, token = _free_port(), secrets.token_urlsafe(24)
    env = {**ENV, "CERTDESK_ADMIN_PORT": str(port), "CERTDESK_ADMIN_TOKEN": token}
    env.pop("JUPYTER_TOKEN", None)
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([*CERTDESK, "--home", str(home), "admin"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=home)
    try:
        _wait_listening(proc, port, log)
        yield AdminServer(proc, port, token), time.perf_counter() - started
    finally:
        _stop(proc)


# -- measuring in the page ------------------------------------------------------------------


def _offline(route: Route) -> None:
    """Voila's template links a stylesheet on a public CDN: nothing leaves 127.0.0.1."""
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.fulfill(status=200, body="", content_type="text/css")


def _until(page: Page, script: str, arg: Any = None) -> None:
    page.wait_for_function(script, arg=arg, polling="raf", timeout=WAIT_MS)


def _changed(page: Page, selector: str, before: str) -> None:
    _until(page, f"([s, b]) => ({_TEXT_OF})(s) !== b", [selector, before])


def _text(page: Page, selector: str) -> str:
    return str(page.evaluate(_TEXT_OF, selector))


def _rss_mib(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        return float(process.memory_info().rss) / 2**20
    return 0.0


def _peak_mib(process: psutil.Process | None) -> float:
    """The kernel's high-water RSS (``VmHWM``), read before it goes."""
    if process is None:
        return 0.0
    with contextlib.suppress(OSError), open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _open(page: Page, server: AdminServer, notebook: str, ready: str
          ) -> tuple[float, str, psutil.Process | None]:
    """Navigate to ``notebook`` (once the server has a kernel warmed up for it, as a
    server up for a while has); seconds until ``ready`` holds, the page's kernel and its
    process."""
    server.wait_warm()
    before = set(server.kernels())
    started = time.perf_counter()
    page.goto(server.url(notebook), wait_until="commit", timeout=WAIT_MS)
    _until(page, ready)
    seconds = time.perf_counter() - started
    deadline = time.monotonic() + 60
    while not (new := [k for k in server.kernels() if k not in before]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{notebook}: no kernel of its own appeared")
        time.sleep(0.05)
    return seconds, new[0], server.kernel_process(new[0])


def _close(page: Page, server: AdminServer, kernel: str,
           process: psutil.Process | None) -> float:
    """Close the page as a person closes the tab; seconds until its kernel's process is
    gone (and the server no longer lists it)."""
    started = time.perf_counter()
    page.close(run_before_unload=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not _alive(process) and kernel not in server.kernels():
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("inf")


def _alive(process: psutil.Process | None) -> bool:
    if process is None:
        return False
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


_STATO_READY = """() => {
  const shown = s => { const e = document.querySelector(s);
                       return e && e.getClientRects().length > 0 ? e : null; };
  const c = shown('.certdesk-counters'), t = shown('.certdesk-table');
  return !!c && !!t && c.innerText.includes('richieste')
    && !!t.querySelector('table, .certdesk-empty');
}"""
_CHARTS_DRAWN = f"""(before) => {{
  const images = Array.from(document.querySelectorAll("{CHARTS}"));
  return images.length === 4 && images.every(
    (i, n) => i.src && i.complete && i.naturalWidth > 0 && i.src !== before[n]
      && !i.classList.contains("certdesk-chart-pending"));
}}"""
_ANNULLAMENTO_READY = """() => {
  const p = document.querySelector('.certdesk-cancellation');
  return !!p && p.getClientRects().length > 0 && !!p.querySelector('.certdesk-cf input');
}"""
_SUGGESTIONS = """() => { const i = document.querySelector('.certdesk-cf input');
  return i && i.list ? Array.from(i.list.options, o => o.value).join('|') : ''; }"""


def _timed_action(page: Page, act: Any, selector: str) -> float:
    """Seconds from ``act()`` until ``selector``'s text changes."""
    before = _text(page, selector)
    started = time.perf_counter()
    act()
    _changed(page, selector, before)
    return time.perf_counter() - started


def _charts_after(page: Page, before: list[str], started: float, wait_ms: float,
                  figures: BrowserPass, what: str) -> float | None:
    """Seconds from ``started`` until every chart is drawn anew; None and a note when one
    is not within a minute (the charts are not what a budget is about: the pass goes on)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(_CHARTS_DRAWN, arg=before, polling="raf", timeout=wait_ms)
    except PlaywrightTimeout:
        blank = page.evaluate(f"() => Array.from(document.querySelectorAll(\"{CHARTS}\"))"
                              ".filter(i => !(i.naturalWidth > 0))"
                              ".map(i => i.className.split(' ').pop()).join(', ')")
        figures.notes.append(f"charts not all drawn anew {wait_ms / 1000:.0f} s {what}"
                             f" (still without an image: {blank or 'none'})")
        return None
    return time.perf_counter() - started


def _stato_filters(page: Page, sample: Sample, figures: BrowserPass) -> None:
    """The codice fiscale part + Enter (and the charts after it), cleared again, the next
    page of the whole ledger, then the state ANNULLATO."""
    field_ = page.locator(".certdesk-filter-cf input")
    field_.fill(sample.codice_fiscale[:8])
    _settle(page)
    charts = page.evaluate(_CHART_SOURCES)
    before = _text(page, COUNTERS)
    started = time.perf_counter()
    field_.press("Enter")
    _changed(page, COUNTERS, before)
    figures.filter_cf_s = time.perf_counter() - started
    figures.charts_filter_s = _charts_after(page, charts, started, sample.charts_wait_ms,
                                            figures, "after the codice fiscale filter")
    field_.fill("")
    _settle(page)
    figures.filter_clear_s = _timed_action(page, lambda: field_.press("Enter"), COUNTERS)
    following = page.locator("button.certdesk-page-next")
    _settle(page)
    if following.is_enabled():
        figures.next_page_s = _timed_action(page, following.click, TABLE)
    select = page.locator(".certdesk-filter-stato select")
    _settle(page)
    figures.filter_state_s = _timed_action(
        page, lambda: select.select_option("ANNULLATO"), COUNTERS)
    _settle(page)


def _stato_export(page: Page, sample: Sample, work: Path, figures: BrowserPass) -> None:
    """Export CSV of the ANNULLATO rows: seconds to the link, then the download."""
    started = time.perf_counter()
    page.locator(".certdesk-export-csv-button").click()
    link = page.locator("a.certdesk-export-csv")
    link.wait_for(state="visible", timeout=WAIT_MS)
    figures.export_link_s = time.perf_counter() - started
    started = time.perf_counter()
    with page.expect_download(timeout=WAIT_MS) as download:
        link.click()
    saved = work / "export.csv"
    download.value.save_as(saved)
    figures.download_s = time.perf_counter() - started
    figures.export_bytes = saved.stat().st_size
    with open(saved, "rb") as fh:
        rows = sum(1 for _ in fh) - 1
    if rows != sample.cancelled:
        figures.notes.append(f"the export held {rows} rows, not {sample.cancelled}")
    saved.unlink()


def _stato_pass(context: BrowserContext, server: AdminServer, sample: Sample, work: Path,
                figures: BrowserPass) -> None:
    page = context.new_page()
    page.route("**/*", _offline)
    server.wait_warm()  # before the clock starts: the charts are timed from the navigation
    started = time.perf_counter()
    figures.stato_visible_s, kernel, process = _open(page, server, "stato.ipynb", _STATO_READY)
    figures.charts_first_s = _charts_after(page, ["", "", "", ""], started,
                                           sample.charts_wait_ms, figures, "after navigation")
    figures.stato_open_mib = _rss_mib(process)
    _stato_filters(page, sample, figures)
    _stato_export(page, sample, work, figures)
    figures.stato_export_mib = _rss_mib(process)
    figures.stato_peak_mib = _peak_mib(process)
    figures.stato_gone_s = _close(page, server, kernel, process)


def _annullamento_pass(context: BrowserContext, server: AdminServer, sample: Sample,
                       figures: BrowserPass) -> None:
    page = context.new_page()
    page.route("**/*", _offline)
    figures.annullamento_visible_s, kernel, process = _open(
        page, server, "annullamento.ipynb", _ANNULLAMENTO_READY)
    _until(page, f"() => ({_SUGGESTIONS})() !== ''")
    _settle(page, _SUGGESTIONS)
    before = str(page.evaluate(_SUGGESTIONS))
    field_ = page.locator(".certdesk-cf input")
    started = time.perf_counter()
    field_.fill(sample.codice_fiscale[:6])
    _until(page, f"([b, cf]) => {{ const now = ({_SUGGESTIONS})();"
                 " return now !== b && now.includes(cf); }",
           [before, sample.codice_fiscale])
    figures.suggest_s = time.perf_counter() - started
    figures.annullamento_open_mib = _rss_mib(process)
    figures.annullamento_peak_mib = _peak_mib(process)
    figures.annullamento_gone_s = _close(page, server, kernel, process)


def _richiesta_pass(context: BrowserContext, server: AdminServer, figures: BrowserPass
                    ) -> None:
    """The request panel, which reads no ledger: what any page costs (Voila, a kernel, the
    imports), the floor under the other two."""
    page = context.new_page()
    page.route("**/*", _offline)
    figures.richiesta_visible_s, kernel, process = _open(
        page, server, "richiesta.ipynb",
        "() => { const p = document.querySelector('.certdesk-request');"
        " return !!p && p.getClientRects().length > 0; }")
    figures.richiesta_mib = _rss_mib(process)
    _close(page, server, kernel, process)


class StaticFetches:
    """The static files a page asks for, and those the browser's cache answered
    (Chromium's DevTools protocol: Playwright does not tell). tests/test_webapp_cache.py
    uses it too."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.urls: dict[str, str] = {}  # request id -> url
        self.cached: set[str] = set()  # request ids
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestServedFromCache", lambda e: self.cached.add(e["requestId"]))
        cdp.on("Network.responseReceived", self._received)
        cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        if STATIC_URL.match(event["request"]["url"]):
            self.urls[event["requestId"]] = event["request"]["url"]

    def _received(self, event: dict[str, Any]) -> None:
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromMemoryCache"):
            self.cached.add(event["requestId"])

    def counts(self) -> tuple[int, int]:
        """(fetched from the server, static files asked for)."""
        return len(set(self.urls) - self.cached), len(self.urls)

    def by_url(self) -> dict[str, bool]:
        """url -> whether the cache answered it."""
        return {url: rid in self.cached for rid, url in self.urls.items()}


def _visit(context: BrowserContext, server: AdminServer, notebook: str, ready: str
           ) -> tuple[float, StaticFetches]:
    """``notebook`` opened without page.route (the browser's cache on) until ``ready``,
    left to finish loading, closed; the seconds and its static files."""
    page = context.new_page()
    fetches = StaticFetches(context, page)
    seconds, kernel, process = _open(page, server, notebook, ready)
    # every file fetched, not only those before ``load``: a font the page's text asks for
    # later, cut short by the close, would be missing from the cache of the next visit
    page.wait_for_load_state("networkidle", timeout=WAIT_MS)
    _close(page, server, kernel, process)
    return seconds, fetches


def _again_pass(context: BrowserContext, server: AdminServer, figures: BrowserPass) -> None:
    """Stato, then Annullamento, each opened twice with the browser's cache on: the first
    visit fills the cache, the second is timed and its static files counted."""
    for notebook, ready, name in (("stato.ipynb", _STATO_READY, "stato"),
                                  ("annullamento.ipynb", _ANNULLAMENTO_READY, "annullamento")):
        _visit(context, server, notebook, ready)
        seconds, fetches = _visit(context, server, notebook, ready)
        fetched, static = fetches.counts()
        if fetched:
            figures.notes.append(f"{name} opened again fetched " + ", ".join(
                url.rsplit("/", 1)[-1] for url, cached in fetches.by_url().items()
                if not cached))
        setattr(figures, f"{name}_again_s", seconds)
        setattr(figures, f"{name}_again_fetched", fetched)
        setattr(figures, f"{name}_again_static", static)


def _settle(page: Page, script: str = _CHART_SOURCES, quiet_s: float = 1.0,
            limit_s: float = 60.0) -> None:
    """Wait until ``script``'s answer (the charts' images) has not changed for ``quiet_s``:
    each action is timed from a page at rest, not while the charts of the last one are
    still being drawn (one DuckDB connection serves both)."""
    last, since = page.evaluate(script), time.monotonic()
    deadline = since + limit_s
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.1)
        now = page.evaluate(script)
        if now != last:
            last, since = now, time.monotonic()


def _launch(playwright: Any) -> Browser:
    """Debian's Chromium, headless, Italian, never a downloaded browser."""
    browser: Browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--lang=it-IT", _OFFLINE],
        env={**os.environ, "LANGUAGE": "it", "LANG": "it_IT.UTF-8"},
    )
    return browser


def browser_passes(home: Path, sample: Sample, passes: int, work: Path) -> list[BrowserPass]:
    """``passes`` passes over the panels of ``home``, one server for all of them."""
    from playwright.sync_api import sync_playwright

    results = []
    with admin_server(home, work / "admin.log") as (server, start_s), \
            sync_playwright() as playwright:
        browser = _launch(playwright)
        warm_s = server.wait_warm()
        try:
            for _ in range(passes):
                figures = BrowserPass(server_start_s=start_s, pool_warm_s=warm_s)
                context = browser.new_context(accept_downloads=True, locale="it-IT",
                                              timezone_id="Europe/Rome",
                                              viewport={"width": 1280, "height": 900})
                context.set_default_timeout(WAIT_MS)
                try:
                    _richiesta_pass(context, server, figures)
                    _stato_pass(context, server, sample, work, figures)
                    _annullamento_pass(context, server, sample, figures)
                    _again_pass(context, server, figures)
                finally:
                    context.close()
                results.append(figures)
        finally:
            browser.close()
    return results
