"""The query engine against pandas: for random filters on a generated home, the Stato
panel's counts, charts, pages and exports equal the same computation done by pandas on
ledger.csv (``_charts`` over the filtered frame), whether DuckDB reads the Parquet copy or
the CSV; and ``load_ledger``'s filters equal the filter applied to the whole frame. The
generated home has requests of several channels (issue 18): the default channel (an
empty ``Canale``), the administrators' and two named ones."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest_panels import ledger_row, write_ledger

from certdesk.frame import ROME, load_ledger, typed_from_arrow
from certdesk.ledger_arrow import ledger_table
from certdesk.ledger_query import LedgerFilter, LedgerQuery
from certdesk.outbox import Outbox
from certdesk.outbox_columnar import FORMAT, ROWS_PER_PART
from certdesk.panels import _charts, _export, _stato_data
from certdesk.reasons import Motivazione
from certdesk.records import LEDGER_COLUMNS

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
STATES = ("IN_GENERAZIONE", "ATTIVATO", "SCADUTO", "ANNULLATO", "RIFIUTATO")
PEOPLE = [f"RSSMRA{80 + i % 20:02d}A{1 + i % 28:02d}H{500 + i:03d}X" for i in range(60)]
#: The channels of the generated home, the default ("") most used, as in a real one.
CHANNELS = ("", "@admin", "acme", "beta-srl")


def generated_rows(count: int, seed: int) -> list[dict[str, str]]:
    """``count`` requests over three years, in IdOperazione (and time) order."""
    rnd = random.Random(seed)
    start = NOW - dt.timedelta(days=3 * 365)
    moments = sorted(start + dt.timedelta(seconds=rnd.randrange(3 * 365 * 86400))
                     for _ in range(count))
    rows = []
    for k, moment in enumerate(moments):
        stato = rnd.choices(STATES, weights=(1, 6, 2, 2, 1))[0]
        reason = rnd.choice(list(Motivazione)).value if stato == "ANNULLATO" else ""
        row = ledger_row(f"{moment:%Y%m%d}-{k + 1:09d}", rnd.choice(PEOPLE), stato, moment,
                         days=rnd.choice((365, 730, 1095)), motivazione=reason,
                         annullamento="2026-01-01T00:00:00Z" if reason else "")
        row["Canale"] = rnd.choices(CHANNELS, weights=(5, 1, 3, 2))[0]
        rows.append(row)
    return rows


def write_parquet_copy(home: Path, rows: list[dict[str, str]], per_part: int) -> None:
    """The daemon's copy of these rows: parts of ``per_part`` rows, and its record."""
    folder = Outbox.of(home).columnar_ledger
    folder.mkdir(parents=True)
    texts = [tuple(r[c] for c in LEDGER_COLUMNS) for r in rows]
    for i in range(0, len(texts), per_part):
        part = texts[i:i + per_part]
        pq.write_table(ledger_table(part), folder / f"{part[0][0]}.parquet")
    (folder / "_certdesk.json").write_text(json.dumps(
        {"formato": FORMAT, "seq": 1, "righe_per_parte": ROWS_PER_PART}))


@pytest.fixture(scope="module", params=["parquet", "csv"])
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, pd.DataFrame]:
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    rows = generated_rows(1500, seed=15)
    write_ledger(home, rows)
    if request.param == "parquet":
        write_parquet_copy(home, rows, per_part=200)
    frame = load_ledger(Outbox.of(home).ledger)  # pandas on the CSV: the oracle
    return home, frame


def random_filter(rnd: random.Random) -> LedgerFilter:
    dal = (NOW - dt.timedelta(days=rnd.randrange(1200))).date() if rnd.random() < 0.4 else None
    al = (NOW - dt.timedelta(days=rnd.randrange(600))).date() if rnd.random() < 0.4 else None
    cf = rnd.choice(PEOPLE)
    start = rnd.randrange(len(cf) - 3)
    return LedgerFilter(
        contains=cf[start:start + rnd.choice((2, 3, 16))].lower() if rnd.random() < 0.5 else "",
        stati=tuple(rnd.sample(STATES, rnd.choice((1, 2)))) if rnd.random() < 0.5 else (),
        dal=dal, al=al,
        expiring_at=NOW if rnd.random() < 0.2 else None,
        canali=tuple(rnd.sample(CHANNELS, rnd.choice((1, 1, 2)))) if rnd.random() < 0.6 else (),
    )


def pandas_filter(frame: pd.DataFrame, which: LedgerFilter) -> pd.DataFrame:
    """The filter as the old panel applied it to the whole frame."""
    mask = pd.Series(True, index=frame.index)
    if which.contains:
        mask &= frame["CodiceFiscale"].str.upper().str.contains(which.contains.upper(),
                                                                regex=False)
    if which.stati:
        mask &= frame["Stato"].astype("string").isin(which.stati)
    richiesta = frame["DataRichiesta"].dt.tz_convert(ROME).dt.date
    if which.dal is not None:
        mask &= richiesta >= which.dal
    if which.al is not None:
        mask &= richiesta <= which.al
    if which.expiring_at is not None:
        mask &= _charts.expires_soon(frame, which.expiring_at, which.expiring_days)
    if which.canali:
        mask &= frame["Canale"].fillna("").isin(which.canali)
    return frame[mask.fillna(False).astype(bool)]


def test_counts_charts_and_pages_equal_pandas(generated: tuple[Path, pd.DataFrame]) -> None:
    home, frame = generated
    query = LedgerQuery(home)
    rnd = random.Random(1500)
    nonempty = 0
    for _ in range(40):
        which = random_filter(rnd)
        expected = pandas_filter(frame, which)
        nonempty += not expected.empty
        pd.testing.assert_series_equal(_stato_data.counts_by_state(query, which),
                                       _charts.counts_by_state(expected), check_names=False)
        assert query.count(which) == len(expected)
        assert _stato_data.expires_soon_count(query, which, NOW) == int(
            _charts.expires_soon(expected, NOW).sum())
        pd.testing.assert_series_equal(_stato_data.issued_per_month(query, which),
                                       _charts.issued_per_month(expected), check_names=False)
        pd.testing.assert_series_equal(_stato_data.expiries_ahead(query, which, NOW),
                                       _charts.expiries_ahead(expected, NOW), check_names=False)
        pd.testing.assert_series_equal(_stato_data.cancellations_by_reason(query, which),
                                       _charts.cancellations_by_reason(expected),
                                       check_names=False)
        newest = expected.sort_values(["DataRichiesta", "IdOperazione"], ascending=False)
        offset = rnd.randrange(max(1, len(expected)))
        page = typed_from_arrow(query.page(which, offset=offset, limit=25))
        assert list(page["IdOperazione"]) == list(newest["IdOperazione"][offset:offset + 25])
        counted = typed_from_arrow(query.page(which, offset=offset, limit=25,
                                              total=len(expected)))
        assert list(counted["IdOperazione"]) == list(page["IdOperazione"])
    assert nonempty > 20  # the filters were not all empty
    query.close()


def test_a_channel_filter_keeps_each_channel_apart(generated: tuple[Path, pd.DataFrame]
                                                   ) -> None:
    """Every channel alone, and the channels the ledger has: the default channel's rows are
    the empty ``Canale`` cells (read as null from both files), never a named channel's."""
    home, frame = generated
    query = LedgerQuery(home)
    canale = frame["Canale"].fillna("")
    assert query.channels() == sorted(CHANNELS)
    for channel in CHANNELS:
        which = LedgerFilter(canali=(channel,))
        assert query.count(which) == int((canale == channel).sum()) > 0, channel
        page = typed_from_arrow(query.page(which, offset=0, limit=1000))
        assert set(page["Canale"].fillna("")) == {channel}
    assert query.count(LedgerFilter(canali=CHANNELS)) == len(frame)
    query.close()


def as_exported(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as an export writes it: a text cell that a spreadsheet would run gets a
    leading quote (``_export.spreadsheet_text``); here the administrators' channel, whose
    name ``@admin`` starts with ``@``, goes out as ``'@admin``."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.StringDtype):
            out[name] = out[name].map(_export.spreadsheet_text, na_action="ignore")
            out[name] = out[name].astype("string")
    return out


def test_an_export_equals_the_filter_applied_to_the_csv(
        generated: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    home, frame = generated
    query = LedgerQuery(home)
    rnd = random.Random(7)
    for n in range(6):
        which = random_filter(rnd)
        out = tmp_path / f"export-{n}.csv"
        written = _export.write_csv(query.batches(which, 97), out, lambda _n: None,
                                    LEDGER_COLUMNS)
        expected = as_exported(pandas_filter(frame, which).sort_values("IdOperazione"))
        again = load_ledger(out).sort_values("IdOperazione")
        assert written == len(expected)
        pd.testing.assert_frame_equal(again.reset_index(drop=True),
                                      expected.reset_index(drop=True))
    query.close()


def test_load_ledger_filters_equal_pandas(generated: tuple[Path, pd.DataFrame]) -> None:
    home, frame = generated
    pd.testing.assert_frame_equal(load_ledger(home), frame)
    person = PEOPLE[7]
    cases = [
        ({"codice_fiscale": person.lower()}, frame["CodiceFiscale"] == person),
        ({"stati": ["ANNULLATO", "SCADUTO"]},
         frame["Stato"].astype("string").isin(["ANNULLATO", "SCADUTO"])),
        ({"dal": dt.date(2025, 3, 1), "al": dt.date(2025, 9, 30)},
         frame["DataRichiesta"].dt.tz_convert(ROME).dt.date.between(
             dt.date(2025, 3, 1), dt.date(2025, 9, 30))),
        ({"canali": ["acme"]}, frame["Canale"] == "acme"),
        ({"canali": ["", "@admin"], "stati": ["ATTIVATO"]},
         frame["Canale"].fillna("").isin(["", "@admin"])
         & (frame["Stato"].astype("string") == "ATTIVATO")),
    ]
    for kwargs, mask in cases:
        got = load_ledger(home, **kwargs)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(got, frame[mask.fillna(False)].reset_index(drop=True))
    columns = load_ledger(home, stati=["ANNULLATO"], columns=["Motivazione", "IdOperazione"])
    assert list(columns.columns) == ["IdOperazione", "Motivazione"]
    assert isinstance(columns["Motivazione"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="Colonna"):
        load_ledger(home, columns=["Colonna"])


def _shuffled_home(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A copy whose dates do not follow its parts: a clock set back (the newest parts
    hold old requests), many requests at the same second, and requests with no date."""
    rows = generated_rows(900, seed=18)
    rnd = random.Random(18)
    tie = NOW - dt.timedelta(days=3)
    for k, row in enumerate(rows):
        if k >= 700:  # the newest parts: requested years ago by a clock set back
            row["DataRichiesta"] = rows[k - 650]["DataRichiesta"]
        elif k % 7 == 0:
            row["DataRichiesta"] = tie.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif k % 29 == 0:
            row["DataRichiesta"] = ""
        row["Stato"] = rnd.choice(("ATTIVATO", "ANNULLATO"))
    write_ledger(tmp_path, rows)
    write_parquet_copy(tmp_path, rows, per_part=100)
    return tmp_path, load_ledger(Outbox.of(tmp_path).ledger)


def _newest(frame: pd.DataFrame) -> list[str]:
    """The table's order, by pandas: the newest request first, undated ones last."""
    dated = frame[frame["DataRichiesta"].notna()].sort_values(
        ["DataRichiesta", "IdOperazione"], ascending=False)
    undated = frame[frame["DataRichiesta"].isna()].sort_values("IdOperazione", ascending=False)
    return list(dated["IdOperazione"]) + list(undated["IdOperazione"])


def test_a_page_is_right_whatever_order_the_parts_hold(tmp_path: Path) -> None:
    """The first pages are looked for after a moment found in the newest parts; dates
    out of the parts' order, ties at that moment and undated rows change nothing."""
    home, frame = _shuffled_home(tmp_path)
    query = LedgerQuery(home)
    for which in (LedgerFilter(), LedgerFilter(stati=("ANNULLATO",)),
                  LedgerFilter(contains=PEOPLE[3][:8]), LedgerFilter(canali=("acme",))):
        expected = _newest(pandas_filter(frame, which))
        for offset in (0, 20, 150, max(0, len(expected) - 10)):
            page = typed_from_arrow(query.page(which, offset=offset, limit=20))
            assert list(page["IdOperazione"]) == expected[offset:offset + 20], (which, offset)
    query.close()


def test_a_bound_that_cuts_the_page_short_is_dropped(
        generated: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts rewritten between the two questions (rows gone from the match) leave fewer
    rows after the bound than a page: the page is asked again without it."""
    home, frame = generated
    query = LedgerQuery(home)
    latest = frame["DataRichiesta"].max().to_pydatetime()
    monkeypatch.setattr(query, "_newest_floor", lambda *_a: latest)
    page = typed_from_arrow(query.page(LedgerFilter(), offset=0, limit=25))
    assert list(page["IdOperazione"]) == _newest(frame)[:25]
    query.close()


def test_the_first_page_is_bounded_by_the_newest_parts(
        generated: tuple[Path, pd.DataFrame]) -> None:
    """On the columnar copy, the first page's rows are looked for after a moment taken
    from the newest parts, which DuckDB prunes the older parts by."""
    home, frame = generated
    query = LedgerQuery(home)
    where, params = LedgerFilter().where()
    floor = query._newest_floor(where, params, 50)
    if query.source == "csv":
        assert floor is None
    else:
        assert floor is not None
        assert int((frame["DataRichiesta"] >= pd.Timestamp(floor)).sum()) >= 50
        assert (frame["DataRichiesta"] >= pd.Timestamp(floor)).sum() < len(frame) // 2
    query.close()
