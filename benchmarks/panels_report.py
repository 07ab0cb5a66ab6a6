"""The panels' section of ``docs/benchmarks.md``: one row per figure, one column per home,
how the figure grows from the smallest home to the largest, its budget and whether every
home met it. Every word is in ``prose``."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

from . import prose
from .panels_case import PanelsResult, PanelsSize
from .rows import count_label
from .settings import TARGETS

__all__ = ["panels_section", "panels_text", "splice_section"]

Values = dict[str, float]
Extract = Callable[[PanelsSize], Values | None]


def _median(size: PanelsSize, name: str) -> float | None:
    found = [getattr(p, name) for p in size.passes if getattr(p, name) is not None]
    return statistics.median(found) if found else None


def _largest(size: PanelsSize, name: str) -> float | None:
    """Memory: the largest of the passes, not their median."""
    found = [getattr(p, name) for p in size.passes]
    return max(found) if found else None


def _browser(name: str, scale: float = 1.0) -> Extract:
    def extract(size: PanelsSize) -> Values | None:
        value = _median(size, name)
        return None if value is None else {"main": value * scale}
    return extract


def _engine(question: str) -> Extract:
    def extract(size: PanelsSize) -> Values:
        found = next(q for q in size.ledger.engines if q.name == question)
        return {"arrow": found.pyarrow.median * 1000, "main": found.duckdb.median * 1000}
    return extract


def _export(size: PanelsSize) -> Values | None:
    link, download = _median(size, "export_link_s"), _median(size, "download_s")
    size_bytes = _median(size, "export_bytes")
    if link is None or download is None or size_bytes is None:
        return None
    return {"main": link, "download": download, "mib": size_bytes / 2**20}


def _richiesta(size: PanelsSize) -> Values | None:
    shown, rss = _median(size, "richiesta_visible_s"), _largest(size, "richiesta_mib")
    return None if shown is None or rss is None else {"main": shown, "rss": rss}


def _stato_rss(size: PanelsSize) -> Values | None:
    opened, after = _largest(size, "stato_open_mib"), _largest(size, "stato_export_mib")
    peak = _largest(size, "stato_peak_mib")
    if opened is None or after is None or peak is None:
        return None
    return {"open": opened, "main": max(opened, after), "peak": peak}


def _annullamento_rss(size: PanelsSize) -> Values | None:
    opened, peak = _largest(size, "annullamento_open_mib"), _largest(size, "annullamento_peak_mib")
    return None if opened is None or peak is None else {"main": opened, "peak": peak}


def _again(page: str) -> Extract:
    """A page opened again with the browser's cache on: seconds; static files fetched, of
    how many (the medians)."""
    def extract(size: PanelsSize) -> Values | None:
        shown = _median(size, f"{page}_again_s")
        fetched, static = _median(size, f"{page}_again_fetched"), \
            _median(size, f"{page}_again_static")
        if shown is None or fetched is None or static is None:
            return None
        return {"main": shown, "fetched": fetched, "static": static}
    return extract


def _specs() -> list[tuple[prose.PanelText, Extract, float | None]]:
    """(text, values of one home, budget in the unit of ``main``)."""
    t = TARGETS
    ms = 1000.0
    return [
        (prose.PANEL_POPULATE, lambda s: {"main": s.populate_s}, None),
        (prose.PANEL_CSV, lambda s: {"main": s.copies.csv_s, "mib": s.copies.csv_mib}, None),
        (prose.PANEL_PARQUET, lambda s: {"main": s.copies.parquet_s,
                                         "mib": s.copies.parquet_mib,
                                         "parts": s.copies.parts}, None),
        (prose.PANEL_LOAD_WHOLE, lambda s: {"main": s.ledger.load_whole.median}, t.load_whole_s),
        (prose.PANEL_LOAD_PERSON, lambda s: {"main": s.ledger.load_person.median * ms,
                                             "worst": s.ledger.load_person.worst * ms},
         t.load_person_ms),
        *((prose.PANEL_ENGINE, _engine(q), None) for q in prose.ENGINE_QUESTIONS),
        (prose.PANEL_SERVER, _browser("server_start_s"), None),
        (prose.PANEL_POOL_WARM, _browser("pool_warm_s"), None),
        (prose.PANEL_RICHIESTA_VISIBLE, _richiesta, None),
        (prose.PANEL_STATO_VISIBLE, _browser("stato_visible_s"), t.panel_visible_s),
        (prose.PANEL_STATO_AGAIN, _again("stato"), t.panel_visible_s),
        (prose.PANEL_CHARTS_FIRST, _browser("charts_first_s"), None),
        (prose.PANEL_FILTER_CF, _browser("filter_cf_s", ms), t.panel_filter_s * ms),
        (prose.PANEL_CHARTS_FILTER, _browser("charts_filter_s", ms), None),
        (prose.PANEL_FILTER_CLEAR, _browser("filter_clear_s", ms), t.panel_filter_s * ms),
        (prose.PANEL_NEXT_PAGE, _browser("next_page_s", ms), t.panel_filter_s * ms),
        (prose.PANEL_FILTER_STATE, _browser("filter_state_s", ms), t.panel_filter_s * ms),
        (prose.PANEL_EXPORT, _export, None),
        (prose.PANEL_STATO_RSS, _stato_rss, t.kernel_mib),
        (prose.PANEL_STATO_GONE, _browser("stato_gone_s"), None),
        (prose.PANEL_ANNULLAMENTO_VISIBLE, _browser("annullamento_visible_s"), t.panel_visible_s),
        (prose.PANEL_ANNULLAMENTO_AGAIN, _again("annullamento"), t.panel_visible_s),
        (prose.PANEL_SUGGEST, _browser("suggest_s", ms), t.panel_filter_s * ms),
        (prose.PANEL_ANNULLAMENTO_RSS, _annullamento_rss, t.kernel_mib),
        (prose.PANEL_ANNULLAMENTO_GONE, _browser("annullamento_gone_s"), None),
    ]


def _measure_name(text: prose.PanelText, index: int, result: PanelsResult) -> str:
    sizes = result.sizes[0] if result.sizes else None
    people = len(sizes.ledger.load_person.seconds) if sizes else 0
    repeat = len(sizes.ledger.load_whole.seconds) if sizes else 0
    questions = list(prose.ENGINE_QUESTIONS.values())
    question = questions[index] if index < len(questions) else ""
    n = people if text is prose.PANEL_LOAD_PERSON else repeat
    return text.measure.format(n=n, question=question)


def _row(text: prose.PanelText, extract: Extract, budget: float | None, name: str,
         result: PanelsResult) -> tuple[list[str], bool | None, list[str]]:
    """The row's cells, its verdict (None: no budget, or nothing measured), and the homes
    that missed."""
    values = [extract(size) for size in result.sizes]
    cells = [prose.PANELS_NONE if v is None else text.cell.format_map(v) for v in values]
    mains = [v["main"] for v in values if v is not None and "main" in v]
    growth = prose.PANELS_NONE
    if len(values) > 1 and values[0] and values[-1] and "main" in values[0] and values[0]["main"]:
        growth = prose.PANELS_GROWTH.format(ratio=values[-1]["main"] / values[0]["main"])
    missed = [count_label(size.requests) for size, v in zip(result.sizes, values, strict=True)
              if budget is not None and v is not None and v["main"] > budget]
    met = None if budget is None or not mains else not missed
    shown_budget = text.budget.format(budget=budget) if budget is not None else ""
    status = "" if met is None else prose.MET if met else \
        prose.PANELS_MISSED_AT.format(sizes=", ".join(missed))
    return [name, *cells, growth, shown_budget, status], met, missed


def _rows(result: PanelsResult) -> list[tuple[list[str], bool | None]]:
    rows = []
    engine = 0
    for text, extract, budget in _specs():
        index = engine if text is prose.PANEL_ENGINE else len(prose.ENGINE_QUESTIONS)
        engine += text is prose.PANEL_ENGINE
        cells, met, _missed = _row(text, extract, budget, _measure_name(text, index, result),
                                   result)
        rows.append((cells, met))
    return rows


def _header(result: PanelsResult) -> list[str]:
    labels = [count_label(s.requests) for s in result.sizes]
    growth = prose.PANELS_GROWTH_HEADER.format(first=labels[0], last=labels[-1]) \
        if labels else ""
    return [prose.PANELS_COLUMNS_FIRST, *labels, growth, *prose.PANELS_COLUMNS_LAST]


def panels_text(result: PanelsResult) -> str:
    """The table as aligned text, for the terminal."""
    cells = [_header(result)] + [row for row, _ in _rows(result)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def _markdown(result: PanelsResult) -> str:
    header = _header(result)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for cells, met in _rows(result):
        shown = [c.replace("|", "\\|") for c in cells]
        if met is False:
            shown[-1] = prose.PANELS_BUDGET_BOLD.format(status=shown[-1])
        lines.append("| " + " | ".join(shown) + " |")
    return "\n".join(lines)


def _pass_notes(result: PanelsResult) -> str:
    notes = []
    for size in result.sizes:
        for n, figures in enumerate(size.passes, 1):
            if figures.notes:
                notes.append(f"{count_label(size.requests)}, " + prose.PANELS_NOTE_PASS.format(
                    n=n, notes="; ".join(figures.notes)))
    return "".join(f"\n\n{prose.NOTE_LINE.format(note=n)}" for n in notes)


def panels_section(result: PanelsResult, command: str) -> str:
    """The section, ending with a blank line: what ``prose.PAGE`` takes as ``{panels}``."""
    verdicts = [met for _, met in _rows(result) if met is not None]
    missed = [cells[0] for cells, met in _rows(result) if met is False]
    first = result.sizes[-1] if result.sizes else None
    browser = (prose.PANELS_BROWSER_SKIPPED.format(why=result.browser_skipped)
               if result.browser_skipped
               else prose.PANELS_BROWSER_RUN.format(passes=result.passes))
    states = ", ".join(prose.STATE_COUNT.format(state=k, count=v)
                       for k, v in (first.states if first else {}).items())
    method = prose.PANELS_METHOD.format(
        states=states, repeat=len(first.ledger.load_whole.seconds) if first else 0,
        people=len(first.ledger.load_person.seconds) if first else 0)
    load1, load5, load15 = result.load
    intro = prose.PANELS_INTRO.format(
        started=result.started, command=command,
        revision=prose.PANELS_REVISION.format(revision=result.revision or prose.UNKNOWN),
        cores=os.cpu_count() or 1, load1=load1,
        load5=load5, load15=load15, browser=browser, met=sum(verdicts),
        targeted=len(verdicts),
        missed=prose.MISSED.format(rows="; ".join(missed)) if missed else "")
    return prose.PANELS_SECTION.format(intro=intro, table=_markdown(result) + _pass_notes(result),
                                       method=method)


def splice_section(page: str, section: str) -> str:
    """``page`` with its panels section replaced by ``section`` (inserted before the store
    indexes' section, or at the end, when it has none)."""
    heading = prose.PANELS_HEADING
    if heading in page:
        start = page.index(heading)
        end = page.find("\n## ", start + len(heading))
        return page[:start] + section + ("" if end < 0 else page[end + 1:])
    anchor = page.find("## Store indexes")
    if anchor < 0:
        return (page.rstrip("\n") + "\n\n" if page else "") + section
    return page[:anchor] + section + page[anchor:]
