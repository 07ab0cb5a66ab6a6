"""The files a panel page will load, learned from the pages served and named to the next
ones as ``Link: rel=preload`` (issue 15): the rules of :mod:`certdesk.webapp_preload`.
A real server and Chromium using the hints are in test_webapp_cache.py."""

from __future__ import annotations

import pytest

from certdesk.webapp_preload import PreloadHints

PAGE = "/voila/render/stato.ipynb"
REFERER = f"http://127.0.0.1:8866{PAGE}?token=secret-token"
VOILA_JS = "/voila/static/0123456789abcdef/voila.js"
STYLE = "/voila/templates/lab/static/voila-style.js"
VERSION = "v=" + "ab" * 64  # Voila's template files: a sha512 digest


def test_a_page_is_hinted_what_its_pages_loaded_in_order() -> None:
    hints = PreloadHints()
    assert hints.page_served(PAGE) is None  # the first page: nothing learned yet
    hints.file_served(STYLE, VERSION, REFERER)
    hints.file_served(VOILA_JS, "", REFERER)
    hints.file_served("/voila/templates/lab/static/index.css", "", REFERER)
    hints.file_served(VOILA_JS, "", REFERER)  # a second page: said once
    assert hints.page_served(PAGE) == (
        f"<{STYLE}?{VERSION}>; rel=preload; as=script, "
        f"<{VOILA_JS}>; rel=preload; as=script, "
        "</voila/templates/lab/static/index.css>; rel=preload; as=style")


def test_a_notebooks_first_page_borrows_what_every_other_page_loaded() -> None:
    """Voila's chunks are the same for every notebook: a notebook not served yet is hinted
    the files common to the pages learned, until its own pages have taught it its own."""
    hints = PreloadHints()
    other, third = "/voila/render/annullamento.ipynb", "/voila/render/richiesta.ipynb"
    hints.page_served(PAGE)
    assert hints.page_served(other) is None  # nothing learned anywhere yet
    for url in (STYLE, VOILA_JS, "/voila/static/x/stato-only.js"):
        hints.file_served(url, "", REFERER)
    borrowed = hints.page_served(other)
    assert borrowed is not None and "stato-only" in borrowed  # all of the only other page's
    hints.file_served(VOILA_JS, "", f"http://127.0.0.1:8866{other}")
    hints.file_served("/voila/static/x/annullamento-only.js", "", f"http://h{other}")
    assert hints.page_served(third) == f"<{VOILA_JS}>; rel=preload; as=script"  # the common
    own = hints.page_served(other)  # once it learned its own, its own only
    assert own is not None and "annullamento-only" in own and STYLE not in own
    assert hints.files(third) == []  # borrowing teaches nothing


def test_only_pages_served_learn() -> None:
    """A Referer naming a page this server never rendered teaches nothing (an attacker's
    requests cannot grow the server's memory)."""
    hints = PreloadHints()
    hints.file_served(VOILA_JS, "", "http://127.0.0.1:8866/voila/render/other.ipynb")
    hints.page_served(PAGE)
    hints.file_served(VOILA_JS, "", "http://127.0.0.1:8866/voila/render/other.ipynb")
    assert hints.files("/voila/render/other.ipynb") == []
    assert hints.page_served(PAGE) is None


@pytest.mark.parametrize(("path", "query", "referer"), [
    ("/voila/templates/lab/static/font.woff2", "", REFERER),  # a font: needs CORS mode
    ("/voila/static/x/data.json", "", REFERER),
    (VOILA_JS, "token=secret-token", REFERER),  # a query other than a version
    (VOILA_JS, "v=abc&token=secret-token", REFERER),
    (VOILA_JS, "v=XYZ", REFERER),
    (VOILA_JS, "", None),  # no Referer
    (VOILA_JS, "", ""),
    ("/voila/static/a>,<https://evil.example/x.js", "", REFERER),  # out of <...>
    ("/voila/static/a;rel=stylesheet.js", "", REFERER),
    ("/voila/static/a b.js", "", REFERER),
    ("/voila/static/a\r\nSet-Cookie: x.js", "", REFERER),
    ("relative/voila.js", "", REFERER),
])
def test_what_is_never_hinted(path: str, query: str, referer: str | None) -> None:
    hints = PreloadHints()
    hints.page_served(PAGE)
    hints.file_served(path, query, referer)
    assert hints.files(PAGE) == []
    assert hints.page_served(PAGE) is None


def test_the_token_of_a_referer_is_never_kept() -> None:
    hints = PreloadHints()
    hints.page_served(PAGE)
    hints.file_served(VOILA_JS, "", REFERER)
    assert "secret-token" not in str(hints.page_served(PAGE))
    assert "secret-token" not in repr(hints.files(PAGE))


def test_a_page_is_hinted_a_bounded_number_of_files() -> None:
    hints = PreloadHints(most_per_page=3)
    hints.page_served(PAGE)
    for n in range(10):
        hints.file_served(f"/voila/static/t/{n}.voila.js", "", REFERER)
    assert hints.files(PAGE) == [f"/voila/static/t/{n}.voila.js" for n in range(3)]


def test_pages_are_bounded_too() -> None:
    hints = PreloadHints()
    for n in range(100):
        hints.page_served(f"/voila/render/{n}.ipynb")
    assert hints.page_served("/voila/render/late.ipynb") is None
    hints.file_served(VOILA_JS, "", "http://127.0.0.1:8866/voila/render/late.ipynb")
    assert hints.files("/voila/render/late.ipynb") == []
