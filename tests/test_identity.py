from __future__ import annotations

import pytest

from certdesk.errors import RequestRejected
from certdesk.identity import Soggetto, parse_codice_fiscale


@pytest.mark.parametrize(
    ("raw", "expected", "kind"),
    [
        ("RSSMRA80A01H501U", "RSSMRA80A01H501U", Soggetto.PERSONA_FISICA),
        (" rssmra 80a01 h501u ", "RSSMRA80A01H501U", Soggetto.PERSONA_FISICA),
        # omocodia: digits replaced by letters (L M N P Q R S T U V), same person
        ("RSSMRA80A41H501Y", "RSSMRA80A41H501Y", Soggetto.PERSONA_FISICA),
        ("RSSMRAULALMHRLMX", None, Soggetto.PERSONA_FISICA),
        ("00743110157", "00743110157", Soggetto.SOCIETA),
    ],
)
def test_valid_codici_fiscali(raw: str, expected: str | None, kind: Soggetto) -> None:
    from stdnum.it import codicefiscale

    if expected is None:  # build a fully omocodic code with its right check character
        expected = raw[:15] + codicefiscale.calc_check_digit(raw[:15])
        raw = expected
    parsed = parse_codice_fiscale(raw)
    assert parsed.value == expected
    assert parsed.soggetto is kind


@pytest.mark.parametrize(
    "raw",
    [
        "RSSMRA80A01H501X",  # wrong check character
        "RSSMRA80A32H501U",  # 32 January
        "RSSMRA80Z01H501U",  # no month Z
        "00743110158",  # wrong partita IVA check digit
        "0074311015",  # 10 digits
        "",
        "not a code",
        "RSSMRA80A01H501U1",
    ],
)
def test_invalid_codici_fiscali_have_a_stable_code(raw: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_codice_fiscale(raw)
    assert caught.value.code == "CODICE_FISCALE_NON_VALIDO"
    assert "codice fiscale" in caught.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "rssmra80a01h501u",
        " RSSMRA80A01H501U ",
        "RSS-MRA-80A01-H501U",
        "RSS MRA 80A01 H501U",
        "-rssmra80a01h501u-",
    ],
)
def test_ascii_case_spaces_and_dashes_are_normalised(raw: str) -> None:
    assert parse_codice_fiscale(raw).value == "RSSMRA80A01H501U"


def test_partita_iva_normalisation() -> None:
    assert parse_codice_fiscale(" 007-4311-0157 ").value == "00743110157"


# Each is a valid codice fiscale only through Unicode folding (python-stdnum's compact()
# maps look-alike digits, spaces and dashes; str.upper() and strip() fold more).
LOOK_ALIKES = [
    "R\u017fSMRA80A01H501U",  # ſ LATIN SMALL LETTER LONG S: upper() gives 'S'
    "R\u00dfMRA80A01H501U",  # ß: upper() gives 'SS'
    "RSSMR\u013180A01H501C",  # ı dotless i: upper() gives 'I' (RSSMRI80A01H501C is valid)
    "RSSMRA\uff18\uff10A01H501U",  # full-width digits 8 0
    "\uff10\uff10743110157",  # full-width digits in a company's number
    "RSSMRA\U0001d7d6\U0001d7ceA01H501U",  # mathematical bold digits 8 0
    "\u2028RSSMRA80A01H501U",  # LINE SEPARATOR prefix, removed by strip()
    "RSSMRA80A01H501U\u2029",  # PARAGRAPH SEPARATOR suffix
    "RSSMRA\u00a080A01H501U",  # NO-BREAK SPACE, mapped to a space by stdnum
    "RSSMRA\u300080A01H501U",  # IDEOGRAPHIC SPACE
    "RSSMRA\u200980A01H501U",  # THIN SPACE
    "RSSMRA\u201380A01H501U",  # EN DASH, mapped to '-' by stdnum
    "RSSMRA\u221280A01H501U",  # MINUS SIGN
    "\tRSSMRA80A01H501U",  # ASCII whitespace other than the space, removed by strip()
    "RSSMRA80A01H501U\n",
    "RSSMRA80A01H501U\r",
    "RSSMRA80A01H501U\x0b",
    "RSSMRA:80A01:H501U",  # ':' is a separator for stdnum, not for a codice fiscale
]


@pytest.mark.parametrize("raw", LOOK_ALIKES)
def test_unicode_look_alikes_are_refused(raw: str) -> None:
    from stdnum.it import codicefiscale

    assert codicefiscale.is_valid(raw)  # stdnum alone would take it
    with pytest.raises(RequestRejected) as caught:
        parse_codice_fiscale(raw)
    assert caught.value.code == "CODICE_FISCALE_NON_VALIDO"


@pytest.mark.parametrize(
    "raw",
    [
        "\u212aSSMRA80A01H501U",  # KELVIN SIGN: lower() gives 'k'
        "\uff32SSMRA80A01H501U",  # FULLWIDTH LATIN CAPITAL LETTER R
        "RSSMRA80A01H501U\x00",
        "RSSMRA80A01H501U\ud800",  # a lone surrogate (a JSON "\ud800" escape)
    ],
)
def test_other_non_ascii_is_refused_and_shown_escaped(raw: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_codice_fiscale(raw, field="Il campo 'codice_fiscale'")
    assert caught.value.code == "CODICE_FISCALE_NON_VALIDO"
    message = caught.value.message
    assert message.startswith("Il campo 'codice_fiscale' contiene ")
    # receipts are UTF-8: a surrogate (or a control character) must not reach them
    assert ascii(raw) in message and message.encode("utf-8")
    non_ascii = next((c for c in raw if not c.isascii()), None)
    if non_ascii is not None:
        assert f"U+{ord(non_ascii):04X}" in message and non_ascii not in message


def test_refusal_names_the_non_ascii_character() -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_codice_fiscale("R\u017fSMRA80A01H501U", field="Il Common Name (CN)")
    message = caught.value.message
    assert message.startswith("Il Common Name (CN) contiene 'R\\u017fSMRA80A01H501U'")
    assert "U+017F LATIN SMALL LETTER LONG S" in message and "\u017f" not in message
