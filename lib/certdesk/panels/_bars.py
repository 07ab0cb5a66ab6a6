"""A small bar chart as SVG text: the Stato panel's four charts.

Written here rather than drawn with matplotlib: a chart is a dozen bars, an axis and a
title, and matplotlib took half a second for the four (and its import and buffers tens of
MiB of each kernel) on every filter change; this takes about a millisecond (measured in
docs/benchmarks.md). The SVG has its own width and height, so it shows as an ``<img>``
like the PNGs before, and every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

__all__ = ["HEIGHT", "WIDTH", "bar_chart_svg", "nice_ticks", "placeholder_svg"]

WIDTH, HEIGHT = 460, 270
_FONT = "font-family='DejaVu Sans, Arial, sans-serif'"
_CHAR_PX = 6.2  # the width of one character at 10 px, near enough to reserve room
_GRID, _AXIS, _MUTED = "#dddddd", "#444444", "#666666"


def nice_ticks(top: int, most: int = 5) -> list[int]:
    """Integer ticks 0, step, 2·step … reaching ``top``, step 1, 2 or 5 × 10^k."""
    if top <= 0:
        return [0, 1]
    rough = max(1.0, top / most)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    count = math.ceil(top / step)
    return [int(i * step) for i in range(count + 1)]


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")  # Italian grouping: 12.345


@dataclass(frozen=True)
class _Plot:
    """The plotting area inside the picture."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def _text(x: float, y: float, body: str, *, size: int = 10, anchor: str = "middle",
          colour: str = _AXIS, extra: str = "") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
            f"fill='{colour}' {_FONT}{extra}>{escape(body)}</text>")


def _vertical(labels: Sequence[str], values: Sequence[int], colour: str) -> list[str]:
    tilted = len(labels) > 4
    longest = max((len(label) for label in labels), default=0)
    below = 16 + (longest * _CHAR_PX * 0.87 if tilted else 0)  # sin 60°
    ticks = nice_ticks(max(values, default=0))
    plot = _Plot(12 + len(_number(ticks[-1])) * _CHAR_PX, 30, WIDTH - 10, HEIGHT - below)
    parts = []
    for tick in ticks:
        y = plot.bottom - plot.height * tick / ticks[-1]
        parts.append(f"<line x1='{plot.left:.1f}' x2='{plot.right:.1f}' y1='{y:.1f}' "
                     f"y2='{y:.1f}' stroke='{_GRID}'/>")
        parts.append(_text(plot.left - 4, y + 3.5, _number(tick), anchor="end"))
    slot = plot.width / max(1, len(values))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot.height * value / ticks[-1]
        x = plot.left + index * slot
        parts.append(f"<rect x='{x + slot * 0.15:.1f}' y='{plot.bottom - height:.1f}' "
                     f"width='{slot * 0.7:.1f}' height='{height:.1f}' fill='{colour}'>"
                     f"<title>{escape(label)}: {_number(value)}</title></rect>")
        centre = x + slot / 2
        if tilted:
            parts.append(_text(centre, plot.bottom + 10, label, size=8, anchor="end",
                               extra=f" transform='rotate(-60 {centre:.1f} "
                                     f"{plot.bottom + 10:.1f})'"))
        else:
            parts.append(_text(centre, plot.bottom + 13, label))
    parts.append(f"<line x1='{plot.left:.1f}' x2='{plot.left:.1f}' y1='{plot.top:.1f}' "
                 f"y2='{plot.bottom:.1f}' stroke='{_AXIS}'/>")
    return parts


def _horizontal(labels: Sequence[str], values: Sequence[int], colour: str) -> list[str]:
    longest = max((len(label) for label in labels), default=0)
    ticks = nice_ticks(max(values, default=0))
    plot = _Plot(12 + longest * _CHAR_PX, 30, WIDTH - 16, HEIGHT - 22)
    parts = []
    for tick in ticks:
        x = plot.left + plot.width * tick / ticks[-1]
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{plot.top:.1f}' "
                     f"y2='{plot.bottom:.1f}' stroke='{_GRID}'/>")
        parts.append(_text(x, plot.bottom + 14, _number(tick)))
    slot = plot.height / max(1, len(values))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = plot.top + index * slot
        parts.append(f"<rect x='{plot.left:.1f}' y='{y + slot * 0.15:.1f}' "
                     f"width='{plot.width * value / ticks[-1]:.1f}' "
                     f"height='{slot * 0.7:.1f}' fill='{colour}'>"
                     f"<title>{escape(label)}: {_number(value)}</title></rect>")
        parts.append(_text(plot.left - 5, y + slot / 2 + 3.5, label, anchor="end"))
    parts.append(f"<line x1='{plot.left:.1f}' x2='{plot.left:.1f}' y1='{plot.top:.1f}' "
                 f"y2='{plot.bottom:.1f}' stroke='{_AXIS}'/>")
    return parts


def bar_chart_svg(labels: Sequence[str], values: Sequence[int], *, title: str,
                  horizontal: bool = False, colour: str = "#1f5a96") -> bytes:
    """One bar per label (bars top-down when ``horizontal``), a title, integer ticks;
    "nessun dato" over an empty or all-zero chart. UTF-8 SVG bytes."""
    if len(labels) != len(values):
        raise ValueError("one value per label")
    draw = _horizontal if horizontal else _vertical
    parts = draw(labels, values, colour)
    if max(values, default=0) <= 0:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, "nessun dato", size=12, colour=_MUTED))
    return _framed(title, parts)


def placeholder_svg(title: str) -> bytes:
    """A chart's frame and title, "in preparazione…" where its bars will be: what the
    page shows until they are drawn (an image without a picture shows as a broken one)."""
    waiting = _text(WIDTH / 2, HEIGHT / 2, "in preparazione…", size=12, colour=_MUTED)
    return _framed(title, [waiting])


def _framed(title: str, parts: Sequence[str]) -> bytes:
    """The SVG document: white background, the title on top, then ``parts``."""
    head = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label={quoteattr(title)}>",
        f"<title>{escape(title)}</title>",
        f"<rect width='{WIDTH}' height='{HEIGHT}' fill='white'/>",
        _text(WIDTH / 2, 18, title, size=13),
    ]
    return "".join([*head, *parts, "</svg>"]).encode("utf-8")
