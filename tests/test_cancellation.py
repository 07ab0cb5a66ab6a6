"""Annullamento documents (``cancellation.py``): a malformed document is refused with a specific
code and a message naming the field, and nothing else is raised. Pure: no disk, no store."""

from __future__ import annotations

import json

import pytest

from certdesk.cancellation import load_cancellation_document, parse_cancellation
from certdesk.errors import CancellationRejected
from conftest import PERSON, VALID_ID, annullamento


def _refused_bytes(data: bytes) -> CancellationRejected:
    with pytest.raises(CancellationRejected) as caught:
        parse_cancellation(load_cancellation_document(data))
    caught.value.message.encode("utf-8")  # a receipt and the store can hold it
    assert caught.value.code.isupper() and caught.value.code != "ERRORE_INTERNO"
    return caught.value


def _refused(document: dict[str, object]) -> CancellationRejected:
    return _refused_bytes(json.dumps(document).encode())


def test_a_valid_document_parses() -> None:
    parsed = parse_cancellation(load_cancellation_document(json.dumps(annullamento()).encode()))
    assert parsed.codice_fiscale == PERSON and parsed.id_operazione == (VALID_ID,)
    assert parsed.nota == "contratto chiuso" and parsed.operatore == "mario"
    bare = {"codice_fiscale": "rss-mra-80a01-h501u", "id_operazione": VALID_ID,
            "motivazione": "FURTO_CERTIFICATO"}  # fmt: skip
    parsed = parse_cancellation(bare)
    assert parsed.codice_fiscale == PERSON and parsed.id_operazione == (VALID_ID,)
    assert parsed.nota == "" and parsed.operatore == ""


WRONG_TYPES: list[object] = [0, 1.5, [], ["x"], {}, {"x": "y"}, False, True, None]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("operatore", v, "OPERATORE_NON_VALIDO") for v in WRONG_TYPES]
    + [("nota", v, "NOTA_NON_VALIDA") for v in WRONG_TYPES]
    + [
        ("operatore", "o" * 201, "OPERATORE_NON_VALIDO"),
        ("nota", "n" * 2001, "NOTA_NON_VALIDA"),
        ("codice_fiscale", None, "CODICE_FISCALE_MANCANTE"),
        ("codice_fiscale", "  ", "CODICE_FISCALE_MANCANTE"),
        ("codice_fiscale", 7, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", [PERSON], "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", {}, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", True, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "\u2028" + PERSON, "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "R\u017fSMRA80A01H501U", "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "RSSMRA\uff18\uff10A01H501U", "CODICE_FISCALE_NON_VALIDO"),
        ("codice_fiscale", "X" * 60_000, "CODICE_FISCALE_NON_VALIDO"),
        ("id_operazione", None, "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", {}, "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", 20250101, "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [1, 2], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [None], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [[VALID_ID]], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [""], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", ["x" * 65], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", ["2025\u20140101"], "ID_OPERAZIONE_NON_VALIDO"),
        ("id_operazione", [f"20250101-{i:09d}" for i in range(101)], "ID_OPERAZIONE_NON_VALIDO"),
        ("motivazione", None, "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", ["ALTRO"], "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", {"ALTRO": 1}, "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", 5, "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", "altro", "MOTIVAZIONE_NON_VALIDA"),
        ("motivazione", "M" * 50_000, "MOTIVAZIONE_NON_VALIDA"),
    ],
)  # fmt: skip
def test_each_malformed_field_has_its_code_and_is_named(
    field: str, value: object, code: str
) -> None:
    error = _refused(annullamento(**{field: value}))
    assert error.code == code
    assert f"'{field}'" in error.message
    assert len(error.message) < 400  # the value is not echoed whole
    others = {"codice_fiscale", "id_operazione", "motivazione", "nota", "operatore"} - {field}
    assert not any(f"'{other}'" in error.message for other in others)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"versione": ' + b"9" * 5000 + b"}", "'versione'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"id_operazione": [-' + b"1" * 5000 + b"]}", "'id_operazione'[0]"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "\\ud800"}',
         "'nota'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"operatore": "a\\udfffb"}', "'operatore'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U\\ud800", "motivazione": "ALTRO", "nota": "n"}',
         "'codice_fiscale'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n", '
         b'"id_operazione": ["\\udc00"]}', "'id_operazione'[0]"),
        (b'{"\\ud800": 1, "codice_fiscale": "RSSMRA80A01H501U"}', "chiave"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": NaN}',
         "'nota'"),
        (b'{"codice_fiscale": "RSSMRA80A01H501U", "x": {"y": [Infinity, -Infinity]}}',
         "'x'['y'][0]"),
        (b'{"codice_fiscale": "BNCLRD70B02F205H", "motivazione": "ALTRO", "nota": "n", '
         b'"codice_fiscale": "RSSMRA80A01H501U"}', "'codice_fiscale'"),
        (b"\xef\xbb\xbf" + json.dumps(annullamento()).encode(), "BOM"),
        (json.dumps(annullamento()).encode("utf-16"), "UTF-8"),
        (json.dumps(annullamento(nota="perch\u00e9"), ensure_ascii=False).encode("latin-1"),
         "UTF-8"),
        (b'{"nota": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "annidati"),
        (b"[" * 20_000, "annidati"),
        (b"", "JSON"),
        (b"[]", "oggetto"),
        (b'"annullamento"', "oggetto"),
        (b"null", "oggetto"),
        (b"1" + b"0" * 5000, "oggetto"),
        (b'{"nota": "a\x01b"}', "JSON"),
    ],
)  # fmt: skip
def test_malformed_json_is_refused_as_json_non_valido(data: bytes, named: str) -> None:
    error = _refused_bytes(data)
    assert error.code == "JSON_NON_VALIDO"
    assert named in error.message


def test_an_oversized_document_is_refused() -> None:
    error = _refused_bytes(json.dumps(annullamento(nota="n" * 70_000)).encode())
    assert error.code == "FILE_TROPPO_GRANDE"


@pytest.mark.parametrize(
    ("field", "code"),
    [("nota", "NOTA_NON_VALIDA"), ("operatore", "OPERATORE_NON_VALIDO"),
     ("id_operazione", "ID_OPERAZIONE_NON_VALIDO"),
     ("codice_fiscale", "CODICE_FISCALE_NON_VALIDO")],
)  # fmt: skip
def test_a_lone_surrogate_given_directly_is_refused(field: str, code: str) -> None:
    """parse_cancellation holds its own line: a surrogate that bypassed the loader would
    fail the run's transaction in SQLite, or the receipt that echoes it."""
    value: object = ["\ud800"] if field == "id_operazione" else PERSON[:5] + "\ud800"
    with pytest.raises(CancellationRejected) as caught:
        parse_cancellation(annullamento(**{field: value}))
    assert caught.value.code == code and f"'{field}'" in caught.value.message
    caught.value.message.encode("utf-8")


def test_values_that_cannot_be_printed_are_not_printed() -> None:
    """repr() of a 5000-digit int raises ValueError, of a deep list RecursionError."""
    deep: list[object] = []
    for _ in range(50_000):
        deep = [deep]
    for value in (10**5000, deep):
        with pytest.raises(CancellationRejected) as caught:
            parse_cancellation(annullamento(motivazione=value))
        assert caught.value.code == "MOTIVAZIONE_NON_VALIDA"
        for field in ("nota", "operatore", "id_operazione", "codice_fiscale"):
            with pytest.raises(CancellationRejected):
                parse_cancellation(annullamento(**{field: value}))
