"""The Stato panel's bar charts as SVG: well-formed, escaped, scaled, honest when empty."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from certdesk.panels._bars import HEIGHT, WIDTH, bar_chart_svg, nice_ticks, placeholder_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == (str(WIDTH), str(HEIGHT))
    return root


def bars(root: ET.Element) -> dict[str, tuple[float, float]]:
    """label -> the bar's (height, width), found by each bar's title."""
    found = {}
    for rect in root.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None and title.text:
            label = title.text.rsplit(": ", 1)[0]
            found[label] = (float(rect.get("height", 0)), float(rect.get("width", 0)))
    return found


@pytest.mark.parametrize(("top", "expected"), [
    (0, [0, 1]), (1, [0, 1]), (7, [0, 2, 4, 6, 8]), (10, [0, 2, 4, 6, 8, 10]),
    (99, [0, 20, 40, 60, 80, 100]), (523_000, [0, 200_000, 400_000, 600_000]),
])
def test_ticks_are_round_integers_reaching_the_top(top: int, expected: list[int]) -> None:
    assert nice_ticks(top) == expected


def test_vertical_bars_are_proportional_and_labelled() -> None:
    root = parse(bar_chart_svg(["ATTIVATO", "ANNULLATO"], [400, 100], title="Per stato"))
    heights = {label: size[0] for label, size in bars(root).items()}
    assert heights["ATTIVATO"] == pytest.approx(4 * heights["ANNULLATO"], rel=0.01)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Per stato" in texts and "ATTIVATO" in texts and "400" in texts
    assert "nessun dato" not in texts


def test_horizontal_bars_grow_sideways() -> None:
    root = parse(bar_chart_svg(["Altro", "Furto certificato"], [300, 1_500], title="Motivi",
                               horizontal=True))
    widths = {label: size[1] for label, size in bars(root).items()}
    assert widths["Furto certificato"] == pytest.approx(5 * widths["Altro"], rel=0.01)
    assert "1.500" in [t.text for t in root.iter(f"{SVG}text")]  # Italian grouping


def test_labels_are_escaped() -> None:
    data = bar_chart_svg(["<script>alert(1)</script> & 'x'"], [3], title='"a" <b>')
    root = parse(data)
    assert b"<script>" not in data
    assert "<script>alert(1)</script> & 'x'" in [t.text for t in root.iter(f"{SVG}text")]
    assert root.get("aria-label") == '"a" <b>'


@pytest.mark.parametrize(("labels", "values"), [([], []), (["a", "b"], [0, 0])])
def test_nothing_to_show_says_so(labels: list[str], values: list[int]) -> None:
    root = parse(bar_chart_svg(labels, values, title="Vuoto"))
    assert "nessun dato" in [t.text for t in root.iter(f"{SVG}text")]


def test_one_value_per_label() -> None:
    with pytest.raises(ValueError, match="one value per label"):
        bar_chart_svg(["a"], [1, 2], title="x")


def test_a_placeholder_has_the_charts_frame_and_says_it_is_coming() -> None:
    """What the page shows before the bars: the same size and title, no bars, no "nessun
    dato" (there may well be data), the title escaped."""
    root = parse(placeholder_svg('Certificati <per> "stato"'))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts == ['Certificati <per> "stato"', "in preparazione…"]
    assert bars(root) == {}
