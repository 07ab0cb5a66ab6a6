"""The web app: Voila on 127.0.0.1 behind a token, and the panels used in real Chromium.

The server is ``python -m certdesk.webapp`` (what ``make admin`` runs), started on a free
port of 127.0.0.1 and stopped at the end with every kernel it started. The browser test
drives Debian's chromium through Playwright (never a downloaded browser) against the real
daemon: a request upload, the status page, and a full cancellation.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest

from certdesk import logredact, webapp

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, Route
from conftest_panels import CF_COMPANY, CF_PERSON, REPO, RealDaemon, openssl_csr

from certdesk.frame import load_ledger

CHROMIUM = os.environ.get("CERTDESK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"


# -- the command line, without a server ------------------------------------------------------


def test_command_listens_on_loopback_with_token_and_culling(tmp_path: Path) -> None:
    server = webapp.resolve(tmp_path, environ={"CERTDESK_ADMIN_TOKEN": "t0k"})
    assert server.port == webapp.DEFAULT_PORT == 8866
    assert server.token == "t0k" and not server.token_generated
    command = webapp.build_command(server)
    # Voila's own arguments, run by the launcher that redacts the token from its logs
    assert command[1:4] == ["-m", "certdesk.voila_launcher", str(REPO / "notebooks")]
    for flag in ("--Voila.ip=127.0.0.1", "--Voila.port=8866", "--Voila.port_retries=0",
                 "--Voila.auto_token=True", "--no-browser",
                 "--MappingKernelManager.cull_connected=True",
                 "--CertdeskVoila.disconnected_grace=20"):
        assert flag in command
    assert any(f.startswith("--MappingKernelManager.cull_idle_timeout=") for f in command)
    assert any(f.startswith("--MappingKernelManager.cull_interval=") for f in command)
    assert not any("t0k" in part for part in command)  # never visible in `ps`
    env = webapp.build_env(server, {"PATH": "/bin", "JUPYTER_TOKEN_FILE": "/x"})
    assert env == {"PATH": "/bin", "CERTDESK_HOME": str(tmp_path.resolve()),
                   "JUPYTER_TOKEN": "t0k"}


def test_port_and_random_token_from_the_environment(tmp_path: Path) -> None:
    one = webapp.resolve(tmp_path, environ={"CERTDESK_ADMIN_PORT": "9001"})
    two = webapp.resolve(tmp_path, environ={"CERTDESK_ADMIN_TOKEN": "  "})
    assert one.port == 9001
    assert one.token_generated and two.token_generated
    assert len(one.token) >= 32 and one.token != two.token
    assert one.url == f"http://127.0.0.1:9001/?token={one.token}"
    with pytest.raises(SystemExit, match="CERTDESK_ADMIN_PORT"):
        webapp.resolve(tmp_path, environ={"CERTDESK_ADMIN_PORT": "otto"})


def test_missing_home_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "certdesk.webapp", "--home",
                           str(tmp_path / "nope")], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "non esiste" in done.stderr and "Traceback" not in done.stderr


# -- a real server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (the server's kernels), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: Mapping[str, str] | None = None
            ) -> http.client.HTTPResponse:
        return self.fetch(path, headers=headers)[0]

    def fetch(self, path: str, *, method: str = "GET", body: bytes | None = None,
              headers: Mapping[str, str] | None = None
              ) -> tuple[http.client.HTTPResponse, bytes]:
        """The raw request (the path is sent as written: no ``..`` is resolved)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def kernels(self, *, pooled: bool = False) -> list[dict[str, Any]]:
        """``GET /api/kernels``: the running kernels' models; those of pages only, unless
        ``pooled`` (then also the kernels warmed up for the next pages)."""
        response, data = self.fetch(f"/api/kernels?token={self.token}")
        assert response.status == 200, (response.status, data)
        models: list[dict[str, Any]] = json.loads(data)
        return [m for m in models if pooled or not m["certdesk_pooled"]]

    def stop(self) -> list[int]:
        """SIGTERM: Voila shuts its kernels down; anything left is killed by its pid.

        Returns the pids that had to be killed (none, when Voila cleans up after itself).
        """
        kernels = children_of(self.proc.pid)
        killed: list[int] = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        deadline = time.monotonic() + 10
        for pid in kernels:
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed


WEBAPP = [sys.executable, "-m", "certdesk.webapp"]
MAKE_ADMIN = [sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())"]


def start_server(home: Path, log: Path, *, token: str | None, port: int | None = None,
                 wait: bool = True, via_cli: bool = False, extra: Sequence[str] = ()
                 ) -> Server:
    """``python -m certdesk.webapp --home HOME [extra]`` (or ``certdesk admin``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CERTDESK_ADMIN_TOKEN",
                                                            "JUPYTER_TOKEN")}
    port = port or free_port()
    env["CERTDESK_ADMIN_PORT"] = str(port)
    env.setdefault("CERTDESK_CA_PASSPHRASE", "unused-by-the-notebooks")
    if token is not None:
        env["CERTDESK_ADMIN_TOKEN"] = token
    with open(log, "wb") as out:
        # make admin runs `certdesk --home DIR admin`, which hands over to certdesk.webapp
        command = ([*MAKE_ADMIN, "--home", str(home), "admin"] if via_cli
                   else [*WEBAPP, "--home", str(home), *extra])
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=home)
    server = Server(proc, port, token or "", log)
    if not wait:
        return server
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the web app exited {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"the web app did not listen:\n{log.read_text()}") from None
            time.sleep(0.1)
    if token is None:
        found = re.search(r"certdesk admin: .*[?]token=(\S+)", log.read_text())
        assert found, log.read_text()
        server.token = found.group(1)
    return server


def test_requests_without_the_token_are_refused(tmp_path: Path) -> None:
    server = start_server(tmp_path, tmp_path / "voila.log", token=None)
    try:
        printed = server.log.read_text()
        assert f"http://127.0.0.1:{server.port}/?token={server.token}" in printed
        for path in ("/", "/voila/render/stato.ipynb", f"/?token={server.token}x",
                     "/voila/render/annullamento.ipynb?token=wrong"):
            response = server.get(path)
            assert response.status in (302, 401, 403), (path, response.status)
            if response.status == 302:
                assert "/login" in (response.getheader("Location") or "")
        tree = server.get(f"/?token={server.token}")
        assert tree.status == 200
        page = server.get(f"/voila/render/stato.ipynb?token={server.token}")
        assert page.status == 200
        assert children_of(server.proc.pid), "the page started no kernel"
        # only loopback: the port is not open on the machine's other addresses
        other = socket.gethostbyname(socket.gethostname())
        if not other.startswith("127."):
            with pytest.raises(OSError), socket.create_connection((other, server.port), 2):
                pass
    finally:
        killed = server.stop()
    assert killed == [], "Voila left kernels running after SIGTERM"
    log = server.log.read_text()
    assert "Culling kernels with idle durations > 1800 seconds" in log
    assert "Culling kernels even with connected clients" in log


def test_make_admin_uses_the_token_from_the_environment(tmp_path: Path) -> None:
    server = start_server(tmp_path, tmp_path / "voila.log", token="dal-ambiente",
                          via_cli=True)
    try:
        assert server.get("/").status == 302
        assert server.get("/?token=dal-ambiente").status == 200
        assert "dal-ambiente" not in server.log.read_text()  # not printed when chosen
    finally:
        assert server.stop() == []


def test_busy_port_is_an_error_not_a_move(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start_server(tmp_path, tmp_path / "voila.log", token="x", port=port,
                              wait=False)
        try:
            assert server.proc.wait(60) != 0
        finally:
            server.stop()
    assert f"{port}" in server.log.read_text()


# -- the token never reaches a log ---------------------------------------------------------

SECRET = "s3cret-Token_value-0123456789"
SPACED = "my long secret é"  # a chosen token that URL-encoding changes


@pytest.mark.parametrize(("line", "expected"), [
    ("404 GET /nope?token=abc&x=1 (127.0.0.1)", "404 GET /nope?token=[REDACTED]&x=1 (127.0.0.1)"),
    ("GET /?TOKEN=abc#top", "GET /?TOKEN=[REDACTED]#top"),
    ("uri='/?access_token=abc', x", "uri='/?access_token=[REDACTED]', x"),
    ("login?next=%2F%3Ftoken%3Dabc%26x%3D1", "login?next=%2F%3Ftoken=[REDACTED]%26x%3D1"),
    ("next=%252F%253FToken%253Dabc%2526x", "next=%252F%253FToken=[REDACTED]%2526x"),
    ("Authorization: token abc", "Authorization: token [REDACTED]"),
    ("{'Authorization': 'Bearer abc'}", "{'Authorization': 'Bearer [REDACTED]'}"),
    (f"ValueError: bad page /{SECRET}/x", "ValueError: bad page /[REDACTED]/x"),
    (f"Referer: http://h/?t={SECRET}", "Referer: http://h/?t=[REDACTED]"),
    (f"a {quote(SPACED, safe='')} b {quote_plus(SPACED)} c {SPACED}",
     "a [REDACTED] b [REDACTED] c [REDACTED]"),
    ("an example: token=x, Token x", "an example: token=[REDACTED], Token x"),  # too short
    ("404 GET /nope (127.0.0.1)", "404 GET /nope (127.0.0.1)"),
])
def test_redact_query_header_and_literal_forms(line: str, expected: str) -> None:
    secrets = [SECRET, SPACED, "x"]
    assert logredact.redact(line, secrets) == expected
    assert logredact.redact(expected, secrets) == expected  # idempotent


def test_filter_rewrites_the_final_message_and_the_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logredact.TokenRedactor([SECRET]))
    logger = logging.getLogger("certdesk.tests.redaction")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        # tornado's access log: the URI is an argument, only the final message shows it
        logger.warning("%d %s %.2fms", 404, f"GET /nope?token={SECRET} (127.0.0.1)", 1.0)
        try:
            raise ValueError(f"no page at /x?token={SECRET}")
        except ValueError:
            logger.exception("Uncaught exception GET %s", f"/x?token={SECRET}")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert SECRET not in out
    assert "404 GET /nope?token=[REDACTED] (127.0.0.1) 1.00ms" in out
    assert "Uncaught exception GET /x?token=[REDACTED]" in out
    assert "ValueError: no page at /x?token=[REDACTED]" in out


def test_install_covers_every_logger_warnings_and_uncaught_exceptions() -> None:
    # in a child: install() changes the process's logging for good
    script = textwrap.dedent(f"""
        import logging, threading, warnings
        from certdesk import logredact
        logredact.install([{SECRET!r}])
        logging.getLogger("tornado.access").warning("%d %s", 404, "GET /x?token={SECRET}")
        warnings.warn("see /?token={SECRET}")
        def boom():
            raise RuntimeError("thread saw {SECRET}")
        thread = threading.Thread(target=boom, name="worker")
        thread.start()
        thread.join()
        raise RuntimeError("bad token={SECRET}")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    assert SECRET not in done.stdout + done.stderr, done.stderr
    for shown in ("404 GET /x?token=[REDACTED]", "UserWarning: see /?token=[REDACTED]",
                  "Exception in thread worker:", "RuntimeError: thread saw [REDACTED]",
                  "RuntimeError: bad token=[REDACTED]"):
        assert shown in done.stderr, (shown, done.stderr)


def test_the_token_never_reaches_the_log(tmp_path: Path) -> None:
    server = start_server(tmp_path, tmp_path / "voila.log", token=None)
    token = server.token
    # path (and headers) -> status, and what the server's log line for it reads
    logged = {
        f"/nope?token={token}": (404, "404 GET /nope?token=[REDACTED] ("),
        f"/voila/render/nope.ipynb?token={token}":
            (404, "404 GET /voila/render/nope.ipynb?token=[REDACTED] ("),
        f"/voila/static/../../etc/passwd?token={token}":
            (403, "403 GET /voila/static/../../etc/passwd?token=[REDACTED] ("),
        "/wrong-token?token=not-the-token": (404, "404 GET /wrong-token?token=[REDACTED] ("),
        f"/longer-token?TOKEN={token}x": (404, "404 GET /longer-token?TOKEN=[REDACTED] ("),
        f"/encoded?next=%2F%3Ftoken%3D{token}":
            (404, "404 GET /encoded?next=%2F%3Ftoken=[REDACTED] ("),
    }
    in_headers = {"Authorization": f"token {token}",
                  "Referer": f"http://127.0.0.1:{server.port}/?token={token}"}
    try:
        for path, (status, _) in logged.items():
            assert server.get(path).status == status, path
        assert server.get("/header-token", in_headers).status == 404
        assert server.get("/", {"Authorization": f"token {token}"}).status == 200
        assert server.get(f"/?token={token}").status == 200
        assert server.get("/?token=not-the-token").status == 302
    finally:
        assert server.stop() == []
    log = server.log.read_text()
    showing = [line for line in log.splitlines() if token in line]
    # the start-up line with the URL to open, printed before Voila starts; nothing else
    assert showing == [f"certdesk admin: token generato (CERTDESK_ADMIN_TOKEN non impostato), "
                       f"apri http://127.0.0.1:{server.port}/?token={token}"], log
    for _, line in logged.values():
        assert line in log, (line, log)  # logged, with the marker: not just left out
    assert "404 GET /header-token (" in log


# -- real Chromium -------------------------------------------------------------------------


def offline(route: Route) -> None:
    """Voila's template links a stylesheet on a public CDN: no internet here, and the
    test must not try. Everything off 127.0.0.1 gets an empty answer."""
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.fulfill(status=200, body="", content_type="text/css")


def launch(p: Playwright, chromium: str, extra: Sequence[str] = ()) -> Browser:
    """Debian's Chromium, headless, Italian, never a downloaded browser."""
    return p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--lang=it-IT", *extra],
        env={**os.environ, "LANGUAGE": "it", "LANG": "it_IT.UTF-8"},
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (make chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def live(ca_template: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Path, Server]]:
    """A home with a CA, the real daemon watching it, and the web app serving it."""
    home = tmp_path_factory.mktemp("web") / "home"
    shutil.copytree(ca_template, home)
    with RealDaemon(home):
        server = start_server(home, home.parent / "voila.log", token="browser-test-token")
        try:
            yield home, server
        finally:
            server.stop()


def shoot(page: Page, name: str) -> None:
    """A picture of the whole panel (Voila scrolls inside a container, not the page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    size = page.viewport_size or {"width": 1280, "height": 900}
    height = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('body *'), e => e.scrollHeight))")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 4000)})
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    if os.environ.get("CERTDESK_UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / name)


@pytest.mark.browser
def test_request_status_and_cancellation_in_chromium(
    chromium: str, live: tuple[Path, Server], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    home, server = live
    csr = openssl_csr(tmp_path, CF_PERSON)
    second = openssl_csr(tmp_path, CF_COMPANY)

    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            context = browser.new_context(accept_downloads=True, locale="it-IT",
                                          timezone_id="Europe/Rome",
                                          viewport={"width": 1280, "height": 900})
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.route("**/*", offline)
            token = f"?token={server.token}"

            # without the token: the login page, never a panel
            page.goto(f"{server.base}/voila/render/richiesta.ipynb")
            assert "/login" in page.url
            expect(page.locator(".certdesk-request")).to_have_count(0)

            # -- Richiedi certificato ------------------------------------------------------
            for index, path in enumerate((csr, second)):
                page.goto(f"{server.base}/voila/render/richiesta.ipynb{token}")
                expect(page.locator(".certdesk-request")).to_be_visible()
                expect(page.get_by_text("Richiedi certificato").first).to_be_visible()
                with page.expect_file_chooser() as chooser:
                    page.locator(".certdesk-upload").click()
                chooser.value.set_files(str(path))
                expect(page.locator(".certdesk-chosen")).to_contain_text(path.name)
                page.locator(".certdesk-submit").click()
                stato = page.locator(".certdesk-result .certdesk-field-Stato")
                expect(stato).to_have_text("ATTIVATO")
                if index == 0:
                    id_op = page.locator(".certdesk-field-IdOperazione").inner_text().strip()
                    expect(page.locator(".certdesk-field-DataRichiesta")).to_have_text(
                        re.compile(r"\d{2}/\d{2}/\d{4}"))
                    with page.expect_download() as download:
                        page.locator(".certdesk-download").click()
                    assert download.value.suggested_filename == f"{id_op}.pem"
                    saved = tmp_path / "scaricato.pem"
                    download.value.save_as(saved)
                    published = home / "outbox" / "certs" / f"{id_op}.pem"
                    assert saved.read_bytes() == published.read_bytes()
                    shoot(page, "richiesta.png")

            # -- Stato certificati ---------------------------------------------------------
            page.goto(f"{server.base}/voila/render/stato.ipynb{token}")
            table = page.locator(".certdesk-ledger")
            expect(table).to_contain_text(id_op)
            expect(page.locator(".certdesk-count-ATTIVATO")).to_contain_text("2")
            expect(page.locator(".certdesk-daemon-ok")).to_be_visible()
            expect(page.locator(".certdesk-chart-stato img, img.certdesk-chart-stato")
                   ).to_be_visible()
            page.locator(".certdesk-filter-cf input").fill(CF_COMPANY)
            page.locator(".certdesk-filter-cf input").press("Enter")
            expect(table).not_to_contain_text(id_op)
            expect(table).to_contain_text(CF_COMPANY)

            # -- Annullamento certificato --------------------------------------------------
            page.goto(f"{server.base}/voila/render/annullamento.ipynb{token}")
            expect(page.locator(".certdesk-cancellation")).to_be_visible()
            submit = page.locator(".certdesk-submit")
            expect(submit).to_be_hidden()  # no codice fiscale yet: no button
            cf = page.locator(".certdesk-cf input")
            cf.fill(CF_PERSON)
            cf.press("Enter")
            expect(page.locator(".certdesk-active-table")).to_contain_text(id_op)
            expect(page.locator(".certdesk-cumulativa")).to_contain_text("prima")
            expect(submit).to_be_visible()
            expect(submit).to_have_text(re.compile("Richiedi annullamento"))
            reasons = page.locator(".certdesk-motivazione .widget-radio-box label")
            expect(reasons).to_have_text(["Chiave primaria smarrita", "Attività cessata",
                                          "Furto certificato", "Rinnovo scadenza",
                                          "Malfunzionamento", "Altro"])
            page.locator(".certdesk-motivazione").get_by_text("Furto certificato").click()
            page.locator(".certdesk-operatore input").fill("Operatore di prova")
            page.locator(".certdesk-operatore input").press("Tab")
            shoot(page, "annullamento.png")
            submit.click()
            confirmation = page.locator(".certdesk-conferma")
            expect(confirmation).to_contain_text("Annullamento eseguito")
            expect(confirmation).to_contain_text(id_op)
            expect(page.locator(".certdesk-none")).to_contain_text("Nessun certificato")
            expect(submit).to_be_hidden()  # nothing ATTIVATO is left for this person
            shoot(page, "annullamento-esito.png")

            # -- the status page shows the cancellation --------------------------------------
            page.goto(f"{server.base}/voila/render/stato.ipynb{token}")
            expect(page.locator(".certdesk-count-ANNULLATO")).to_contain_text("1")
            expect(page.locator(".certdesk-ledger")).to_contain_text("Furto certificato")
            drawn = page.locator("img[class*='certdesk-chart-']:not(.certdesk-chart-pending)")
            expect(drawn).to_have_count(4)  # the placeholders replaced by the charts
            shoot(page, "stato.png")
        finally:
            browser.close()

    ledger = load_ledger(home).set_index("IdOperazione")
    assert ledger.loc[id_op, "Stato"] == "ANNULLATO"
    assert ledger.loc[id_op, "Motivazione"] == "FURTO_CERTIFICATO"
    assert (ledger["Stato"] == "ATTIVATO").sum() == 1  # the company's certificate is untouched
    # filed into the administrators' channel, and answered there
    receipts = sorted((home / "state" / "admin" / "receipts").glob("annullamento-*.json"))
    assert len(receipts) == 1
    assert not list((home / "outbox" / "receipts").glob("annullamento-*.json"))
