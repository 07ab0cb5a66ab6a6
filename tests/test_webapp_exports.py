"""Exports served as files: the private folder, its names, its sweep, and the real server.

The server runs a stand-in Richiesta notebook (``--notebooks``) that does what the Stato
panel does with an export: writes a file in ``CERTDESK_EXPORTS`` (read from the kernel's
environment) and shows the link ``certdesk/esportazioni/<name>?download=1``. The tests
download it with the token, with the page's cookie in Chromium by clicking that link, and
are refused without the token or with a name that is not a plain file name.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from test_webapp import CHROMIUM, Server, launch, offline, start_server
from test_webapp_kernels import wait_for

from certdesk import webapp_exports
from certdesk.webapp_exports import NAME, make_exports_dir, sweep_exports

TOKEN = "exports-test-token"
GRACE = 2.0  # the sweep runs every 0.5 s


# -- names, folder, sweep ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["certificati-20261201-1200-0a1b2c3d4e5f.csv",
                                  "certificati-20261201-1200-x.xlsx", "a", "A_b-c.d.e"])
def test_plain_names_are_servable(name: str) -> None:
    assert NAME.fullmatch(name)


@pytest.mark.parametrize("name", ["", ".", "..", ".nascosto", "../x.csv", "a/b.csv",
                                  "a\\b", "a b.csv", "è.csv", "a%2Fb", "x.csv\n", "a:b"])
def test_other_names_are_not(name: str) -> None:
    assert not NAME.fullmatch(name)


def test_the_folder_is_private_and_fresh(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a careless umask
    try:
        one, two = make_exports_dir(tmp_path), make_exports_dir(tmp_path)
    finally:
        os.umask(old)
    assert one != two
    for folder in (one, two):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert folder.name.startswith("certdesk-exports-")
        assert list(folder.iterdir()) == []


def test_sweep_deletes_what_is_older_than_the_age(tmp_path: Path) -> None:
    now = time.time()
    ages = {"vecchio.csv": 3601, ".scritto-a-metà.tmp": 7200, "nuovo.csv": 3599,
            "appena.xlsx": 0}
    for name, age in ages.items():
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, (now - age, now - age))
    (tmp_path / "cartella").mkdir()
    os.utime(tmp_path / "cartella", (now - 9999, now - 9999))
    removed = sweep_exports(tmp_path, 3600, now=now)
    assert sorted(removed) == [".scritto-a-metà.tmp", "vecchio.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appena.xlsx", "cartella",
                                                           "nuovo.csv"]
    assert sweep_exports(tmp_path / "sparita", 3600) == []


# -- the real server ----------------------------------------------------------------------------

EXPORTING_CELL = """\
import os, pathlib, secrets
from IPython.display import HTML, display
folder = pathlib.Path(os.environ["CERTDESK_EXPORTS"])
name = f"certificati-20261201-1200-{secrets.token_hex(6)}.csv"
# over a megabyte: tornado streams it in chunks
(folder / name).write_bytes(b"IdOperazione;CodiceFiscale\\n" + os.urandom(1_500_000))
print(f"EXPORTS={folder}")
print(f"NAME={name}")
display(HTML(f'<a class="export-link" href="certdesk/esportazioni/{name}?download=1">'
             'Scarica</a>'))
"""


@pytest.fixture(scope="module")
def exporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The web app serving a notebook that writes an export, as the Stato panel does."""
    base = tmp_path_factory.mktemp("exports")
    notebooks = base / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Esportazione"),
                nbformat.v4.new_code_cell(EXPORTING_CELL)]
    nbformat.write(nb, notebooks / "richiesta.ipynb")
    server = start_server(base, base / "voila.log", token=TOKEN,
                          extra=["--notebooks", str(notebooks),
                                 "--disconnected-grace", f"{GRACE:g}"])
    try:
        yield server
    finally:
        assert server.stop() == []


def render(server: Server) -> tuple[Path, str]:
    """Render the notebook (a kernel writes one export); its folder and the file's name."""
    response, html = server.fetch(f"/voila/render/richiesta.ipynb?token={TOKEN}")
    assert response.status == 200
    text = html.decode()
    folder = re.search(r"EXPORTS=(\S+)", text)
    name = re.search(r"NAME=(\S+)", text)
    assert folder and name, text[-3000:]
    return Path(folder.group(1)), name.group(1)


def test_the_kernel_finds_a_private_folder_and_its_file_downloads(exporting: Server) -> None:
    folder, name = render(exporting)
    assert folder.parent == Path(tempfile.gettempdir())
    assert folder.name.startswith(webapp_exports.PREFIX)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    data = (folder / name).read_bytes()
    for prefix in ("", "/voila/render"):  # the panel's link, relative to its page, lands here
        response, body = exporting.fetch(
            f"{prefix}/certdesk/esportazioni/{name}?download=1&token={TOKEN}")
        assert response.status == 200
        assert body == data
        assert response.getheader("Content-Disposition", "").startswith("attachment")
        assert name in response.getheader("Content-Disposition", "")
        assert response.getheader("Cache-Control") == "no-store"
    response, body = exporting.fetch(f"/certdesk/esportazioni/{name}",
                                     headers={"Authorization": f"token {TOKEN}"})
    assert response.status == 200 and body == data


def test_without_the_token_nothing_is_served(exporting: Server) -> None:
    folder, name = render(exporting)
    data = (folder / name).read_bytes()
    for path in (f"/certdesk/esportazioni/{name}", f"/certdesk/esportazioni/{name}?download=1",
                 f"/certdesk/esportazioni/{name}?token=wrong",
                 f"/voila/render/certdesk/esportazioni/{name}?download=1"):
        response, body = exporting.fetch(path)
        assert response.status in (302, 403), (path, response.status)
        if response.status == 302:
            assert "/login" in (response.getheader("Location") or "")
        assert data not in body
    response, body = exporting.fetch(f"/certdesk/esportazioni/{name}",
                                     headers={"Authorization": "token wrong"})
    assert response.status in (302, 403) and data not in body


def assert_refused(server: Server, path: str, secret: bytes) -> None:
    response, body = server.fetch(path)
    if response.status == 302:
        # Voila's own voila/render/(.*) takes what is not ours, and sends it to its files
        # of the notebooks folder (images only), never to the exports
        location = response.getheader("Location") or ""
        assert location.startswith("/voila/files/"), (path, location)
        response, body = server.fetch(f"{location}?token={TOKEN}")
    assert response.status in (403, 404), (path, response.status)
    assert secret not in body, path


def test_only_plain_names_in_the_folder_are_served(exporting: Server, tmp_path: Path
                                                   ) -> None:
    folder, _ = render(exporting)
    secret = b"not for the browser " + os.urandom(16)
    (folder / ".nascosto").write_bytes(secret)
    (folder / "sotto").mkdir()
    (folder / "sotto" / "x.csv").write_bytes(secret)
    outside = folder.parent / f"fuori-{os.getpid()}.txt"
    outside.write_bytes(secret)
    try:
        for name in (".nascosto", "%2Enascosto", "sotto", "sotto/x.csv", "sotto%2Fx.csv",
                     f"../{outside.name}", f"..%2F{outside.name}", f"%2E%2E%2F{outside.name}",
                     "..", "%2E%2E", "./.nascosto", "nessuno.csv"):
            for prefix in ("", "/voila/render"):
                path = f"{prefix}/certdesk/esportazioni/{name}?download=1&token={TOKEN}"
                assert_refused(exporting, path, secret)
    finally:
        outside.unlink()


def test_old_exports_are_deleted_and_the_folder_goes_with_the_server(
    tmp_path: Path, exporting: Server
) -> None:
    folder, name = render(exporting)
    old = folder / "certificati-20261201-1000-vecchio.csv"
    old.write_bytes(b"vecchio")
    an_hour_ago = time.time() - 3601
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert wait_for(lambda: not old.exists(), 10), "an export older than an hour was kept"
    assert (folder / name).exists()
    assert f"export {old.name} deleted" in exporting.log.read_text()


def test_the_folder_is_removed_when_the_server_stops(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXPORTING_CELL)]
    nbformat.write(nb, tmp_path / "notebooks" / "richiesta.ipynb")
    server = start_server(tmp_path, tmp_path / "voila.log", token=TOKEN,
                          extra=["--notebooks", str(tmp_path / "notebooks")])
    try:
        folder, name = render(server)
        assert (folder / name).exists()
    finally:
        assert server.stop() == []
    assert not folder.exists()


@pytest.mark.browser
def test_the_link_in_the_page_downloads_the_export(exporting: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        browser = launch(p, CHROMIUM)
        try:
            context = browser.new_context(accept_downloads=True)
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.route("**/*", offline)
            page.goto(f"{exporting.base}/voila/render/richiesta.ipynb?token={TOKEN}")
            link = page.locator("a.export-link")
            expect(link).to_be_visible()
            text = page.locator("body").inner_text()
            folder = Path(re.findall(r"EXPORTS=(\S+)", text)[0])
            name = re.findall(r"NAME=(\S+)", text)[0]
            # the link carries no token: the login cookie (and the page as Referer) do
            with page.expect_download() as download:
                link.click()
            assert download.value.suggested_filename == name
            saved = tmp_path / "scaricato.csv"
            download.value.save_as(saved)
            assert saved.read_bytes() == (folder / name).read_bytes()
            assert download.value.url == (
                f"{exporting.base}/voila/render/certdesk/esportazioni/{name}?download=1")
        finally:
            browser.close()
