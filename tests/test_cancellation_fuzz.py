"""Whatever the bytes of an annullamento, loading and parsing it raises InputRejected (with
one of the contract's codes) or returns a request the store can hold.

The service decides a run of annullamenti in one transaction: any other exception (a
ValueError for a 5000-digit number, a RecursionError, a UnicodeEncodeError in SQLite for a
lone surrogate) would fail the whole run, valid annullamenti included.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certdesk.cancellation import load_cancellation_document, parse_cancellation
from certdesk.errors import InputRejected
from certdesk.reasons import Motivazione

CODES = {
    "FILE_TROPPO_GRANDE",
    "JSON_NON_VALIDO",
    "CODICE_FISCALE_MANCANTE",
    "CODICE_FISCALE_NON_VALIDO",
    "ID_OPERAZIONE_NON_VALIDO",
    "MOTIVAZIONE_NON_VALIDA",
    "NOTA_NON_VALIDA",
    "OPERATORE_NON_VALIDO",
    "NOTA_OBBLIGATORIA",
}
FIELDS = ["tipo", "codice_fiscale", "id_operazione", "motivazione", "nota", "operatore"]

# No example database: it would be written into the checkout (.hypothesis/).
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)

# Any code point, lone surrogates included, and the look-alikes a codice fiscale meets.
characters = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from("\u017f\u00df\u0131\u212a\uff10\uff32\u2028\u00a0\u2013\ufeff\x00\t\n"),
)
texts = st.text(characters, max_size=30)

# Values travel as (JSON text, Python value): the text may hold what json.dumps cannot
# write (5000-digit numbers, NaN, repeated keys, raw surrogates).
Encoded = tuple[str, object]


def _string(text: str, escaped: bool) -> Encoded:
    return json.dumps(text, ensure_ascii=escaped), text


def _digits(count: int, negative: bool) -> Encoded:
    text = ("-" if negative else "") + ("9" * count or "0")
    value = (10**count - 1) * (-1 if negative else 1)  # no str(): over 4300 digits it fails
    return text, value


strings = st.builds(_string, texts, st.booleans())
# Escaped, a lone surrogate is valid UTF-8 JSON: json.loads accepts it, UTF-8 cannot hold it.
lone = st.builds("{}{}{}".format, texts, st.characters(categories=["Cs"]), texts)
escaped = st.builds(_string, st.one_of(texts, lone), st.just(True))
plausible = st.sampled_from(
    [
        "RSSMRA80A01H501U",
        "rss-mra-80a01-h501u",
        "00743110157",
        "R\u017fSMRA80A01H501U",
        "\u2028RSSMRA80A01H501U",
        "20250101-000000001",
        "",
        "  ",
        *(m.value for m in Motivazione),
    ]
).map(lambda text: _string(text, True))
scalars = st.one_of(
    st.just(("null", None)),
    st.booleans().map(lambda b: (json.dumps(b), b)),
    st.integers().map(lambda i: (str(i), i)),
    st.builds(_digits, st.integers(0, 6000), st.booleans()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: (json.dumps(f), f)),
    st.sampled_from(
        [
            ("NaN", math.nan),
            ("Infinity", math.inf),
            ("-Infinity", -math.inf),
            ("1e999", math.inf),
            ("-0.0", -0.0),
        ]
    ),
    strings,
    plausible,
)
keys = st.one_of(st.sampled_from(FIELDS), texts)


def _array(items: list[Encoded]) -> Encoded:
    return "[" + ",".join(text for text, _ in items) + "]", [value for _, value in items]


def _object(pairs: list[tuple[str, Encoded]]) -> Encoded:
    text = ",".join(f"{json.dumps(key)}:{item}" for key, (item, _) in pairs)
    return "{" + text + "}", {key: value for key, (_, value) in pairs}


def _containers(children: st.SearchStrategy[Encoded]) -> st.SearchStrategy[Encoded]:
    return st.one_of(
        st.lists(children, max_size=6).map(_array),
        st.lists(st.tuples(keys, children), max_size=6).map(_object),
    )


values = st.recursive(scalars, _containers, max_leaves=25)
# A top-level object, mostly with the real field names (sometimes repeated).
documents = st.lists(st.tuples(keys, values), max_size=10).map(_object)


def _mostly(valid: st.SearchStrategy[Encoded]) -> st.SearchStrategy[Encoded]:
    """``valid`` three times in four, else any value."""
    return st.integers(0, 3).flatmap(lambda n: valid if n else values)


def _strings(*choices: str) -> st.SearchStrategy[Encoded]:
    return st.sampled_from(choices).map(lambda text: _string(text, True))


# An annullamento whose fields are mostly valid, plus extra keys: bad values
# must reach each field's own check, past the checks before it, and text with lone
# surrogates must reach the end.
annullamenti = st.builds(
    lambda fields, extra: _object([*fields.items(), *extra]),
    st.fixed_dictionaries(
        {
            "tipo": _strings("annullamento"),
            "codice_fiscale": _mostly(_strings("RSSMRA80A01H501U", " rss-mra-80a01-h501u")),
            "id_operazione": _mostly(
                st.lists(st.one_of(_strings("20250101-000000001"), escaped), max_size=3).map(_array)
            ),
            "motivazione": _mostly(_strings(*(m.value for m in Motivazione))),
            "nota": _mostly(escaped),
            "operatore": _mostly(escaped),
        }
    ),
    st.lists(st.tuples(texts, values), max_size=2),  # repeated keys: in ``documents``
)


def _deep(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def load_and_parse(data: bytes) -> None:
    try:
        document = load_cancellation_document(data)
    except InputRejected as exc:
        check_refusal(exc)
    else:
        parse(document)


def parse(document: dict[str, object]) -> None:
    try:
        request = parse_cancellation(document)
    except InputRejected as exc:
        check_refusal(exc)
    else:
        # What the store and the receipt will hold is plain text.
        assert request.codice_fiscale.isascii()
        assert all(i.isascii() for i in request.id_operazione)
        request.nota.encode("utf-8")
        request.operatore.encode("utf-8")


def check_refusal(exc: InputRejected) -> None:
    assert exc.code in CODES, exc
    assert exc.message
    json.dumps({"messaggio": exc.message}, ensure_ascii=False).encode("utf-8")


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    load_and_parse(data)


@FUZZ
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_any_bytes_around_a_valid_document(before: bytes, after: bytes) -> None:
    valid = b'{"codice_fiscale": "RSSMRA80A01H501U", "motivazione": "ALTRO", "nota": "n"}'
    load_and_parse(before + valid + after)


@FUZZ
@given(st.one_of(annullamenti, documents))
def test_any_json_document(document: Encoded) -> None:
    text, value = document
    # Strings were written escaped or raw; "surrogatepass" writes a raw lone surrogate as
    # the (invalid) UTF-8 bytes a careless writer would produce.
    load_and_parse(text.encode("utf-8", "surrogatepass"))
    assert isinstance(value, dict)
    parse(value)  # the same document given directly: parse_cancellation holds its own line


@FUZZ
@given(values)
def test_any_json_value(value: Encoded) -> None:
    load_and_parse(value[0].encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=40)  # each example builds and unwinds thousands of levels
@given(st.integers(1, 30_000), documents)
def test_any_nesting_depth(depth: int, document: Encoded) -> None:
    text = "[" * depth + document[0] + "]" * depth
    load_and_parse(text.encode("utf-8", "surrogatepass"))
    load_and_parse(b'{"nota": ' + b"[" * depth + b"]" * depth + b"}")
    for field in FIELDS:  # a deep value in each field, given directly
        parse({field: _deep(depth)})
