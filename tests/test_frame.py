"""certdesk.frame: the ledger as a typed DataFrame, and dates as people read them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from conftest_panels import CF_COMPANY, CF_PERSON, ledger_row, write_ledger

from certdesk.errors import CertdeskError
from certdesk.frame import (
    LEDGER_COLUMNS,
    ROME,
    STATI,
    empty_ledger,
    for_display,
    format_date,
    load_ledger,
    to_rome,
)
from certdesk.reasons import Motivazione

T0 = dt.datetime(2026, 11, 27, 20, 31, 5, tzinfo=dt.UTC)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_ledger(tmp_path, [
        ledger_row("op1", CF_PERSON, "ATTIVATO", T0),
        ledger_row("op2", CF_PERSON, "ANNULLATO", T0, motivazione="FURTO_CERTIFICATO",
                   annullamento="2026-11-28T09:00:00Z"),
        ledger_row("op3", CF_COMPANY, "RIFIUTATO", T0),
        # 23:30 UTC on 31 Dec is already 1 January in Rome
        ledger_row("op4", CF_COMPANY, "IN_GENERAZIONE",
                   dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)),
    ])
    return tmp_path


def test_types_are_the_contracts(home: Path) -> None:
    df = load_ledger(home)
    assert tuple(df.columns) == LEDGER_COLUMNS
    assert len(df) == 4
    assert isinstance(df["Stato"].dtype, pd.CategoricalDtype)
    assert tuple(df["Stato"].cat.categories) == STATI
    assert isinstance(df["Motivazione"].dtype, pd.CategoricalDtype)
    assert tuple(df["Motivazione"].cat.categories) == tuple(m.value for m in Motivazione)
    for name in ("DataRichiesta", "DataScadenza", "DataAnnullamento"):
        assert isinstance(df[name].dtype, pd.DatetimeTZDtype), name
        assert str(df[name].dt.tz) == "UTC"
    assert df.loc[0, "DataRichiesta"] == pd.Timestamp(T0)
    assert pd.isna(df.loc[0, "DataAnnullamento"])  # empty cell -> NaT
    assert pd.isna(df.loc[0, "Motivazione"])
    assert pd.isna(df.loc[2, "Certificato"])  # empty string cell -> <NA>
    assert df.loc[1, "Motivazione"] == "FURTO_CERTIFICATO"
    assert str(df["CodiceFiscale"].dtype) == "string"
    # categoricals count every state, zeros included
    assert df["Stato"].value_counts()["SCADUTO"] == 0


def test_a_home_or_the_csv_itself(home: Path) -> None:
    by_home = load_ledger(home)
    by_file = load_ledger(home / "outbox" / "ledger.csv")
    by_str = load_ledger(str(home))
    pd.testing.assert_frame_equal(by_home, by_file)
    pd.testing.assert_frame_equal(by_home, by_str)


def test_no_ledger_yet_is_an_empty_typed_frame(tmp_path: Path) -> None:
    df = load_ledger(tmp_path)
    assert df.empty
    assert tuple(df.columns) == LEDGER_COLUMNS
    assert isinstance(df["Stato"].dtype, pd.CategoricalDtype)
    assert isinstance(df["DataRichiesta"].dtype, pd.DatetimeTZDtype)
    # the same types as a populated ledger, so concatenating and comparing just work
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "ledger.csv").write_text(",".join(LEDGER_COLUMNS) + "\n")
    assert load_ledger(tmp_path).dtypes.equals(df.dtypes)
    assert empty_ledger().dtypes.equals(df.dtypes)


def test_unknown_values_are_kept_not_dropped(tmp_path: Path) -> None:
    write_ledger(tmp_path, [ledger_row("op9", CF_PERSON, "SOSPESO", T0, motivazione="NUOVA")])
    df = load_ledger(tmp_path)
    assert df.loc[0, "Stato"] == "SOSPESO"
    assert df.loc[0, "Motivazione"] == "NUOVA"
    assert list(df["Stato"].cat.categories)[: len(STATI)] == list(STATI)


def test_a_foreign_csv_is_refused_with_a_code(tmp_path: Path) -> None:
    bad = tmp_path / "ledger.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(CertdeskError) as info:
        load_ledger(bad)
    assert info.value.code == "REGISTRO_NON_LEGGIBILE"
    assert "IdOperazione" in info.value.message
    write_ledger(tmp_path, [{**ledger_row("op1", CF_PERSON, "ATTIVATO", T0),
                             "DataRichiesta": "ieri"}])
    with pytest.raises(CertdeskError, match="DataRichiesta"):
        load_ledger(tmp_path)
    bad.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(CertdeskError):
        load_ledger(bad)


def test_rome_time_and_gg_mm_aaaa(home: Path) -> None:
    df = load_ledger(home)
    rome = to_rome(df)
    assert str(rome["DataRichiesta"].dt.tz) == "Europe/Rome"
    assert rome.loc[3, "DataRichiesta"].year == 2027
    assert df["DataRichiesta"].dt.tz is not None  # the original is untouched
    shown = for_display(df)
    assert shown.loc[0, "DataRichiesta"] == "27/11/2026"
    assert shown.loc[3, "DataRichiesta"] == "01/01/2027"
    assert shown.loc[1, "Motivazione"] == "Furto certificato"
    assert pd.isna(shown.loc[0, "Motivazione"])
    assert shown.loc[0, "DataAnnullamento"] == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T20:31:05Z", "27/11/2026"),
        ("2026-11-27T23:30:00Z", "28/11/2026"),  # winter: UTC+1
        ("2026-07-31T22:30:00Z", "01/08/2026"),  # summer: UTC+2
        (dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), "01/03/2026"),
        (pd.Timestamp("2026-12-31T23:00:00Z"), "01/01/2027"),
        (dt.datetime(2026, 5, 4, 0, 30, tzinfo=ROME), "04/05/2026"),
        (dt.date(2026, 2, 3), "03/02/2026"),
        (None, ""),
        ("", ""),
        (pd.NaT, ""),
        (pd.NA, ""),
        (float("nan"), ""),
    ],
)
def test_format_date(value: object, expected: str) -> None:
    assert format_date(value) == expected


def test_format_date_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_date(dt.datetime(2026, 1, 1, 12))
    with pytest.raises(TypeError):
        format_date(42)
