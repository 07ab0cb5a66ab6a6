"""The one table: every measurement as a row, with its target and whether it was met;
printed as text, written as markdown (the words are in ``prose``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import prose

__all__ = ["Row", "render_markdown", "render_text"]


@dataclass(frozen=True)
class Row:
    section: str
    measure: str
    result: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None  # None: informational, no target

    @property
    def status(self) -> str:
        if self.met is None:
            return ""
        return prose.MET if self.met else prose.MISSED_STATUS

    @property
    def cells(self) -> tuple[str, ...]:
        """The table's columns, in the order of ``prose.COLUMNS``."""
        return (self.section, self.measure, self.result, self.ratio, self.target, self.status)


def render_text(rows: Sequence[Row]) -> str:
    cells = [prose.COLUMNS] + [r.cells for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(prose.COLUMNS))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _table_line(cells: Sequence[str]) -> str:
    return prose.TABLE_LINE.format_map(dict(zip(prose.COLUMNS, cells, strict=True)))


def _markdown_table(rows: Sequence[Row]) -> str:
    lines = [_table_line(prose.COLUMNS), prose.TABLE_RULE]
    for r in rows:
        *cells, status = (_md(c) for c in r.cells)
        if r.met is False:
            status = prose.MISSED_CELL.format(status=r.status)
        lines.append(_table_line([*cells, status]))
    return "\n".join(lines)


def _missed(rows: Sequence[Row]) -> str:
    missed = [r for r in rows if r.met is False]
    if not missed:
        return ""
    listed = "; ".join(
        prose.MISSED_ROW.format(section=r.section, measure=r.measure) for r in missed
    )
    return prose.MISSED.format(rows=listed)


def render_markdown(
    rows: Sequence[Row], env: Mapping[str, str], notes: Sequence[str], command: str,
    panels: str = "",
) -> str:
    """The page; ``panels`` is the panels' section, already rendered (``panels_report``)."""
    return prose.PAGE.format(
        panels=panels,
        command=command,
        environment="\n".join(
            prose.ENVIRONMENT_LINE.format(label=k, value=v) for k, v in env.items()
        ),
        met=sum(1 for r in rows if r.met is True),
        targeted=sum(1 for r in rows if r.met is not None),
        missed=_missed(rows),
        table=_markdown_table(rows),
        notes="\n".join(prose.NOTE_LINE.format(note=n) for n in notes),
    )
