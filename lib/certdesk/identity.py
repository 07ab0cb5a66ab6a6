"""Italian taxpayer identifiers: the codice fiscale a certificate is issued to.

A person's codice fiscale has 16 characters (check character, a valid birth date,
*omocodia* letters accepted); a company's is its 11-digit number, validated with the
partita IVA algorithm. python-stdnum implements both; this module only normalises,
classifies and turns stdnum's exceptions into a coded refusal.

A codice fiscale is ASCII. Only ASCII spaces, '-' and the case of ASCII letters are
normalised; the code then reaching stdnum is 11 or 16 ASCII letters and digits. stdnum's
``compact()`` alone would also fold Unicode look-alikes (full-width digits, no-break
spaces, Unicode dashes) and ``str.upper()``/``strip()`` fold more ('ſ' → 'S', 'ı' → 'I', a
U+2028 prefix stripped): a text that is a valid code only after such folding is not the
code that was written, and many different texts would then name one person.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError
from stdnum.it import codicefiscale

from .codes import refusal_as
from .errors import RequestRejected

__all__ = ["CodiceFiscale", "Soggetto", "parse_codice_fiscale"]

_SEPARATORS = str.maketrans("", "", " -")
# Explicit ASCII classes, no IGNORECASE: re's case folding would let the Kelvin sign match k.
_PLAIN = re.compile(r"[A-Z0-9]{11}|[A-Z0-9]{16}")


class Soggetto(enum.Enum):
    PERSONA_FISICA = "PERSONA_FISICA"
    SOCIETA = "SOCIETA"


@dataclass(frozen=True)
class CodiceFiscale:
    value: str
    soggetto: Soggetto

    def __str__(self) -> str:
        return self.value


def parse_codice_fiscale(raw: str, *, field: str = "Il valore") -> CodiceFiscale:
    """Normalise (ASCII case, spaces, dashes) and validate ``raw``; refuse with
    CODICE_FISCALE_NON_VALIDO, in a message that begins with ``field``, the subject of
    its sentence in Italian (e.g. "Il Common Name (CN)", "Il campo 'codice_fiscale'")."""
    plain = raw.translate(_SEPARATORS)
    # The registry's template shows ``raw`` with ascii() (``!a``): the message goes into
    # receipts and the store as UTF-8, and ``raw`` may hold lone surrogates or controls.
    shown = {"campo": field, "valore": raw[:40]}
    odd = next((c for c in plain if not c.isascii()), None)
    if odd is not None:
        name = unicodedata.name(odd, "")  # a lone surrogate has no name
        character = f"U+{ord(odd):04X} {name}".rstrip()
        raise refusal_as(
            RequestRejected, "CODICE_FISCALE_NON_VALIDO", "carattere", carattere=character, **shown
        )
    if not _PLAIN.fullmatch(plain.upper()):  # ASCII by now: upper() changes only a-z
        raise refusal_as(RequestRejected, "CODICE_FISCALE_NON_VALIDO", **shown)
    try:
        value = codicefiscale.validate(plain.upper())
    except ValidationError as exc:
        case = _STDNUM_CASES.get(type(exc), "")
        raise refusal_as(RequestRejected, "CODICE_FISCALE_NON_VALIDO", case, **shown) from None
    kind = Soggetto.SOCIETA if len(value) == 11 else Soggetto.PERSONA_FISICA
    return CodiceFiscale(value=value, soggetto=kind)


# stdnum's reasons, as CODICE_FISCALE_NON_VALIDO's cases; a bad format or length is the
# code's own sentence (16 characters for a person, 11 digits for a company).
_STDNUM_CASES: dict[type[ValidationError], str] = {
    InvalidChecksum: "controllo",
    InvalidComponent: "parte",
}
