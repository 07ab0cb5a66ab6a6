"""The browser keeps Voila's static files (issue 15), and nothing else lost its token.

The rules of :mod:`certdesk.webapp_static` alone; then one real web app (``python -m
certdesk.webapp`` on 127.0.0.1, as test_webapp starts it) over raw HTTP: a notebook page
points at ``voila/static/<tag>/``, whose files are immutable, the unversioned ones are
revalidated with a 304, the extensions' hashed chunks are immutable, paths stay in their
roots, and a page or the API without the token is still refused; last, Debian's Chromium
opens Stato twice and takes every static file of the second visit from its cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_webapp import CHROMIUM, Server, launch, start_server

from benchmarks.panels_browser import StaticFetches
from certdesk import webapp_static

TOKEN = "cache-test-token"
YEAR = "max-age=31536000"
TAG = re.compile(r'<script src="/voila/static/([0-9a-f]{16})/voila\.js"')


# -- the rules, without a server -------------------------------------------------------------


@pytest.mark.parametrize(("path", "hashed"), [
    ("jupyterlab_pygments/static/remoteEntry.5cbb9d2323598fbda535.js", True),
    ("@jupyter-widgets/jupyterlab-manager/static/7.2a0ce575775f5aad.js", True),
    ("9834b82ad26e2a37583d.woff2", True),
    ("5764.voila.js", False),  # a webpack chunk id, not a content hash
    ("voila.js", False),
    ("x/static/style.js", False),
    ("x/static/324.ee1c7d64c48a4b927622.js.LICENSE.txt", False),
    ("x/5cbb9d2323598fbda535/style.js", False),  # a hash in a folder says nothing of the file
    ("remoteEntry.5cbb9d23.js", False),  # too short to be webpack's
    ("remoteEntry.5CBB9D2323598FBDA535.js", False),
])
def test_content_hashed_names(path: str, hashed: bool) -> None:
    assert webapp_static.content_hashed(path) is hashed


def test_the_tag_changes_with_any_file(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    (one / "sub").mkdir(parents=True)
    two.mkdir()
    (one / "a.js").write_text("a")
    (one / "sub" / "b.js").write_text("b")
    first = webapp_static.static_tag([str(one), str(two)])
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert webapp_static.static_tag([str(one), str(two)]) == first
    (one / "sub" / "b.js").write_text("bb")  # rewritten
    second = webapp_static.static_tag([str(one), str(two)])
    (two / "c.js").write_text("c")  # added
    third = webapp_static.static_tag([str(one), str(two)])
    (one / "a.js").unlink()  # removed
    fourth = webapp_static.static_tag([str(one), str(two)])
    assert len({first, second, third, fourth}) == 4


def test_the_hook_points_the_page_at_the_tag_and_chains() -> None:
    seen: list[dict[str, Any]] = []

    def theirs(config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        return {**config, "theirs": True}

    config = {"fullStaticUrl": "/base/voila/static", "baseUrl": "/base/"}
    kwargs = {"settings": {}, "log": None, "voila_configuration": None, "notebook_path": "x"}
    out = webapp_static.versioned_static_hook("0123456789abcdef", theirs)(
        config, base_url="/base/", **kwargs)
    assert out["fullStaticUrl"] == "/base/voila/static/0123456789abcdef"
    assert out["theirs"] and seen == [{"base_url": "/base/", **kwargs}]
    # in place too: Voila's tree page ignores what the hook returns
    assert config["fullStaticUrl"] == "/base/voila/static/0123456789abcdef"


# -- a real server, over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(ca_template: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, str, str]]:
    """The web app on a home with a CA; its tag, and the page Stato's HTML."""
    home = tmp_path_factory.mktemp("cache") / "home"
    shutil.copytree(ca_template, home)
    server = start_server(home, home.parent / "voila.log", token=TOKEN)
    try:
        response, body = server.fetch(f"/voila/render/stato.ipynb?token={TOKEN}")
        assert response.status == 200, response.status
        html = body.decode()
        found = TAG.search(html)
        assert found, html[:4000]
        yield server, found.group(1), html
    finally:
        server.stop()


def _a_chunk() -> str:
    """A webpack chunk of Voila's (``<id>.voila.js``) as installed."""
    from voila.paths import collect_static_paths  # type: ignore[import-untyped]

    for folder in collect_static_paths(["voila", "nbconvert"], "lab"):
        chunks = sorted(p.name for p in Path(folder).glob("*.voila.js"))
        if chunks:
            return chunks[0]
    raise AssertionError("no chunk of Voila's is installed")


def _extension_chunk(html: str) -> str:
    """A federated extension's ``remoteEntry.<hash>.js``, from the page config."""
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                      html, re.S)
    assert found, html[:4000]
    extension = json.loads(found.group(1))["federated_extensions"][0]
    return f"/voila/labextensions/{extension['name']}/{extension['load']}"


def test_the_versioned_files_are_immutable_and_public(served: tuple[Server, str, str]
                                                      ) -> None:
    server, tag, html = served
    assert f'"fullStaticUrl": "/voila/static/{tag}"' in html  # webpack's public path
    for name in ("voila.js", _a_chunk()):
        response, body = server.fetch(f"/voila/static/{tag}/{name}")  # no token
        assert response.status == 200 and body, name
        assert response.getheader("Cache-Control") == f"public, {YEAR}, immutable"
        etag = response.getheader("ETag")
        assert etag, name
        again, rest = server.fetch(f"/voila/static/{tag}/{name}", headers={"If-None-Match": etag})
        assert again.status == 304 and rest == b"", name
        assert response.getheader("Set-Cookie") is None
    # another tag (an old page, a guess) is no file at all (Voila's handler of several
    # roots answers a missing file with 403)
    assert server.get(f"/voila/static/{'0' * 16}/voila.js").status in (403, 404)


def test_the_unversioned_files_are_revalidated(served: tuple[Server, str, str]) -> None:
    server, _tag, _html = served
    response, body = server.fetch(f"/voila/static/{_a_chunk()}")
    assert response.status == 200 and body
    assert response.getheader("Cache-Control") == "no-cache"
    etag = response.getheader("ETag")
    assert etag
    again, rest = server.fetch(f"/voila/static/{_a_chunk()}", headers={"If-None-Match": etag})
    assert again.status == 304 and rest == b""


def test_the_extensions_hashed_chunks_are_immutable(served: tuple[Server, str, str]) -> None:
    server, _tag, html = served
    chunk = _extension_chunk(html)
    response, body = server.fetch(chunk)
    assert response.status == 200 and body, chunk
    assert response.getheader("Cache-Control") == f"private, {YEAR}, immutable"
    modified = response.getheader("Last-Modified")
    assert modified  # jupyter_server sends no ETag here: the date is the validator
    again, _ = server.fetch(chunk, headers={"If-Modified-Since": modified})
    assert again.status == 304
    # with the token, jupyter_server's handler sets the login cookie: never a shared cache
    with_token = server.get(f"{chunk}?token={TOKEN}")
    assert with_token.getheader("Set-Cookie")
    assert with_token.getheader("Cache-Control", "").startswith("private")
    # a name without a hash keeps Voila's no-cache
    package = chunk.rsplit("/static/", 1)[0] + "/package.json"
    unhashed = server.get(package)
    assert unhashed.status == 200 and unhashed.getheader("Cache-Control") == "no-cache"


def test_the_templates_hashed_fonts_are_immutable(served: tuple[Server, str, str]) -> None:
    """The fonts Voila's stylesheets name, without ``?v=`` but with a content hash: kept
    a year, so a second visit fetches nothing (a fresh install's files are new, so the
    browser's own guess of their lifetime would be nearly nothing)."""
    from voila.paths import collect_static_paths  # type: ignore[import-untyped]

    fonts = [p.name for folder in collect_static_paths(["voila", "nbconvert"], "lab")
             for p in Path(folder).glob("*.woff")]  # fmt: skip
    assert fonts
    response, body = served[0].fetch(f"/voila/templates/lab/static/{fonts[0]}")
    assert response.status == 200 and body, fonts[0]
    assert response.getheader("Cache-Control") == f"public, {YEAR}, immutable"
    plain = served[0].get("/voila/templates/lab/static/voila.js")  # no hash: as Voila has it
    assert "immutable" not in (plain.getheader("Cache-Control") or "")


@pytest.mark.parametrize("path", [
    "/voila/static/{tag}/../../../../../../etc/passwd",
    "/voila/static/{tag}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/voila/static/{tag}/..%2f..%2f..%2f..%2f..%2f..%2fetc/passwd",
    "/voila/static/{tag}//etc/passwd",
    "/voila/static/{tag}/../../../../../../../proc/self/environ",
    "/voila/labextensions/../../../../../../etc/passwd",
    "/voila/labextensions/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
])
def test_paths_stay_in_their_roots(served: tuple[Server, str, str], path: str) -> None:
    server, tag, _html = served
    response, body = server.fetch(path.format(tag=tag))
    assert response.status in (403, 404), (path, response.status)
    assert b"root:" not in body and TOKEN.encode() not in body
    assert response.getheader("Cache-Control") in (None, "no-cache", "no-store"), path


def test_pages_and_the_api_still_want_the_token(served: tuple[Server, str, str]) -> None:
    server, tag, _html = served
    for path in ("/voila/render/stato.ipynb", f"/voila/render/stato.ipynb?token={TOKEN}x",
                 "/", "/api/kernels", f"/voila/static/{tag}/../../render/stato.ipynb"):
        response = server.get(path)
        assert response.status in (302, 401, 403, 404), (path, response.status)
        if response.status == 302:
            assert "/login" in (response.getheader("Location") or ""), path
    assert server.get(f"/api/kernels?token={TOKEN}").status == 200
    # the notebook list (Voila's tree page) loads its script from the versioned URL too
    tree, body = server.fetch(f"/?token={TOKEN}")
    assert tree.status == 200
    assert f'src="/voila/static/{tag}/treepage.js"' in body.decode()


def test_a_page_names_the_files_its_pages_loaded(served: tuple[Server, str, str]) -> None:
    """The static handlers note what they serve to a page (its ``Referer``); the page's
    next responses name those files as preloads, without the Referer's token."""
    server, tag, html = served
    page = f"/voila/render/stato.ipynb?token={TOKEN}"
    referer = {"Referer": f"{server.base}{page}"}
    style = re.search(r'src="(/voila/templates/lab/static/voila-style\.js\?v=[0-9a-f]+)"', html)
    assert style, html[:4000]
    chunk = _extension_chunk(html)
    for path in (style.group(1), f"/voila/static/{tag}/voila.js", chunk):
        assert server.get(path, headers=referer).status == 200, path
    # not from a page of this server, not a script, or not served: never named
    assert server.get(f"/voila/static/{tag}/{_a_chunk()}",
                      headers={"Referer": f"{server.base}/voila/render/x.ipynb"}).status == 200
    assert server.get(f"/voila/static/{tag}/nothing.js", headers=referer).status in (403, 404)
    response, _ = server.fetch(page)
    assert response.status == 200
    link = response.getheader("Link") or ""
    assert f"<{style.group(1)}>; rel=preload; as=script" in link
    assert f"</voila/static/{tag}/voila.js>; rel=preload; as=script" in link
    assert f"<{chunk}>; rel=preload; as=script" in link
    assert _a_chunk() not in link and "nothing.js" not in link and TOKEN not in link
    # a request without the token is refused before anything is named
    refused = server.get("/voila/render/stato.ipynb")
    assert refused.status in (302, 401, 403) and refused.getheader("Link") is None


# -- real Chromium: the second visit ---------------------------------------------------------


#: Chromium's resolver fails every host but 127.0.0.1: the CDN stylesheet of Voila's
#: template, without page.route (Playwright's routing turns the browser's cache off).
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@pytest.mark.browser
def test_a_second_visit_takes_the_static_files_from_the_cache(
    served: tuple[Server, str, str]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    server, _tag, _html = served
    visits: list[dict[str, bool]] = []
    with sync_playwright() as p:
        browser = launch(p, CHROMIUM, [OFFLINE])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(60_000)
            for _ in range(2):
                page = context.new_page()
                log = StaticFetches(context, page)
                page.goto(f"{server.base}/voila/render/stato.ipynb?token={TOKEN}")
                expect(page.locator(".certdesk-counters")).to_be_visible()
                page.wait_for_load_state("networkidle")  # late fonts too
                page.close(run_before_unload=True)
                visits.append(log.by_url())
        finally:
            browser.close()
    first, second = visits
    assert len(first) >= 20 and not any(first.values()), first
    assert second.keys() == first.keys()
    assert all(second.values()), [url for url, cached in second.items() if not cached]


@pytest.mark.browser
def test_a_first_visit_uses_the_preloads_it_is_named(served: tuple[Server, str, str]) -> None:
    """Two browsers each visiting Stato for the first time: the second is named the
    files the first loaded, fetches them as preloads, and each of them once (a preload
    the page does not use as named would be fetched again). A third, the server's first
    page of Annullamento, borrows Stato's files: preloaded too, each fetched once."""
    from playwright.sync_api import expect, sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    server, _tag, _html = served
    fetched: list[list[tuple[str, str]]] = []
    with sync_playwright() as p:
        browser = launch(p, CHROMIUM, [OFFLINE])
        try:
            for notebook, shown in (("stato", ".certdesk-counters"),
                                    ("stato", ".certdesk-counters"),
                                    ("annullamento", ".certdesk-cf")):  # fmt: skip
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(60_000)
                page = context.new_page()
                page.goto(f"{server.base}/voila/render/{notebook}.ipynb?token={TOKEN}")
                expect(page.locator(shown).first).to_be_visible()
                page.wait_for_load_state("networkidle")  # late fonts too
                fetched.append([tuple(e) for e in page.evaluate(
                    "() => performance.getEntriesByType('resource')"
                    ".map(e => [e.name, e.initiatorType])")])
                page.close(run_before_unload=True)
                context.close()
        finally:
            browser.close()
    for visit in fetched[1:]:
        ours = [(url, kind) for url, kind in visit if "/voila/" in url]
        urls = [url for url, _kind in ours]
        assert len(urls) == len(set(urls)), sorted(u for u in urls if urls.count(u) > 1)
        preloaded = [url for url, kind in ours if kind == "link"]
        assert len(preloaded) >= 20, ours  # voila.js, its chunks, the extensions'
