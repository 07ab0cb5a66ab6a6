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
