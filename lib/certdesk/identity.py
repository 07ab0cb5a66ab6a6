"""Italian taxpayer identifiers: the codice fiscale a certificate is issued to.

A person's codice fiscale has 16 characters (check character, a valid birth date,
*omocodia* letters accepted); a company's is its 11-digit number, validated with the
partita IVA algorithm. python-stdnum implements both; this module only normalises,
classifies and turns stdnum's exceptions into a coded refusal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from stdnum.exceptions import ValidationError
from stdnum.it import codicefiscale

from .errors import RequestRejected

__all__ = ["CodiceFiscale", "Soggetto", "parse_codice_fiscale"]


class Soggetto(enum.Enum):
    PERSONA_FISICA = "PERSONA_FISICA"
    SOCIETA = "SOCIETA"


@dataclass(frozen=True)
class CodiceFiscale:
    value: str
    soggetto: Soggetto

    def __str__(self) -> str:
        return self.value


def parse_codice_fiscale(raw: str) -> CodiceFiscale:
    """Normalise (case, spaces) and validate ``raw``; refuse with CODICE_FISCALE_NON_VALIDO."""
    shown = raw.strip()[:40]
    try:
        value = codicefiscale.validate(raw)
    except ValidationError as exc:
        raise RequestRejected(
            f"'{shown}' is not a valid codice fiscale ({exc}): the Common Name must be "
            "the 16-character codice fiscale of a person or the 11-digit number of a company",
            code="CODICE_FISCALE_NON_VALIDO",
        ) from None
    kind = Soggetto.SOCIETA if len(value) == 11 else Soggetto.PERSONA_FISICA
    return CodiceFiscale(value=value, soggetto=kind)
